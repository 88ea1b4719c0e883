//! (σ, η) phase diagrams (paper Figs. 3c, 5b, 5d): a coloured grid of a sweep quantity with the
//! divergent region greyed, transition lines on top, a colour bar and an inset cut at fixed η.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plot::{Figure, PALETTE, Series, draw_colorbar, format_axis_tick, format_tick};

/// One cell of a phase diagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseCell {
    /// A measured value.
    Value(f64),
    /// The walkers diverged (phase III): grey.
    Diverged,
    /// Nothing was measured here (e.g. no walker reached x_ss): white, not "diverged".
    Missing,
}

/// A phase diagram over a regular (σ, η) grid.
#[derive(Debug, Clone)]
pub struct PhaseDiagram {
    /// Title.
    pub title: String,
    /// Colour-bar label (the plotted quantity).
    pub quantity: String,
    /// σ values (columns).
    pub sigma: Vec<f64>,
    /// η values (rows).
    pub eta: Vec<f64>,
    /// Cells at (η row, σ column), row-major.
    pub values: Vec<PhaseCell>,
    /// Colour on a log scale.
    pub log_color: bool,
    /// Lines over the map, in (σ, η) coordinates.
    pub lines: Vec<Series>,
    /// Inset: the quantity against σ at one η, with its label.
    pub inset: Option<(String, Vec<(f64, f64)>)>,
}

impl Figure for PhaseDiagram {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        // The inset cut gets its own column between the diagram and the colour bar, so that
        // it never covers the diagram or its transition lines.
        const BAR: u32 = 130;
        const INSET: u32 = 250;
        let has_inset = self
            .inset
            .as_ref()
            .is_some_and(|(_, p)| p.iter().filter(|q| q.1.is_finite()).count() > 1);
        let (main, side) =
            root.split_horizontally(super::plot::SIZE.0 - BAR - if has_inset { INSET } else { 0 });
        let (inset_column, bar) = side.split_horizontally(if has_inset { INSET } else { 0 });
        let (ns, ne) = (self.sigma.len(), self.eta.len());
        let half = |v: &[f64]| {
            if v.len() > 1 {
                0.5 * (v[1] - v[0])
            } else {
                0.5 * v[0].abs().max(1e-3)
            }
        };
        let (hs, he) = (half(&self.sigma), half(&self.eta));
        let x_range = (self.sigma[0] - hs, self.sigma[ns - 1] + hs);
        let y_range = (self.eta[0] - he, self.eta[ne - 1] + he);
        let tf = |v: f64| {
            if self.log_color {
                v.max(1e-300).ln()
            } else {
                v
            }
        };
        let finite: Vec<f64> = self
            .values
            .iter()
            .filter_map(|c| match *c {
                PhaseCell::Value(v) if v.is_finite() => Some(v),
                _ => None,
            })
            .collect();
        let (lo, hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(tf(v)), b.max(tf(v)))
            });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        };
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("batch-noise strength σ")
            .y_desc("learning rate η")
            .x_label_formatter(&|v| format_axis_tick(*v, x_range.1 - x_range.0, 10))
            .y_label_formatter(&|v| format_axis_tick(*v, y_range.1 - y_range.0, 10))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(|x| e(&x))?;
        let grey = RGBColor(190, 190, 190);
        chart
            .draw_series((0..ne).flat_map(|r| {
                (0..ns).map(move |c| {
                    let (s, h) = (self.sigma[c], self.eta[r]);
                    let color = match self.values[r * ns + c] {
                        PhaseCell::Value(v) if v.is_finite() => {
                            ViridisRGB.get_color(((tf(v) - lo) / (hi - lo)).clamp(0.0, 1.0) as f32)
                        }
                        PhaseCell::Diverged => grey,
                        _ => WHITE,
                    };
                    Rectangle::new([(s - hs, h - he), (s + hs, h + he)], color.filled())
                })
            }))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x_range.0, y_range.0), (x_range.0, y_range.0)],
                grey.filled(),
            )))
            .map_err(|x| e(&x))?
            .label("diverged (phase III)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], grey.filled()));
        if self.values.iter().any(|c| {
            !matches!(c, PhaseCell::Value(v) if v.is_finite()) && *c != PhaseCell::Diverged
        }) {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x_range.0, y_range.0), (x_range.0, y_range.0)],
                    WHITE.filled(),
                )))
                .map_err(|x| e(&x))?
                .label("no value (not measured)")
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], BLACK.stroke_width(1))
                });
        }
        for line in &self.lines {
            let color = PALETTE[line.color % PALETTE.len()];
            let pts: Vec<(f64, f64)> = line
                .points
                .iter()
                .copied()
                .filter(|p| {
                    p.0 >= x_range.0 && p.0 <= x_range.1 && p.1 >= y_range.0 && p.1 <= y_range.1
                })
                .collect();
            chart
                .draw_series(DashedLineSeries::new(pts, 7, 5, color.stroke_width(3)))
                .map_err(|x| e(&x))?
                .label(line.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|x| e(&x))?;
        if let Some((label, pts)) = &self.inset {
            let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1.is_finite()).collect();
            if pts.len() > 1 {
                let (_, h) = inset_column.dim_in_pixel();
                let inset = inset_column.margin(70, (h as f64 * 0.35) as i32, 6, 14);
                let (y0, y1) = pts
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                        (a.min(p.1), b.max(p.1))
                    });
                let pad = ((y1 - y0) * 0.1).max(1e-12);
                let (x0, x1) = (
                    pts[0].0.min(pts[pts.len() - 1].0),
                    pts[0].0.max(pts[pts.len() - 1].0),
                );
                let mut c = ChartBuilder::on(&inset)
                    .caption(label, ("sans-serif", 13))
                    .margin(4)
                    .x_label_area_size(22)
                    .y_label_area_size(48)
                    .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                    .map_err(|x| e(&x))?;
                c.configure_mesh()
                    .disable_mesh()
                    .label_style(("sans-serif", 11))
                    .y_label_formatter(&|v| format_tick(*v))
                    .x_labels(4)
                    .y_labels(4)
                    .draw()
                    .map_err(|x| e(&x))?;
                c.draw_series(LineSeries::new(pts.clone(), PALETTE[1].stroke_width(2)))
                    .map_err(|x| e(&x))?;
                c.draw_series(pts.iter().map(|&p| Circle::new(p, 2, PALETTE[1].filled())))
                    .map_err(|x| e(&x))?;
            }
        }
        draw_colorbar(&bar, (lo, hi), &self.quantity, self.log_color)?;
        Ok(())
    }
}
