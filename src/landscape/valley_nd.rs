//! The high-dimensional valley of Eq. (5) (docs/reference.md §1.2).
//!
//! θ = (x ∈ R^{N_F}, y ∈ R^{N_S}),
//! L = ½ Σ_i λ^{(i)}(x) y_i² + (ε/2) λ̄0 Σ_j x_j²,
//! with the even, separable quartic expansion
//!
//! λ^{(i)}(x) = λ0^{(i)} + Σ_j (a_ij x_j² + b_ij x_j⁴)
//!            = (1 − d) λ0^{(i)} + Σ_j b_ij (x_j² − r_j²)²,   a_ij = −2 b_ij r_j².
//!
//! Coefficient law (seeded, see [`ValleyNdSpec`]):
//! - λ0^{(i)} ~ U\[`lambda0[0]`, `lambda0[1]`\];
//! - r_j ~ U\[`x_flat[0]`, `x_flat[1]`\]: every λ^{(i)} is smallest at |x_j| = r_j, so the flattest
//!   point is x_F = (±r_1, …, ±r_{N_F}) and F(x_F) / F(0) = (1 − d)^(−1/2);
//! - weights w_ij = E_ij / Σ_k E_ik with E_ij ~ Exp(1) (a flat Dirichlet split of the depth);
//! - b_ij = d λ0^{(i)} w_ij / r_j⁴, so Σ_j b_ij r_j⁴ = d λ0^{(i)}.
//!
//! Then λ^{(i)}(x) ≥ (1 − d) λ0^{(i)} > 0 everywhere for 0 ≤ d < 1, λ^{(i)}(0) = λ0^{(i)}, and for
//! ε > 0 the global minimum is (0, 0), distinct from the flattest point.
//!
//! Layout: `b` is N_S × N_F row-major (`b[i * n_f + j]`, j fastest).

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Deserialize;

use crate::config::{Check, Invalid, check_non_negative, check_positive};

/// Largest N_S accepted (keeps the O(N_S·N_F) step and the coefficient table reasonable).
pub const MAX_N_S: usize = 10_000;
/// Largest N_F accepted.
pub const MAX_N_F: usize = 1_000_000;
/// Largest N_S · N_F (size of the coefficient table).
pub const MAX_COEFFICIENTS: usize = 10_000_000;

/// `[landscape] kind = "valley"`: the N-D valley's parameters (docs/reference.md §6.2).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValleyNdSpec {
    /// N_S, the number of sharp (non-degenerate) variables y.
    #[serde(default = "default_n_s")]
    pub n_s: usize,
    /// N_F, the number of flat (degenerate) variables x.
    #[serde(default = "default_n_f")]
    pub n_f: usize,
    /// ε, the degeneracy-breaking strength.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Seed of the coefficient draw; absent → the scenario's `seed`.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Range [min, max] of the uniform law of λ0^{(i)} = λ^{(i)}(0).
    #[serde(default = "default_lambda0")]
    pub lambda0: [f64; 2],
    /// d ∈ [0, 1): λ^{(i)} drops from λ0^{(i)} at x = 0 to (1 − d) λ0^{(i)} at the flattest point.
    #[serde(default = "default_depth")]
    pub depth: f64,
    /// Range [min, max] of the uniform law of r_j = |x_F,j|, the flattest point's coordinates.
    #[serde(default = "default_x_flat")]
    pub x_flat: [f64; 2],
}

fn default_n_s() -> usize {
    5
}

fn default_n_f() -> usize {
    100
}

fn default_epsilon() -> f64 {
    1.0e-4
}

fn default_lambda0() -> [f64; 2] {
    [10.0, 30.0]
}

fn default_depth() -> f64 {
    0.5
}

fn default_x_flat() -> [f64; 2] {
    [0.5, 1.5]
}

impl Default for ValleyNdSpec {
    fn default() -> Self {
        Self {
            n_s: default_n_s(),
            n_f: default_n_f(),
            epsilon: default_epsilon(),
            seed: None,
            lambda0: default_lambda0(),
            depth: default_depth(),
            x_flat: default_x_flat(),
        }
    }
}

