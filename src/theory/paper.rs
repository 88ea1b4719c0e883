//! The `paper` level: Eqs. (11)–(14) of Yang, Tang & Tu as printed, and the Appendix's Δ_S*
//! and convergence condition.
//!
//! Definitions used throughout (paper, text before Eq. 13):
//! - Δ(x) ≡ D22(x, y = 0): Δ_S λ(x)^γ for Hessian noise (≈ Δ_S λ(x)² for γ = 2), the constant Δ
//!   for constant noise;
//! - κ(x) ≡ Δ(x) / ⟨D11⟩_y, the average over the Gaussian law N(0, Δ(x)/λ(x)) of y
//!   ([`YLaw::Gaussian`]); for constant noise this is the constant D22/D11.
//!
//! Eq. (13) is then equivalent to the x-marginal p(x) ∝ exp(−Ψ(x)),
//! Ψ(x) = ∫₀^x κ(x')[ε λ0 x'/Δ(x') + λ'(x')/(2 λ(x'))] dx' — the reduced equation with the
//! Gaussian law and without the Itô factor 1/⟨D11⟩. For constant noise it is exactly Eq. (11)
//! times exp(−κ ε λ0 x²/(2Δ)), i.e. Eq. (11) when ε = 0.

use super::conditional::{YLaw, conditional_moments};
use super::quad;
use crate::landscape::Valley2d;
use crate::noise::Noise;

/// Unbounded y-domain of the paper level.
pub const UNBOUNDED: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

/// The small-noise anisotropy κ ≈ (ε² + 2εΔ_Sλ1 + 3Δ_S²λ1²)^(−1) (text before Eq. 14).
///
/// Exact, not only small-noise, for κ(x = 0) with γ = 2 on an unbounded y-domain: there
/// D22(0, y) = Δ_S λ0² does not depend on y, the law of y is exactly N(0, Δ_S λ0), and
/// ⟨D11⟩ = Δ_S ⟨(ελ0 + λ1 y²)²⟩ gives this expression. `None` when it is infinite (ε = Δ_S λ1 = 0).
pub fn kappa_closed_form(valley: &Valley2d, delta_s: f64) -> Option<f64> {
    let (e, l1) = (valley.epsilon, valley.lambda1());
    let inv = e * e + 2.0 * e * delta_s * l1 + 3.0 * delta_s * delta_s * l1 * l1;
    let k = 1.0 / inv;
    (inv > 0.0 && k.is_finite()).then_some(k)
}

/// The transition Δ_S* = −ε/λ1 (Appendix); `None` when λ1 ≥ 0 (no transition: x* = 0 stays the
/// attractor for every noise level).
pub fn delta_s_star(valley: &Valley2d) -> Option<f64> {
    let l1 = valley.lambda1();
    (l1 < 0.0).then(|| -valley.epsilon / l1)
}

/// Δ_S* of the reduced level for Hessian noise of power γ: the Δ_S at which x = 0 loses
/// stability, ε λ0 + λ1 ⟨y²⟩_0 = 0 with ⟨y²⟩_0 = Δ_S λ0^(γ−1) (exact on an unbounded y-domain).
/// Equals [`delta_s_star`] for γ = 2.
pub fn delta_s_star_power(valley: &Valley2d, power: f64) -> Option<f64> {
    let l1 = valley.lambda1();
    (l1 < 0.0).then(|| -valley.epsilon / (l1 * valley.lambda0().powf(power - 2.0)))
}

/// The paper's constants (κ, Δ) of Eqs. (11), (12) and (14):
/// - anisotropic: the noise's κ and Δ; isotropic: κ = 1, Δ = T; constant: κ = d22/d11, Δ = d22;
/// - Hessian: Δ = Δ(0) = Δ_S λ0^γ and κ = [`kappa_closed_form`] for γ = 2, κ(0) from the
///   Gaussian law for other γ.
///
/// Each is `None` when undefined (no noise in x or y).
pub fn paper_constants(valley: &Valley2d, noise: &Noise) -> (Option<f64>, Option<f64>) {
    let pos = |v: f64| (v > 0.0 && v.is_finite()).then_some(v);
    match *noise {
        Noise::Anisotropic { delta, kappa } => (pos(kappa), pos(delta)),
        Noise::Isotropic { temperature } => (pos(temperature).map(|_| 1.0), pos(temperature)),
        Noise::Constant { d } => (pos(d[1][1] / d[0][0]), pos(d[1][1])),
        Noise::Hessian { eta, sigma, power } => {
            let delta_s = eta * sigma;
            let delta = pos(delta_s * valley.lambda0().powf(power));
            let kappa = if power == 2.0 {
                kappa_closed_form(valley, delta_s)
            } else {
                kappa_at(valley, noise, 0.0, YLaw::Gaussian, UNBOUNDED)
            };
            (delta.and(kappa), delta)
        }
    }
}

/// κ(x) ≡ Δ(x)/⟨D11⟩_y with the given law of y; `None` when undefined.
pub fn kappa_at(
    valley: &Valley2d,
    noise: &Noise,
    x: f64,
    law: YLaw,
    y_range: (f64, f64),
) -> Option<f64> {
    conditional_moments(valley, noise, x, y_range, law)?.kappa()
}

