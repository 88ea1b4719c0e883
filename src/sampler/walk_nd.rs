//! Walkers on the N-D valley of Eq. (5), `W` walkers in lock-step.
//!
//! Layout: structure of arrays — every coordinate is one row `[f64; W]` holding that
//! coordinate of the W walkers of a batch — so every loop body is one lane-wide operation and
//! the sums over i (Σ_i b_ij y_i²) and over j (λ^{(i)} = floor + Σ_j b_ij s_j²) are vertical
//! adds, with no horizontal reductions. x is `x[j]` (N_F rows), y is `y[i]` (N_S rows, padded
//! with zero rows to whole blocks), the normals `xi` are rows 0..N_F for x, then N_F.. for y.
//! The b table is transposed into blocks of `IB` sharp directions,
//! `bt[(blk·N_F + j)·IB + ii] = b_{blk·IB + ii, j}` (zero in padded rows), so a step is one
//! sweep over j per block with the block's λ and Σ_j b_ij (…) accumulators in registers.
//! A step costs O(N_S·N_F) and no matrix is formed (H·ξ uses the block structure of H).
//!
//! Random streams: lane l of the batch's 32-lane generator belongs to walker l mod W
//! (sub-stream l div W, keyed by (seed, walker, sub-stream)), so one Box–Muller call yields
//! 2·LANES/W rows of normals; rows left over at the end of a step start the next one, so a
//! step draws exactly N_F + N_S normals per walker.
//!
//! Search observable: z = Σ_i ln λ^{(i)}(x) (= −2 N_S ln F); t_s is the first step at which z
//! reaches its own post-burn-in time average coming from the start.

// Kernels index several arrays with one lane / coordinate index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use crate::landscape::valley_nd::{ValleyNd, flatness_from_lambdas, flatness_hat_from_lambdas};

use super::observe::{
    BatchOut, Extremes, Hist, Plan, TS_ABS_X, TS_COLS, TS_FLATNESS, TS_FLATNESS_HAT, TS_LOSS, TS_X,
    TS_Y_SQ, TsAcc, WalkerOut, push_traced, traced_walkers,
};
use super::rng::{LANES, LaneRng, stream_key};

/// Walkers advanced in lock-step (one AVX-512 register of f64).
pub const W: usize = 8;
/// One value per walker of a batch.
type Row = [f64; W];
/// Rows of normals one Box–Muller call yields.
const ROWS_PER_DRAW: usize = 2 * LANES / W;
/// Largest block of sharp directions whose accumulators stay in registers.
const MAX_BLOCK: usize = 8;

/// The update rules of docs/reference.md §4.1 on the N-D valley.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RuleNd {
    /// θ ← θ − dt ∇L + scale · H ξ (`sgd`, `langevin` with Hessian noise γ = 2).
    HessLin { dt: f64, scale: f64 },
    /// θ ← θ − dt ∇L + scale · ξ (`gld`, `langevin` with isotropic noise).
    Iso { dt: f64, scale: f64 },
    /// θ ← θ − η ∇L(θ − s ξ) (`sgd-exact-shift`).
    ExactShift { eta: f64, s: f64 },
    /// θ ← θ − η ∇L (`gd`).
    Gd { eta: f64 },
}

/// Lane-wise a·b + c (one rounding).
#[inline(always)]
fn fma(a: Row, b: Row, c: Row) -> Row {
    lanes(|l| a[l].mul_add(b[l], c[l]))
}

/// Lane-wise a·b.
#[inline(always)]
fn mul(a: Row, b: Row) -> Row {
    lanes(|l| a[l] * b[l])
}

/// Lane-wise a + b.
#[inline(always)]
fn add(a: Row, b: Row) -> Row {
    lanes(|l| a[l] + b[l])
}

/// The row with lane l = f(l); a plain loop (`std::array::from_fn` may stay out of line,
/// losing the caller's vector instructions).
#[inline(always)]
fn lanes(f: impl Fn(usize) -> f64) -> Row {
    let mut out = [0.0; W];
    for l in 0..W {
        out[l] = f(l);
    }
    out
}

/// The same value in every lane.
#[inline(always)]
fn splat(a: f64) -> Row {
    [a; W]
}