impl ValleyNdSpec {
    /// Check every value; `key` is the table's dotted name.
    pub fn validate(&self, key: &str) -> Check {
        if self.n_s == 0 || self.n_s > MAX_N_S {
            return Err(Invalid::new(
                format!("{key}.n_s"),
                format!("must be in 1..={MAX_N_S}, got {}", self.n_s),
            ));
        }
        if self.n_f == 0 || self.n_f > MAX_N_F {
            return Err(Invalid::new(
                format!("{key}.n_f"),
                format!("must be in 1..={MAX_N_F}, got {}", self.n_f),
            ));
        }
        if self.n_s * self.n_f > MAX_COEFFICIENTS {
            return Err(Invalid::new(
                format!("{key}.n_f"),
                format!(
                    "n_s * n_f = {} is larger than the limit {MAX_COEFFICIENTS}",
                    self.n_s * self.n_f
                ),
            ));
        }
        check_non_negative(&format!("{key}.epsilon"), self.epsilon)?;
        check_range(&format!("{key}.lambda0"), self.lambda0)?;
        check_range(&format!("{key}.x_flat"), self.x_flat)?;
        check_non_negative(&format!("{key}.depth"), self.depth)?;
        if self.depth >= 1.0 {
            return Err(Invalid::new(
                format!("{key}.depth"),
                format!(
                    "must be < 1 (λ at the flattest point is (1 - depth) λ0 > 0), got {}",
                    self.depth
                ),
            ));
        }
        if let Some(seed) = self.seed {
            self.build(seed).map(|_| ())?;
        }
        Ok(())
    }

    /// Draw the coefficients: the landscape seed is `self.seed`, else `scenario_seed`.
    ///
    /// The drawn table is checked (finite, λ^{(i)} > 0 at its minimum); an error names the key.
    pub fn build(&self, scenario_seed: u64) -> Result<ValleyNd, Invalid> {
        let seed = self.seed.unwrap_or(scenario_seed);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (n_s, n_f) = (self.n_s, self.n_f);
        let lambda0: Vec<f64> = (0..n_s).map(|_| uniform(&mut rng, self.lambda0)).collect();
        let x_flat: Vec<f64> = (0..n_f).map(|_| uniform(&mut rng, self.x_flat)).collect();
        let mut b = vec![0.0; n_s * n_f];
        for i in 0..n_s {
            let row = &mut b[i * n_f..(i + 1) * n_f];
            for w in row.iter_mut() {
                // E ~ Exp(1); 1 − u ∈ (0, 1].
                let u: f64 = rng.random();
                *w = -(1.0 - u).ln();
            }
            let total: f64 = row.iter().sum();
            for (w, &r) in row.iter_mut().zip(&x_flat) {
                *w = self.depth * lambda0[i] * (*w / total) / (r * r * r * r);
            }
        }
        let lambda_floor: Vec<f64> = lambda0.iter().map(|l| (1.0 - self.depth) * l).collect();
        let lambda0_mean = lambda0.iter().sum::<f64>() / n_s as f64;
        let valley = ValleyNd {
            n_s,
            n_f,
            epsilon: self.epsilon,
            lambda0,
            lambda_floor,
            x_flat,
            b,
            lambda0_mean,
        };
        valley
            .check()
            .map_err(|msg| Invalid::new("landscape", msg))?;
        Ok(valley)
    }
}

fn check_range(key: &str, r: [f64; 2]) -> Check {
    check_positive(&format!("{key}[0]"), r[0])?;
    check_positive(&format!("{key}[1]"), r[1])?;
    if r[1] < r[0] {
        return Err(Invalid::new(
            key,
            format!("must be [min, max] with min <= max, got {r:?}"),
        ));
    }
    Ok(())
}

fn uniform(rng: &mut Xoshiro256PlusPlus, r: [f64; 2]) -> f64 {
    let u: f64 = rng.random();
    r[0] + (r[1] - r[0]) * u
}

/// A drawn N-D valley of Eq. (5): coefficients of λ^{(i)}(x) (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ValleyNd {
    /// N_S, the number of sharp variables y.
    pub n_s: usize,
    /// N_F, the number of flat variables x.
    pub n_f: usize,
    /// ε, the degeneracy-breaking strength.
    pub epsilon: f64,
    /// λ0^{(i)} = λ^{(i)}(0).
    pub lambda0: Vec<f64>,
    /// (1 − d) λ0^{(i)}, the minimum of λ^{(i)} (reached at the flattest point).
    pub lambda_floor: Vec<f64>,
    /// r_j: the flattest point is x_F = (±r_j).
    pub x_flat: Vec<f64>,
    /// b_ij, the x_j⁴ coefficient of λ^{(i)}; N_S × N_F row-major.
    pub b: Vec<f64>,
    /// λ̄0, the mean of the λ0^{(i)}.
    pub lambda0_mean: f64,
}

