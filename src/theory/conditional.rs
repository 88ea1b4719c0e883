//! The stationary law of the fast variable y at fixed x, and its averages (docs/reference.md §3.3).
//!
//! For fixed x, y obeys ∂t p = ∂y(λ(x) y p + ∂y(D22(x, y) p)). The zero-flux stationary law is
//!
//!   p(y | x) ∝ (1 / D22(x, y)) · exp(−∫_{y_ref}^{y} λ(x) y' / D22(x, y') dy'),
//!
//! on [y_min, y_max] (y_ref = 0 clamped into the range). It is computed by quadrature: the
//! exponent by a cumulative Simpson rule, the averages by composite Simpson on a grid of step
//! σ(x) / [`STEPS_PER_SIGMA`], σ(x)² = D22(x, 0) / λ(x), marching outwards from y_ref until the
//! density has dropped by e^−[`LOG_CUTOFF`] or the domain ends. The exponent is accumulated as a
//! number and exponentiated per node (w = D22(y_ref)/D22(y) · e^−exponent ≥ e^−LOG_CUTOFF before
//! the march stops): no underflow for any noise level.
//!
//! The paper's own level ([`YLaw::Gaussian`]) replaces this law by the Gaussian N(0, Δ(x)/λ(x)),
//! Δ(x) = D22(x, 0), on an unbounded domain.

use crate::landscape::Valley2d;
use crate::noise::Noise;

/// Quadrature steps per standard deviation σ(x) of y (each step also has a midpoint node).
pub const STEPS_PER_SIGMA: f64 = 16.0;
/// The march stops once the density is below e^−LOG_CUTOFF of its value at y_ref.
pub const LOG_CUTOFF: f64 = 50.0;
/// Largest distance from y_ref, in σ(x), that an unbounded domain is integrated to; a law still
/// above the cutoff there has a heavy tail and is reported as truncated.
pub const MAX_SIGMAS: f64 = 64.0;

/// Which conditional law of y given x the averages ⟨·⟩_y use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YLaw {
    /// The exact zero-flux stationary law with D22(x, y) (the `reduced` level).
    Exact,
    /// The paper's Gaussian N(0, Δ(x)/λ(x)), Δ(x) = D22(x, 0), unbounded (the `paper` level).
    Gaussian,
}

/// Averages over the conditional law of y at one x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConditionalMoments {
    /// ⟨y²⟩_x.
    pub mean_y2: f64,
    /// ⟨D11(x, y)⟩_x, the diffusion of the reduced x-equation.
    pub mean_d11: f64,
    /// ⟨D22(x, y)⟩_x.
    pub mean_d22: f64,
    /// Δ(x) ≡ D22(x, 0), the paper's effective noise strength (≈ Δ_S λ(x)² for Hessian noise).
    pub delta: f64,
    /// ln p(y_ref | x) of the normalised law (y_ref = 0 unless 0 lies outside the y-domain);
    /// 0 for a degenerate (noise-free) law.
    pub log_density_at_ref: f64,
    /// True when an unbounded domain had to be cut at [`MAX_SIGMAS`] with the density still
    /// above the cutoff (heavy tail: the averages depend on where y is cut).
    pub tail_truncated: bool,
}

impl ConditionalMoments {
    /// The averaged drift ⟨∂x L⟩_y = ε λ0 x + ½ λ'(x) ⟨y²⟩_x of the reduced x-equation.
    pub fn mean_grad_x(&self, valley: &Valley2d, x: f64) -> f64 {
        valley.epsilon * valley.lambda0() * x + 0.5 * valley.lambda_d1(x) * self.mean_y2
    }

    /// κ(x) ≡ Δ(x) / ⟨D11⟩_y (paper, before Eq. 13); `None` when ⟨D11⟩_y = 0.
    pub fn kappa(&self) -> Option<f64> {
        let k = self.delta / self.mean_d11;
        (self.mean_d11 > 0.0 && k.is_finite()).then_some(k)
    }
}

