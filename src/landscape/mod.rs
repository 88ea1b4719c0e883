//! Loss landscapes: the two-dimensional degenerate valley of Eq. (8) (docs/reference.md §1.1).
//!
//! L(x, y) = ½ ε λ0 x² + ½ λ(x) y²,  λ(x) = Σ_n λ_n x^{2n}.
//! The high-dimensional valley of Eq. (5) lives in [`valley_nd`].

pub mod expr;
pub mod valley_nd;

/// The loss landscape of a computation.
#[derive(Debug, Clone, PartialEq)]
pub enum Landscape {
    /// No loss landscape: a scenario with only a `[network]` section.
    None,
    /// The 2-D valley of Eq. (8).
    Valley2d(Valley2d),
    /// The N-D valley of Eq. (5), as specified (its coefficients are drawn from a seed).
    Valley(valley_nd::ValleyNdSpec),
    /// A 2-D loss written as an expression in x and y.
    Expression(expr::ExprLoss),
}

impl Landscape {
    /// The 2-D valley, if the landscape is one.
    pub fn valley2d(&self) -> Option<&Valley2d> {
        match self {
            Landscape::Valley2d(v) => Some(v),
            Landscape::Valley(_) | Landscape::Expression(_) | Landscape::None => None,
        }
    }

    /// The expression loss, if the landscape is one.
    pub fn expression(&self) -> Option<&expr::ExprLoss> {
        match self {
            Landscape::Expression(e) => Some(e),
            _ => None,
        }
    }
}

/// A two-dimensional loss L(x, y) with exact first and second derivatives: what the FP operator
/// (Eq. 10), the 2-D sampler (Eq. 4) and the valley theories need of a landscape.
pub trait Loss2d: Sync {
    /// L(x, y).
    fn loss(&self, x: f64, y: f64) -> f64;
    /// ∇L(x, y) = (∂L/∂x, ∂L/∂y).
    fn gradient(&self, x: f64, y: f64) -> [f64; 2];
    /// The Hessian H(x, y), symmetric.
    fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2];
    /// Flatness F = λ_max(H)^(−1/2) (Eq. 6 with one sharp direction; NaN where λ_max ≤ 0).
    fn flatness(&self, x: f64, y: f64) -> f64 {
        let h = self.hessian(x, y);
        let top = 0.5 * (h[0][0] + h[1][1]) + (0.5 * (h[0][0] - h[1][1])).hypot(h[0][1]);
        if top > 0.0 {
            1.0 / top.sqrt()
        } else {
            f64::NAN
        }
    }
}

impl Loss2d for Valley2d {
    #[inline]
    fn loss(&self, x: f64, y: f64) -> f64 {
        Valley2d::loss(self, x, y)
    }
    #[inline]
    fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        self.grad(x, y)
    }
    #[inline]
    fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        Valley2d::hessian(self, x, y)
    }
    #[inline]
    fn flatness(&self, x: f64, _y: f64) -> f64 {
        Valley2d::flatness(self, x)
    }
}

/// The 2-D valley of Eq. (8): one degenerate variable x, one sharp variable y.
#[derive(Debug, Clone, PartialEq)]
pub struct Valley2d {
    /// ε, the degeneracy-breaking strength (Eq. 8).
    pub epsilon: f64,
    /// Expansion coefficients [λ0, λ1, …] of λ(x) = Σ λ_n x^{2n} (Eq. 8).
    pub lambda: Vec<f64>,
}

impl Valley2d {
    /// Check ε ≥ 0, finite coefficients and λ0 > 0; `key` is the table's dotted name.
    pub fn validate(&self, key: &str) -> crate::config::Check {
        use crate::config::{Invalid, check_finite, check_non_negative};
        check_non_negative(&format!("{key}.epsilon"), self.epsilon)?;
        if self.lambda.is_empty() {
            return Err(Invalid::new(
                format!("{key}.lambda"),
                "needs at least λ0, e.g. [8.0, -2.0, 1.0]",
            ));
        }
        for (n, &c) in self.lambda.iter().enumerate() {
            check_finite(&format!("{key}.lambda[{n}]"), c)?;
        }
        if self.lambda[0] <= 0.0 {
            return Err(Invalid::new(
                format!("{key}.lambda"),
                format!("λ0 must be > 0, got {}", self.lambda[0]),
            ));
        }
        Ok(())
    }

    /// The paper's reference landscape of Fig. 5: ε = 0.001, λ = [8, −2, 1].
    pub fn paper() -> Self {
        Self {
            epsilon: 0.001,
            lambda: vec![8.0, -2.0, 1.0],
        }
    }

    /// λ0, the curvature of the sharp direction at the global minimum x* = 0.
    pub fn lambda0(&self) -> f64 {
        self.lambda.first().copied().unwrap_or(0.0)
    }

    /// λ1, the x² coefficient of λ(x) (enters Δ_S* = −ε/λ1).
    pub fn lambda1(&self) -> f64 {
        self.lambda.get(1).copied().unwrap_or(0.0)
    }

    /// λ(x) = Σ λ_n x^{2n}, the sharp-direction curvature along the valley (Eq. 8).
    #[inline]
    pub fn lambda_at(&self, x: f64) -> f64 {
        let x2 = x * x;
        self.lambda.iter().rev().fold(0.0, |acc, &c| acc * x2 + c)
    }

    /// λ'(x) = Σ 2n λ_n x^{2n−1}.
    #[inline]
    pub fn lambda_d1(&self, x: f64) -> f64 {
        let x2 = x * x;
        let mut acc = 0.0;
        for (n, &c) in self.lambda.iter().enumerate().skip(1).rev() {
            acc = acc * x2 + 2.0 * n as f64 * c;
        }
        acc * x
    }