impl ValleyNd {
    /// Dimension N_F + N_S of θ (x first, then y).
    pub fn dim(&self) -> usize {
        self.n_f + self.n_s
    }

    /// ε λ̄0, the curvature of the degeneracy-breaking term.
    #[inline]
    pub fn eps_lambda0(&self) -> f64 {
        self.epsilon * self.lambda0_mean
    }

    /// Row i of the b table.
    #[inline]
    pub fn b_row(&self, i: usize) -> &[f64] {
        &self.b[i * self.n_f..(i + 1) * self.n_f]
    }

    /// a_ij = −2 b_ij r_j², the x_j² coefficient of λ^{(i)}.
    pub fn a(&self, i: usize, j: usize) -> f64 {
        -2.0 * self.b[i * self.n_f + j] * self.x_flat[j] * self.x_flat[j]
    }

    fn check(&self) -> Result<(), String> {
        let finite = self.lambda0.iter().all(|v| v.is_finite() && *v > 0.0)
            && self.x_flat.iter().all(|v| v.is_finite() && *v > 0.0)
            && self.b.iter().all(|v| v.is_finite() && *v >= 0.0);
        if !finite {
            return Err("the drawn coefficients are not finite and positive".into());
        }
        if let Some((i, m)) = self
            .lambda_floor
            .iter()
            .enumerate()
            .find(|(_, m)| m.is_nan() || **m <= 0.0)
        {
            return Err(format!(
                "λ^({i}) has minimum {m} <= 0: the valley must keep every λ^(i) > 0"
            ));
        }
        // The closed-form minimum must agree with λ at the flattest point.
        let mut lam = vec![0.0; self.n_s];
        self.lambdas(&self.x_flat, &mut lam);
        for (i, (&l, &m)) in lam.iter().zip(&self.lambda_floor).enumerate() {
            if (l - m).abs() > 1e-9 * m.max(1.0) {
                return Err(format!(
                    "λ^({i}) at the flattest point is {l}, expected {m} (coefficient table inconsistent)"
                ));
            }
        }
        Ok(())
    }

