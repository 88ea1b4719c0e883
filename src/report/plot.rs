//! Figures in one consistent style (plotters, PNG + SVG): line plots with legends and
//! heatmaps with contour lines and a colour bar. Text uses an embedded DejaVu font, so
//! figures render on machines without system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::files::{WriteError, commit, ensure_parent_dir, temp_sibling, write_atomic};

/// Figure size in pixels.
pub const SIZE: (u32, u32) = (900, 600);
pub(crate) const FONT: &str = "sans-serif";

/// The series palette (colour-blind friendly, Okabe–Ito).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

static FONTS: Once = Once::new();

/// Register the embedded fonts with plotters (idempotent).
pub fn register_fonts() {
    FONTS.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
        let _ = plotters::style::register_font(FONT, FontStyle::Italic, dejavu::sans::oblique());
        let _ = plotters::style::register_font(FONT, FontStyle::Oblique, dejavu::sans::oblique());
    });
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
    /// Points (circles).
    Points,
    /// Steps (a histogram outline).
    Steps,
}

/// One curve of a line plot.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
    /// Palette index.
    pub color: usize,
    /// Drawing style.
    pub mark: Mark,
}

impl Series {
    /// A series from x and y columns.
    pub fn new(label: impl Into<String>, xs: &[f64], ys: &[f64], color: usize, mark: Mark) -> Self {
        Self {
            label: label.into(),
            points: xs.iter().copied().zip(ys.iter().copied()).collect(),
            color,
            mark,
        }
    }
}

/// A vertical or horizontal reference line with a label.
#[derive(Debug, Clone)]
pub struct RefLine {
    /// Legend text.
    pub label: String,
    /// Position on its axis.
    pub at: f64,
    /// Vertical (x = at) if true, horizontal (y = at) otherwise.
    pub vertical: bool,
}

/// A line plot.
#[derive(Debug, Clone, Default)]
pub struct LinePlot {
    /// Title above the plot.
    pub title: String,
    /// x-axis label (with symbol/units).
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Reference lines.
    pub ref_lines: Vec<RefLine>,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Fixed y range.
    pub y_range: Option<(f64, f64)>,
    /// Legend in the upper-left corner instead of the upper-right one.
    pub legend_left: bool,
}

/// A heatmap of a field on a cell-centred grid, with optional contour lines of a second field.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Colour-bar label.
    pub colorbar_label: String,
    /// Cells along x and y.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
    /// Domain [x_min, x_max].
    pub x_range: (f64, f64),
    /// Domain [y_min, y_max].
    pub y_range: (f64, f64),
    /// Values at cell k = i·ny + j.
    pub values: Vec<f64>,
    /// Field whose contour lines are drawn (same layout), with its levels.
    pub contours: Option<(Vec<f64>, Vec<f64>)>,
    /// Legend text of the contour lines.
    pub contour_label: String,
    /// Marked points (x, y, label).
    pub markers: Vec<(f64, f64, String)>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError::new(path, format!("plotting failed: {e}"))
}

/// Something that draws itself on any plotters backend.
pub trait Figure {
    /// Draw on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

impl Figure for LinePlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_line_plot(root, self)
    }
}

impl Figure for Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_heatmap(root, self)
    }
}

/// Render a figure to `<stem>.png` and `<stem>.svg`, atomically.
pub fn render(stem: &Path, figure: &impl Figure) -> Result<(), WriteError> {
    register_fonts();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    ensure_parent_dir(&png)?;
    let tmp = temp_sibling(&png);
    {
        let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&png, e))?;
        figure.draw(&root).map_err(|e| err(&png, e))?;
        root.present().map_err(|e| err(&png, e))?;
    }
    commit(&tmp, &png)?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&svg, e))?;
        figure.draw(&root).map_err(|e| err(&svg, e))?;
        root.present().map_err(|e| err(&svg, e))?;
    }
    write_atomic(&svg, text.as_bytes())
}

/// Axis range of finite values, padded by 5 %.
fn data_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.ln(), hi.ln());
        let pad = ((b - a) * 0.05).max(0.05);
        return ((a - pad).exp(), (b + pad).exp());
    }
    if hi - lo < 1e-300 {
        return (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0));
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Draw a line plot into `<stem>.png` and `<stem>.svg`.
pub fn line_plot(stem: &Path, plot: &LinePlot) -> Result<(), WriteError> {
    render(stem, plot)
}

