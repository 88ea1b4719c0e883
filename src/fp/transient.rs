//! Implicit time stepping of dP/dt = A P by TR-BDF2 (second order, L-stable).
//!
//! With γ = 2 − √2 both stages solve with the same matrix M = I − (γ/2)·h·A, so one
//! factorisation serves every step of a given size h:
//!   TR stage:   M P* = (I + (γ/2) h A) Pⁿ
//!   BDF2 stage: M Pⁿ⁺¹ = [P* − (1−γ)² Pⁿ] / (γ(2−γ))
//! Both right-hand sides conserve mass (1ᵀA = 0), so mass is conserved to round-off.
//! Unconditional positivity is impossible for second-order methods; with diagonal D the
//! density stays non-negative for the step sizes used here, and the minimum is reported.

use super::nested::{Factorization, NestedDissection, SingularMatrix};
use super::operator::Stencil9;

/// γ of TR-BDF2.
const GAMMA: f64 = 2.0 - std::f64::consts::SQRT_2;

/// A TR-BDF2 stepper with its factorisation and work buffers (no allocation per step).
pub struct TrBdf2<'a> {
    a: &'a Stencil9,
    /// The step size the factorisation belongs to.
    pub dt: f64,
    factor: Factorization,
    ap: Vec<f64>,
    stage: Vec<f64>,
}

impl<'a> TrBdf2<'a> {
    /// Factorise I − (γ/2)·dt·A on the grid of `a`.
    pub fn new(a: &'a Stencil9, nd: &NestedDissection, dt: f64) -> Result<Self, SingularMatrix> {
        let m = a.shifted_identity(0.5 * GAMMA * dt);
        let factor = nd.factorize(&m)?;
        let n = a.grid.len();
        Ok(Self {
            a,
            dt,
            factor,
            ap: vec![0.0; n],
            stage: vec![0.0; n],
        })
    }

    /// Advance `p` by one step of size `self.dt`.
    pub fn step(&mut self, p: &mut [f64]) {
        let c = 0.5 * GAMMA * self.dt;
        self.a.apply(p, &mut self.ap);
        for ((s, &v), &av) in self.stage.iter_mut().zip(p.iter()).zip(&self.ap) {
            *s = v + c * av;
        }
        self.factor.solve_in_place(&mut self.stage);
        let w = 1.0 / (GAMMA * (2.0 - GAMMA));
        let w_old = (1.0 - GAMMA) * (1.0 - GAMMA) * w;
        for (v, &s) in p.iter_mut().zip(&self.stage) {
            *v = w * s - w_old * *v;
        }
        self.factor.solve_in_place(p);
    }
}

/// Backward Euler, (I − h·A) Pⁿ⁺¹ = Pⁿ: first order, but with the M-matrix generator of a
/// diagonal D its inverse is non-negative, so it keeps the density ≥ 0. A few of these steps
/// start a TR-BDF2 run (Rannacher's start): they damp the stiff content of a non-smooth or
/// barely resolved initial density that TR-BDF2 would otherwise turn into negative values.
pub struct BackwardEuler {
    /// The step size the factorisation belongs to.
    pub dt: f64,
    factor: Factorization,
}

impl BackwardEuler {
    /// Factorise I − dt·A on the grid of `a`.
    pub fn new(a: &Stencil9, nd: &NestedDissection, dt: f64) -> Result<Self, SingularMatrix> {
        let factor = nd.factorize(&a.shifted_identity(dt))?;
        Ok(Self { dt, factor })
    }

    /// Advance `p` by one step of size `self.dt`.
    pub fn step(&self, p: &mut [f64]) {
        self.factor.solve_in_place(p);
    }
}
