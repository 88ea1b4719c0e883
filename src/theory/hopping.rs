//! The hopping rate between the two flat wells above Δ_S* from the reduced 1-D equation
//! (docs/theory.md, "Spectrum of the FP generator"): the mean first-passage time from x_ss to
//! the midline x = 0 of ẋ = −b(x) + √(2a(x)) noise (b = ⟨∂x L⟩_y, a = ⟨D11⟩_y, Itô,
//! ∂t p = ∂x[b p + ∂x(a p)]), reflecting at x_max:
//!
//!   τ = ∫_0^{x_ss} e^{−ψ(z)} ∫_z^{x_max} e^{ψ(u)}/a(u) du dz,  ψ(x) = −∫_0^x (b + a')/a,
//!
//! evaluated in log space (τ reaches 10¹⁰⁰ a few per cent above Δ_S*), and k = 1/(2τ).

use super::reduced;
use crate::landscape::Valley2d;
use crate::noise::Noise;

/// The reduced level's hopping time from x_ss to x = 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoppingTime {
    /// x_ss, the reduced level's stable fixed point > 0.
    pub x_ss: f64,
    /// ln τ (τ in the time of Eq. 10).
    pub ln_tau: f64,
}

impl HoppingTime {
    /// log10 of the hopping rate k = 1/(2τ).
    pub fn log10_rate(&self) -> f64 {
        -(self.ln_tau + std::f64::consts::LN_2) / std::f64::consts::LN_10
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// τ on `n` midpoint cells of (0, x_max) with the conditional law of y on `y_range`; `None`
/// below Δ_S* (no fixed point x_ss > 0) or where the reduced coefficients do not exist.
pub fn hopping_time(
    valley: &Valley2d,
    noise: &Noise,
    y_range: (f64, f64),
    x_max: f64,
    n: usize,
) -> Option<HoppingTime> {
    let x_ss = reduced::fixed_points_reduced(valley, noise, y_range, x_max)
        .into_iter()
        .find(|f| f.stable && f.x > 0.0)?
        .x;
    let h = x_max / n as f64;
    // ln p_s(x) = ψ(x) − ln a(x) with ψ' = −b/a on the cell centres (p_s ∝ e^{−∫b/a}/a).
    let mut b_over_a = Vec::with_capacity(n);
    let mut ln_a = Vec::with_capacity(n);
    for i in 0..n {
        let x = (i as f64 + 0.5) * h;
        let m = reduced::moments(valley, noise, x, y_range)?;
        if m.mean_d11 <= 0.0 {
            return None;
        }
        b_over_a.push(m.mean_grad_x(valley, x) / m.mean_d11);
        ln_a.push(m.mean_d11.ln());
    }
    let mut psi = vec![0.0; n];
    let mut acc = 0.0;
    for i in 0..n {
        psi[i] = acc - 0.5 * h * b_over_a[i];
        acc -= h * b_over_a[i];
    }
    // Inner: ln ∫_z^{x_max} e^{ψ}/a, accumulated from the right; ln a' term is in ln_a (Itô form:
    // the stationary density is e^{−∫b/a}/a, the scale density e^{+∫b/a}).
    let mut inner = vec![f64::NEG_INFINITY; n];
    let mut run = f64::NEG_INFINITY;
    for i in (0..n).rev() {
        run = log_add(run, h.ln() + psi[i] - ln_a[i]);
        inner[i] = run;
    }
    let i_ss = ((x_ss / h) as usize).min(n);
    let mut ln_tau = f64::NEG_INFINITY;
    for i in 0..i_ss {
        ln_tau = log_add(ln_tau, h.ln() - psi[i] + inner[i]);
    }
    ln_tau.is_finite().then_some(HoppingTime { x_ss, ln_tau })
}
