//! Where SGD diverges (phase III): a prediction of the diverged fraction of a run from the
//! one-dimensional slow dynamics of x under the SGD map (docs/theory.md, "Divergence boundary").
//!
//! At frozen x the fast variable follows the linear map y' = αy + s(λ'y ξ1 + λ ξ2), α = 1 − ηλ,
//! s² = 2ηΔ_S ([`super::homogenised::discrete_frozen`]). Its second moment is finite while
//! α² + s²λ'² < 1 and its fourth while 1 − α⁴ − 6α²s²λ'² − 3s⁴λ'⁴ > 0; beyond that x the
//! multiplicative noise λ'y ξ1 makes y heavy-tailed, the x-kicks ½ηλ'y² explode and the walker
//! leaves. So the unstable set is |x| ≥ x_u, the first x where the frozen chain loses its fourth
//! moment (for the paper's valley this happens long before ηλ(x) = 2). Up to x_u the slow
//! variable is the diffusion dx = A_d dt + √(2B_d) dW of the SGD map (t = nη); the mean time τ to
//! reach x_u from x_ss (reflecting at x = 0, by symmetry) is the classic double integral
//!
//!   τ = ∫_{x_ss}^{x_u} e^{−ψ(z)} ∫_0^z e^{ψ(u)}/B_d(u) du dz,  ψ(x) = ∫_0^x A_d/B_d,
//!
//! and a run of n steps loses the fraction 1 − exp(−nη/τ) of its walkers (escape as a Poisson
//! process once the walkers have settled). The predicted boundary is where that fraction is ½.

use serde::Serialize;

use super::homogenised::discrete_frozen;
use crate::landscape::Valley2d;

/// Points of the x-grid on [0, x_u] for the first-passage integrals.
pub const PASSAGE_POINTS: usize = 4000;
/// Step of the scan for x_u (the fourth-moment boundary), refined by bisection.
const SCAN_STEP: f64 = 1e-3;
/// Farthest x scanned for x_u.
const SCAN_MAX: f64 = 20.0;

/// The prediction at one (σ, η).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DivergencePrediction {
    /// x_u: the frozen y-chain loses its fourth moment at |x| ≥ x_u.
    pub x_unstable: f64,
    /// x_ss of the slow diffusion of the SGD map (the root of A_d; 0 below Δ_S*).
    pub x_start: f64,
    /// τ: mean time (t = nη) to reach x_u from x_ss.
    pub mean_time: f64,
}

impl DivergencePrediction {
    /// Fraction of walkers diverged after `steps` steps of learning rate η: 1 − exp(−nη/τ).
    pub fn diverged_fraction(&self, eta: f64, steps: usize) -> f64 {
        -(-(steps as f64) * eta / self.mean_time).exp_m1()
    }
}

/// x_u: the first x > 0 at which [`discrete_frozen`] has no stationary fourth moment, found by
/// a scan and 50 bisection steps; `None` if the chain is unstable at x = 0 (then x_u = 0) or
/// stable up to [`SCAN_MAX`] (returned as `Some(f64::INFINITY)`).
pub fn x_unstable(valley: &Valley2d, delta_s: f64, eta: f64) -> Option<f64> {
    let stable = |x: f64| discrete_frozen(valley, delta_s, eta, x).is_some();
    if !stable(0.0) {
        return None;
    }
    let mut x = 0.0;
    while x < SCAN_MAX {
        let next = x + SCAN_STEP;
        if !stable(next) {
            let (mut lo, mut hi) = (x, next);
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                if stable(mid) { lo = mid } else { hi = mid }
            }
            return Some(lo);
        }
        x = next;
    }
    Some(f64::INFINITY)
}

/// The prediction for the 2-D valley under the SGD map with Δ_S = ησ (Hessian noise, γ = 2).
/// A chain unstable already at x = 0 gives τ = 0 (x_u = 0); one stable everywhere τ = ∞.
pub fn predict(valley: &Valley2d, delta_s: f64, eta: f64) -> DivergencePrediction {
    let Some(x_u) = x_unstable(valley, delta_s, eta) else {
        return DivergencePrediction {
            x_unstable: 0.0,
            x_start: 0.0,
            mean_time: 0.0,
        };
    };
    if !x_u.is_finite() {
        return DivergencePrediction {
            x_unstable: x_u,
            x_start: 0.0,
            mean_time: f64::INFINITY,
        };
    }
    // Midpoint grid on (0, x_u): A_d/B_d and 1/B_d at the centres.
    let n = PASSAGE_POINTS;
    let h = x_u / n as f64;
    let mut ab = Vec::with_capacity(n);
    let mut inv_b = Vec::with_capacity(n);
    for i in 0..n {
        let x = (i as f64 + 0.5) * h;
        match discrete_frozen(valley, delta_s, eta, x) {
            Some((a, b, _)) if b > 0.0 => {
                ab.push(a / b);
                inv_b.push(1.0 / b);
            }
            _ => {
                ab.push(f64::NAN);
                inv_b.push(0.0);
            }
        }
    }
    // ψ at the centres (cumulative midpoint sums), the stationary weight e^ψ/B, its cumulative
    // mass, and the outer integral from the start (the maximum of e^ψ/B) to x_u.
    let mut psi = vec![0.0; n];
    let mut acc = 0.0;
    for i in 0..n {
        let a = if ab[i].is_finite() { ab[i] } else { 0.0 };
        psi[i] = acc + 0.5 * h * a;
        acc += h * a;
    }
    // Work relative to the maximum of ψ − ln B to avoid overflow.
    let log_w: Vec<f64> = (0..n)
        .map(|i| psi[i] + inv_b[i].max(f64::MIN_POSITIVE).ln())
        .collect();
    let (start, &w_max) = log_w
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("n > 0");
    let mut inner = 0.0;
    let mut tau = 0.0;
    for i in 0..n {
        let w = (log_w[i] - w_max).exp();
        inner += 0.5 * h * w;
        if i >= start {
            // e^{−ψ} ∫ e^{ψ}/B, rescaled back by e^{w_max}.
            tau += h * (w_max - psi[i]).exp() * inner;
        }
        inner += 0.5 * h * w;
    }
    DivergencePrediction {
        x_unstable: x_u,
        x_start: (start as f64 + 0.5) * h,
        mean_time: tau,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OU check of the passage integral: with λ constant (λ' = 0) the fourth-moment boundary
    /// is where (1 − ηλ)⁴ = 1, never reached for ηλ < 2.
    #[test]
    fn a_quadratic_valley_never_diverges_below_eta_lambda_2() {
        let v = Valley2d {
            epsilon: 0.1,
            lambda: vec![4.0],
        };
        assert_eq!(x_unstable(&v, 0.01, 0.4), Some(f64::INFINITY));
        assert!(predict(&v, 0.01, 0.4).mean_time.is_infinite());
        assert_eq!(x_unstable(&v, 0.01, 0.6), None);
        assert_eq!(predict(&v, 0.01, 0.6).mean_time, 0.0);
    }
}
