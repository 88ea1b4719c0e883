//! Moments over one branch of a valley of minima (e.g. x > 0 on the hyperbola xy = 1): the FP's
//! ⟨x⟩, ⟨y⟩ and ⟨ln(x/y)²⟩ on the quadrant of the sampler's start, against the sampler's
//! `mean_ss` and `log_ratio_sq_ss` with their standard errors (summary.json `comparison.branch`).

use serde::Serialize;

use crate::fp::grid::Grid;
use crate::sampler::SamplerSummary;

/// Moments of a density over one quadrant, normalised by the quadrant's mass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BranchMoments {
    /// Mass of the quadrant (of a density of total mass 1).
    pub mass: f64,
    /// [⟨x⟩, ⟨y⟩].
    pub mean: [f64; 2],
    /// ⟨ln(x/y)²⟩.
    pub log_ratio_sq: f64,
}

/// Moments of `density` (FP layout, mass 1) over the cells whose centre lies in the open
/// quadrant of `sign` (x·sign₀ > 0, y·sign₁ > 0), by the midpoint rule; None without mass there.
pub fn fp_branch_moments(grid: &Grid, density: &[f64], sign: [f64; 2]) -> Option<BranchMoments> {
    let (mut m, mut sx, mut sy, mut sl) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..grid.nx {
        let x = grid.x(i);
        if x * sign[0] <= 0.0 {
            continue;
        }
        for j in 0..grid.ny {
            let y = grid.y(j);
            if y * sign[1] <= 0.0 {
                continue;
            }
            let p = density[grid.index(i, j)];
            let r = (x / y).ln();
            m += p;
            sx += p * x;
            sy += p * y;
            sl += p * r * r;
        }
    }
    (m > 0.0).then(|| BranchMoments {
        mass: m * grid.cell_area(),
        mean: [sx / m, sy / m],
        log_ratio_sq: sl / m,
    })
}

/// The FP against the sampler over the branch the walkers started on (`comparison.branch`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BranchComparison {
    /// The FP moments over the quadrant of the sampler's start.
    pub fp: BranchMoments,
    /// Sampler [⟨x⟩, ⟨y⟩] (`mean_ss`).
    pub sampler_mean: [f64; 2],
    /// Their standard errors (walker-to-walker).
    pub sampler_mean_stderr: [f64; 2],
    /// Sampler ⟨ln(x/y)²⟩ (`log_ratio_sq_ss`).
    pub sampler_log_ratio_sq: f64,
    /// Its standard error.
    pub sampler_log_ratio_sq_stderr: f64,
    /// (sampler − FP) / stderr for [⟨x⟩, ⟨y⟩, ⟨ln(x/y)²⟩].
    pub z: [f64; 3],
}

/// Compare the FP density over the quadrant of `start` with a 2-D sampler summary that
/// recorded ln(x/y)² (None otherwise, or without FP mass in that quadrant).
pub fn compare(
    grid: &Grid,
    density: &[f64],
    start: [f64; 2],
    s: &SamplerSummary,
) -> Option<BranchComparison> {
    let sign = start.map(|v| if v < 0.0 { -1.0 } else { 1.0 });
    let (mean, mean_se) = (s.mean_ss?, s.mean_ss_stderr?);
    let (lr, lr_se) = (s.log_ratio_sq_ss?, s.log_ratio_sq_ss_stderr?);
    let fp = fp_branch_moments(grid, density, sign)?;
    let z = |a: f64, b: f64, se: f64| (a - b) / se;
    Some(BranchComparison {
        fp,
        sampler_mean: mean,
        sampler_mean_stderr: mean_se,
        sampler_log_ratio_sq: lr,
        sampler_log_ratio_sq_stderr: lr_se,
        z: [
            z(mean[0], fp.mean[0], mean_se[0]),
            z(mean[1], fp.mean[1], mean_se[1]),
            z(lr, fp.log_ratio_sq, lr_se),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AxisConfig;

    #[test]
    fn branch_moments_of_a_uniform_density_on_a_symmetric_box() {
        let a = AxisConfig {
            min: -2.0,
            max: 2.0,
            cells: 40,
        };
        let g = Grid::new(&a, &a);
        let p = vec![1.0 / 16.0; g.len()];
        let m = fp_branch_moments(&g, &p, [1.0, 1.0]).unwrap();
        // A quarter of the mass, ⟨x⟩ = 1; ⟨ln(x/y)²⟩ by the midpoint rule over the 20 × 20 cell
        // centres c_i of (0, 2) is 2·Var_i(ln c_i) (the continuum value 2 is not reached: ln is
        // singular at 0).
        assert!((m.mass - 0.25).abs() < 1e-14);
        assert!((m.mean[0] - 1.0).abs() < 1e-12 && (m.mean[1] - 1.0).abs() < 1e-12);
        let l: Vec<f64> = (0..20).map(|i| (0.1 * i as f64 + 0.05).ln()).collect();
        let mean = l.iter().sum::<f64>() / 20.0;
        let var = l.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20.0;
        assert!(
            (m.log_ratio_sq - 2.0 * var).abs() < 1e-12,
            "{} vs {}",
            m.log_ratio_sq,
            2.0 * var
        );
        let n = fp_branch_moments(&g, &p, [-1.0, 1.0]).unwrap();
        assert!((n.mean[0] + 1.0).abs() < 1e-12 && (n.mean[1] - 1.0).abs() < 1e-12);
    }
}
