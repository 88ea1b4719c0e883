//! Walkers on the N-D valley of Eq. (5), one walker at a time (its inner loops over the
//! N_F flat coordinates vectorise). A step costs O(N_S·N_F): two passes over the b table and
//! no matrix is formed — H·ξ uses the block structure of H (see `NdScratch::step_hess`).
//!
//! Layout: x (N_F) then y (N_S); `b` is N_S × N_F row-major (j fastest).
//!
//! Search observable: z = Σ_i ln λ^{(i)}(x) (= −2 N_S ln F); t_s is the first step at which z
//! reaches its own post-burn-in time average coming from the start.

// Kernels index several arrays with one lane / coordinate index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use crate::landscape::valley_nd::{
    ValleyNd, flatness_from_lambdas, flatness_hat_from_lambdas, loss_from_lambdas,
};

use super::observe::{
    BatchOut, Extremes, Hist, Plan, TS_ABS_X, TS_COLS, TS_FLATNESS, TS_FLATNESS_HAT, TS_LOSS, TS_X,
    TS_Y_SQ, TsAcc, WalkerOut,
};
use super::rng::{LANES, LaneRng, stream_key};

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

/// Width of the partial sums of [`dot`] and [`dot2`] (two AVX-512 registers).
const DOT_WIDTH: usize = 16;

#[inline(always)]
fn fold(acc: [f64; DOT_WIDTH]) -> f64 {
    // pairwise, in a fixed order
    let mut v = acc;
    let mut w = DOT_WIDTH;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            v[k] += v[k + w];
        }
    }
    v[0]
}

/// Dot product with DOT_WIDTH independent partial sums (vectorises; fixed order → reproducible).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; DOT_WIDTH];
    let full = n - n % DOT_WIDTH;
    for (pa, pb) in a[..full]
        .chunks_exact(DOT_WIDTH)
        .zip(b[..full].chunks_exact(DOT_WIDTH))
    {
        let pa: &[f64; DOT_WIDTH] = pa.try_into().expect("chunk of DOT_WIDTH");
        let pb: &[f64; DOT_WIDTH] = pb.try_into().expect("chunk of DOT_WIDTH");
        for k in 0..DOT_WIDTH {
            acc[k] = pa[k].mul_add(pb[k], acc[k]);
        }
    }
    let mut tail = 0.0;
    for k in full..n {
        tail += a[k] * b[k];
    }
    fold(acc) + tail
}

/// (row·a, row·b) in one pass over `row`.
#[inline(always)]
fn dot2(row: &[f64], a: &[f64], b: &[f64]) -> (f64, f64) {
    let n = row.len().min(a.len()).min(b.len());
    let (row, a, b) = (&row[..n], &a[..n], &b[..n]);
    let mut acc_a = [0.0; DOT_WIDTH];
    let mut acc_b = [0.0; DOT_WIDTH];
    let full = n - n % DOT_WIDTH;
    for ((pr, pa), pb) in row[..full]
        .chunks_exact(DOT_WIDTH)
        .zip(a[..full].chunks_exact(DOT_WIDTH))
        .zip(b[..full].chunks_exact(DOT_WIDTH))
    {
        let pr: &[f64; DOT_WIDTH] = pr.try_into().expect("chunk of DOT_WIDTH");
        let pa: &[f64; DOT_WIDTH] = pa.try_into().expect("chunk of DOT_WIDTH");
        let pb: &[f64; DOT_WIDTH] = pb.try_into().expect("chunk of DOT_WIDTH");
        for k in 0..DOT_WIDTH {
            acc_a[k] = pr[k].mul_add(pa[k], acc_a[k]);
            acc_b[k] = pr[k].mul_add(pb[k], acc_b[k]);
        }
    }
    let (mut ta, mut tb) = (0.0, 0.0);
    for k in full..n {
        ta += row[k] * a[k];
        tb += row[k] * b[k];
    }
    (fold(acc_a) + ta, fold(acc_b) + tb)
}