/// One update rule, written for one coordinate of the W walkers at once.
///
/// With s_j = x_j² − r_j², λ^{(i)} = floor_i + Σ_j b_ij s_j² (Eq. 5),
/// ∂_{x_j} L = ε λ̄0 x_j + 2 x_j s_j Σ_i b_ij y_i², ∂_{y_i} L = λ^{(i)} y_i.
trait StepNd: Copy {
    /// Draws normals.
    const NOISY: bool;
    /// Needs the second sum C_i = Σ_j b_ij c_j.
    const TWO_SUMS: bool;
    /// Needs Y2_j = Σ_i b_ij w2_i.
    const Y2: bool;
    /// (w1_i, w2_i) of sharp direction i: x_j's update sees Y1_j = Σ_i b_ij w1_i and Y2_j
    /// (default: the gradient's y_i² only).
    #[inline(always)]
    fn weights(self, y: Row, _xi: Row) -> (Row, Row) {
        (mul(y, y), splat(0.0))
    }
    /// (a_j, c_j): λ^{(i)}(x) = floor_i + Σ_j b_ij a_j and C_i = Σ_j b_ij c_j (default: λ only).
    #[inline(always)]
    fn terms(self, x: Row, _xi: Row, r2: f64) -> (Row, Row) {
        let s = fma(x, x, splat(-r2));
        (mul(s, s), splat(0.0))
    }
    /// x_j after the step.
    fn flat(self, el0: f64, x: Row, xi: Row, r2: f64, y1: Row, y2: Row) -> Row;
    /// y_i after the step, from λ^{(i)}(x), C_i and floor_i.
    fn sharp(self, y: Row, xi: Row, lam: Row, c: Row, floor: f64) -> Row;
}

/// θ ← θ − dt ∇L + scale · H ξ, with
/// (Hξ)_j = (ε λ̄0 + 2(3x_j² − r_j²) Y1_j) ξ_j + 4 x_j s_j Σ_i b_ij y_i ξ_i,
/// (Hξ)_i = 4 y_i Σ_j b_ij x_j s_j ξ_j + λ^{(i)} ξ_i.
#[derive(Clone, Copy)]
struct HessLin {
    dt: f64,
    scale: f64,
}

impl StepNd for HessLin {
    const NOISY: bool = true;
    const TWO_SUMS: bool = true;
    const Y2: bool = true;
    #[inline(always)]
    fn weights(self, y: Row, xi: Row) -> (Row, Row) {
        (mul(y, y), mul(y, xi))
    }
    #[inline(always)]
    fn terms(self, x: Row, xi: Row, r2: f64) -> (Row, Row) {
        let s = fma(x, x, splat(-r2));
        (mul(s, s), mul(mul(x, s), xi))
    }
    #[inline(always)]
    fn flat(self, el0: f64, x: Row, xi: Row, r2: f64, y1: Row, y2: Row) -> Row {
        // x − dt (ε λ̄0 x + 2 p Y1) + scale ((ε λ̄0 + 2 (3x² − r²) Y1) ξ + 4 p Y2), p = x s,
        // regrouped as c1 x + p (c2 Y1 + c3 Y2) + ξ (c4 + c5 (3x² − r²) Y1).
        let (dt, scale) = (self.dt, self.scale);
        let (c1, c2, c3, c4, c5) = (
            1.0 - dt * el0,
            -2.0 * dt,
            4.0 * scale,
            scale * el0,
            2.0 * scale,
        );
        lanes(|l| {
            let (x, xi, y1, y2) = (x[l], xi[l], y1[l], y2[l]);
            let s = x.mul_add(x, -r2);
            let p = x * s;
            let u = c3.mul_add(y2, c2 * y1);
            let t3 = (x + x).mul_add(x, s);
            let v = (c5 * t3).mul_add(y1, c4);
            p.mul_add(u, c1.mul_add(x, v * xi))
        })
    }
    #[inline(always)]
    fn sharp(self, y: Row, xi: Row, lam: Row, c: Row, _floor: f64) -> Row {
        lanes(|l| {
            let hy = (4.0 * y[l]).mul_add(c[l], lam[l] * xi[l]);
            self.scale
                .mul_add(hy, (-self.dt * lam[l]).mul_add(y[l], y[l]))
        })
    }
}

/// θ ← θ − dt ∇L + scale · ξ.
#[derive(Clone, Copy)]
struct Iso {
    dt: f64,
    scale: f64,
}

impl StepNd for Iso {
    const NOISY: bool = true;
    const TWO_SUMS: bool = false;
    const Y2: bool = false;
    #[inline(always)]
    fn flat(self, el0: f64, x: Row, xi: Row, r2: f64, y1: Row, _y2: Row) -> Row {
        // x − dt (ε λ̄0 x + 2 x s Y1) + scale ξ = (1 − dt ε λ̄0) x − 2 dt x s Y1 + scale ξ.
        let (c1, c2) = (1.0 - self.dt * el0, -2.0 * self.dt);
        lanes(|l| {
            let s = x[l].mul_add(x[l], -r2);
            (x[l] * s).mul_add(c2 * y1[l], c1.mul_add(x[l], self.scale * xi[l]))
        })
    }
    #[inline(always)]
    fn sharp(self, y: Row, xi: Row, lam: Row, _c: Row, _floor: f64) -> Row {
        lanes(|l| {
            self.scale
                .mul_add(xi[l], (-self.dt * lam[l]).mul_add(y[l], y[l]))
        })
    }
}

/// θ ← θ − η ∇L.
#[derive(Clone, Copy)]
struct Gd {
    eta: f64,
}