    /// λ^{(i)}(x) for every i, into `out` (length N_S).
    pub fn lambdas(&self, x: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            let row = self.b_row(i);
            let mut acc = self.lambda_floor[i];
            for ((&b, &xj), &r) in row.iter().zip(x).zip(&self.x_flat) {
                let s = xj * xj - r * r;
                acc += b * s * s;
            }
            *o = acc;
        }
    }

    /// L(x, y) of Eq. (5) with the ε term.
    pub fn loss(&self, x: &[f64], y: &[f64]) -> f64 {
        let mut lam = vec![0.0; self.n_s];
        self.lambdas(x, &mut lam);
        loss_from_lambdas(self.eps_lambda0(), x, y, &lam)
    }

    /// ∇L into (gx, gy).
    pub fn grad(&self, x: &[f64], y: &[f64], gx: &mut [f64], gy: &mut [f64]) {
        let mut lam = vec![0.0; self.n_s];
        self.lambdas(x, &mut lam);
        for (g, (&l, &yi)) in gy.iter_mut().zip(lam.iter().zip(y)) {
            *g = l * yi;
        }
        // ∂_j L = ε λ̄0 x_j + 2 x_j (x_j² − r_j²) Σ_i b_ij y_i².
        for (j, g) in gx.iter_mut().enumerate() {
            let y2b: f64 = (0..self.n_s)
                .map(|i| self.b[i * self.n_f + j] * y[i] * y[i])
                .sum();
            let s = x[j] * x[j] - self.x_flat[j] * self.x_flat[j];
            *g = self.eps_lambda0() * x[j] + 2.0 * x[j] * s * y2b;
        }
    }

    /// H(θ)·v into (hx, hy), in O(N_S·N_F) without forming H.
    pub fn hess_vec(
        &self,
        x: &[f64],
        y: &[f64],
        vx: &[f64],
        vy: &[f64],
        hx: &mut [f64],
        hy: &mut [f64],
    ) {
        let mut lam = vec![0.0; self.n_s];
        self.lambdas(x, &mut lam);
        for i in 0..self.n_s {
            let row = self.b_row(i);
            let mut q = 0.0;
            for j in 0..self.n_f {
                let s = x[j] * x[j] - self.x_flat[j] * self.x_flat[j];
                q += row[j] * x[j] * s * vx[j];
            }
            hy[i] = 4.0 * y[i] * q + lam[i] * vy[i];
        }
        for j in 0..self.n_f {
            let (mut y2b, mut yvb) = (0.0, 0.0);
            for i in 0..self.n_s {
                let b = self.b[i * self.n_f + j];
                y2b += b * y[i] * y[i];
                yvb += b * y[i] * vy[i];
            }
            let r2 = self.x_flat[j] * self.x_flat[j];
            let s = x[j] * x[j] - r2;
            let hjj = self.eps_lambda0() + 2.0 * (3.0 * x[j] * x[j] - r2) * y2b;
            hx[j] = hjj * vx[j] + 4.0 * x[j] * s * yvb;
        }
    }

    /// Flatness F(x) = Π_i λ^{(i)}(x)^(−1/(2 N_S)) (Eq. 6).
    pub fn flatness(&self, x: &[f64]) -> f64 {
        let mut lam = vec![0.0; self.n_s];
        self.lambdas(x, &mut lam);
        flatness_from_lambdas(&lam)
    }

    /// Noise weights γ_i = Δ^{(i)} / Σ Δ^{(i)} with Δ^{(i)} ∝ λ^{(i)}(0)² (Eq. 16).
    pub fn noise_weights(&self) -> Vec<f64> {
        let total: f64 = self.lambda0.iter().map(|l| l * l).sum();
        self.lambda0.iter().map(|l| l * l / total).collect()
    }

    /// Noise-weighted flatness F̂(x) = Π_i λ^{(i)}(x)^(−γ_i/2) (Eq. 16).
    pub fn flatness_hat(&self, x: &[f64]) -> f64 {
        let mut lam = vec![0.0; self.n_s];
        self.lambdas(x, &mut lam);
        flatness_hat_from_lambdas(&lam, &self.noise_weights())
    }

    /// The flattest point x_F = (r_1, …, r_{N_F}) (every sign flip of it is flattest too).
    pub fn flattest_point(&self) -> Vec<f64> {
        self.x_flat.clone()
    }

    /// tr H² at the global minimum (0, 0): Σ_i λ0^{(i)}² + N_F (ε λ̄0)².
    pub fn trace_hessian_sq_at_minimum(&self) -> f64 {
        self.lambda0.iter().map(|l| l * l).sum::<f64>()
            + self.n_f as f64 * self.eps_lambda0() * self.eps_lambda0()
    }

    /// The GLD temperature whose isotropic noise has the trace of the SGD noise at the
    /// global minimum: T = Δ_S tr H²(0) / (N_F + N_S).
    pub fn matched_temperature(&self, delta_s: f64) -> f64 {
        delta_s * self.trace_hessian_sq_at_minimum() / self.dim() as f64
    }
}

/// L from precomputed λ^{(i)}: ½ Σ λ_i y_i² + ½ ε λ̄0 |x|².
#[inline]
pub fn loss_from_lambdas(eps_lambda0: f64, x: &[f64], y: &[f64], lam: &[f64]) -> f64 {
    let sharp: f64 = lam.iter().zip(y).map(|(l, yi)| l * yi * yi).sum();
    let flat: f64 = x.iter().map(|v| v * v).sum();
    0.5 * sharp + 0.5 * eps_lambda0 * flat
}

/// F = Π λ_i^(−1/(2 N_S)) from precomputed λ^{(i)} (Eq. 6).
#[inline]
pub fn flatness_from_lambdas(lam: &[f64]) -> f64 {
    let s: f64 = lam.iter().map(|l| l.ln()).sum();
    (-0.5 * s / lam.len() as f64).exp()
}

