//! Comparisons between the routes: L1 distances of x-marginals.

use serde::Serialize;

/// L1 distances between x-marginals (summary.json `comparison`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Comparison {
    /// ∫|p_FP − p_reduced| dx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_theory_reduced: Option<f64>,
    /// ∫|p_FP − p_paper| dx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_theory_paper: Option<f64>,
    /// ∫|p_FP − p_homogenised| dx (the homogenised reduction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_theory_homogenised: Option<f64>,
    /// ∫|p_FP − p_sampler| dx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_sampler: Option<f64>,
    /// FP against sampler moments over the branch the walkers started on (expression landscapes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<super::branch::BranchComparison>,
}

impl Comparison {
    /// True when no distance was computed.
    pub fn is_empty(&self) -> bool {
        self.l1_fp_theory_reduced.is_none()
            && self.l1_fp_theory_paper.is_none()
            && self.l1_fp_theory_homogenised.is_none()
            && self.l1_fp_sampler.is_none()
            && self.branch.is_none()
    }
}

/// L1 distance ∫|p − q| dx on a uniform grid of spacing `dx`.
pub fn l1_distance(p: &[f64], q: &[f64], dx: f64) -> f64 {
    p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>() * dx
}

/// L1 distance of two x-marginals after symmetrising both under x → −x when the grid is
/// symmetric. Every valley2d model is invariant under θ → −θ, so the stationary law is symmetric;
/// walkers started on one side never cross between the flat wells within a run (the crossing
/// rate is exponentially small above Δ_S*), while the FP steady state weighs both wells equally.
pub fn l1_symmetrised(p: &[f64], q: &[f64], xs: &[f64], dx: f64) -> f64 {
    let n = xs.len();
    let symmetric = n > 1 && (xs[0] + xs[n - 1]).abs() < 1e-9 * dx.max(1e-300) * n as f64;
    if !symmetric {
        return l1_distance(p, q, dx);
    }
    let sym = |v: &[f64]| -> Vec<f64> { (0..n).map(|k| 0.5 * (v[k] + v[n - 1 - k])).collect() };
    l1_distance(&sym(p), &sym(q), dx)
}