impl StepNd for Gd {
    const NOISY: bool = false;
    const TWO_SUMS: bool = false;
    const Y2: bool = false;
    #[inline(always)]
    fn flat(self, el0: f64, x: Row, _xi: Row, r2: f64, y1: Row, _y2: Row) -> Row {
        lanes(|l| {
            let s = x[l].mul_add(x[l], -r2);
            let gx = (2.0 * x[l] * s).mul_add(y1[l], el0 * x[l]);
            (-self.eta).mul_add(gx, x[l])
        })
    }
    #[inline(always)]
    fn sharp(self, y: Row, _xi: Row, lam: Row, _c: Row, _floor: f64) -> Row {
        lanes(|l| (-self.eta * lam[l]).mul_add(y[l], y[l]))
    }
}

/// θ ← θ − η ∇L(θ − s ξ): C_i = Σ_j b_ij s̃_j² is λ^{(i)} − floor_i at the shifted point.
#[derive(Clone, Copy)]
struct ExactShift {
    eta: f64,
    s: f64,
}

impl StepNd for ExactShift {
    const NOISY: bool = true;
    const TWO_SUMS: bool = true;
    const Y2: bool = false;
    #[inline(always)]
    fn weights(self, y: Row, xi: Row) -> (Row, Row) {
        let ye = fma(splat(-self.s), xi, y);
        (mul(ye, ye), splat(0.0))
    }
    #[inline(always)]
    fn terms(self, x: Row, xi: Row, r2: f64) -> (Row, Row) {
        let s0 = fma(x, x, splat(-r2));
        let xe = fma(splat(-self.s), xi, x);
        let se = fma(xe, xe, splat(-r2));
        (mul(s0, s0), mul(se, se))
    }
    #[inline(always)]
    fn flat(self, el0: f64, x: Row, xi: Row, r2: f64, y1: Row, _y2: Row) -> Row {
        lanes(|l| {
            let xe = (-self.s).mul_add(xi[l], x[l]);
            let se = xe.mul_add(xe, -r2);
            let gx = (2.0 * xe * se).mul_add(y1[l], el0 * xe);
            (-self.eta).mul_add(gx, x[l])
        })
    }
    #[inline(always)]
    fn sharp(self, y: Row, xi: Row, _lam: Row, c: Row, floor: f64) -> Row {
        lanes(|l| {
            let ye = (-self.s).mul_add(xi[l], y[l]);
            (-self.eta * (floor + c[l])).mul_add(ye, y[l])
        })
    }
}

/// The valley's coefficients in the blocked layout of the module comment.
struct Tables {
    n_f: usize,
    n_s: usize,
    /// Sharp directions per block (`n_s` if at most MAX_BLOCK, else MAX_BLOCK).
    block: usize,
    /// Number of blocks.
    blocks: usize,
    r2: Vec<f64>,
    bt: Vec<f64>,
    /// floor_i = (1 − d) λ0^{(i)}, zero in padded rows.
    floor: Vec<f64>,
    el0: f64,
}

impl Tables {
    fn new(v: &ValleyNd) -> Self {
        let (n_f, n_s) = (v.n_f, v.n_s);
        let block = n_s.min(MAX_BLOCK);
        let blocks = n_s.div_ceil(block);
        let mut bt = vec![0.0; blocks * block * n_f];
        for i in 0..n_s {
            let (blk, ii) = (i / block, i % block);
            for (j, &b) in v.b_row(i).iter().enumerate() {
                bt[(blk * n_f + j) * block + ii] = b;
            }
        }
        let mut floor = vec![0.0; blocks * block];
        floor[..n_s].copy_from_slice(&v.lambda_floor);
        Self {
            n_f,
            n_s,
            block,
            blocks,
            r2: v.x_flat.iter().map(|r| r * r).collect(),
            bt,
            floor,
            el0: v.eps_lambda0(),
        }
    }

    /// Rows of y (N_S padded to whole blocks).
    fn y_rows(&self) -> usize {
        self.blocks * self.block
    }
}

/// The lock-step state of one batch.
struct State {
    x: Vec<Row>,
    y: Vec<Row>,
    /// Normals: N_F rows for x, then the padded y rows (padding stays zero).
    xi: Vec<Row>,
    /// λ^{(i)}(x) of the state before the last step.
    lam: Vec<Row>,
    /// C_i of the last step.
    c: Vec<Row>,
    /// Partial Y1_j, Y2_j over the blocks done so far.
    y1: Vec<Row>,
    y2: Vec<Row>,
    /// |θ|² after the last step.
    norm: Row,
}