/// Per-walker work arrays, allocated once per batch.
struct NdScratch {
    r2: Vec<f64>,
    p: Vec<f64>,
    ss: Vec<f64>,
    pm: Vec<f64>,
    y2b: Vec<f64>,
    ymb: Vec<f64>,
    lam: Vec<f64>,
    q: Vec<f64>,
    xi: Vec<f64>,
    gx: Vec<f64>,
    gy: Vec<f64>,
    xsh: Vec<f64>,
    ysh: Vec<f64>,
    gamma: Vec<f64>,
}

impl NdScratch {
    fn new(v: &ValleyNd) -> Self {
        let n_xi = (v.dim()).div_ceil(2 * LANES) * 2 * LANES;
        Self {
            r2: v.x_flat.iter().map(|r| r * r).collect(),
            p: vec![0.0; v.n_f],
            ss: vec![0.0; v.n_f],
            pm: vec![0.0; v.n_f],
            y2b: vec![0.0; v.n_f],
            ymb: vec![0.0; v.n_f],
            lam: vec![0.0; v.n_s],
            q: vec![0.0; v.n_s],
            xi: vec![0.0; n_xi],
            gx: vec![0.0; v.n_f],
            gy: vec![0.0; v.n_s],
            xsh: vec![0.0; v.n_f],
            ysh: vec![0.0; v.n_s],
            gamma: v.noise_weights(),
        }
    }

    /// λ^{(i)}(x) into `lam`; also fills p_j = x_j (x_j² − r_j²) and ss_j = (x_j² − r_j²)².
    #[inline(always)]
    fn lambdas(&mut self, v: &ValleyNd, x: &[f64]) {
        let x = &x[..v.n_f];
        for (((p, ss), &xj), &r2) in self.p.iter_mut().zip(&mut self.ss).zip(x).zip(&self.r2) {
            let s = xj * xj - r2;
            *p = xj * s;
            *ss = s * s;
        }
        for i in 0..v.n_s {
            self.lam[i] = v.lambda_floor[i] + dot(v.b_row(i), &self.ss);
        }
    }

    /// Σ_i b_ij y_i² into `y2b` (needs nothing else).
    #[inline(always)]
    fn y2_weights(&mut self, v: &ValleyNd, y: &[f64]) {
        self.y2b.fill(0.0);
        for (i, &yi) in y.iter().enumerate() {
            let w = yi * yi;
            for (acc, &b) in self.y2b.iter_mut().zip(v.b_row(i)) {
                *acc += b * w;
            }
        }
    }

    /// ∇L at (x, y) into (gx, gy); leaves λ(x) in `lam`.
    #[inline(always)]
    fn gradient(&mut self, v: &ValleyNd, x: &[f64], y: &[f64]) {
        self.lambdas(v, x);
        self.y2_weights(v, y);
        let el0 = v.eps_lambda0();
        for j in 0..v.n_f {
            self.gx[j] = el0 * x[j] + 2.0 * self.p[j] * self.y2b[j];
        }
        for i in 0..v.n_s {
            self.gy[i] = self.lam[i] * y[i];
        }
    }

    /// One step of `rule` with the normals already in `xi`; returns Σ ln λ^{(i)} of the state
    /// before the step (the search observable).
    #[inline(always)]
    fn step(&mut self, rule: RuleNd, v: &ValleyNd, x: &mut [f64], y: &mut [f64]) -> f64 {
        let (n_f, n_s) = (v.n_f, v.n_s);
        match rule {
            RuleNd::HessLin { dt, scale } => {
                self.step_hess(v, dt, scale, x, y);
                sum_ln(&self.lam)
            }
            RuleNd::Iso { dt, scale } => {
                self.gradient(v, x, y);
                for j in 0..n_f {
                    x[j] = x[j] - dt * self.gx[j] + scale * self.xi[j];
                }
                for i in 0..n_s {
                    y[i] = y[i] - dt * self.gy[i] + scale * self.xi[n_f + i];
                }
                sum_ln(&self.lam)
            }
            RuleNd::ExactShift { eta, s } => {
                self.lambdas(v, x);
                let z = sum_ln(&self.lam);
                let (mut xsh, mut ysh) =
                    (std::mem::take(&mut self.xsh), std::mem::take(&mut self.ysh));
                for j in 0..n_f {
                    xsh[j] = x[j] - s * self.xi[j];
                }
                for i in 0..n_s {
                    ysh[i] = y[i] - s * self.xi[n_f + i];
                }
                self.gradient(v, &xsh, &ysh);
                (self.xsh, self.ysh) = (xsh, ysh);
                for j in 0..n_f {
                    x[j] -= eta * self.gx[j];
                }
                for i in 0..n_s {
                    y[i] -= eta * self.gy[i];
                }
                z
            }
            RuleNd::Gd { eta } => {
                self.gradient(v, x, y);
                for j in 0..n_f {
                    x[j] -= eta * self.gx[j];
                }
                for i in 0..n_s {
                    y[i] -= eta * self.gy[i];
                }
                sum_ln(&self.lam)
            }
        }
    }

