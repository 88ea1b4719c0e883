//! Feeding the network back into the 2-D model (issue 14, item 5): from what is measured at
//! the common start of the manifold protocol — tr H, tr C, η, B, the top eigenpairs of H and the
//! gradient of tr H along the solution manifold — build the valley and the noise strength Δ_S of
//! the 2-D FP model, run it, and predict the drift of F and tr H per update; then set that next
//! to the network's measured rates.
//!
//! Mapping (docs/network.md, "Feeding the network back into the FP model"):
//! - noise shape γ = 1 (C ∝ H): exact for label noise, C = δ² G / B with G = H on the manifold;
//!   for minibatch SGD the γ measured on the paper network is 1.1, and the trace is matched;
//! - Δ_S from the per-update covariance, η² C = 2ηΔ_S H (Eq. 7, time t = nη), traced:
//!   Δ_S = η tr C / (2 tr H); label noise: Δ_S = η δ² / (2B);
//! - the valley: x is the arclength along the manifold in the direction of its tr H gradient
//!   g_T = P_T ∇tr H (P_T the projector on the tangent space, the null space of the output
//!   Jacobian J), the sharp curvature is λ(x) = tr H (with γ = 1 every sharp direction holds
//!   ⟨y_i²⟩ = Δ_S whatever its λ_i, so one direction of curvature tr H carries the whole drift
//!   ½Δ_S Σ_i ∇λ_i = ½Δ_S ∇tr H), and λ'(x_0) = |g_T|: λ(x) = λ0 + λ1 x² with
//!   2λ1 x_0 = |g_T|, λ(x_0) = tr H;
//! - the model's drift dx/dt (FP transient, and the closed form −½Δ_S λ'(x_0)) gives per update
//!   d tr H/dn = η λ'(x_0) dx/dt and dF/dn = η (dx/dt) (∇F · g_T)/|g_T|.
//!
//! ∇tr H = E_z[∇(zᵀHz)] with Rademacher z and ∇(zᵀHz) = (H(θ+hz) − H(θ−hz)) z / 2h (exact
//! HVPs, central difference of the third derivative); |g_T|² is the unbiased estimate
//! (‖Σ_i a_i‖² − Σ_i ‖a_i‖²) / (G(G − 1)) from G independent group means a_i of P_T ∇(zᵀHz).
//! ∇λ_i = (H(θ+hu_i) − H(θ−hu_i)) u_i / 2h for the top eigenvectors u_i (Lanczos), and
//! ∇F = −(F/2k) Σ_{i≤k} ∇λ_i/λ_i.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

use super::curvature::{flatness, lanczos_top_vectors, symmetric_eigen};
use super::data::Batch;
use super::mlp::{Mlp, map_chunks};
use super::train::stream_seed;
use crate::config::AxisConfig;
use crate::landscape::Valley2d;
use crate::noise::Noise;

/// Step h of the central differences of Hessian-vector products (‖u‖ = 1; probes ‖z‖ = √P).
pub const FD_STEP: f64 = 1e-4;
/// Groups of probes for the unbiased |g_T|² estimate.
pub const GROUPS: usize = 8;
/// Rademacher probes per group.
pub const PROBES_PER_GROUP: usize = 25;
/// Largest M·K for which the output Jacobian is formed.
pub const MAX_JACOBIAN_ROWS: usize = 4000;
/// Relative cut-off of the eigenvalues of J Jᵀ kept in the normal space.
const RANK_CUTOFF: f64 = 1e-10;
/// Stream of the probes of ∇tr H.
const STREAM_GRAD_PROBES: u64 = 5;
/// Stream of the Lanczos start vector of the eigenvectors.
const STREAM_VECTORS: u64 = 6;
/// Top eigenpairs in the finite-η correction.
pub const DISCRETE_DIRECTIONS: usize = 20;
/// Cells of the FP grid in x and y.
const FP_CELLS: (usize, usize) = (160, 80);
/// Half-width of the FP x-domain relative to x_0.
const FP_HALF_WIDTH: f64 = 0.05;
/// FP time steps.
const FP_STEPS: usize = 80;