impl State {
    fn new(t: &Tables, start: &[f64]) -> Self {
        let (n_f, n_s) = (t.n_f, t.n_s);
        let mut y = vec![[0.0; W]; t.y_rows()];
        for i in 0..n_s {
            y[i] = [start[n_f + i]; W];
        }
        Self {
            x: (0..n_f).map(|j| [start[j]; W]).collect(),
            y,
            xi: vec![[0.0; W]; n_f + t.y_rows()],
            lam: vec![[0.0; W]; t.y_rows()],
            c: vec![[0.0; W]; t.y_rows()],
            y1: vec![[0.0; W]; if t.blocks > 1 { n_f } else { 0 }],
            y2: vec![[0.0; W]; if t.blocks > 1 { n_f } else { 0 }],
            norm: [0.0; W],
        }
    }
}

/// One sweep over j for block `blk` of `IB` sharp directions: accumulates λ and C of the
/// block, and Y1_j, Y2_j over the blocks so far; the `last` block also moves x and sums |x|².
#[inline(always)]
fn sweep<R: StepNd, const IB: usize>(
    rule: R,
    t: &Tables,
    st: &mut State,
    blk: usize,
    first: bool,
    last: bool,
) {
    let n_f = t.n_f;
    let i0 = blk * IB;
    let mut w1 = [[0.0; W]; IB];
    let mut w2 = [[0.0; W]; IB];
    for ii in 0..IB {
        (w1[ii], w2[ii]) = rule.weights(st.y[i0 + ii], st.xi[n_f + i0 + ii]);
    }
    let mut acc_a = [[0.0; W]; IB];
    let mut acc_c = [[0.0; W]; IB];
    let mut norm = [0.0; W];
    let bt = &t.bt[blk * n_f * IB..(blk + 1) * n_f * IB];
    let (x, xi, r2) = (&mut st.x[..n_f], &st.xi[..n_f], &t.r2[..n_f]);
    for j in 0..n_f {
        let b: &[f64; IB] = bt[j * IB..(j + 1) * IB].try_into().expect("block row");
        let (xj, xij, r2j) = (x[j], xi[j], r2[j]);
        let (mut y1, mut y2) = if first {
            ([0.0; W], [0.0; W])
        } else {
            (st.y1[j], st.y2[j])
        };
        let (a, c) = rule.terms(xj, xij, r2j);
        for ii in 0..IB {
            let bb = splat(b[ii]);
            acc_a[ii] = fma(bb, a, acc_a[ii]);
            if R::TWO_SUMS {
                acc_c[ii] = fma(bb, c, acc_c[ii]);
            }
            y1 = fma(bb, w1[ii], y1);
            if R::Y2 {
                y2 = fma(bb, w2[ii], y2);
            }
        }
        if last {
            let xn = rule.flat(t.el0, xj, xij, r2j, y1, y2);
            norm = fma(xn, xn, norm);
            x[j] = xn;
        } else {
            st.y1[j] = y1;
            st.y2[j] = y2;
        }
    }
    for ii in 0..IB {
        st.lam[i0 + ii] = add(splat(t.floor[i0 + ii]), acc_a[ii]);
        st.c[i0 + ii] = acc_c[ii];
    }
    if last {
        st.norm = norm;
    }
}

/// One step of `rule` with the normals already in `st.xi`: λ(x_old) into `st.lam`, the new
/// state into (`st.x`, `st.y`), |θ_new|² into `st.norm`.
#[inline(always)]
fn step_blocks<R: StepNd, const IB: usize>(rule: R, t: &Tables, st: &mut State) {
    let nb = t.blocks;
    if nb == 1 {
        sweep::<R, IB>(rule, t, st, 0, true, true);
    } else {
        sweep::<R, IB>(rule, t, st, 0, true, false);
        for blk in 1..nb - 1 {
            sweep::<R, IB>(rule, t, st, blk, false, false);
        }
        sweep::<R, IB>(rule, t, st, nb - 1, false, true);
    }
    let n_f = t.n_f;
    let mut norm = st.norm;
    for i in 0..t.n_s {
        let y = rule.sharp(st.y[i], st.xi[n_f + i], st.lam[i], st.c[i], t.floor[i]);
        norm = fma(y, y, norm);
        st.y[i] = y;
    }
    st.norm = norm;
}

/// [`step_blocks`] with the block size as a constant.
#[inline(always)]
fn step<R: StepNd>(rule: R, t: &Tables, st: &mut State) {
    match t.block {
        1 => step_blocks::<R, 1>(rule, t, st),
        2 => step_blocks::<R, 2>(rule, t, st),
        3 => step_blocks::<R, 3>(rule, t, st),
        4 => step_blocks::<R, 4>(rule, t, st),
        5 => step_blocks::<R, 5>(rule, t, st),
        6 => step_blocks::<R, 6>(rule, t, st),
        7 => step_blocks::<R, 7>(rule, t, st),
        _ => step_blocks::<R, MAX_BLOCK>(rule, t, st),
    }
}

/// Rows of normals from a batch's generator, with the rows left over by one draw kept for the
/// next request (so no normal is wasted).
struct NormalRows {
    rng: LaneRng,
    spare: [Row; ROWS_PER_DRAW],
    /// spare rows not yet used are `spare[ROWS_PER_DRAW - left..]`.
    left: usize,
}

