//! The `reduced` level: numerically exact adiabatic elimination of y (docs/reference.md §3.3).
//!
//! Integrating the FP flux over y at fixed x (the ∂y(D12 P) term integrates to zero on a
//! no-flux domain) gives the 1-D Itô equation
//!
//!   ∂t p(x) = ∂x[ b(x) p + ∂x(a(x) p) ],  b(x) = ⟨∂x L⟩_y = ε λ0 x + ½ λ'(x) ⟨y²⟩_x,
//!   a(x) = ⟨D11⟩_y,
//!
//! whose stationary density is p(x) ∝ (1/a(x)) exp(−∫₀^x b/a dx'). The averages are over the
//! exact conditional law of y ([`YLaw::Exact`]). Its fixed points are the roots of b(x) = x·g(x),
//! g(x) = ε λ0 + ½ (λ'(x)/x) ⟨y²⟩_x; a root is stable when b' > 0 there.

use serde::Serialize;

use super::conditional::{ConditionalMoments, YLaw, conditional_moments, lambda_d1_over_x};
use super::quad;
use crate::landscape::Valley2d;
use crate::noise::Noise;

/// Points of the sign scan of g(x) on [0, x_max] before bisection.
pub const FIXED_POINT_SCAN: usize = 512;
/// Bisection steps per root (the bracket shrinks by 2^−BISECTION_STEPS).
pub const BISECTION_STEPS: usize = 60;

/// A fixed point x ≥ 0 of the reduced drift and its stability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FixedPoint {
    /// Position (the fixed points are symmetric: −x is one too).
    pub x: f64,
    /// Stable (b'(x) > 0: the averaged dynamics ẋ = −b(x) returns to it).
    pub stable: bool,
}

/// The exact conditional averages at x (the reduced level).
pub fn moments(
    valley: &Valley2d,
    noise: &Noise,
    x: f64,
    y_range: (f64, f64),
) -> Option<ConditionalMoments> {
    conditional_moments(valley, noise, x, y_range, YLaw::Exact)
}

/// g(x) = b(x)/x = ε λ0 + ½ (λ'(x)/x) ⟨y²⟩_x, regular at x = 0.
pub fn drift_over_x(valley: &Valley2d, noise: &Noise, x: f64, y_range: (f64, f64)) -> Option<f64> {
    let m = moments(valley, noise, x, y_range)?;
    Some(valley.epsilon * valley.lambda0() + 0.5 * lambda_d1_over_x(valley, x) * m.mean_y2)
}

/// Fixed points x ≥ 0 of the reduced drift on [0, x_max], with their stability (x = 0 first).
///
/// The scan stops where the conditional law stops existing (λ(x) ≤ 0).
pub fn fixed_points_reduced(
    valley: &Valley2d,
    noise: &Noise,
    y_range: (f64, f64),
    x_max: f64,
) -> Vec<FixedPoint> {
    let g = |x: f64| drift_over_x(valley, noise, x, y_range);
    let Some(g0) = g(0.0) else {
        return Vec::new();
    };
    let mut out = vec![FixedPoint {
        x: 0.0,
        stable: g0 >= 0.0,
    }];
    if !(x_max > 0.0 && x_max.is_finite()) {
        return out;
    }
    let mut prev = (0.0, g0);
    for k in 1..=FIXED_POINT_SCAN {
        let x = x_max * k as f64 / FIXED_POINT_SCAN as f64;
        let Some(gx) = g(x) else { break };
        let (xa, ga) = prev;
        if ga != 0.0 && gx != 0.0 && ga.signum() != gx.signum() {
            let (mut lo, mut hi) = (xa, x);
            for _ in 0..BISECTION_STEPS {
                let mid = 0.5 * (lo + hi);
                match g(mid) {
                    Some(gm) if gm.signum() == ga.signum() => lo = mid,
                    Some(_) => hi = mid,
                    None => break,
                }
            }
            out.push(FixedPoint {
                x: 0.5 * (lo + hi),
                stable: ga < 0.0,
            });
        } else if gx == 0.0 {
            out.push(FixedPoint {
                x,
                stable: ga < 0.0,
            });
        }
        prev = (x, gx);
    }
    out
}