/// What is measured at the common start of one seed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StartGeometry {
    /// tr H (as given: exact or Hutchinson).
    pub trace_h: f64,
    /// The top eigenvalues of H (Lanczos), decreasing (the first `flatness_top` give F).
    pub top_eigenvalues: Vec<f64>,
    /// Flatness F of those.
    pub flatness: Option<f64>,
    /// Dimension of the normal space (rank of J kept).
    pub normal_rank: usize,
    /// |P_T ∇tr H|² (unbiased group estimate).
    pub grad_trace_h_tangent_sq: f64,
    /// |∇tr H|² before the projection (same estimator): the normal part is not a drift.
    pub grad_trace_h_sq: f64,
    /// ∇F · P_T ∇tr H.
    pub flatness_slope: f64,
    /// λ'(x_0) = |P_T ∇tr H| of the valley.
    pub lambda_slope: f64,
    /// Finite-η correction (Eq. 7 map): ⟨g_T, P_T Σ_i c_i ∇λ_i⟩ over the top eigenpairs,
    /// c_i = (ηλ_i/2)/(1 − ηλ_i/2), the excess of ⟨y_i²⟩ = Δ_S/(1 − ηλ_i/2) over Δ_S.
    pub discrete_trace_h_slope: f64,
    /// The same correction of the flatness slope: ∇F · P_T Σ_i c_i ∇λ_i.
    pub discrete_flatness_slope: f64,
    /// Eigenpairs in the finite-η correction.
    pub discrete_directions: usize,
    /// x_0 of the valley λ(x) = λ0 + λ1 x².
    pub x0: f64,
    /// [λ0, λ1].
    pub lambda: [f64; 2],
}

/// The model's prediction for one noise at one seed, and what was measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RatePrediction {
    /// Δ_S = η tr C / (2 tr H).
    pub delta_s: f64,
    /// dx/dt of the closed form −½Δ_S λ'(x_0).
    pub theory_dx_dt: f64,
    /// dx/dt of the FP transient (slope of ⟨x⟩(t) over its second half); `None` until
    /// `study::feedback` has run it, or if it failed.
    pub fp_dx_dt: Option<f64>,
    /// Predicted dF/dn per update, continuous time (FP's dx/dt; the closed form before it ran).
    pub flatness_rate: f64,
    /// Predicted d tr H/dn per update, continuous time (as `flatness_rate`).
    pub trace_h_rate: f64,
    /// Predicted dF/dn with the finite-η correction of the top directions (closed form).
    pub discrete_flatness_rate: f64,
    /// Predicted d tr H/dn with the finite-η correction.
    pub discrete_trace_h_rate: f64,
    /// Measured dF/dn (see [`crate::network::manifold`]).
    pub measured_flatness_rate: Option<f64>,
    /// Measured d tr H/dn.
    pub measured_trace_h_rate: Option<f64>,
}

impl RatePrediction {
    /// (continuous-time prediction, finite-η prediction, measured) rates of the flatness F.
    pub fn flatness_rates(&self) -> (f64, f64, Option<f64>) {
        (
            self.flatness_rate,
            self.discrete_flatness_rate,
            self.measured_flatness_rate,
        )
    }

    /// (continuous-time prediction, finite-η prediction, measured) rates of −tr H (positive when
    /// it flattens).
    pub fn sharpness_decay_rates(&self) -> (f64, f64, Option<f64>) {
        (
            -self.trace_h_rate,
            -self.discrete_trace_h_rate,
            self.measured_trace_h_rate.map(|v| -v),
        )
    }
}