/// Draw a line plot on any backend.
pub fn draw_line_plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &LinePlot,
) -> Result<(), String> {
    let xs = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let xs = xs.chain(plot.ref_lines.iter().filter(|r| r.vertical).map(|r| r.at));
    let (x0, x1) = data_range(xs, plot.log_x);
    let (y0, y1) = plot.y_range.unwrap_or_else(|| {
        let ys = plot
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1));
        data_range(
            ys.chain(plot.ref_lines.iter().filter(|r| !r.vertical).map(|r| r.at)),
            plot.log_y,
        )
    });
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&plot.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(78);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(plot.x_label.as_str())
                .y_desc(plot.y_label.as_str())
                .x_label_formatter(&|v| {
                    if plot.log_x {
                        format_tick(*v)
                    } else {
                        format_axis_tick(*v, x1 - x0, 10)
                    }
                })
                .y_label_formatter(&|v| {
                    if plot.log_y {
                        format_tick(*v)
                    } else {
                        format_axis_tick(*v, y1 - y0, 10)
                    }
                })
                .x_labels(if plot.log_x { 6 } else { 10 })
                .y_labels(if plot.log_y { 6 } else { 10 })
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .bold_line_style(RGBColor(215, 215, 215))
                .light_line_style(RGBColor(242, 242, 242))
                .draw()
                .map_err(|x| e(&x))?;
            for s in &plot.series {
                let color = PALETTE[s.color % PALETTE.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| {
                        p.0.is_finite()
                            && p.1.is_finite()
                            && (!plot.log_x || p.0 > 0.0)
                            && (!plot.log_y || p.1 > 0.0)
                    })
                    .collect();
                // Thick polylines through many jagged points grow miter spikes in plotters:
                // dense series are drawn one pixel wide.
                let width = if pts.len() > 400 { 1 } else { 2 };
                let style = ShapeStyle::from(&color).stroke_width(width);
                let anno = match s.mark {
                    Mark::Line | Mark::Steps => chart
                        .draw_series(LineSeries::new(
                            if s.mark == Mark::Steps {
                                steps(&pts)
                            } else {
                                pts.clone()
                            },
                            style,
                        ))
                        .map_err(|x| e(&x))?,
                    Mark::Dashed => chart
                        .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style))
                        .map_err(|x| e(&x))?,
                    Mark::Points => chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 2, style.filled())))
                        .map_err(|x| e(&x))?,
                };
                if !s.label.is_empty() {
                    let (a, b) = swatch_pieces(s.mark);
                    anno.label(s.label.as_str()).legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(a.to_vec(), color.stroke_width(3))
                            + PathElement::new(b.to_vec(), color.stroke_width(3))
                    });
                }
            }
            for (n, r) in plot.ref_lines.iter().enumerate() {
                let color = RGBColor(120, 120, 120);
                let pts = if r.vertical {
                    vec![(r.at, y0), (r.at, y1)]
                } else {
                    vec![(x0, r.at), (x1, r.at)]
                };
                let style = ShapeStyle::from(&color).stroke_width(1 + (n % 2) as u32);
                chart
                    .draw_series(DashedLineSeries::new(pts, 4, 4, style))
                    .map_err(|x| e(&x))?
                    .label(r.label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(if plot.legend_left {
                    SeriesLabelPosition::UpperLeft
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font((FONT, 15))
                .draw()
                .map_err(|x| e(&x))?;
        }};
    }
    match (plot.log_x, plot.log_y) {
        (false, false) => body!(
            builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|x| e(&x))?
        ),
        (true, false) => body!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(|x| e(&x))?
        ),
        (false, true) => body!(
            builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(|x| e(&x))?
        ),
        (true, true) => body!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(|x| e(&x))?
        ),
    }
    Ok(())
}

