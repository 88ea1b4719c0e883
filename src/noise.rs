//! Noise models: the diffusion tensor D(θ) of the Fokker–Planck equation (Eq. 10, docs/reference.md §1.3).
//!
//! Matrices are 2×2 symmetric, stored row-major as `[[d11, d12], [d21, d22]]`.

use crate::config::{Check, Invalid, check_finite, check_non_negative, check_positive};
use crate::landscape::Loss2d;
#[cfg(test)]
use crate::landscape::Valley2d;

/// A symmetric 2×2 matrix, row-major.
pub type Mat2 = [[f64; 2]; 2];

/// The noise model of a scenario (docs/reference.md §1.3).
#[derive(Debug, Clone, PartialEq)]
pub enum Noise {
    /// Constant anisotropic noise D = diag(Δ/κ, Δ) (Eq. 11).
    Anisotropic {
        /// Δ, the noise strength in the sharp direction y.
        delta: f64,
        /// κ, the anisotropy D22 / D11.
        kappa: f64,
    },
    /// Hessian-aligned noise D = Δ_S ‖H(θ)‖^γ, Δ_S = η σ (random-shift minibatches, Eq. 7).
    Hessian {
        /// η, the learning rate.
        eta: f64,
        /// σ, the minibatch shift variance parameter (μ ~ N(0, 2σ I)).
        sigma: f64,
        /// γ, the power of ‖H‖ (2 for the random-shift model).
        power: f64,
    },
    /// Isotropic noise D = T I (gradient Langevin dynamics).
    Isotropic {
        /// T, the temperature.
        temperature: f64,
    },
    /// A full constant positive semi-definite D.
    Constant {
        /// The matrix D.
        d: Mat2,
    },
}

impl Noise {
    /// Check the parameters' values; `key` is the table's dotted name (`noise`).
    pub fn validate(&self, key: &str) -> Check {
        match *self {
            Noise::Anisotropic { delta, kappa } => {
                check_positive(&format!("{key}.delta"), delta)?;
                check_positive(&format!("{key}.kappa"), kappa)
            }
            Noise::Hessian { eta, sigma, power } => {
                check_positive(&format!("{key}.eta"), eta)?;
                check_non_negative(&format!("{key}.sigma"), sigma)?;
                check_positive(&format!("{key}.power"), power)?;
                if power > MAX_POWER {
                    return Err(Invalid::new(
                        format!("{key}.power"),
                        format!(
                            "must be in (0, {MAX_POWER}] (γ = 2 is the random-shift model), got {power}"
                        ),
                    ));
                }
                Ok(())
            }
            Noise::Isotropic { temperature } => {
                check_positive(&format!("{key}.temperature"), temperature)
            }
            Noise::Constant { d } => validate_psd(&format!("{key}.d"), d),
        }
    }

    /// The effective SGD noise level Δ_S = η σ, for Hessian noise only.
    pub fn delta_s(&self) -> Option<f64> {
        match *self {
            Noise::Hessian { eta, sigma, .. } => Some(eta * sigma),
            _ => None,
        }
    }

    /// Whether D depends on θ (and so needs per-face evaluation).
    pub fn is_state_dependent(&self) -> bool {
        matches!(self, Noise::Hessian { .. })
    }

    /// The diffusion tensor D(x, y) (docs/reference.md §1.3).
    #[inline]
    pub fn diffusion<L: Loss2d + ?Sized>(&self, landscape: &L, x: f64, y: f64) -> Mat2 {
        match *self {
            Noise::Anisotropic { delta, kappa } => [[delta / kappa, 0.0], [0.0, delta]],
            Noise::Hessian { eta, sigma, power } => {
                let h = landscape.hessian(x, y);
                let m = if power == 2.0 {
                    // |H|² = H² exactly, without an eigen-decomposition.
                    [
                        [
                            h[0][0] * h[0][0] + h[0][1] * h[1][0],
                            h[0][0] * h[0][1] + h[0][1] * h[1][1],
                        ],
                        [
                            h[1][0] * h[0][0] + h[1][1] * h[1][0],
                            h[1][0] * h[0][1] + h[1][1] * h[1][1],
                        ],
                    ]
                } else {
                    sym_abs_pow(h, power)
                };
                let ds = eta * sigma;
                [[ds * m[0][0], ds * m[0][1]], [ds * m[1][0], ds * m[1][1]]]
            }
            Noise::Isotropic { temperature } => [[temperature, 0.0], [0.0, temperature]],
            Noise::Constant { d } => d,
        }
    }
}