    /// λ''(x) = Σ 2n(2n−1) λ_n x^{2n−2}.
    #[inline]
    pub fn lambda_d2(&self, x: f64) -> f64 {
        let x2 = x * x;
        let mut acc = 0.0;
        for (n, &c) in self.lambda.iter().enumerate().skip(1).rev() {
            let n = n as f64;
            acc = acc * x2 + 2.0 * n * (2.0 * n - 1.0) * c;
        }
        acc
    }

    /// λ'''(x) = Σ 2n(2n−1)(2n−2) λ_n x^{2n−3}.
    #[inline]
    pub fn lambda_d3(&self, x: f64) -> f64 {
        let x2 = x * x;
        let mut acc = 0.0;
        for (n, &c) in self.lambda.iter().enumerate().skip(2).rev() {
            let n = n as f64;
            acc = acc * x2 + 2.0 * n * (2.0 * n - 1.0) * (2.0 * n - 2.0) * c;
        }
        acc * x
    }

    /// L(x, y) of Eq. (8).
    #[inline]
    pub fn loss(&self, x: f64, y: f64) -> f64 {
        0.5 * self.epsilon * self.lambda0() * x * x + 0.5 * self.lambda_at(x) * y * y
    }

    /// ∇L = (ε λ0 x + ½ λ'(x) y², λ(x) y).
    #[inline]
    pub fn grad(&self, x: f64, y: f64) -> [f64; 2] {
        [
            self.epsilon * self.lambda0() * x + 0.5 * self.lambda_d1(x) * y * y,
            self.lambda_at(x) * y,
        ]
    }

    /// H = [[ε λ0 + ½ λ''(x) y², λ'(x) y], [λ'(x) y, λ(x)]].
    #[inline]
    pub fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let h12 = self.lambda_d1(x) * y;
        [
            [
                self.epsilon * self.lambda0() + 0.5 * self.lambda_d2(x) * y * y,
                h12,
            ],
            [h12, self.lambda_at(x)],
        ]
    }

    /// Flatness F(x) = λ(x)^(−1/2) (Eq. 6 with N_S = 1).
    #[inline]
    pub fn flatness(&self, x: f64) -> f64 {
        1.0 / self.lambda_at(x).sqrt()
    }

    /// The flattest point x_F ≥ 0 of the valley within [0, x_max]: argmin λ(x).
    ///
    /// Found by a fine scan refined by bisection on λ'(x) = 0; λ is even, so −x_F is flattest too.
    pub fn flattest_point(&self, x_max: f64) -> f64 {
        const SCAN: usize = 4096;
        let x_max = x_max.abs();
        let mut best = (0.0, self.lambda_at(0.0));
        for k in 1..=SCAN {
            let x = x_max * k as f64 / SCAN as f64;
            let l = self.lambda_at(x);
            if l < best.1 {
                best = (x, l);
            }
        }
        let h = x_max / SCAN as f64;
        let (mut a, mut b) = ((best.0 - h).max(0.0), (best.0 + h).min(x_max));
        // Refine by bisection on λ'(x) = 0 when the bracket holds a sign change.
        if self.lambda_d1(a) < 0.0 && self.lambda_d1(b) > 0.0 {
            for _ in 0..200 {
                let m = 0.5 * (a + b);
                if self.lambda_d1(m) < 0.0 {
                    a = m;
                } else {
                    b = m;
                }
            }
            return 0.5 * (a + b);
        }
        best.0
    }

    /// Smallest value of λ(x) on [−x_max, x_max] (λ must stay positive there, docs/reference.md §6.9).
    pub fn min_lambda_on(&self, x_max: f64) -> f64 {
        self.lambda_at(self.flattest_point(x_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let v = Valley2d {
            epsilon: 0.01,
            lambda: vec![8.0, -2.0, 1.0, 0.3],
        };
        let h = 1e-5;
        for &x in &[-1.3, -0.2, 0.0, 0.7, 1.1] {
            let d1 = (v.lambda_at(x + h) - v.lambda_at(x - h)) / (2.0 * h);
            let d2 = (v.lambda_d1(x + h) - v.lambda_d1(x - h)) / (2.0 * h);
            let d3 = (v.lambda_d2(x + h) - v.lambda_d2(x - h)) / (2.0 * h);
            assert!((d1 - v.lambda_d1(x)).abs() < 1e-6, "λ' at {x}");
            assert!((d2 - v.lambda_d2(x)).abs() < 1e-6, "λ'' at {x}");
            assert!((d3 - v.lambda_d3(x)).abs() < 1e-5, "λ''' at {x}");
            let y = 0.3;
            let g = v.grad(x, y);
            let gx = (v.loss(x + h, y) - v.loss(x - h, y)) / (2.0 * h);
            let gy = (v.loss(x, y + h) - v.loss(x, y - h)) / (2.0 * h);
            assert!((g[0] - gx).abs() < 1e-7 && (g[1] - gy).abs() < 1e-7);
            let hs = v.hessian(x, y);
            let hxy = (v.grad(x, y + h)[0] - v.grad(x, y - h)[0]) / (2.0 * h);
            assert!((hs[0][1] - hxy).abs() < 1e-6);
        }
    }

    #[test]
    fn paper_landscape_flattest_point_is_one() {
        let v = Valley2d::paper();
        assert!((v.flattest_point(1.6) - 1.0).abs() < 1e-9);
        assert!((v.min_lambda_on(1.6) - 7.0).abs() < 1e-12);
    }
}