impl NormalRows {
    /// Lane l belongs to walker `first + l mod W`, sub-stream `l div W`.
    fn new(seed: u64, first: usize) -> Self {
        Self {
            rng: LaneRng::new(std::array::from_fn(|l| {
                stream_key(seed, (first + l % W) as u64, (l / W) as u64)
            })),
            spare: [[0.0; W]; ROWS_PER_DRAW],
            left: 0,
        }
    }

    /// One draw: ROWS_PER_DRAW rows.
    #[inline(always)]
    fn draw(&mut self, out: &mut [Row; ROWS_PER_DRAW]) {
        let mut a = [0.0; LANES];
        let mut b = [0.0; LANES];
        self.rng.normals(&mut a, &mut b);
        let half = ROWS_PER_DRAW / 2;
        for r in 0..half {
            out[r].copy_from_slice(&a[r * W..(r + 1) * W]);
            out[half + r].copy_from_slice(&b[r * W..(r + 1) * W]);
        }
    }

    /// Fill every row of `out`.
    #[inline(always)]
    fn fill(&mut self, out: &mut [Row]) {
        let take = self.left.min(out.len());
        let from = ROWS_PER_DRAW - self.left;
        out[..take].copy_from_slice(&self.spare[from..from + take]);
        self.left -= take;
        let mut chunks = out[take..].chunks_exact_mut(ROWS_PER_DRAW);
        for chunk in &mut chunks {
            self.draw(chunk.try_into().expect("chunk of ROWS_PER_DRAW"));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut spare = [[0.0; W]; ROWS_PER_DRAW];
            self.draw(&mut spare);
            self.spare = spare;
            rest.copy_from_slice(&self.spare[..rest.len()]);
            self.left = ROWS_PER_DRAW - rest.len();
        }
    }
}

/// Σ ln λ_i with one logarithm per 32 factors.
#[inline]
fn sum_ln(lam: &[f64]) -> f64 {
    lam.chunks(32).map(|c| c.iter().product::<f64>().ln()).sum()
}

/// Σ_i ln λ^{(i)} of each lane (i < N_S), with one logarithm per 32 factors.
#[inline(always)]
fn sum_ln_rows(lam: &[Row]) -> Row {
    let mut z = [0.0; W];
    for chunk in lam.chunks(32) {
        let mut prod = [1.0; W];
        for row in chunk {
            for l in 0..W {
                prod[l] *= row[l];
            }
        }
        for l in 0..W {
            z[l] += prod[l].ln();
        }
    }
    z
}

/// Run the walkers `range` (at most W of them) of the N-D valley from `start` (x then y).
#[inline(always)]
pub(crate) fn run_batch(
    rule: RuleNd,
    v: &ValleyNd,
    plan: &Plan,
    start: &[f64],
    range: std::ops::Range<usize>,
) -> BatchOut {
    match rule {
        RuleNd::HessLin { dt, scale } => run_lanes(HessLin { dt, scale }, v, plan, start, range),
        RuleNd::Iso { dt, scale } => run_lanes(Iso { dt, scale }, v, plan, start, range),
        RuleNd::ExactShift { eta, s } => run_lanes(ExactShift { eta, s }, v, plan, start, range),
        RuleNd::Gd { eta } => run_lanes(Gd { eta }, v, plan, start, range),
    }
}

/// λ^{(i)}(x) of every lane into `out` (rows of the padded y layout).
#[inline(always)]
fn lambda_rows(t: &Tables, x: &[Row], out: &mut [Row]) {
    let (n_f, ib) = (t.n_f, t.block);
    for (i, o) in out.iter_mut().enumerate() {
        let (blk, ii) = (i / ib, i % ib);
        let mut acc = [0.0; W];
        for j in 0..n_f {
            let s = fma(x[j], x[j], splat(-t.r2[j]));
            acc = fma(splat(t.bt[(blk * n_f + j) * ib + ii]), mul(s, s), acc);
        }
        *o = add(splat(t.floor[i]), acc);
    }
}

/// Time-series rows of the live lanes (a method, not a closure: closures are compiled without
/// the caller's vector instructions).
struct Recorder<'a> {
    lam_rows: Vec<Row>,
    lam: Vec<f64>,
    gamma: &'a [f64],
}