/// A compact tick label with about three significant digits.
/// A tick label on a linear axis spanning `span` with about `labels` labels: as many decimals
/// as the label spacing needs (so neighbouring labels never print alike), and `0` for values
/// that are zero up to round-off (never "-0.0").
pub fn format_axis_tick(v: f64, span: f64, labels: usize) -> String {
    let step = (span / labels.max(1) as f64).abs();
    if step.is_nan() || step <= 0.0 || !v.is_finite() {
        return format_tick(v);
    }
    if v.abs() < 1e-9 * step {
        return "0".into();
    }
    let a = v.abs().max(span.abs());
    if !(1e-3..1e5).contains(&a) {
        // Scientific: enough mantissa digits to separate neighbours.
        let digits = ((a / step).log10().ceil() as usize).clamp(1, 6);
        return format!("{v:.digits$e}");
    }
    let decimals = (-step.log10() - 1e-9).ceil().clamp(0.0, 10.0) as usize;
    format!("{v:.decimals$}")
}

/// A tick label chosen by the value's own size (log axes, legends, colour bars).
pub fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A histogram outline through cell centres (x, p): horizontal steps between midpoints.
fn steps(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * pts.len());
    for (k, &(x, y)) in pts.iter().enumerate() {
        let left = if k == 0 {
            x - 0.5 * (pts.get(1).map_or(0.0, |p| p.0) - x)
        } else {
            0.5 * (pts[k - 1].0 + x)
        };
        let right = if k + 1 == pts.len() {
            x + (x - left)
        } else {
            0.5 * (x + pts[k + 1].0)
        };
        out.push((left, y));
        out.push((right, y));
    }
    out
}

/// Average `values` (cell k = i·ny + j) into at most `max_x` × `max_y` blocks.
pub fn downsample(
    values: &[f64],
    nx: usize,
    ny: usize,
    max_x: usize,
    max_y: usize,
) -> (Vec<f64>, usize, usize) {
    let fx = nx.div_ceil(max_x).max(1);
    let fy = ny.div_ceil(max_y).max(1);
    let (mx, my) = (nx.div_ceil(fx), ny.div_ceil(fy));
    let mut out = vec![0.0; mx * my];
    let mut count = vec![0usize; mx * my];
    for i in 0..nx {
        for j in 0..ny {
            let b = (i / fx) * my + j / fy;
            out[b] += values[i * ny + j];
            count[b] += 1;
        }
    }
    for (v, c) in out.iter_mut().zip(&count) {
        *v /= (*c).max(1) as f64;
    }
    (out, mx, my)
}

/// Contour segments of a cell-centred field at `level` (marching squares).
pub fn contour_segments(
    field: &[f64],
    nx: usize,
    ny: usize,
    x_range: (f64, f64),
    y_range: (f64, f64),
    level: f64,
) -> Vec<[(f64, f64); 2]> {
    let dx = (x_range.1 - x_range.0) / nx as f64;
    let dy = (y_range.1 - y_range.0) / ny as f64;
    let pos = |i: usize, j: usize| {
        (
            x_range.0 + (i as f64 + 0.5) * dx,
            y_range.0 + (j as f64 + 0.5) * dy,
        )
    };
    let mut segs = Vec::new();
    for i in 0..nx.saturating_sub(1) {
        for j in 0..ny.saturating_sub(1) {
            let c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let v: Vec<f64> = c.iter().map(|&(a, b)| field[a * ny + b] - level).collect();
            let mut cross = Vec::with_capacity(4);
            for e in 0..4 {
                let (a, b) = (e, (e + 1) % 4);
                if (v[a] < 0.0) != (v[b] < 0.0) {
                    // Interpolate from the lower-indexed corner, so that the two cells sharing
                    // this edge compute the same point to the bit (join_segments relies on it).
                    let (a, b) = if c[a] < c[b] { (a, b) } else { (b, a) };
                    let t = v[a] / (v[a] - v[b]);
                    let (pa, pb) = (pos(c[a].0, c[a].1), pos(c[b].0, c[b].1));
                    cross.push((pa.0 + t * (pb.0 - pa.0), pa.1 + t * (pb.1 - pa.1)));
                }
            }
            if cross.len() == 2 {
                segs.push([cross[0], cross[1]]);
            } else if cross.len() == 4 {
                segs.push([cross[0], cross[1]]);
                segs.push([cross[2], cross[3]]);
            }
        }
    }
    segs
}

