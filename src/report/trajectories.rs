//! Trajectories of walkers over the contours of the 2-D valley (Fig. 5a style).

use std::path::Path;

use crate::landscape::Valley2d;

use super::files::WriteError;
use super::plot::{self, Series};

/// Trajectories of a 2-D valley over the contours of L (Fig. 5a style), into `<stem>.png/.svg`.
///
/// `view` = (x_lo, x_hi, y_lo, y_hi) is the box drawn, grown to hold every finite point; without
/// one, the box is the trajectories' own extent, padded by a tenth and symmetric in x (the
/// valley is even in x, so both flattest points ±x_F show).
pub fn draw_trajectories(
    stem: &Path,
    valley: &Valley2d,
    title: &str,
    trajectories: Vec<Series>,
    view: Option<(f64, f64, f64, f64)>,
) -> Result<(), WriteError> {
    let (x_lo, x_hi, y_lo, y_hi) = view_box(view, &trajectories);
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

/// The box drawn: `view` grown to hold every finite point, or else the points' extent padded by a
/// tenth and symmetric about the origin.
fn view_box(view: Option<(f64, f64, f64, f64)>, trajectories: &[Series]) -> (f64, f64, f64, f64) {
    let finite = trajectories
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let extent = finite.fold(None, |acc: Option<(f64, f64, f64, f64)>, p| {
        Some(match acc {
            None => (p.0, p.0, p.1, p.1),
            Some((a, b, c, d)) => (a.min(p.0), b.max(p.0), c.min(p.1), d.max(p.1)),
        })
    });
    match (view, extent) {
        (Some((a, b, c, d)), Some((e0, e1, e2, e3))) => {
            (a.min(e0), b.max(e1), c.min(e2), d.max(e3))
        }
        (Some(v), None) => v,
        (None, Some((a, b, c, d))) => {
            let half_x = a.abs().max(b.abs()).max(1e-3) * 1.1;
            let half_y = c.abs().max(d.abs()).max(1e-3) * 1.1;
            (-half_x, half_x, -half_y, half_y)
        }
        (None, None) => (-1.0, 1.0, -1.0, 1.0),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::Mark;

    #[test]
    fn the_box_follows_the_walkers_unless_a_view_is_given() {
        let walk = vec![Series::new(
            "w",
            &[0.01, 0.02, f64::NAN],
            &[-0.003, 0.001, 0.0],
            0,
            Mark::Line,
        )];
        let (a, b, c, d) = view_box(None, &walk);
        assert!((a + 0.022).abs() < 1e-12 && (b - 0.022).abs() < 1e-12);
        assert!((c + 0.0033).abs() < 1e-12 && (d - 0.0033).abs() < 1e-12);
        assert_eq!(
            view_box(Some((-1.6, 1.6, -0.6, 0.6)), &walk),
            (-1.6, 1.6, -0.6, 0.6)
        );
        let far = vec![Series::new("w", &[3.0], &[0.0], 0, Mark::Line)];
        assert_eq!(view_box(Some((-1.6, 1.6, -0.6, 0.6)), &far).1, 3.0);
    }
}