impl Recorder<'_> {
    #[inline(always)]
    fn record(&mut self, t: &Tables, ts: &mut TsAcc, idx: usize, st: &State, alive: &[bool; W]) {
        let (n_f, n_s) = (t.n_f, t.n_s);
        lambda_rows(t, &st.x, &mut self.lam_rows);
        let (mut sx, mut sabs, mut sxx) = ([0.0; W], [0.0; W], [0.0; W]);
        for x in &st.x {
            sx = add(sx, *x);
            sabs = add(sabs, x.map(f64::abs));
            sxx = fma(*x, *x, sxx);
        }
        let (mut syy, mut sly) = ([0.0; W], [0.0; W]);
        for (y, lam) in st.y[..n_s].iter().zip(&self.lam_rows) {
            syy = fma(*y, *y, syy);
            sly = fma(mul(*lam, *y), *y, sly);
        }
        for l in 0..W {
            if alive[l] {
                for (o, r) in self.lam.iter_mut().zip(&self.lam_rows) {
                    *o = r[l];
                }
                let mut r = [0.0; TS_COLS];
                r[TS_FLATNESS] = flatness_from_lambdas(&self.lam);
                r[TS_FLATNESS_HAT] = flatness_hat_from_lambdas(&self.lam, self.gamma);
                r[TS_LOSS] = 0.5 * sly[l] + 0.5 * t.el0 * sxx[l];
                r[TS_X] = sx[l] / n_f as f64;
                r[TS_ABS_X] = sabs[l] / n_f as f64;
                r[TS_Y_SQ] = syy[l] / n_s as f64;
                ts.add(idx, r);
            }
        }
    }
}

/// Lane `l`'s coordinates (x then y).
fn column(st: &State, n_s: usize, l: usize) -> (Vec<f64>, Vec<f64>) {
    (
        st.x.iter().map(|r| r[l]).collect(),
        st.y[..n_s].iter().map(|r| r[l]).collect(),
    )
}

