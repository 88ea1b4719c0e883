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

/// Error tolerances of the adaptive transient, with SciPy `solve_ivp`'s meaning (error per step)
/// in the L1 norm of the density: a step is accepted when its estimated local error satisfies
/// ‖est‖₁ ≤ atol + rtol·max(‖Pⁿ‖₁, ‖Pⁿ⁺¹‖₁). As for any such controller the global error is
/// not bounded by the tolerance; for a second-order method it scales as tol^(2/3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance (density units).
    pub atol: f64,
}

/// What an adaptive run did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdaptiveStats {
    /// Accepted TR-BDF2 steps.
    pub accepted: usize,
    /// Rejected step attempts (each redone with a smaller step).
    pub rejected: usize,
    /// LU factorisations of I − (γ/2)·h·A (one per distinct step size h used).
    pub factorizations: usize,
    /// Smallest accepted step.
    pub dt_min: f64,
    /// Largest accepted step.
    pub dt_max: f64,
}

/// The adaptive run could not continue.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdaptiveError {
    /// A stage matrix was singular.
    #[error(transparent)]
    Singular(#[from] SingularMatrix),
    /// The step size fell below 1e-12 of the run length without meeting the tolerance.
    #[error(
        "adaptive transient: step size fell to {dt:e} at t = {t} without meeting the tolerance"
    )]
    StepTooSmall {
        /// The rejected step.
        dt: f64,
        /// The time reached.
        t: f64,
    },
    /// The observer asked to stop.
    #[error("adaptive transient stopped by the caller")]
    Stopped,
}

/// Leading local-error constant of TR-BDF2: Pⁿ⁺¹ − P(tⁿ + h) ≈ C h³ P‴.
const LTE_C: f64 = (-3.0 * GAMMA * GAMMA + 4.0 * GAMMA - 2.0) / (12.0 * (2.0 - GAMMA));
/// Factorisations kept at once (a step-size change back and forth reuses them).
const CACHED_FACTORS: usize = 3;

/// TR-BDF2 with error control (Bank et al. 1985; Hosea & Shampine 1996).
///
/// Error estimate: C h³ P‴ with P‴ from the second divided difference of f = A P over the three
/// points tⁿ, tⁿ + γh, tⁿ + h, i.e. 2Ch [fⁿ/γ − f*/(γ(1−γ)) + fⁿ⁺¹/(1−γ)], filtered through
/// M⁻¹ = (I − (γ/2)hA)⁻¹ so that stiff components, which the L-stable method damps, do not
/// masquerade as error. Step sizes live on the ladder dt0·2^k, so a handful of factorisations
/// (cached) serve the whole run: the controller proposes q = 0.9·err^(−1/3), moves up
/// ⌊log₂ q⌋ rungs (at most 2) after two accepted steps on a rung, and down at least one rung
/// on a rejection. The last step is shortened to land on t_end exactly. Snapshots between steps
/// come from the cubic Hermite interpolant of (Pⁿ, fⁿ, Pⁿ⁺¹, fⁿ⁺¹), which conserves mass.
pub struct AdaptiveTrBdf2<'a> {
    a: &'a Stencil9,
    nd: &'a NestedDissection,
    tol: Tolerance,
    cache: Vec<(u64, Factorization)>,
    f0: Vec<f64>,
    f_stage: Vec<f64>,
    f1: Vec<f64>,
    stage: Vec<f64>,
    next: Vec<f64>,
    est: Vec<f64>,
    /// Statistics so far.
    pub stats: AdaptiveStats,
}

impl<'a> AdaptiveTrBdf2<'a> {
    /// An adaptive stepper for dP/dt = A P with tolerances `tol`.
    pub fn new(a: &'a Stencil9, nd: &'a NestedDissection, tol: Tolerance) -> Self {
        let n = a.grid.len();
        Self {
            a,
            nd,
            tol,
            cache: Vec::new(),
            f0: vec![0.0; n],
            f_stage: vec![0.0; n],
            f1: vec![0.0; n],
            stage: vec![0.0; n],
            next: vec![0.0; n],
            est: vec![0.0; n],
            stats: AdaptiveStats {
                dt_min: f64::INFINITY,
                ..Default::default()
            },
        }
    }

    /// The factorisation of I − (γ/2)·h·A, from the cache or new.
    fn factor(&mut self, h: f64) -> Result<usize, SingularMatrix> {
        let key = h.to_bits();
        if let Some(i) = self.cache.iter().position(|(k, _)| *k == key) {
            return Ok(i);
        }
        let f = self
            .nd
            .factorize(&self.a.shifted_identity(0.5 * GAMMA * h))?;
        self.stats.factorizations += 1;
        if self.cache.len() == CACHED_FACTORS {
            // Evict the step size farthest (in ratio) from the new one.
            let far = (0..self.cache.len())
                .max_by(|&i, &j| {
                    let r = |k: usize| (f64::from_bits(self.cache[k].0) / h).ln().abs();
                    r(i).total_cmp(&r(j))
                })
                .unwrap_or(0);
            self.cache.swap_remove(far);
        }
        self.cache.push((key, f));
        Ok(self.cache.len() - 1)
    }