    /// One `HessLin` step; leaves λ(x_old) in `lam`.
    #[inline(always)]
    fn step_hess(&mut self, v: &ValleyNd, dt: f64, scale: f64, x: &mut [f64], y: &mut [f64]) {
        let (n_f, n_s) = (v.n_f, v.n_s);
        let (xi_x, xi_y) = self.xi.split_at(n_f);
        // Exact-length views let the compiler drop bounds checks and vectorise.
        let (x, r2, xi_x) = (&mut x[..n_f], &self.r2[..n_f], &xi_x[..n_f]);
        let (p, ss, pm) = (&mut self.p[..n_f], &mut self.ss[..n_f], &mut self.pm[..n_f]);
        for j in 0..n_f {
            let s = x[j] * x[j] - r2[j];
            p[j] = x[j] * s;
            ss[j] = s * s;
            pm[j] = p[j] * xi_x[j];
        }
        for i in 0..n_s {
            let (l, q) = dot2(v.b_row(i), &self.ss, &self.pm);
            self.lam[i] = v.lambda_floor[i] + l;
            self.q[i] = q;
        }
        self.y2b.fill(0.0);
        self.ymb.fill(0.0);
        for i in 0..n_s {
            let (w1, w2) = (y[i] * y[i], y[i] * xi_y[i]);
            for ((a, c), &b) in self.y2b.iter_mut().zip(&mut self.ymb).zip(v.b_row(i)) {
                *a = b.mul_add(w1, *a);
                *c = b.mul_add(w2, *c);
            }
        }
        let el0 = v.eps_lambda0();
        let (p, y2b, ymb) = (&self.p[..n_f], &self.y2b[..n_f], &self.ymb[..n_f]);
        for j in 0..n_f {
            let xj = x[j];
            let gx = el0 * xj + 2.0 * p[j] * y2b[j];
            let hjj = el0 + 2.0 * (3.0 * xj * xj - r2[j]) * y2b[j];
            let hx = hjj * xi_x[j] + 4.0 * p[j] * ymb[j];
            x[j] = xj - dt * gx + scale * hx;
        }
        for i in 0..n_s {
            let yi = y[i];
            let hy = 4.0 * yi * self.q[i] + self.lam[i] * xi_y[i];
            y[i] = yi - dt * self.lam[i] * yi + scale * hy;
        }
    }
}

/// Σ ln λ_i with one logarithm per 32 factors.
#[inline]
fn sum_ln(lam: &[f64]) -> f64 {
    lam.chunks(32).map(|c| c.iter().product::<f64>().ln()).sum()
}