/// The predicted steady state x_ss: the smallest stable positive root of the reduced drift on
/// (0, x_max], 0 if there is none (x* = 0 is then the attractor). Shows the pitchfork at Δ_S*.
pub fn x_ss_reduced(valley: &Valley2d, noise: &Noise, y_range: (f64, f64), x_max: f64) -> f64 {
    fixed_points_reduced(valley, noise, y_range, x_max)
        .iter()
        .find(|p| p.x > 0.0 && p.stable)
        .map_or(0.0, |p| p.x)
}

/// ln p(x) − ln p(0) of the reduced stationary density, −ln(a(x)/a(0)) − ∫₀^x b/a, with the
/// conditional averages on the nodes; `None` when a ≤ 0 somewhere (no noise in x).
pub(crate) struct ReducedProfile {
    pub log_p: Vec<f64>,
    pub nodes: Vec<ConditionalMoments>,
}

pub(crate) fn reduced_profile(
    valley: &Valley2d,
    noise: &Noise,
    x: &[f64],
    y_range: (f64, f64),
) -> Option<ReducedProfile> {
    if x.is_empty() {
        return Some(ReducedProfile {
            log_p: Vec::new(),
            nodes: Vec::new(),
        });
    }
    let s = quad::evaluate(x, |xi| {
        let m = moments(valley, noise, xi, y_range)?;
        (m.mean_d11 > 0.0).then(|| (m, m.mean_grad_x(valley, xi) / m.mean_d11))
    });
    let s = quad::Staggered {
        zero: s.zero?,
        anchor_half: s.anchor_half?,
        nodes: s.nodes.into_iter().collect::<Option<Vec<_>>>()?,
        mids: s.mids.into_iter().collect::<Option<Vec<_>>>()?,
        anchor: s.anchor,
    };
    let phi = quad::cumulative_from_zero(x, &s, |v| v.1);
    let a0 = s.zero.0.mean_d11;
    let log_p = s
        .nodes
        .iter()
        .zip(&phi)
        .map(|((m, _), f)| -(m.mean_d11 / a0).ln() - f)
        .collect();
    Some(ReducedProfile {
        log_p,
        nodes: s.nodes.into_iter().map(|v| v.0).collect(),
    })
}

/// The x-marginal of the reduced level on the uniform points `x` (cell centres), normalised
/// Σ p·dx = 1, with the conditional law of y on `y_range` (the FP y-domain when there is one;
/// infinite ends allowed).
///
/// Without noise in x (⟨D11⟩ = 0, e.g. σ = 0) the density is the deterministic limit: all mass
/// in the cell(s) nearest ±x_ss. Where λ(x) ≤ 0 the law does not exist and the same limit is
/// returned; the summary says so in its notes.
pub fn marginal_x_reduced(
    valley: &Valley2d,
    noise: &Noise,
    x: &[f64],
    y_range: (f64, f64),
) -> Vec<f64> {
    match reduced_profile(valley, noise, x, y_range) {
        Some(r) => quad::normalise_log_density(x, &r.log_p),
        None => {
            let x_max = x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let x_ss = x_ss_reduced(valley, noise, y_range, x_max);
            point_mass(x, x_ss)
        }
    }
}

/// A density on the points with equal mass in the cells nearest +x0 and −x0.
pub(crate) fn point_mass(x: &[f64], x0: f64) -> Vec<f64> {
    let mut p = vec![0.0; x.len()];
    if x.is_empty() {
        return p;
    }
    let dx = quad::uniform_spacing(x);
    let nearest = |t: f64| {
        x.iter()
            .enumerate()
            .min_by(|a, b| (a.1 - t).abs().total_cmp(&(b.1 - t).abs()))
            .map_or(0, |(i, _)| i)
    };
    let (i, j) = (nearest(x0), nearest(-x0));
    p[i] += 0.5 / dx;
    p[j] += 0.5 / dx;
    p
}