    /// One attempted step of size h from `p` (with f0 = A p already set): the candidate goes
    /// to `self.next`, f(candidate) to `self.f1`; returns the weighted RMS error estimate.
    fn attempt(&mut self, p: &[f64], h: f64) -> Result<f64, SingularMatrix> {
        let i = self.factor(h)?;
        let c = 0.5 * GAMMA * h;
        for ((s, &v), &f) in self.stage.iter_mut().zip(p).zip(&self.f0) {
            *s = v + c * f;
        }
        self.cache[i].1.solve_in_place(&mut self.stage);
        self.a.apply(&self.stage, &mut self.f_stage);
        let w = 1.0 / (GAMMA * (2.0 - GAMMA));
        let w_old = (1.0 - GAMMA) * (1.0 - GAMMA) * w;
        for ((nv, &s), &v) in self.next.iter_mut().zip(&self.stage).zip(p) {
            *nv = w * s - w_old * v;
        }
        self.cache[i].1.solve_in_place(&mut self.next);
        self.a.apply(&self.next, &mut self.f1);
        let (c0, cs, c1) = (
            1.0 / GAMMA,
            1.0 / (GAMMA * (1.0 - GAMMA)),
            1.0 / (1.0 - GAMMA),
        );
        let scale = 2.0 * LTE_C * h;
        for k in 0..p.len() {
            self.est[k] = scale * (c0 * self.f0[k] - cs * self.f_stage[k] + c1 * self.f1[k]);
        }
        self.cache[i].1.solve_in_place(&mut self.est);
        let Tolerance { rtol, atol } = self.tol;
        // L1 norms (the cell area cancels): the distance every comparison in flatscape reports.
        let est: f64 = self.est.iter().map(|e| e.abs()).sum();
        let size: f64 = p
            .iter()
            .zip(&self.next)
            .map(|(&a, &b)| a.abs().max(b.abs()))
            .sum();
        let area = self.a.grid.dx * self.a.grid.dy;
        Ok(est * area / (atol + rtol * size * area))
    }

    /// Integrate `p` over the interval (`t0`, `t_end`), first trying steps of `dt0`. After every accepted step
    /// `on_step(t, P)` is called; for every time in `stops` (ascending, within (t0, t_end]) on
    /// which a step does not land, `on_stop(t, P(t))` gets the interpolated density. Either
    /// callback returning `false` stops the run.
    pub fn integrate(
        &mut self,
        p: &mut [f64],
        (t0, t_end): (f64, f64),
        dt0: f64,
        stops: &[f64],
        on_step: &mut dyn FnMut(f64, &[f64]) -> bool,
        on_stop: &mut dyn FnMut(f64, &[f64]) -> bool,
    ) -> Result<AdaptiveStats, AdaptiveError> {
        let span = t_end - t0;
        let mut t = t0;
        let mut level: i32 = 0;
        let mut on_rung = 0usize;
        let mut stops = stops.iter().copied().filter(|&s| s > t0).peekable();
        let mut interp = vec![0.0; p.len()];
        self.a.apply(p, &mut self.f0);
        while t < t_end - 1e-12 * span {
            let rung = dt0 * 2f64.powi(level);
            let last = t + rung >= t_end - 1e-12 * span;
            let h = if last { t_end - t } else { rung };
            let err = self.attempt(p, h)?;
            if err.is_nan() || err > 1.0 {
                self.stats.rejected += 1;
                let q = if err.is_finite() {
                    0.9 * err.powf(-1.0 / 3.0)
                } else {
                    0.1
                };
                let down = (-q.log2()).ceil().max(1.0) as i32;
                level = level.min((h / dt0).log2().floor() as i32) - down;
                on_rung = 0;
                if dt0 * 2f64.powi(level) < 1e-12 * span {
                    return Err(AdaptiveError::StepTooSmall { dt: h, t });
                }
                continue;
            }
            // Accepted: interpolate the stops inside (t, t + h), then move on.
            let t_new = if last { t_end } else { t + h };
            while let Some(&s) = stops.peek() {
                if s > t_new + 1e-12 * span {
                    break;
                }
                let [h00, h10, h01, h11] = hermite_weights((s - t) / h);
                for k in 0..p.len() {
                    interp[k] = h00 * p[k]
                        + h10 * h * self.f0[k]
                        + h01 * self.next[k]
                        + h11 * h * self.f1[k];
                }
                if !on_stop(s, &interp) {
                    return Err(AdaptiveError::Stopped);
                }
                stops.next();
            }
            p.copy_from_slice(&self.next);
            std::mem::swap(&mut self.f0, &mut self.f1);
            t = t_new;
            self.stats.accepted += 1;
            self.stats.dt_min = self.stats.dt_min.min(h);
            self.stats.dt_max = self.stats.dt_max.max(h);
            if !on_step(t, p) {
                return Err(AdaptiveError::Stopped);
            }
            on_rung += 1;
            let q = 0.9 * err.max(1e-10).powf(-1.0 / 3.0);
            if !last && q >= 2.0 && on_rung >= 2 {
                level += (q.log2().floor() as i32).min(2);
                on_rung = 0;
            }
        }
        Ok(self.stats)
    }
}

/// Cubic Hermite weights [h00, h10, h01, h11] at u ∈ [0, 1]: the dense output between
/// (p0, f0) at t and (p1, f1) at t + h is h00·p0 + h10·h·f0 + h01·p1 + h11·h·f1.
pub fn hermite_weights(u: f64) -> [f64; 4] {
    let (u2, u3) = (u * u, u * u * u);
    [
        2.0 * u3 - 3.0 * u2 + 1.0,
        u3 - 2.0 * u2 + u,
        -2.0 * u3 + 3.0 * u2,
        u3 - u2,
    ]
}