/// F̂ = Π λ_i^(−γ_i/2) from precomputed λ^{(i)} and weights γ_i (Eq. 16).
#[inline]
pub fn flatness_hat_from_lambdas(lam: &[f64], gamma: &[f64]) -> f64 {
    let s: f64 = lam.iter().zip(gamma).map(|(l, g)| g * l.ln()).sum();
    (-0.5 * s).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ValleyNd {
        ValleyNdSpec {
            n_s: 3,
            n_f: 7,
            epsilon: 0.01,
            ..Default::default()
        }
        .build(11)
        .unwrap()
    }

    #[test]
    fn lambda_is_lambda0_at_origin_and_floor_at_flattest_point() {
        let v = small();
        let mut lam = vec![0.0; v.n_s];
        v.lambdas(&vec![0.0; v.n_f], &mut lam);
        for (l, l0) in lam.iter().zip(&v.lambda0) {
            assert!((l - l0).abs() < 1e-12 * l0);
        }
        let f0 = v.flatness(&vec![0.0; v.n_f]);
        let ff = v.flatness(&v.flattest_point());
        assert!((ff / f0 - (1.0f64 - 0.5).powf(-0.5)).abs() < 1e-12);
        // a_ij from the definition
        assert!((v.a(1, 2) + 2.0 * v.b[v.n_f + 2] * v.x_flat[2].powi(2)).abs() < 1e-15);
    }

    #[test]
    fn gradient_and_hessian_vector_product_match_finite_differences() {
        let v = small();
        let x: Vec<f64> = (0..v.n_f).map(|j| 0.3 + 0.1 * j as f64).collect();
        let y: Vec<f64> = (0..v.n_s).map(|i| 0.2 - 0.15 * i as f64).collect();
        let (mut gx, mut gy) = (vec![0.0; v.n_f], vec![0.0; v.n_s]);
        v.grad(&x, &y, &mut gx, &mut gy);
        let h = 1e-6;
        for j in 0..v.n_f {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[j] += h;
            xm[j] -= h;
            let fd = (v.loss(&xp, &y) - v.loss(&xm, &y)) / (2.0 * h);
            assert!((fd - gx[j]).abs() < 1e-6 * (1.0 + fd.abs()), "∂x_{j}");
        }
        for i in 0..v.n_s {
            let (mut yp, mut ym) = (y.clone(), y.clone());
            yp[i] += h;
            ym[i] -= h;
            let fd = (v.loss(&x, &yp) - v.loss(&x, &ym)) / (2.0 * h);
            assert!((fd - gy[i]).abs() < 1e-6 * (1.0 + fd.abs()), "∂y_{i}");
        }
        // H v by finite differences of the gradient along v.
        let vx: Vec<f64> = (0..v.n_f)
            .map(|j| ((j * 7 % 5) as f64 - 2.0) * 0.3)
            .collect();
        let vy: Vec<f64> = (0..v.n_s).map(|i| 0.5 - i as f64 * 0.4).collect();
        let (mut hx, mut hy) = (vec![0.0; v.n_f], vec![0.0; v.n_s]);
        v.hess_vec(&x, &y, &vx, &vy, &mut hx, &mut hy);
        let shift = |s: f64| {
            let xs: Vec<f64> = x.iter().zip(&vx).map(|(a, b)| a + s * b).collect();
            let ys: Vec<f64> = y.iter().zip(&vy).map(|(a, b)| a + s * b).collect();
            let (mut gx, mut gy) = (vec![0.0; v.n_f], vec![0.0; v.n_s]);
            v.grad(&xs, &ys, &mut gx, &mut gy);
            (gx, gy)
        };
        let (gxp, gyp) = shift(h);
        let (gxm, gym) = shift(-h);
        for j in 0..v.n_f {
            let fd = (gxp[j] - gxm[j]) / (2.0 * h);
            assert!((fd - hx[j]).abs() < 1e-5 * (1.0 + fd.abs()), "(Hv)_x{j}");
        }
        for i in 0..v.n_s {
            let fd = (gyp[i] - gym[i]) / (2.0 * h);
            assert!((fd - hy[i]).abs() < 1e-5 * (1.0 + fd.abs()), "(Hv)_y{i}");
        }
    }

    #[test]
    fn bad_depth_is_rejected_with_its_key() {
        let spec = ValleyNdSpec {
            depth: 1.0,
            ..Default::default()
        };
        assert_eq!(
            spec.validate("landscape").unwrap_err().key,
            "landscape.depth"
        );
    }
}