/// The feedback of one seed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeedFeedback {
    /// The seed.
    pub seed: u64,
    /// The start's geometry.
    pub geometry: StartGeometry,
    /// Label-noise SGD at the protocol's batch.
    pub label_noise: RatePrediction,
    /// Minibatch SGD at the protocol's batch.
    pub sgd: RatePrediction,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The orthonormal basis Q (P × r) of the normal space range(Jᵀ) of the manifold at θ.
fn normal_basis(mlp: &Mlp, theta: &[f64], data: Batch) -> Option<ndarray::Array2<f64>> {
    let parts = map_chunks(data, true, |c| mlp.output_jacobian(theta, c));
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let j = ndarray::concatenate(ndarray::Axis(0), &views).ok()?;
    let gram = j.dot(&j.t());
    let (vals, vecs) = symmetric_eigen(&gram, true);
    let v = vecs?;
    let top = vals
        .first()
        .copied()
        .filter(|x| x.is_finite() && *x > 0.0)?;
    let r = vals.iter().take_while(|&&s| s > RANK_CUTOFF * top).count();
    let mut q = j.t().dot(&v.slice(ndarray::s![.., ..r]));
    for (k, mut col) in q.columns_mut().into_iter().enumerate() {
        col /= vals[k].sqrt();
    }
    Some(q)
}

/// v ← v − Q Qᵀ v.
fn project_tangent(q: &ndarray::Array2<f64>, v: &mut [f64]) {
    let vv = ndarray::ArrayView1::from(&*v);
    let c = q.t().dot(&vv);
    let n = q.dot(&c);
    v.iter_mut().zip(n.iter()).for_each(|(a, b)| *a -= b);
}

/// (H(θ+hu) − H(θ−hu)) u / 2h = ∇(uᵀHu) (up to O(h²)).
fn third_contraction(mlp: &Mlp, theta: &[f64], data: Batch, u: &[f64]) -> Vec<f64> {
    let p = theta.len();
    let hvp_at = |sign: f64| {
        let t: Vec<f64> = theta
            .iter()
            .zip(u)
            .map(|(a, b)| a + sign * FD_STEP * b)
            .collect();
        let mut out = vec![0.0; p];
        mlp.hvp(&t, data, u, &mut out, false);
        out
    };
    let (a, b) = (hvp_at(1.0), hvp_at(-1.0));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y) / (2.0 * FD_STEP))
        .collect()
}

