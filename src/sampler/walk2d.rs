//! 2-D walkers on the valley of Eq. (8) or an expression loss, `LANES` walkers in lock-step.
//!
//! Layout: structure of arrays — x\[lane\], y\[lane\], one xoshiro stream per lane — so every
//! per-step loop runs over `LANES` independent walkers and vectorises. The step itself is
//! a `Rule2d`; bookkeeping (divergence, records, averages, histograms) stays out of the
//! arithmetic and mostly behind rarely-taken branches.

// Kernels index several arrays with one lane / coordinate index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use crate::landscape::expr::ExprLoss;
use crate::landscape::{Loss2d, Valley2d};
use crate::noise::Mat2;

use super::observe::{
    BatchOut, Extremes, HIST_STRIDE, Hist, Plan, TS_ABS_X, TS_COLS, TS_FLATNESS, TS_FLATNESS_HAT,
    TS_LOSS, TS_X, TS_Y_SQ, TsAcc, WalkerOut, push_traced, traced_walkers,
};
use super::rng::{LANES, LaneRng, Lanes, stream_key};

/// Polynomial coefficients of λ, λ'/(2x) and λ''/2 in powers of x² (for lane-wise Horner;
/// the halves are exact and save a multiply in ∂xL = ελ0 x + ½λ' y² and H11 = ελ0 + ½λ'' y²).
#[derive(Debug, Clone)]
pub(crate) struct V2 {
    pub valley: Valley2d,
    lam: Vec<f64>,
    half_d1: Vec<f64>,
    half_d2: Vec<f64>,
    eps_l0: f64,
}

impl V2 {
    pub fn new(valley: &Valley2d) -> Self {
        let lam = valley.lambda.clone();
        let half_d1 = (1..lam.len()).map(|n| n as f64 * lam[n]).collect();
        let half_d2 = (1..lam.len())
            .map(|n| n as f64 * (2.0 * n as f64 - 1.0) * lam[n])
            .collect();
        Self {
            valley: valley.clone(),
            lam,
            half_d1,
            half_d2,
            eps_l0: valley.epsilon * valley.lambda0(),
        }
    }
}

/// A 2-D loss evaluated lane-wise: what the update rules need of a landscape.
pub(crate) trait LaneLoss: Sync {
    /// Per-batch scratch space (the expression's registers; nothing for the valley).
    type Work;
    /// Fresh scratch space.
    fn work(&self) -> Self::Work;
    /// ∇L at (x, y), lane-wise.
    fn gradient(&self, w: &mut Self::Work, x: &Lanes, y: &Lanes) -> (Lanes, Lanes);
    /// (∂xL, ∂yL, H11, H12, H22) at (x, y), lane-wise.
    fn gradient_hessian(&self, w: &mut Self::Work, x: &Lanes, y: &Lanes) -> [Lanes; 5];
    /// L at one point.
    fn loss(&self, x: f64, y: f64) -> f64;
    /// Flatness F at one point (Eq. 6).
    fn flatness(&self, x: f64, y: f64) -> f64;
}

impl LaneLoss for V2 {
    type Work = ();
    fn work(&self) {}
    #[inline(always)]
    fn gradient(&self, _w: &mut (), x: &Lanes, y: &Lanes) -> (Lanes, Lanes) {
        gradient(self, x, y)
    }
    #[inline(always)]
    fn gradient_hessian(&self, _w: &mut (), x: &Lanes, y: &Lanes) -> [Lanes; 5] {
        gradient_hessian(self, x, y)
    }
    #[inline(always)]
    fn loss(&self, x: f64, y: f64) -> f64 {
        self.valley.loss(x, y)
    }
    #[inline(always)]
    fn flatness(&self, x: f64, _y: f64) -> f64 {
        self.valley.flatness(x)
    }
}

impl LaneLoss for ExprLoss {
    type Work = Vec<Lanes>;
    fn work(&self) -> Vec<Lanes> {
        Vec::new()
    }
    #[inline(always)]
    fn gradient(&self, w: &mut Vec<Lanes>, x: &Lanes, y: &Lanes) -> (Lanes, Lanes) {
        let j = self.eval_lanes::<LANES, 3>(x, y, w);
        (j[1], j[2])
    }
    #[inline(always)]
    fn gradient_hessian(&self, w: &mut Vec<Lanes>, x: &Lanes, y: &Lanes) -> [Lanes; 5] {
        let j = self.eval_lanes::<LANES, 6>(x, y, w);
        [j[1], j[2], j[3], j[4], j[5]]
    }
    #[inline(always)]
    fn loss(&self, x: f64, y: f64) -> f64 {
        Loss2d::loss(self, x, y)
    }
    #[inline(always)]
    fn flatness(&self, x: f64, y: f64) -> f64 {
        Loss2d::flatness(self, x, y)
    }
}