/// Join contour segments that share end points into polylines (marching squares gives each
/// cell's piece alone; drawn one by one, sub-pixel pieces render as dotted specks).
pub fn join_segments(segs: &[[(f64, f64); 2]]) -> Vec<Vec<(f64, f64)>> {
    use std::collections::HashMap;
    // End points are computed identically by the two cells sharing an edge: exact bits match.
    let key = |p: (f64, f64)| (p.0.to_bits(), p.1.to_bits());
    let mut at: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (n, s) in segs.iter().enumerate() {
        at.entry(key(s[0])).or_default().push(n);
        at.entry(key(s[1])).or_default().push(n);
    }
    let mut used = vec![false; segs.len()];
    let mut lines = Vec::new();
    for first in 0..segs.len() {
        if used[first] {
            continue;
        }
        used[first] = true;
        let mut line = vec![segs[first][0], segs[first][1]];
        // Grow at the tail, then at the head.
        for _ in 0..2 {
            loop {
                let tail = *line.last().expect("a line has points");
                let next = at
                    .get(&key(tail))
                    .and_then(|c| c.iter().copied().find(|&n| !used[n]));
                let Some(n) = next else { break };
                used[n] = true;
                let s = segs[n];
                line.push(if key(s[0]) == key(tail) { s[1] } else { s[0] });
            }
            line.reverse();
        }
        lines.push(line);
    }
    lines
}

/// The two pieces of a legend swatch that looks like the series: a line, two dashes, or a dot.
type Piece = [(i32, i32); 2];
fn swatch_pieces(mark: Mark) -> (Piece, Piece) {
    match mark {
        Mark::Dashed => ([(0, 0), (8, 0)], [(14, 0), (22, 0)]),
        Mark::Points => ([(8, -2), (14, -2)], [(8, 2), (14, 2)]),
        _ => ([(0, 0), (11, 0)], [(11, 0), (22, 0)]),
    }
}

/// Draw a heatmap (with colour bar and contour lines) into `<stem>.png` and `<stem>.svg`.
pub fn heatmap(stem: &Path, map: &Heatmap) -> Result<(), WriteError> {
    render(stem, map)
}

/// Draw a heatmap on any backend.
pub fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    map: &Heatmap,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (main, bar) = root.split_horizontally(SIZE.0 - 130);
    let (vals, mx, my) = downsample(&map.values, map.nx, map.ny, 220, 140);
    let (vmin, vmax) = vals
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (vmin, vmax) = if vmin.is_finite() && vmax > vmin {
        (vmin, vmax)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&main)
        .caption(&map.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d(map.x_range.0..map.x_range.1, map.y_range.0..map.y_range.1)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(map.x_label.as_str())
        .y_desc(map.y_label.as_str())
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(|x| e(&x))?;
    let bx = (map.x_range.1 - map.x_range.0) / mx as f64;
    let by = (map.y_range.1 - map.y_range.0) / my as f64;
    chart
        .draw_series((0..mx).flat_map(|i| {
            let vals = &vals;
            (0..my).map(move |j| {
                let v = vals[i * my + j];
                let t = ((v - vmin) / (vmax - vmin)).clamp(0.0, 1.0);
                let color = ViridisRGB.get_color(t as f32);
                let x0 = map.x_range.0 + i as f64 * bx;
                let y0 = map.y_range.0 + j as f64 * by;
                Rectangle::new([(x0, y0), (x0 + bx, y0 + by)], color.filled())
            })
        }))
        .map_err(|x| e(&x))?;
    if let Some((field, levels)) = &map.contours {
        // Light grey, drawn as joined polylines; the legend swatch is the same line.
        let grey = RGBColor(215, 215, 215);
        let style = ShapeStyle::from(&grey).stroke_width(2);
        let mut first = true;
        for &level in levels {
            let segs = contour_segments(field, map.nx, map.ny, map.x_range, map.y_range, level);
            let series = chart
                .draw_series(
                    join_segments(&segs)
                        .into_iter()
                        .map(|line| PathElement::new(line, style)),
                )
                .map_err(|x| e(&x))?;
            if first && !map.contour_label.is_empty() {
                series
                    .label(map.contour_label.as_str())
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + Rectangle::new([(-2, -5), (24, 5)], RGBColor(68, 1, 84).filled())
                            + PathElement::new(vec![(0, 0), (22, 0)], grey.stroke_width(2))
                    });
                first = false;
            }
        }
    }
    let mut color_index = 0;
    for (x, y, label) in &map.markers {
        // An unlabelled marker repeats the previous marker's colour and legend entry.
        if !label.is_empty() {
            color_index += 1;
        }
        let color = PALETTE[color_index % PALETTE.len()];
        let drawn = chart
            .draw_series(std::iter::once(Cross::new(
                (*x, *y),
                7,
                color.stroke_width(3),
            )))
            .map_err(|x| e(&x))?;
        if !label.is_empty() {
            drawn
                .label(label.as_str())
                .legend(move |(x, y)| Cross::new((x + 10, y), 6, color.stroke_width(3)));
        }
    }
    if map.contours.is_some() || !map.markers.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font((FONT, 14))
            .draw()
            .map_err(|x| e(&x))?;
    }
    draw_colorbar(&bar, (vmin, vmax), &map.colorbar_label, false)?;
    Ok(())
}

