//! Trajectories of walkers over the contours of the 2-D valley (Fig. 5a style).

use std::path::Path;

use crate::landscape::Valley2d;

use super::files::WriteError;
use super::plot::{self, Series};

/// Trajectories of a 2-D valley over the contours of L (Fig. 5a style), into `<stem>.png/.svg`.
pub fn draw_trajectories(
    stem: &Path,
    valley: &Valley2d,
    title: &str,
    trajectories: Vec<Series>,
) -> Result<(), WriteError> {
    let (x_lo, x_hi, y_lo, y_hi) = trajectories.iter().flat_map(|s| s.points.iter()).fold(
        (-1.6f64, 1.6f64, -0.6f64, 0.6f64),
        |(a, b, c, d), p| {
            if p.0.is_finite() && p.1.is_finite() {
                (a.min(p.0), b.max(p.0), c.min(p.1), d.max(p.1))
            } else {
                (a, b, c, d)
            }
        },
    );
    let (nx, ny) = (200, 120);
    let (dxc, dyc) = ((x_hi - x_lo) / nx as f64, (y_hi - y_lo) / ny as f64);
    let loss: Vec<f64> = (0..nx * ny)
        .map(|k| {
            let (i, j) = (k / ny, k % ny);
            valley.loss(x_lo + (i as f64 + 0.5) * dxc, y_lo + (j as f64 + 0.5) * dyc)
        })
        .collect();
    plot::render(
        stem,
        &TrajectoryFigure {
            title: title.to_string(),
            x_range: (x_lo, x_hi),
            y_range: (y_lo, y_hi),
            loss,
            nx,
            ny,
            trajectories,
            flattest: valley.flattest_point(x_hi.abs().max(x_lo.abs())),
        },
    )
}

/// Trajectories over filled loss contours (log-spaced levels), with x* and ±x_F marked.
struct TrajectoryFigure {
    title: String,
    x_range: (f64, f64),
    y_range: (f64, f64),
    loss: Vec<f64>,
    nx: usize,
    ny: usize,
    trajectories: Vec<Series>,
    flattest: f64,
}

impl plot::Figure for TrajectoryFigure {
    fn draw<DB: plotters::prelude::DrawingBackend>(
        &self,
        root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        use plotters::prelude::*;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(
                self.x_range.0..self.x_range.1,
                self.y_range.0..self.y_range.1,
            )
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x (degenerate direction)")
            .y_desc("y (sharp direction)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(|x| e(&x))?;
        let l_max = self.loss.iter().copied().fold(0.0f64, f64::max).max(1e-12);
        let levels: Vec<f64> = (1..=10)
            .map(|k| l_max * 10f64.powf(-4.0 + 0.4 * k as f64))
            .collect();
        let grey = RGBColor(170, 170, 170);
        for (n, &level) in levels.iter().enumerate() {
            let segs = plot::contour_segments(
                &self.loss,
                self.nx,
                self.ny,
                self.x_range,
                self.y_range,
                level,
            );
            let drawn = chart
                .draw_series(
                    segs.into_iter()
                        .map(|s| PathElement::new(vec![s[0], s[1]], grey.stroke_width(1))),
                )
                .map_err(|x| e(&x))?;
            if n == 0 {
                drawn
                    .label("contours of L (log-spaced)")
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], grey.stroke_width(2))
                    });
            }
        }
        for s in &self.trajectories {
            let color = plot::PALETTE[s.color % plot::PALETTE.len()];
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(1)))
                .map_err(|x| e(&x))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
                });
        }
        let red = RGBColor(213, 40, 40);
        chart
            .draw_series(std::iter::once(Circle::new((0.0, 0.0), 6, red.filled())))
            .map_err(|x| e(&x))?
            .label("global minimum x* = 0")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, red.filled()));
        let yellow = RGBColor(230, 159, 0);
        chart
            .draw_series(
                [self.flattest, -self.flattest]
                    .into_iter()
                    .map(|x| Cross::new((x, 0.0), 8, yellow.stroke_width(3))),
            )
            .map_err(|x| e(&x))?
            .label("flattest x_F")
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, yellow.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|x| e(&x))?;
        Ok(())
    }
}