/// Measure the start's geometry: normal space, P_T ∇tr H, ∇F and the valley. `None` when the
/// Jacobian is too large or rank-deficient to zero.
#[allow(clippy::too_many_arguments)]
pub fn measure_start(
    mlp: &Mlp,
    theta: &[f64],
    data: Batch,
    trace_h: f64,
    eta: f64,
    top: usize,
    lanczos_steps: usize,
    seed: u64,
) -> Option<StartGeometry> {
    let k_out = mlp.sizes()[mlp.n_layers()];
    if data.len() * k_out > MAX_JACOBIAN_ROWS {
        return None;
    }
    let p = mlp.n_params();
    let q = normal_basis(mlp, theta, data)?;
    // Probes, drawn in order, evaluated in parallel, summed in order per group.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, STREAM_GRAD_PROBES));
    let probes = super::curvature::rademacher_probes(&mut rng, GROUPS * PROBES_PER_GROUP, p);
    let contractions: Vec<Vec<f64>> = probes
        .par_iter()
        .map(|z| third_contraction(mlp, theta, data, z))
        .collect();
    let mut raw = Vec::with_capacity(GROUPS);
    let mut tangent = Vec::with_capacity(GROUPS);
    for g in 0..GROUPS {
        let mut a = vec![0.0; p];
        for c in &contractions[g * PROBES_PER_GROUP..(g + 1) * PROBES_PER_GROUP] {
            a.iter_mut().zip(c).for_each(|(x, y)| *x += y);
        }
        a.iter_mut().for_each(|x| *x /= PROBES_PER_GROUP as f64);
        let mut t = a.clone();
        project_tangent(&q, &mut t);
        raw.push(a);
        tangent.push(t);
    }
    let unbiased_sq = |parts: &[Vec<f64>]| {
        let mut sum = vec![0.0; p];
        let mut self_sq = 0.0;
        for a in parts {
            sum.iter_mut().zip(a).for_each(|(x, y)| *x += y);
            self_sq += dot(a, a);
        }
        let g = parts.len() as f64;
        let mean: Vec<f64> = sum.iter().map(|x| x / g).collect();
        ((dot(&sum, &sum) - self_sq) / (g * (g - 1.0)), mean)
    };
    let (g_t_sq, g_t) = unbiased_sq(&tangent);
    let (g_sq, _) = unbiased_sq(&raw);
    // ∇F from the top eigenpairs.
    let pairs = top.max(DISCRETE_DIRECTIONS);
    let hess = mlp.hvp_operator(theta, data, false);
    let (values, vectors) = lanczos_top_vectors(
        p,
        pairs,
        lanczos_steps.max(3 * pairs),
        stream_seed(seed, STREAM_VECTORS),
        |v, out| hess.apply(v, out),
    );
    let top = top.min(values.len());
    let f = flatness(&values[..top]);
    let grads: Vec<Vec<f64>> = vectors
        .par_iter()
        .map(|u| third_contraction(mlp, theta, data, u))
        .collect();
    let k = top as f64;
    let mut grad_f = vec![0.0; p];
    for (gl, &l) in grads.iter().zip(&values).take(top) {
        grad_f.iter_mut().zip(gl).for_each(|(x, y)| *x += y / l);
    }
    let mut excess = vec![0.0; p];
    for (gl, &l) in grads.iter().zip(&values) {
        let a = 0.5 * eta * l;
        let c = if a < 1.0 { a / (1.0 - a) } else { f64::NAN };
        excess.iter_mut().zip(gl).for_each(|(x, y)| *x += c * y);
    }
    project_tangent(&q, &mut excess);
    let scale = -f.unwrap_or(f64::NAN) / (2.0 * k);
    grad_f.iter_mut().for_each(|x| *x *= scale);
    let discrete_trace_h_slope = dot(&g_t, &excess);
    let discrete_flatness_slope = dot(&grad_f, &excess);
    let slope = g_t_sq.max(0.0).sqrt();
    // λ(x) = λ0 + λ1 x², λ(x_0) = tr H, λ'(x_0) = slope, λ0 > 0.
    let x0 = if slope > 0.0 {
        (trace_h / slope).min(1.0)
    } else {
        1.0
    };
    let lambda1 = slope / (2.0 * x0);
    Some(StartGeometry {
        trace_h,
        discrete_directions: values.len(),
        top_eigenvalues: values,
        flatness: f,
        discrete_trace_h_slope,
        discrete_flatness_slope,
        normal_rank: q.ncols(),
        grad_trace_h_tangent_sq: g_t_sq,
        grad_trace_h_sq: g_sq,
        flatness_slope: dot(&grad_f, &g_t),
        lambda_slope: slope,
        x0,
        lambda: [trace_h - lambda1 * x0 * x0, lambda1],
    })
}

/// The FP transient that measures the model's drift: valley, Hessian noise (γ = 1), grid,
/// time stepping and a narrow initial Gaussian at (x_0, 0). The FP solver lives in a sibling
/// layer, so `study` runs it (`study::feedback`) and hands dx/dt back through
/// [`RatePrediction::set_dx_dt`].
#[derive(Debug, Clone, PartialEq)]
pub struct DriftProblem {
    /// λ(x) = λ0 + λ1 x², ε = 0.
    pub valley: Valley2d,
    /// D = Δ_S |H| (η, σ = Δ_S/η, γ = 1).
    pub noise: Noise,
    /// x-axis: x_0 ± 5 % of x_0.
    pub x: AxisConfig,
    /// y-axis: ±10 √Δ_S.
    pub y: AxisConfig,
    /// End time: a quarter of the x half-width at the closed-form speed.
    pub t_end: f64,
    /// Time step.
    pub dt: f64,
    /// Mean of the initial Gaussian.
    pub mean: [f64; 2],
    /// Its standard deviations.
    pub std: [f64; 2],
}