#[inline(always)]
fn horner(c: &[f64], x2: &Lanes) -> Lanes {
    let Some((&top, rest)) = c.split_last() else {
        return [0.0; LANES];
    };
    let mut acc: Lanes = [top; LANES];
    for &ck in rest.iter().rev() {
        for l in 0..LANES {
            acc[l] = acc[l].mul_add(x2[l], ck);
        }
    }
    acc
}

#[inline(always)]
fn squares(x: &Lanes) -> Lanes {
    std::array::from_fn(|l| x[l] * x[l])
}

/// ∇L at (x, y), lane-wise: ∂xL = ελ0 x + (½λ' y) y, ∂yL = λ y.
#[inline(always)]
fn gradient(v: &V2, x: &Lanes, y: &Lanes) -> (Lanes, Lanes) {
    let x2 = squares(x);
    let lam = horner(&v.lam, &x2);
    let hd1 = horner(&v.half_d1, &x2);
    let mut gx = [0.0; LANES];
    let mut gy = [0.0; LANES];
    for l in 0..LANES {
        let half_h12 = hd1[l] * x[l] * y[l];
        gx[l] = half_h12.mul_add(y[l], v.eps_l0 * x[l]);
        gy[l] = lam[l] * y[l];
    }
    (gx, gy)
}

/// ∇L and the Hessian entries (h11, h12; h22 = λ) at (x, y), lane-wise: (gx, gy, h11, h12, λ),
/// with h12 = λ' y and h11 = ελ0 + ½λ'' y².
#[inline(always)]
fn gradient_hessian(v: &V2, x: &Lanes, y: &Lanes) -> [Lanes; 5] {
    let x2 = squares(x);
    let lam = horner(&v.lam, &x2);
    let hd1 = horner(&v.half_d1, &x2);
    let hd2 = horner(&v.half_d2, &x2);
    let mut out = [[0.0; LANES]; 5];
    for l in 0..LANES {
        let (xl, yl) = (x[l], y[l]);
        let half_h12 = hd1[l] * xl * yl;
        out[0][l] = half_h12.mul_add(yl, v.eps_l0 * xl);
        out[1][l] = lam[l] * yl;
        out[2][l] = hd2[l].mul_add(yl * yl, v.eps_l0);
        out[3][l] = half_h12 + half_h12;
    }
    out[4] = lam;
    out
}

/// One update rule of docs/reference.md §4.1 on the 2-D valley.
pub(crate) trait Rule2d: Sync {
    /// Whether the rule consumes Gaussian numbers.
    const NOISY: bool;
    /// Advance every lane by one step with standard normals (n1, n2).
    fn step<M: LaneLoss>(
        &self,
        v: &M,
        w: &mut M::Work,
        x: &mut Lanes,
        y: &mut Lanes,
        n1: &Lanes,
        n2: &Lanes,
    );
}

/// θ ← θ − dt ∇L + scale · H ξ. `sgd` (dt = η, scale = η√(2σ), Eq. 7) and `langevin` with
/// Hessian noise γ = 2 (scale = √(2 Δ_S dt); H ξ has covariance H², like √(H²) ξ).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HessLin {
    pub dt: f64,
    pub scale: f64,
}

impl Rule2d for HessLin {
    const NOISY: bool = true;
    #[inline(always)]
    fn step<M: LaneLoss>(
        &self,
        v: &M,
        w: &mut M::Work,
        x: &mut Lanes,
        y: &mut Lanes,
        n1: &Lanes,
        n2: &Lanes,
    ) {
        let [gx, gy, h11, h12, lam] = v.gradient_hessian(w, x, y);
        let minus_dt = -self.dt;
        for l in 0..LANES {
            let (m1, m2) = (self.scale * n1[l], self.scale * n2[l]);
            x[l] = h11[l].mul_add(m1, h12[l].mul_add(m2, minus_dt.mul_add(gx[l], x[l])));
            y[l] = h12[l].mul_add(m1, lam[l].mul_add(m2, minus_dt.mul_add(gy[l], y[l])));
        }
    }
}

/// θ ← θ − dt ∇L + scale · |H|^p ξ: `sgd` with `power` γ ≠ 2 (p = γ/2, scale = η√(2σ)) and
/// `langevin` with Hessian noise of any γ (scale = √(2 Δ_S dt)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HessPow {
    pub dt: f64,
    pub scale: f64,
    pub half_power: f64,
}