/// λ'(x)/x = Σ_{n≥1} 2n λ_n x^{2n−2}, regular at x = 0 (where it is λ''(0) = 2 λ1).
pub fn lambda_d1_over_x(valley: &Valley2d, x: f64) -> f64 {
    let x2 = x * x;
    let mut acc = 0.0;
    for (n, &c) in valley.lambda.iter().enumerate().skip(1).rev() {
        acc = acc * x2 + 2.0 * n as f64 * c;
    }
    acc
}

/// D11(x, y) and D22(x, y) along y at one x, with the parts that depend on x alone evaluated
/// once: bit for bit the diagonal of `noise.diffusion(valley, x, y)` (the quadrature calls it
/// hundreds of times per x).
enum AlongY<'a> {
    /// D does not depend on y.
    Fixed([f64; 2]),
    /// Hessian noise with γ = 2: H = [[ε λ0 + ½ λ''(x) y², λ'(x) y], [λ'(x) y, λ(x)]], D = Δ_S H².
    HessianSquared {
        eps_lambda0: f64,
        half_lambda_d2: f64,
        lambda_d1: f64,
        lambda: f64,
        delta_s: f64,
    },
    /// Any other noise: the general evaluation.
    General {
        valley: &'a Valley2d,
        noise: &'a Noise,
        x: f64,
    },
}

impl<'a> AlongY<'a> {
    fn new(valley: &'a Valley2d, noise: &'a Noise, x: f64) -> Self {
        match *noise {
            Noise::Hessian {
                eta,
                sigma,
                power: 2.0,
            } => AlongY::HessianSquared {
                eps_lambda0: valley.epsilon * valley.lambda0(),
                half_lambda_d2: 0.5 * valley.lambda_d2(x),
                lambda_d1: valley.lambda_d1(x),
                lambda: valley.lambda_at(x),
                delta_s: eta * sigma,
            },
            _ if !noise.is_state_dependent() => {
                let d = noise.diffusion(valley, x, 0.0);
                AlongY::Fixed([d[0][0], d[1][1]])
            }
            _ => AlongY::General { valley, noise, x },
        }
    }

    /// [D11(x, y), D22(x, y)].
    #[inline]
    fn at(&self, y: f64) -> [f64; 2] {
        match *self {
            AlongY::Fixed(d) => d,
            AlongY::HessianSquared {
                eps_lambda0,
                half_lambda_d2,
                lambda_d1,
                lambda,
                delta_s,
            } => {
                // The same operations, in the same order, as Valley2d::hessian and Noise::diffusion.
                let h11 = eps_lambda0 + half_lambda_d2 * y * y;
                let h12 = lambda_d1 * y;
                [
                    delta_s * (h11 * h11 + h12 * h12),
                    delta_s * (h12 * h12 + lambda * lambda),
                ]
            }
            AlongY::General { valley, noise, x } => {
                let d = noise.diffusion(valley, x, y);
                [d[0][0], d[1][1]]
            }
        }
    }
}

#[derive(Default)]
struct Sums {
    z: f64,
    y2: f64,
    d11: f64,
    d22: f64,
}

impl Sums {
    #[inline]
    fn add(&mut self, weight: f64, w: f64, y: f64, d11: f64, d22: f64) {
        let ww = weight * w;
        self.z += ww;
        self.y2 += ww * y * y;
        self.d11 += ww * d11;
        self.d22 += ww * d22;
    }
}

/// The averages over the stationary law of y at fixed x, on `y_range` (infinite ends allowed).
///
/// `None` when the law does not exist: λ(x) ≤ 0 (y is not confined), D22 ≤ 0 somewhere on the
/// way, an empty or NaN range, or non-finite values.
pub fn conditional_moments(
    valley: &Valley2d,
    noise: &Noise,
    x: f64,
    y_range: (f64, f64),
    law: YLaw,
) -> Option<ConditionalMoments> {
    conditional_moments_with(valley, noise, x, y_range, law, STEPS_PER_SIGMA)
}