/// Ψ(x) = ∫₀^x κ(x')[ε λ0 x'/Δ(x') + λ'(x')/(2λ(x'))] dx' and Δ(x) on the points (Eq. 13).
fn psi_eq13(valley: &Valley2d, noise: &Noise, x: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    if x.is_empty() {
        return Some((Vec::new(), Vec::new()));
    }
    let s = quad::evaluate(x, |xi| {
        let m = conditional_moments(valley, noise, xi, UNBOUNDED, YLaw::Gaussian)?;
        let lam = valley.lambda_at(xi);
        let kappa = m.kappa()?;
        if m.delta.is_nan() || m.delta <= 0.0 {
            return None;
        }
        let integrand = kappa
            * (valley.epsilon * valley.lambda0() * xi / m.delta
                + valley.lambda_d1(xi) / (2.0 * lam));
        integrand.is_finite().then_some((integrand, m.delta))
    });
    let s = quad::Staggered {
        zero: s.zero?,
        anchor_half: s.anchor_half?,
        nodes: s.nodes.into_iter().collect::<Option<Vec<_>>>()?,
        mids: s.mids.into_iter().collect::<Option<Vec<_>>>()?,
        anchor: s.anchor,
    };
    let psi = quad::cumulative_from_zero(x, &s, |v| v.0);
    Some((psi, s.nodes.iter().map(|v| v.1).collect()))
}

/// The x-marginal of the paper level on uniform points `x`, normalised Σ p·dx = 1:
/// Eq. (13) with κ(x), Δ(x) (for constant noise this is Eq. (11), with the factor
/// exp(−κ ε λ0 x²/(2Δ)) when ε > 0). `None` where the paper level does not apply: no noise
/// (Δ(x) = 0 or ⟨D11⟩ = 0), or λ(x) ≤ 0 on the points.
pub fn marginal_x_paper(valley: &Valley2d, noise: &Noise, x: &[f64]) -> Option<Vec<f64>> {
    let (psi, _) = psi_eq13(valley, noise, x)?;
    let log_p: Vec<f64> = psi.iter().map(|v| -v).collect();
    Some(quad::normalise_log_density(x, &log_p))
}

/// The x-marginal of the small-noise form, Eq. (14) (constant κ, Δ of [`paper_constants`]):
/// p(x) ∝ λ(x)^(−κ/2) exp(−κ ε λ0 x²/(2Δ)), normalised Σ p·dx = 1; `None` when κ or Δ is
/// undefined or λ(x) ≤ 0 on the points.
pub fn marginal_x_paper_small_noise(
    valley: &Valley2d,
    noise: &Noise,
    x: &[f64],
) -> Option<Vec<f64>> {
    let (Some(kappa), Some(delta)) = paper_constants(valley, noise) else {
        return None;
    };
    let mut log_p = Vec::with_capacity(x.len());
    for &xi in x {
        let lam = valley.lambda_at(xi);
        if lam.is_nan() || lam <= 0.0 {
            return None;
        }
        log_p.push(-0.5 * kappa * lam.ln() - kappa * valley.loss(xi, 0.0) / delta);
    }
    Some(quad::normalise_log_density(x, &log_p))
}

/// L_SGD(x) ≈ Δ(1 − κ) ln F(x) + (κ − 1) L(x, 0) (Eq. 14; Eq. 12 when ε = 0).
pub fn l_sgd_small_noise(valley: &Valley2d, kappa: f64, delta: f64, x: f64) -> f64 {
    delta * (1.0 - kappa) * valley.flatness(x).ln() + (kappa - 1.0) * valley.loss(x, 0.0)
}

/// L_SGD(x) of Eq. (13) on the points, the indefinite integral taken from x = 0:
/// Δ(x) Ψ(x) − (Δ(x)/2) ln(λ(x)/Δ(x)) − ½ ε λ0 x². `None` where the paper level does not apply.
pub fn l_sgd_paper(valley: &Valley2d, noise: &Noise, x: &[f64]) -> Option<Vec<f64>> {
    let (psi, delta) = psi_eq13(valley, noise, x)?;
    Some(
        x.iter()
            .zip(psi.iter().zip(&delta))
            .map(|(&xi, (&p, &d))| {
                d * p - 0.5 * d * (valley.lambda_at(xi) / d).ln() - valley.loss(xi, 0.0)
            })
            .collect(),
    )
}

/// The paper's second-order estimate ⟨λ(x)⟩_ss ≈ λ(x_ss) + ½ λ''(x_ss)(⟨x²⟩_ss − x_ss²)
/// (Appendix; convergence needs η⟨λ⟩_ss < 2).
pub fn lambda_mean_ss_estimate(valley: &Valley2d, x_ss: f64, mean_x2: f64) -> f64 {
    valley.lambda_at(x_ss) + 0.5 * valley.lambda_d2(x_ss) * (mean_x2 - x_ss * x_ss)
}