/// Run walkers `range` of the N-D valley from `start` (x then y).
#[inline(always)]
pub(crate) fn run_batch(
    rule: RuleNd,
    v: &ValleyNd,
    plan: &Plan,
    start: &[f64],
    range: std::ops::Range<usize>,
) -> BatchOut {
    let (n_f, n_s) = (v.n_f, v.n_s);
    let mut sc = NdScratch::new(v);
    let mut ts = TsAcc::new(plan.record_steps.len());
    let mut x = vec![0.0; n_f];
    let mut y = vec![0.0; n_s];
    let mut sum_x = vec![0.0; n_f];
    let mut ext = Extremes::default();
    let mut walkers = Vec::with_capacity(range.len());
    let mut trajectories = Vec::new();
    let el0 = v.eps_lambda0();

    for w in range {
        x.copy_from_slice(&start[..n_f]);
        y.copy_from_slice(&start[n_f..]);
        sum_x.fill(0.0);
        let mut rng = LaneRng::new(std::array::from_fn(|l| {
            stream_key(plan.seed, w as u64, l as u64)
        }));
        let store = w < plan.traj_walkers;
        let mut traj: Vec<[f64; 2]> = Vec::new();
        let project = |x: &[f64], y: &[f64]| -> [f64; 2] {
            let rx = (x.iter().map(|v| v * v).sum::<f64>() / n_f as f64).sqrt();
            let ry = (y.iter().map(|v| v * v).sum::<f64>() / n_s as f64).sqrt();
            [rx, ry]
        };
        if store {
            traj.push(project(&x, &y));
        }
        sc.lambdas(v, &x);
        ext.reset(sum_ln(&sc.lam), plan.steps);
        let record = |ts: &mut TsAcc, idx: usize, sc: &mut NdScratch, x: &[f64], y: &[f64]| {
            sc.lambdas(v, x);
            let mut r = [0.0; TS_COLS];
            r[TS_FLATNESS] = flatness_from_lambdas(&sc.lam);
            r[TS_FLATNESS_HAT] = flatness_hat_from_lambdas(&sc.lam, &sc.gamma);
            r[TS_LOSS] = loss_from_lambdas(el0, x, y, &sc.lam);
            r[TS_X] = x.iter().sum::<f64>() / n_f as f64;
            r[TS_ABS_X] = x.iter().map(|v| v.abs()).sum::<f64>() / n_f as f64;
            r[TS_Y_SQ] = y.iter().map(|v| v * v).sum::<f64>() / n_s as f64;
            ts.add(idx, r);
        };
        record(&mut ts, 0, &mut sc, &x, &y);
        let mut next_rec = 1;
        let (mut sum_y2, mut sum_z) = (0.0, 0.0);
        let mut diverged_at = None;

        for k in 1..=plan.steps {
            if plan.stop_at(k) {
                break;
            }
            // Advance; z_prev is the search observable of x_{k−1}.
            if !matches!(rule, RuleNd::Gd { .. }) {
                rng.fill_normals(&mut sc.xi);
            }
            let z_prev = sc.step(rule, v, &mut x, &mut y);
            if k >= 2 {
                if ext.is_record(z_prev) {
                    ext.observe(k - 1, z_prev);
                }
                if k - 1 > plan.burn_in {
                    sum_z += z_prev;
                }
            }
            let r2 = dot(&x, &x) + dot(&y, &y);
            if super::walk2d::outside(r2, plan.radius_sq) {
                diverged_at = Some(k);
                break;
            }
            if k > plan.burn_in {
                for (s, &xj) in sum_x.iter_mut().zip(&x) {
                    *s += xj;
                }
                sum_y2 += y.iter().map(|v| v * v).sum::<f64>() / n_s as f64;
            }
            if next_rec < plan.record_steps.len() && plan.record_steps[next_rec] == k {
                record(&mut ts, next_rec, &mut sc, &x, &y);
                next_rec += 1;
            }
            if store && k % plan.traj_stride == 0 {
                traj.push(project(&x, &y));
            }
        }
        if store {
            trajectories.push((w, traj));
        }
        if diverged_at.is_some() {
            walkers.push(WalkerOut {
                diverged_at,
                ..Default::default()
            });
            continue;
        }
        // The last state's search observable.
        sc.lambdas(v, &x);
        let z = sum_ln(&sc.lam);
        if ext.is_record(z) {
            ext.observe(plan.steps, z);
        }
        if plan.steps > plan.burn_in {
            sum_z += z;
        }
        let n = plan.averaged() as f64;
        let xm: Vec<f64> = sum_x.iter().map(|s| s / n).collect();
        sc.lambdas(v, &xm);
        walkers.push(WalkerOut {
            diverged_at: None,
            x_abs: (xm.iter().map(|v| v * v).sum::<f64>() / n_f as f64).sqrt(),
            flatness: flatness_from_lambdas(&sc.lam),
            flatness_hat: flatness_hat_from_lambdas(&sc.lam, &sc.gamma),
            mean: [xm.iter().sum::<f64>() / n_f as f64, 0.0],
            m2: [0.0; 3],
            y_sq: sum_y2 / n,
            search_step: ext.first_passage(sum_z / n),
            log_ratio_sq: None,
        });
    }
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

    /// One fused step of every rule against the reference ∇L and H·v of [`ValleyNd`].
    #[test]
    fn fused_steps_match_the_reference_gradient_and_hessian_product() {
        let v = ValleyNdSpec {
            n_s: 3,
            n_f: 21,
            epsilon: 0.01,
            ..Default::default()
        }
        .build(3)
        .unwrap();
        let (n_f, n_s) = (v.n_f, v.n_s);
        let x0: Vec<f64> = (0..n_f).map(|j| 0.2 + 0.05 * j as f64).collect();
        let y0: Vec<f64> = (0..n_s).map(|i| 0.3 - 0.2 * i as f64).collect();
        let mut sc = NdScratch::new(&v);
        for (k, xi) in sc.xi.iter_mut().enumerate() {
            *xi = ((k * 37 % 11) as f64 - 5.0) / 4.0;
        }
        let xi = sc.xi.clone();
        let (xi_x, xi_y) = (&xi[..n_f], &xi[n_f..n_f + n_s]);
        let grad = |x: &[f64], y: &[f64]| {
            let (mut gx, mut gy) = (vec![0.0; n_f], vec![0.0; n_s]);
            v.grad(x, y, &mut gx, &mut gy);
            (gx, gy)
        };
        let close = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(p, q)| (p - q).abs() <= 1e-12 * (1.0 + q.abs()))
        };
        let (dt, scale) = (0.01, 0.03);
        let (gx, gy) = grad(&x0, &y0);
        let (mut hx, mut hy) = (vec![0.0; n_f], vec![0.0; n_s]);
        v.hess_vec(&x0, &y0, xi_x, xi_y, &mut hx, &mut hy);
        let mut lam = vec![0.0; n_s];
        v.lambdas(&x0, &mut lam);
        let z0: f64 = lam.iter().map(|l| l.ln()).sum();

        let (mut x, mut y) = (x0.clone(), y0.clone());
        let z = sc.step(RuleNd::HessLin { dt, scale }, &v, &mut x, &mut y);
        assert!((z - z0).abs() < 1e-12);
        let ex: Vec<f64> = (0..n_f)
            .map(|j| x0[j] - dt * gx[j] + scale * hx[j])
            .collect();
        let ey: Vec<f64> = (0..n_s)
            .map(|i| y0[i] - dt * gy[i] + scale * hy[i])
            .collect();
        assert!(close(&x, &ex) && close(&y, &ey), "HessLin");

        let (mut x, mut y) = (x0.clone(), y0.clone());
        sc.step(RuleNd::Iso { dt, scale }, &v, &mut x, &mut y);
        let ex: Vec<f64> = (0..n_f)
            .map(|j| x0[j] - dt * gx[j] + scale * xi_x[j])
            .collect();
        let ey: Vec<f64> = (0..n_s)
            .map(|i| y0[i] - dt * gy[i] + scale * xi_y[i])
            .collect();
        assert!(close(&x, &ex) && close(&y, &ey), "Iso");

        let (mut x, mut y) = (x0.clone(), y0.clone());
        sc.step(RuleNd::Gd { eta: dt }, &v, &mut x, &mut y);
        let ex: Vec<f64> = (0..n_f).map(|j| x0[j] - dt * gx[j]).collect();
        let ey: Vec<f64> = (0..n_s).map(|i| y0[i] - dt * gy[i]).collect();
        assert!(close(&x, &ex) && close(&y, &ey), "Gd");

        let (mut x, mut y) = (x0.clone(), y0.clone());
        let z = sc.step(RuleNd::ExactShift { eta: dt, s: scale }, &v, &mut x, &mut y);
        assert!((z - z0).abs() < 1e-12);
        let xs: Vec<f64> = (0..n_f).map(|j| x0[j] - scale * xi_x[j]).collect();
        let ys: Vec<f64> = (0..n_s).map(|i| y0[i] - scale * xi_y[i]).collect();
        let (gsx, gsy) = grad(&xs, &ys);
        let ex: Vec<f64> = (0..n_f).map(|j| x0[j] - dt * gsx[j]).collect();
        let ey: Vec<f64> = (0..n_s).map(|i| y0[i] - dt * gsy[i]).collect();
        assert!(close(&x, &ex) && close(&y, &ey), "ExactShift");
    }
}