impl Rule2d for HessPow {
    const NOISY: bool = true;
    #[inline(always)]
    fn step<M: LaneLoss>(
        &self,
        v: &M,
        w: &mut M::Work,
        x: &mut Lanes,
        y: &mut Lanes,
        n1: &Lanes,
        n2: &Lanes,
    ) {
        let [gx, gy, h11, h12, lam] = v.gradient_hessian(w, x, y);
        for l in 0..LANES {
            let h: Mat2 = [[h11[l], h12[l]], [h12[l], lam[l]]];
            let m = crate::noise::sym_abs_pow(h, self.half_power);
            let (a, b) = (self.scale * n1[l], self.scale * n2[l]);
            x[l] = x[l] - self.dt * gx[l] + (m[0][0] * a + m[0][1] * b);
            y[l] = y[l] - self.dt * gy[l] + (m[1][0] * a + m[1][1] * b);
        }
    }
}

/// θ ← θ − dt ∇L + B ξ with a constant B: `gld` (dt = η, B = √(2ηT) I) and `langevin` with a
/// constant D (B = (2 D dt)^{1/2}, the symmetric square root).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConstNoise {
    pub dt: f64,
    pub b: Mat2,
}

impl Rule2d for ConstNoise {
    const NOISY: bool = true;
    #[inline(always)]
    fn step<M: LaneLoss>(
        &self,
        v: &M,
        w: &mut M::Work,
        x: &mut Lanes,
        y: &mut Lanes,
        n1: &Lanes,
        n2: &Lanes,
    ) {
        let (gx, gy) = v.gradient(w, x, y);
        let b = self.b;
        for l in 0..LANES {
            x[l] = x[l] - self.dt * gx[l] + (b[0][0] * n1[l] + b[0][1] * n2[l]);
            y[l] = y[l] - self.dt * gy[l] + (b[1][0] * n1[l] + b[1][1] * n2[l]);
        }
    }
}

/// θ ← θ − η ∇L(θ − μ), μ = √(2σ) ξ: `sgd-exact-shift`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExactShift {
    pub eta: f64,
    pub s: f64,
}

impl Rule2d for ExactShift {
    const NOISY: bool = true;
    #[inline(always)]
    fn step<M: LaneLoss>(
        &self,
        v: &M,
        w: &mut M::Work,
        x: &mut Lanes,
        y: &mut Lanes,
        n1: &Lanes,
        n2: &Lanes,
    ) {
        let xs: Lanes = std::array::from_fn(|l| x[l] - self.s * n1[l]);
        let ys: Lanes = std::array::from_fn(|l| y[l] - self.s * n2[l]);
        let (gx, gy) = v.gradient(w, &xs, &ys);
        for l in 0..LANES {
            x[l] -= self.eta * gx[l];
            y[l] -= self.eta * gy[l];
        }
    }
}

/// θ ← θ − η ∇L: `gd`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gd {
    pub eta: f64,
}

impl Rule2d for Gd {
    const NOISY: bool = false;
    #[inline(always)]
    fn step<M: LaneLoss>(
        &self,
        v: &M,
        w: &mut M::Work,
        x: &mut Lanes,
        y: &mut Lanes,
        _n1: &Lanes,
        _n2: &Lanes,
    ) {
        let (gx, gy) = v.gradient(w, x, y);
        for l in 0..LANES {
            x[l] -= self.eta * gx[l];
            y[l] -= self.eta * gy[l];
        }
    }
}

/// Whether |θ|² = `r2` is beyond the divergence radius or not a number (one comparison: it
/// is false for NaN, so its negation catches both).
// The negated comparison is the point: it is one vector compare and catches NaN.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
#[inline(always)]
pub(crate) fn outside(r2: f64, radius_sq: f64) -> bool {
    !(r2 <= radius_sq)
}