/// A vertical viridis colour bar for values in `range` on `area`; with `log`, the range holds
/// natural logarithms and the ticks show the values.
pub fn draw_colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (lo, hi): (f64, f64),
    label: &str,
    log: bool,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    // An empty or one-valued map (e.g. no search times at all) has no range: plotters would
    // loop forever looking for tick marks, so widen it.
    let (lo, hi) = if !(lo.is_finite() && hi.is_finite()) {
        (0.0, 1.0)
    } else if hi - lo <= 1e-12 * lo.abs().max(hi.abs()) {
        let pad = if lo == 0.0 { 0.5 } else { 0.5 * lo.abs() };
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    };
    let mut cb = ChartBuilder::on(area)
        .margin_top(50)
        .margin_bottom(66)
        .margin_right(8)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|x| e(&x))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .y_label_formatter(&|v| format_tick(if log { v.exp() } else { *v }))
        .draw()
        .map_err(|x| e(&x))?;
    let steps = 128;
    cb.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            ViridisRGB.get_color(k as f32 / steps as f32).filled(),
        )
    }))
    .map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tick_tests {
    use super::*;

    #[test]
    fn neighbouring_ticks_never_print_alike_and_zero_has_no_sign() {
        // Fig. 4(b)'s y-axis: 0.0030, 0.0035, 0.0040 used to print 0.003, 0.004, 0.004.
        let span = 0.005;
        let labels: Vec<String> = (0..=10)
            .map(|k| format_axis_tick(k as f64 * 0.0005, span, 10))
            .collect();
        let mut dedup = labels.clone();
        dedup.dedup();
        assert_eq!(labels, dedup, "{labels:?}");
        assert_eq!(format_axis_tick(-1e-17, 1.0, 10), "0");
        assert_eq!(format_axis_tick(0.5, 1.0, 10), "0.5");
        assert_eq!(format_axis_tick(150.0, 1000.0, 10), "150");
        assert_eq!(format_axis_tick(-0.04, 0.4, 10), "-0.04");
    }
}

#[cfg(test)]
mod contour_tests {
    use super::*;

    #[test]
    fn legend_swatches_look_like_their_series() {
        let (a, b) = swatch_pieces(Mark::Dashed);
        assert!(b[0].0 > a[1].0, "a dashed swatch has a gap");
        let (a, b) = swatch_pieces(Mark::Line);
        assert_eq!(a[1], b[0], "a solid swatch has none");
    }

    #[test]
    fn contour_segments_join_into_closed_polylines() {
        // r² on a 40 × 40 grid: the level 0.25 is one closed circle.
        let n = 40;
        let field: Vec<f64> = (0..n * n)
            .map(|k| {
                let (x, y) = (
                    -1.0 + (k / n) as f64 * 2.0 / n as f64,
                    -1.0 + (k % n) as f64 * 2.0 / n as f64,
                );
                x * x + y * y
            })
            .collect();
        let segs = contour_segments(&field, n, n, (-1.0, 1.0), (-1.0, 1.0), 0.25);
        let lines = join_segments(&segs);
        assert!(segs.len() > 40);
        assert_eq!(lines.len(), 1, "one closed curve");
        let l = &lines[0];
        assert_eq!(l.len(), segs.len() + 1);
        assert_eq!(l[0], l[l.len() - 1], "closed");
    }
}