#[inline(always)]
fn run_lanes<R: StepNd>(
    rule: R,
    v: &ValleyNd,
    plan: &Plan,
    start: &[f64],
    range: std::ops::Range<usize>,
) -> BatchOut {
    let (n_f, n_s) = (v.n_f, v.n_s);
    let first = range.start;
    let active: [bool; W] = std::array::from_fn(|l| l < range.len());
    let t = Tables::new(v);
    let mut st = State::new(&t, start);
    let mut normals = NormalRows::new(plan.seed, first);
    let gamma = v.noise_weights();
    let mut ts = TsAcc::new(plan.record_steps.len());

    let project = |x: &[f64], y: &[f64]| -> [f64; 2] {
        let rx = (x.iter().map(|v| v * v).sum::<f64>() / n_f as f64).sqrt();
        let ry = (y.iter().map(|v| v * v).sum::<f64>() / n_s as f64).sqrt();
        [rx, ry]
    };
    let mut trajectories = traced_walkers(
        &active,
        first,
        plan.traj_walkers,
        project(&start[..n_f], &start[n_f..]),
    );
    let mut rec = Recorder {
        lam_rows: vec![[0.0; W]; t.y_rows()],
        lam: vec![0.0; n_s],
        gamma: &gamma,
    };

    let mut lam0 = vec![0.0; n_s];
    v.lambdas(&start[..n_f], &mut lam0);
    let z0 = sum_ln(&lam0);
    let mut ext: Vec<Extremes> = (0..W).map(|_| Extremes::default()).collect();
    for e in ext.iter_mut() {
        e.reset(z0, plan.steps);
    }
    let (mut lo, mut hi) = ([z0; W], [z0; W]);
    let mut alive = active;
    let mut diverged_at: [Option<usize>; W] = [None; W];
    rec.record(&t, &mut ts, 0, &st, &alive);
    let mut next_rec = 1;
    let mut sum_x = vec![[0.0; W]; n_f];
    let (mut sum_y2, mut sum_z) = ([0.0; W], [0.0; W]);
    let need = n_f + n_s;

    for k in 1..=plan.steps {
        if plan.stop_at(k) {
            break;
        }
        if R::NOISY {
            normals.fill(&mut st.xi[..need]);
        }
        step(rule, &t, &mut st);
        // z_prev: the search observable of x_{k−1}.
        if k >= 2 {
            let z = sum_ln_rows(&st.lam[..n_s]);
            let mut rec = false;
            for l in 0..W {
                rec |= (z[l] < lo[l]) | (z[l] > hi[l]);
            }
            if rec {
                for l in 0..W {
                    if alive[l] && ext[l].is_record(z[l]) {
                        ext[l].observe(k - 1, z[l]);
                        lo[l] = lo[l].min(z[l]);
                        hi[l] = hi[l].max(z[l]);
                    }
                }
            }
            if k - 1 > plan.burn_in {
                for l in 0..W {
                    sum_z[l] += z[l];
                }
            }
        }
        // Divergence: |θ|² > R² or not finite (the comparison is false for NaN).
        let mut bad = false;
        for l in 0..W {
            bad |= super::walk2d::outside(st.norm[l], plan.radius_sq);
        }
        if bad {
            for l in 0..W {
                if super::walk2d::outside(st.norm[l], plan.radius_sq) {
                    if alive[l] {
                        alive[l] = false;
                        diverged_at[l] = Some(k);
                    }
                    // Park the lane at the start so it keeps computing harmless numbers.
                    for j in 0..n_f {
                        st.x[j][l] = start[j];
                    }
                    for i in 0..n_s {
                        st.y[i][l] = start[n_f + i];
                    }
                }
            }
            if !alive.iter().any(|&a| a) {
                break;
            }
        }
        if k > plan.burn_in {
            for (s, x) in sum_x.iter_mut().zip(&st.x) {
                for l in 0..W {
                    s[l] += x[l];
                }
            }
            let mut y2 = [0.0; W];
            for y in &st.y[..n_s] {
                for l in 0..W {
                    y2[l] += y[l] * y[l];
                }
            }
            for l in 0..W {
                sum_y2[l] += y2[l] / n_s as f64;
            }
        }
        if next_rec < plan.record_steps.len() && plan.record_steps[next_rec] == k {
            rec.record(&t, &mut ts, next_rec, &st, &alive);
            next_rec += 1;
        }
        if !trajectories.is_empty() && k % plan.traj_stride == 0 {
            let (mut sxx, mut syy) = ([0.0; W], [0.0; W]);
            for x in &st.x {
                sxx = fma(*x, *x, sxx);
            }
            for y in &st.y[..n_s] {
                syy = fma(*y, *y, syy);
            }
            push_traced(&mut trajectories, first, &alive, |l| {
                [(sxx[l] / n_f as f64).sqrt(), (syy[l] / n_s as f64).sqrt()]
            });
        }
    }

    let n = plan.averaged() as f64;
    let walkers = (0..W)
        .filter(|&l| active[l])
        .map(|l| {
            if let Some(k) = diverged_at[l] {
                return WalkerOut::diverged(k);
            }
            // The last state's search observable.
            let (x, _) = column(&st, n_s, l);
            let mut lam = vec![0.0; n_s];
            v.lambdas(&x, &mut lam);
            let z = sum_ln(&lam);
            let mut ext = std::mem::take(&mut ext[l]);
            if ext.is_record(z) {
                ext.observe(plan.steps, z);
            }
            let mut sz = sum_z[l];
            if plan.steps > plan.burn_in {
                sz += z;
            }
            let xm: Vec<f64> = sum_x.iter().map(|s| s[l] / n).collect();
            v.lambdas(&xm, &mut lam);
            WalkerOut {
                diverged_at: None,
                x_abs: (xm.iter().map(|v| v * v).sum::<f64>() / n_f as f64).sqrt(),
                flatness: flatness_from_lambdas(&lam),
                flatness_hat: flatness_hat_from_lambdas(&lam, &gamma),
                mean: [xm.iter().sum::<f64>() / n_f as f64, 0.0],
                m2: [0.0; 3],
                y_sq: sum_y2[l] / n,
                search_step: ext.first_passage(sz / n),
                log_ratio_sq: None,
            }
        })
        .collect();
    BatchOut {
        walkers,
        ts,
        hist: Hist::default(),
        trajectories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::valley_nd::ValleyNdSpec;

    /// One lock-step step of every rule against the reference ∇L and H·v of [`ValleyNd`], for
    /// one block (N_S ≤ 8), two blocks with padding (N_S = 11) and three (N_S = 19).
    #[test]
    fn lane_steps_match_the_reference_gradient_and_hessian_product() {
        for n_s in [1, 3, 5, 11, 19] {
            let v = ValleyNdSpec {
                n_s,
                n_f: 21,
                epsilon: 0.01,
                ..Default::default()
            }
            .build(3)
            .unwrap();
            let n_f = v.n_f;
            let t = Tables::new(&v);
            let x0 = |l: usize| -> Vec<f64> {
                (0..n_f)
                    .map(|j| 0.2 + 0.05 * j as f64 - 0.07 * l as f64)
                    .collect()
            };
            let y0 = |l: usize| -> Vec<f64> {
                (0..n_s)
                    .map(|i| 0.3 - 0.2 * i as f64 + 0.03 * l as f64)
                    .collect()
            };
            let xi = |k: usize, l: usize| ((k * 37 + l * 13) % 11) as f64 / 4.0 - 1.25;
            let fresh = || {
                let mut st = State::new(&t, &vec![0.0; n_f + n_s]);
                for l in 0..W {
                    let (x, y) = (x0(l), y0(l));
                    for j in 0..n_f {
                        st.x[j][l] = x[j];
                        st.xi[j][l] = xi(j, l);
                    }
                    for i in 0..n_s {
                        st.y[i][l] = y[i];
                        st.xi[n_f + i][l] = xi(n_f + i, l);
                    }
                }
                st
            };
            let grad = |x: &[f64], y: &[f64]| {
                let (mut gx, mut gy) = (vec![0.0; n_f], vec![0.0; n_s]);
                v.grad(x, y, &mut gx, &mut gy);
                (gx, gy)
            };
            let check = |name: &str, st: &State, expect: &dyn Fn(usize) -> (Vec<f64>, Vec<f64>)| {
                for l in 0..W {
                    let (ex, ey) = expect(l);
                    let (x, y) = column(st, n_s, l);
                    for (a, b) in x.iter().chain(&y).zip(ex.iter().chain(&ey)) {
                        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{name} n_s={n_s}");
                    }
                    let mut lam = vec![0.0; n_s];
                    v.lambdas(&x0(l), &mut lam);
                    for i in 0..n_s {
                        assert!((st.lam[i][l] - lam[i]).abs() <= 1e-12 * lam[i], "λ {name}");
                    }
                    let norm: f64 = ex.iter().chain(&ey).map(|v| v * v).sum();
                    assert!((st.norm[l] - norm).abs() <= 1e-12 * norm, "|θ|² {name}");
                }
            };
            let (dt, scale) = (0.01, 0.03);
            let split = |l: usize| -> (Vec<f64>, Vec<f64>) {
                (
                    (0..n_f).map(|j| xi(j, l)).collect(),
                    (0..n_s).map(|i| xi(n_f + i, l)).collect(),
                )
            };

            let mut st = fresh();
            step(HessLin { dt, scale }, &t, &mut st);
            check("HessLin", &st, &|l| {
                let (x, y) = (x0(l), y0(l));
                let (vx, vy) = split(l);
                let (gx, gy) = grad(&x, &y);
                let (mut hx, mut hy) = (vec![0.0; n_f], vec![0.0; n_s]);
                v.hess_vec(&x, &y, &vx, &vy, &mut hx, &mut hy);
                (
                    (0..n_f)
                        .map(|j| x[j] - dt * gx[j] + scale * hx[j])
                        .collect(),
                    (0..n_s)
                        .map(|i| y[i] - dt * gy[i] + scale * hy[i])
                        .collect(),
                )
            });

            let mut st = fresh();
            step(Iso { dt, scale }, &t, &mut st);
            check("Iso", &st, &|l| {
                let (x, y) = (x0(l), y0(l));
                let (vx, vy) = split(l);
                let (gx, gy) = grad(&x, &y);
                (
                    (0..n_f)
                        .map(|j| x[j] - dt * gx[j] + scale * vx[j])
                        .collect(),
                    (0..n_s)
                        .map(|i| y[i] - dt * gy[i] + scale * vy[i])
                        .collect(),
                )
            });

            let mut st = fresh();
            step(Gd { eta: dt }, &t, &mut st);
            check("Gd", &st, &|l| {
                let (x, y) = (x0(l), y0(l));
                let (gx, gy) = grad(&x, &y);
                (
                    (0..n_f).map(|j| x[j] - dt * gx[j]).collect(),
                    (0..n_s).map(|i| y[i] - dt * gy[i]).collect(),
                )
            });

            let mut st = fresh();
            step(ExactShift { eta: dt, s: scale }, &t, &mut st);
            check("ExactShift", &st, &|l| {
                let (x, y) = (x0(l), y0(l));
                let (vx, vy) = split(l);
                let xs: Vec<f64> = (0..n_f).map(|j| x[j] - scale * vx[j]).collect();
                let ys: Vec<f64> = (0..n_s).map(|i| y[i] - scale * vy[i]).collect();
                let (gx, gy) = grad(&xs, &ys);
                (
                    (0..n_f).map(|j| x[j] - dt * gx[j]).collect(),
                    (0..n_s).map(|i| y[i] - dt * gy[i]).collect(),
                )
            });
        }
    }

    /// Rows handed out in requests of any length are the generator's draws in order: no normal
    /// is skipped or repeated, and lane l of every row comes from walker l's streams.
    #[test]
    fn normal_rows_use_every_draw_once_in_order() {
        let total = 7 * ROWS_PER_DRAW;
        let mut one = NormalRows::new(11, 16);
        let mut all = vec![[0.0; W]; total];
        one.fill(&mut all);
        let mut pieces = NormalRows::new(11, 16);
        let mut got = Vec::new();
        for len in [5, 13, 1, 8, 3, 26] {
            let mut buf = vec![[0.0; W]; len];
            pieces.fill(&mut buf);
            got.extend(buf);
        }
        assert_eq!(got.len(), total);
        assert_eq!(got, all);
        // Walker 16 + l owns lanes l, l + W, …: the first draw's first row is sub-stream 0's
        // first Box–Muller normal of its own key.
        for l in 0..W {
            let mut rng = LaneRng::new(std::array::from_fn(|k| {
                stream_key(11, (16 + l) as u64, k as u64)
            }));
            let (mut a, mut b) = ([0.0; LANES], [0.0; LANES]);
            rng.normals(&mut a, &mut b);
            assert_eq!(all[0][l], a[0]);
            assert_eq!(all[ROWS_PER_DRAW / 2][l], b[0]);
        }
    }
}
