//! The steady probability current over the FP density (`fp_current.png/.svg`) and the density of
//! an expression landscape (`density.npy`, `fp_density.png/.svg` with the loss contours).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::files::{WriteError, write_npy};
use super::plot::{self, FONT, Figure, Heatmap, SIZE};
use super::run::density_heatmap;
use crate::fp::FpSolution;
use crate::fp::current::Current;
use crate::landscape::Loss2d;

/// Arrows per axis in the current figure.
const ARROWS: (usize, usize) = (26, 18);
/// Arrows shorter than this fraction of the longest are not drawn.
const MIN_ARROW: f64 = 0.04;

/// The density heatmap with the current field drawn as arrows on top.
struct CurrentFigure {
    map: Heatmap,
    /// (tail, head) of each arrow in data coordinates.
    arrows: Vec<[(f64, f64); 2]>,
}

impl Figure for CurrentFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        plot::draw_heatmap(root, &self.map)?;
        // The same chart geometry as draw_heatmap, without drawing its frame again.
        let (main, _) = root.split_horizontally(SIZE.0 - 130);
        let chart = ChartBuilder::on(&main)
            .caption(&self.map.title, (FONT, 22))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(
                self.map.x_range.0..self.map.x_range.1,
                self.map.y_range.0..self.map.y_range.1,
            )
            .map_err(|e| e.to_string())?;
        let area = chart.plotting_area();
        let style = ShapeStyle::from(&WHITE).stroke_width(2);
        for &[tail, head] in &self.arrows {
            let (p0, p1) = (area.map_coordinate(&tail), area.map_coordinate(&head));
            let (dx, dy) = ((p1.0 - p0.0) as f64, (p1.1 - p0.1) as f64);
            let len = dx.hypot(dy);
            if len < 2.0 {
                continue;
            }
            let (ux, uy) = (dx / len, dy / len);
            let barb = (0.35 * len).clamp(3.0, 7.0);
            let wing = |s: f64| {
                (
                    p1.0 - (barb * (ux - s * 0.5 * uy)).round() as i32,
                    p1.1 - (barb * (uy + s * 0.5 * ux)).round() as i32,
                )
            };
            let backend = main.strip_coord_spec();
            for seg in [vec![p0, p1], vec![wing(1.0), p1, wing(-1.0)]] {
                backend
                    .draw(&PathElement::new(seg, style))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// Arrows of the cell-centred current on a coarse grid, the longest one cell of that grid long.
fn arrows(sol: &FpSolution, cur: &Current) -> Vec<[(f64, f64); 2]> {
    let g = &sol.grid;
    let (nx, ny) = (g.nx, g.ny);
    if nx < 2 || ny < 2 {
        return Vec::new();
    }
    let centre = |i: usize, j: usize| -> (f64, f64) {
        let jx = |i: isize| {
            if i < 0 || i as usize >= nx - 1 {
                0.0
            } else {
                cur.jx[i as usize * ny + j]
            }
        };
        let jy = |j: isize| {
            if j < 0 || j as usize >= ny - 1 {
                0.0
            } else {
                cur.jy[i * (ny - 1) + j as usize]
            }
        };
        let (ii, jj) = (i as isize, j as isize);
        (0.5 * (jx(ii - 1) + jx(ii)), 0.5 * (jy(jj - 1) + jy(jj)))
    };
    let (ax, ay) = ARROWS;
    let (wx, wy) = (nx as f64 * g.dx / ax as f64, ny as f64 * g.dy / ay as f64);
    let mut raw = Vec::new();
    for a in 0..ax {
        for b in 0..ay {
            let x = g.x_min + (a as f64 + 0.5) * wx;
            let y = g.y_min + (b as f64 + 0.5) * wy;
            let i = (((x - g.x_min) / g.dx) as usize).min(nx - 1);
            let j = (((y - g.y_min) / g.dy) as usize).min(ny - 1);
            raw.push(((x, y), centre(i, j)));
        }
    }
    // Scale in units of the arrow spacing on each axis, so directions show on screen as in data.
    let norm = |(u, v): (f64, f64)| (u / wx).hypot(v / wy);
    let longest = raw.iter().map(|r| norm(r.1)).fold(0.0f64, f64::max);
    if longest <= 0.0 || !longest.is_finite() {
        return Vec::new();
    }
    let s = 0.9 / longest;
    raw.into_iter()
        .filter(|r| norm(r.1) >= MIN_ARROW * longest)
        .map(|((x, y), (u, v))| [(x, y), (x + s * u, y + s * v)])
        .collect()
}

/// `fp_current.png/.svg`: the steady density with arrows of the probability current J.
pub fn current_figure(stem: &Path, sol: &FpSolution, title: &str) -> Result<(), WriteError> {
    let Some(cur) = &sol.current else {
        return Ok(());
    };
    let map = density_heatmap(
        sol,
        &format!("{title}  (∫|J| = {:.2e})", cur.summary.current_l1),
    );
    plot::render(
        stem,
        &CurrentFigure {
            map,
            arrows: arrows(sol, cur),
        },
    )
}

/// density.npy and `fp_density.png/.svg` (with contours of the loss) of an expression landscape.
pub fn expression_density<L: Loss2d + ?Sized>(
    out: &Path,
    loss: &L,
    sol: &FpSolution,
    title: &str,
) -> Result<(), WriteError> {
    let g = &sol.grid;
    write_npy(&out.join("density.npy"), &[g.nx, g.ny], &sol.density)?;
    expression_density_figure(&out.join("fp_density"), loss, sol, title)
}

/// The FP density of an expression landscape with contours of the loss, into `<stem>.png/.svg`.
pub fn expression_density_figure<L: Loss2d + ?Sized>(
    stem: &Path,
    loss: &L,
    sol: &FpSolution,
    title: &str,
) -> Result<(), WriteError> {
    let values = sol.grid.at_centres(|x, y| loss.loss(x, y));
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let levels = (1..8)
        .map(|k| lo + (hi - lo) * (k as f64 / 8.0).powi(2))
        .collect();
    plot::heatmap(
        stem,
        &Heatmap {
            contours: Some((values, levels)),
            contour_label: "contours of L(x, y)".into(),
            ..density_heatmap(sol, title)
        },
    )
}