/// [`conditional_moments`] with a chosen number of quadrature steps per σ(x) (for refinement
/// studies; the default is [`STEPS_PER_SIGMA`]).
pub fn conditional_moments_with(
    valley: &Valley2d,
    noise: &Noise,
    x: f64,
    y_range: (f64, f64),
    law: YLaw,
    steps_per_sigma: f64,
) -> Option<ConditionalMoments> {
    let (y_min, y_max) = y_range;
    if steps_per_sigma.is_nan() || steps_per_sigma < 1.0 {
        return None;
    }
    if y_min.is_nan() || y_max.is_nan() || y_min > y_max || !x.is_finite() {
        return None;
    }
    let lam = valley.lambda_at(x);
    if !(lam > 0.0 && lam.is_finite()) {
        return None;
    }
    let delta = noise.diffusion(valley, x, 0.0)[1][1];
    if !delta.is_finite() || delta < 0.0 {
        return None;
    }
    let y_ref = 0.0_f64.clamp(y_min, y_max);
    let along = AlongY::new(valley, noise, x);
    let d_ref = along.at(y_ref);
    let sigma = (delta / lam).sqrt();
    if sigma == 0.0 || y_min == y_max {
        // No noise in y (or no room): y sits at y_ref.
        return Some(ConditionalMoments {
            mean_y2: y_ref * y_ref,
            mean_d11: d_ref[0],
            mean_d22: d_ref[1],
            delta,
            log_density_at_ref: 0.0,
            tail_truncated: false,
        });
    }
    let gauss_var = delta / lam;
    // log w(y) relative to y_ref, and the integrand λ y / D22 of the exponent.
    let log_w_gauss = |y: f64| -(y * y - y_ref * y_ref) / (2.0 * gauss_var);
    let h0 = sigma / steps_per_sigma;
    let max_steps = (MAX_SIGMAS * steps_per_sigma) as usize;

    let mut sums = Sums::default();
    let mut truncated = false;
    let cutoff_w = (-LOG_CUTOFF).exp();
    if law == YLaw::Exact && (d_ref[1].is_nan() || d_ref[1] <= 0.0) {
        return None;
    }
    for dir in [1.0_f64, -1.0] {
        let bound = if dir > 0.0 {
            y_max - y_ref
        } else {
            y_ref - y_min
        };
        if bound <= 0.0 {
            continue;
        }
        let (h, steps, aligned) = if bound.is_finite() && bound / h0 <= max_steps as f64 {
            let n = (bound / h0).ceil().max(1.0);
            (bound / n, n as usize, true)
        } else {
            (h0, max_steps, false)
        };
        // State at the left node of the current step.
        let mut y0 = y_ref;
        let mut d0 = d_ref;
        let mut g0 = lam * y0 / d0[1];
        let mut exponent0 = 0.0; // ∫_{y_ref}^{y0} λ y / D22 dy
        let mut w0 = 1.0; // w(y0) = exp(log w(y0)), log w(y_ref) = 0
        let mut reached_cutoff = false;
        for k in 0..steps {
            let ym = y_ref + dir * (k as f64 + 0.5) * h;
            let y1 = y_ref + dir * (k as f64 + 1.0) * h;
            let dm = along.at(ym);
            let d1 = along.at(y1);
            // w = exp(log w); the exact law's w = (D22(y_ref)/D22(y)) e^{−exponent} needs one
            // exponential and no logarithm.
            let (wm, w1, below_cutoff, g1, exponent1) = match law {
                YLaw::Gaussian => {
                    let logw1 = log_w_gauss(y1);
                    (
                        log_w_gauss(ym).exp(),
                        logw1.exp(),
                        logw1 < -LOG_CUTOFF,
                        0.0,
                        0.0,
                    )
                }
                YLaw::Exact => {
                    if !(dm[1] > 0.0 && d1[1] > 0.0) {
                        return None;
                    }
                    let gm = lam * ym / dm[1];
                    let g1 = lam * y1 / d1[1];
                    // Quadratic through (g0, gm, g1): ∫ to the midpoint and to the end.
                    let em = exponent0 + dir * h / 24.0 * (5.0 * g0 + 8.0 * gm - g1);
                    let e1 = exponent0 + dir * h / 6.0 * (g0 + 4.0 * gm + g1);
                    let w1 = (-e1).exp() * (d_ref[1] / d1[1]);
                    ((-em).exp() * (d_ref[1] / dm[1]), w1, w1 < cutoff_w, g1, e1)
                }
            };
            sums.add(h / 6.0, w0, y0, d0[0], d0[1]);
            sums.add(4.0 * h / 6.0, wm, ym, dm[0], dm[1]);
            sums.add(h / 6.0, w1, y1, d1[0], d1[1]);
            y0 = y1;
            d0 = d1;
            g0 = g1;
            exponent0 = exponent1;
            w0 = w1;
            if below_cutoff {
                reached_cutoff = true;
                break;
            }
        }
        if !aligned && !reached_cutoff {
            truncated = true;
        }
    }
    if !(sums.z > 0.0 && sums.z.is_finite()) {
        return None;
    }
    let m = ConditionalMoments {
        mean_y2: sums.y2 / sums.z,
        mean_d11: sums.d11 / sums.z,
        mean_d22: sums.d22 / sums.z,
        delta,
        log_density_at_ref: -sums.z.ln(),
        tail_truncated: truncated,
    };
    (m.mean_y2.is_finite() && m.mean_d11.is_finite() && m.mean_d22.is_finite()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn along_y_is_bit_for_bit_the_general_diffusion() {
        let valley = Valley2d::paper();
        let noises = [
            Noise::Hessian {
                eta: 0.03,
                sigma: 0.17,
                power: 2.0,
            },
            Noise::Hessian {
                eta: 0.03,
                sigma: 0.17,
                power: 1.0,
            },
            Noise::Anisotropic {
                delta: 0.01,
                kappa: 4.0,
            },
            Noise::Isotropic { temperature: 0.02 },
            Noise::Constant {
                d: [[0.05, 0.02], [0.02, 0.04]],
            },
        ];
        for noise in &noises {
            for i in 0..41 {
                let x = -1.6 + 0.08 * i as f64;
                let along = AlongY::new(&valley, noise, x);
                for j in 0..101 {
                    let y = -3.0 + 0.06 * j as f64 + 1e-3;
                    let d = noise.diffusion(&valley, x, y);
                    let [d11, d22] = along.at(y);
                    assert_eq!(
                        d11.to_bits(),
                        d[0][0].to_bits(),
                        "{noise:?} D11 at ({x}, {y})"
                    );
                    assert_eq!(
                        d22.to_bits(),
                        d[1][1].to_bits(),
                        "{noise:?} D22 at ({x}, {y})"
                    );
                }
            }
        }
    }

    #[test]
    fn gaussian_law_has_the_gaussian_moments() {
        let v = Valley2d::paper();
        let n = Noise::Anisotropic {
            delta: 0.1,
            kappa: 5.0,
        };
        for law in [YLaw::Exact, YLaw::Gaussian] {
            let m =
                conditional_moments(&v, &n, 0.7, (f64::NEG_INFINITY, f64::INFINITY), law).unwrap();
            let var = 0.1 / v.lambda_at(0.7);
            assert!(
                (m.mean_y2 / var - 1.0).abs() < 1e-10,
                "{law:?}: {}",
                m.mean_y2
            );
            let p0 = -0.5 * (2.0 * std::f64::consts::PI * var).ln();
            assert!((m.log_density_at_ref - p0).abs() < 1e-10);
            assert!((m.mean_d11 - 0.02).abs() < 1e-14);
        }
    }
}