/// Eigenvalues (larger first) of a symmetric 2×2 matrix.
#[inline]
pub fn sym_eigenvalues(m: Mat2) -> [f64; 2] {
    let mean = 0.5 * (m[0][0] + m[1][1]);
    let half_diff = 0.5 * (m[0][0] - m[1][1]);
    let r = half_diff.hypot(m[0][1]);
    [mean + r, mean - r]
}

/// |M|^γ for symmetric M: same eigenvectors, eigenvalues replaced by |λ|^γ (docs/reference.md §1.3).
///
/// With γ = 1/2 on a positive semi-definite matrix this is the matrix square root.
#[inline]
pub fn sym_abs_pow(m: Mat2, gamma: f64) -> Mat2 {
    let mean = 0.5 * (m[0][0] + m[1][1]);
    let half_diff = 0.5 * (m[0][0] - m[1][1]);
    let off = m[0][1];
    let r = half_diff.hypot(off);
    let scale = mean.abs().max(r);
    if r <= 1e-15 * scale || r == 0.0 {
        let v = mean.abs().powf(gamma);
        return [[v, 0.0], [0.0, v]];
    }
    let (lp, lm) = (mean + r, mean - r);
    let (fp, fm) = (lp.abs().powf(gamma), lm.abs().powf(gamma));
    // Spectral projectors: P± = (M − λ∓ I) / (λ± − λ∓); |M|^γ = f+ P+ + f− P−.
    let a = 0.5 * (fp + fm);
    let b = 0.5 * (fp - fm) / r;
    [[a + b * half_diff, b * off], [b * off, a - b * half_diff]]
}

/// Largest power γ of ‖H‖ accepted for Hessian noise.
pub const MAX_POWER: f64 = 4.0;

/// `d` must be finite, symmetric and positive semi-definite.
pub fn validate_psd(key: &str, d: Mat2) -> Check {
    for (i, row) in d.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            check_finite(&format!("{key}[{i}][{j}]"), v)?;
        }
    }
    if (d[0][1] - d[1][0]).abs() > 1e-12 * (d[0][1].abs() + d[1][0].abs()).max(1e-300) {
        return Err(Invalid::new(
            key,
            format!(
                "must be symmetric, got d12 = {} and d21 = {}",
                d[0][1], d[1][0]
            ),
        ));
    }
    let det = d[0][0] * d[1][1] - d[0][1] * d[1][0];
    if d[0][0] < 0.0 || d[1][1] < 0.0 || det < 0.0 {
        return Err(Invalid::new(
            key,
            format!(
                "must be positive semi-definite (d11 >= 0, d22 >= 0, d11 d22 - d12² >= 0), got {d:?}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mul(a: Mat2, b: Mat2) -> Mat2 {
        let mut c = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                c[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
            }
        }
        c
    }

    #[test]
    fn abs_pow_two_is_the_square() {
        let h = [[1.5, -0.7], [-0.7, -2.0]];
        let sq = mul(h, h);
        let p = sym_abs_pow(h, 2.0);
        for i in 0..2 {
            for j in 0..2 {
                assert!((sq[i][j] - p[i][j]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn abs_pow_half_squares_back_to_abs() {
        let h = [[1.5, 0.4], [0.4, 3.0]];
        let s = sym_abs_pow(h, 0.5);
        let back = mul(s, s);
        for i in 0..2 {
            for j in 0..2 {
                assert!((back[i][j] - h[i][j]).abs() < 1e-12);
            }
        }
        let e = sym_eigenvalues([[2.0, 1.0], [1.0, 2.0]]);
        assert!((e[0] - 3.0).abs() < 1e-14 && (e[1] - 1.0).abs() < 1e-14);
    }

    #[test]
    fn hessian_noise_on_the_valley_floor_is_diagonal() {
        let v = Valley2d::paper();
        let n = Noise::Hessian {
            eta: 0.01,
            sigma: 0.2,
            power: 2.0,
        };
        let d = n.diffusion(&v, 0.5, 0.0);
        let ds = 0.002;
        let lam = v.lambda_at(0.5);
        let exx = v.epsilon * v.lambda0();
        assert!((d[1][1] - ds * lam * lam).abs() < 1e-14);
        assert!((d[0][0] - ds * exx * exx).abs() < 1e-16);
        assert!(d[0][1].abs() < 1e-16);
    }
}