/// Run batch `batch` (walkers batch·LANES … +LANES−1) from `start`.
#[inline(always)]
pub(crate) fn run_batch<R: Rule2d, M: LaneLoss>(
    rule: &R,
    v: &M,
    plan: &Plan,
    start: [f64; 2],
    batch: usize,
) -> BatchOut {
    let first = batch * LANES;
    let active: [bool; LANES] = std::array::from_fn(|l| first + l < plan.walkers);
    let mut rng = LaneRng::new(std::array::from_fn(|l| {
        stream_key(plan.seed, (first + l) as u64, 0)
    }));
    let mut x: Lanes = [start[0]; LANES];
    let mut y: Lanes = [start[1]; LANES];
    let mut n1: Lanes = [0.0; LANES];
    let mut n2: Lanes = [0.0; LANES];
    let mut alive = active;
    let mut diverged_at: [Option<usize>; LANES] = [None; LANES];
    let mut ext: Vec<Extremes> = (0..LANES).map(|_| Extremes::default()).collect();
    for e in ext.iter_mut() {
        e.reset(start[0], plan.steps);
    }
    let mut lo: Lanes = [start[0]; LANES];
    let mut hi: Lanes = [start[0]; LANES];
    let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (
        [0.0; LANES],
        [0.0; LANES],
        [0.0; LANES],
        [0.0; LANES],
        [0.0; LANES],
    );
    let mut slr = [0.0; LANES];
    let mut ts = TsAcc::new(plan.record_steps.len());
    let mut hist = Hist::new(&plan.grid);
    let mut trajectories = traced_walkers(&active, first, plan.traj_walkers, start);

    let record = |ts: &mut TsAcc, idx: usize, x: &Lanes, y: &Lanes, alive: &[bool; LANES]| {
        for l in 0..LANES {
            if alive[l] {
                let f = v.flatness(x[l], y[l]);
                let row: [f64; TS_COLS] = {
                    let mut r = [0.0; TS_COLS];
                    r[TS_FLATNESS] = f;
                    r[TS_FLATNESS_HAT] = f;
                    r[TS_LOSS] = v.loss(x[l], y[l]);
                    r[TS_X] = x[l];
                    r[TS_ABS_X] = x[l].abs();
                    r[TS_Y_SQ] = y[l] * y[l];
                    r
                };
                ts.add(idx, row);
            }
        }
    };
    record(&mut ts, 0, &x, &y, &alive);
    let mut work = v.work();
    let mut next_rec = 1;
    let mut hist_countdown = HIST_STRIDE;

    for k in 1..=plan.steps {
        if plan.stop_at(k) {
            break;
        }
        if R::NOISY {
            rng.normals(&mut n1, &mut n2);
        }
        rule.step(v, &mut work, &mut x, &mut y, &n1, &n2);

        // Divergence: |θ|² > R² or not finite (the comparison is false for NaN).
        let mut bad = false;
        for l in 0..LANES {
            bad |= outside(x[l].mul_add(x[l], y[l] * y[l]), plan.radius_sq);
        }
        if bad {
            for l in 0..LANES {
                if outside(x[l].mul_add(x[l], y[l] * y[l]), plan.radius_sq) {
                    if alive[l] {
                        alive[l] = false;
                        diverged_at[l] = Some(k);
                    }
                    // Park the lane at the start so it keeps computing harmless numbers.
                    x[l] = start[0];
                    y[l] = start[1];
                }
            }
            if !alive.iter().any(|&a| a) {
                break;
            }
        }

        // New extremes of x (for the search time).
        let mut rec = false;
        for l in 0..LANES {
            rec |= (x[l] < lo[l]) | (x[l] > hi[l]);
        }
        if rec {
            // Visit only the lanes with a record (a bit mask, not a data-dependent branch per
            // lane: with 32 lanes some lane sets a record on many steps).
            let mut mask = 0u32;
            for l in 0..LANES {
                mask |= u32::from(alive[l] & ((x[l] < lo[l]) | (x[l] > hi[l]))) << l;
            }
            while mask != 0 {
                let l = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                ext[l].observe(k, x[l]);
                lo[l] = lo[l].min(x[l]);
                hi[l] = hi[l].max(x[l]);
            }
        }

        if k > plan.burn_in {
            for l in 0..LANES {
                sx[l] += x[l];
                sy[l] += y[l];
                sxx[l] = x[l].mul_add(x[l], sxx[l]);
                sxy[l] = x[l].mul_add(y[l], sxy[l]);
                syy[l] = y[l].mul_add(y[l], syy[l]);
            }
            // ln(x/y)² on every `log_ratio_stride`-th post-burn-in step (off: stride 0).
            if plan.log_ratio_stride > 0 && (k - plan.burn_in).is_multiple_of(plan.log_ratio_stride)
            {
                for l in 0..LANES {
                    let r = (x[l] / y[l]).abs().ln();
                    slr[l] += r * r;
                }
            }
            if plan.grid.is_some() {
                hist_countdown -= 1;
                if hist_countdown == 0 {
                    hist_countdown = HIST_STRIDE;
                    hist.add_lanes(&x, &y, &alive);
                }
            }
        }
        if next_rec < plan.record_steps.len() && plan.record_steps[next_rec] == k {
            record(&mut ts, next_rec, &x, &y, &alive);
            next_rec += 1;
        }
        if !trajectories.is_empty() && k % plan.traj_stride == 0 {
            push_traced(&mut trajectories, first, &alive, |l| [x[l], y[l]]);
        }
    }

    let n = plan.averaged() as f64;
    let walkers = (0..LANES)
        .filter(|&l| active[l])
        .map(|l| {
            if let Some(k) = diverged_at[l] {
                return WalkerOut::diverged(k);
            }
            let xm = sx[l] / n;
            let f = v.flatness(xm, sy[l] / n);
            WalkerOut {
                diverged_at: None,
                x_abs: xm.abs(),
                flatness: f,
                flatness_hat: f,
                mean: [xm, sy[l] / n],
                m2: [sxx[l] / n, sxy[l] / n, syy[l] / n],
                y_sq: syy[l] / n,
                search_step: ext[l].first_passage(xm),
                log_ratio_sq: (plan.log_ratio_stride > 0)
                    .then(|| slr[l] / plan.log_ratio_samples() as f64),
            }
        })
        .collect();
    BatchOut {
        walkers,
        ts,
        hist,
        trajectories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of every rule against [`Valley2d::grad`] and [`Valley2d::hessian`].
    #[test]
    fn steps_match_the_reference_gradient_and_hessian() {
        let valley = Valley2d {
            epsilon: 0.01,
            lambda: vec![8.0, -2.0, 1.0, 0.1],
        };
        let v = V2::new(&valley);
        let x0: Lanes = std::array::from_fn(|l| -1.3 + 0.09 * l as f64);
        let y0: Lanes = std::array::from_fn(|l| 0.4 - 0.03 * l as f64);
        let n1: Lanes = std::array::from_fn(|l| ((l * 7 % 5) as f64 - 2.0) / 2.0);
        let n2: Lanes = std::array::from_fn(|l| ((l * 3 % 7) as f64 - 3.0) / 3.0);
        let (dt, scale) = (0.01, 0.02);
        let check =
            |name: &str, rule: &dyn Fn(&mut Lanes, &mut Lanes), f: &dyn Fn(usize) -> [f64; 2]| {
                let (mut x, mut y) = (x0, y0);
                rule(&mut x, &mut y);
                for l in 0..LANES {
                    let e = f(l);
                    assert!(
                        (x[l] - e[0]).abs() < 1e-13 && (y[l] - e[1]).abs() < 1e-13,
                        "{name} lane {l}"
                    );
                }
            };
        let g = |l: usize| valley.grad(x0[l], y0[l]);
        let h = |l: usize| valley.hessian(x0[l], y0[l]);
        check(
            "HessLin",
            &|x, y| HessLin { dt, scale }.step(&v, &mut (), x, y, &n1, &n2),
            &|l| {
                let (g, h) = (g(l), h(l));
                [
                    x0[l] - dt * g[0] + scale * (h[0][0] * n1[l] + h[0][1] * n2[l]),
                    y0[l] - dt * g[1] + scale * (h[1][0] * n1[l] + h[1][1] * n2[l]),
                ]
            },
        );
        check(
            "HessPow",
            &|x, y| {
                HessPow {
                    dt,
                    scale,
                    half_power: 0.5,
                }
                .step(&v, &mut (), x, y, &n1, &n2)
            },
            &|l| {
                let (g, m) = (g(l), crate::noise::sym_abs_pow(h(l), 0.5));
                [
                    x0[l] - dt * g[0] + scale * (m[0][0] * n1[l] + m[0][1] * n2[l]),
                    y0[l] - dt * g[1] + scale * (m[1][0] * n1[l] + m[1][1] * n2[l]),
                ]
            },
        );
        let b = [[0.3, 0.1], [0.1, 0.2]];
        check(
            "ConstNoise",
            &|x, y| ConstNoise { dt, b }.step(&v, &mut (), x, y, &n1, &n2),
            &|l| {
                let g = g(l);
                [
                    x0[l] - dt * g[0] + b[0][0] * n1[l] + b[0][1] * n2[l],
                    y0[l] - dt * g[1] + b[1][0] * n1[l] + b[1][1] * n2[l],
                ]
            },
        );
        check(
            "ExactShift",
            &|x, y| ExactShift { eta: dt, s: scale }.step(&v, &mut (), x, y, &n1, &n2),
            &|l| {
                let g = valley.grad(x0[l] - scale * n1[l], y0[l] - scale * n2[l]);
                [x0[l] - dt * g[0], y0[l] - dt * g[1]]
            },
        );
        check(
            "Gd",
            &|x, y| Gd { eta: dt }.step(&v, &mut (), x, y, &n1, &n2),
            &|l| {
                let g = g(l);
                [x0[l] - dt * g[0], y0[l] - dt * g[1]]
            },
        );
    }
}