/// The FP transient for the valley of `geo` at noise Δ_S; `None` when there is no drift to
/// measure (Δ_S or the slope not positive).
pub fn drift_problem(geo: &StartGeometry, eta: f64, delta_s: f64) -> Option<DriftProblem> {
    let speed = 0.5 * delta_s * geo.lambda_slope;
    if !(speed > 0.0 && delta_s > 0.0 && speed.is_finite()) {
        return None;
    }
    let w = FP_HALF_WIDTH * geo.x0;
    let y_half = 10.0 * delta_s.sqrt();
    let t_end = 0.25 * w / speed;
    Some(DriftProblem {
        valley: Valley2d {
            epsilon: 0.0,
            lambda: geo.lambda.to_vec(),
        },
        noise: Noise::Hessian {
            eta,
            sigma: delta_s / eta,
            power: 1.0,
        },
        x: AxisConfig::new(geo.x0 - w, geo.x0 + w, FP_CELLS.0),
        y: AxisConfig::new(-y_half, y_half, FP_CELLS.1),
        t_end,
        dt: t_end / FP_STEPS as f64,
        mean: [geo.x0, 0.0],
        std: [0.05 * w, delta_s.sqrt()],
    })
}

/// Least-squares slope of ⟨x⟩ against t over the second half of a transient's (t, ⟨x⟩) rows.
pub fn late_slope(rows: &[(f64, f64)]) -> f64 {
    let half = &rows[rows.len() / 2..];
    if half.len() < 2 {
        return f64::NAN;
    }
    let n = half.len() as f64;
    let mt = half.iter().map(|p| p.0).sum::<f64>() / n;
    let mx = half.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = half.iter().map(|p| (p.0 - mt) * (p.1 - mx)).sum();
    let sxx: f64 = half.iter().map(|p| (p.0 - mt).powi(2)).sum();
    sxy / sxx
}

impl RatePrediction {
    /// Take the FP model's dx/dt and recompute the continuous-time rates per update.
    pub fn set_dx_dt(&mut self, geo: &StartGeometry, eta: f64, dx_dt: f64) {
        self.fp_dx_dt = Some(dx_dt);
        let g = geo.lambda_slope;
        self.flatness_rate = eta * dx_dt * geo.flatness_slope / g;
        self.trace_h_rate = eta * dx_dt * g;
    }
}

/// The model's prediction for noise of total trace `trace_c` at learning rate `eta`.
pub fn predict(geo: &StartGeometry, eta: f64, trace_c: f64) -> RatePrediction {
    let delta_s = eta * trace_c / (2.0 * geo.trace_h);
    let theory_dx_dt = -0.5 * delta_s * geo.lambda_slope;
    let mut out = RatePrediction {
        delta_s,
        theory_dx_dt,
        fp_dx_dt: None,
        flatness_rate: f64::NAN,
        trace_h_rate: f64::NAN,
        discrete_flatness_rate: -0.5
            * eta
            * delta_s
            * (geo.flatness_slope + geo.discrete_flatness_slope),
        discrete_trace_h_rate: -0.5
            * eta
            * delta_s
            * (geo.grad_trace_h_tangent_sq + geo.discrete_trace_h_slope),
        measured_flatness_rate: None,
        measured_trace_h_rate: None,
    };
    // Closed form until the FP's dx/dt replaces it (`study::feedback`).
    out.set_dx_dt(geo, eta, theory_dx_dt);
    out.fp_dx_dt = None;
    out
}
