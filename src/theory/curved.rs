//! Curved valleys of minima: the valley floor Γ of any [`Loss2d`] and the reduced 1-D theory
//! along its arclength s, generalising Eqs. (11)–(14) (docs/theory.md, "Curved valleys").
//!
//! **The floor Γ.** A point lies on Γ when the gradient has no component along the sharp
//! eigenvector v_h of H (∇L·v_h = 0): the curve of minima when the valley is degenerate, the
//! valley floor when a small ε tilts it. [`trace_valley`] follows it by a predictor along the
//! soft eigenvector and a Newton corrector along the sharp one, then measures arclength,
//! tangent, curvature κ_Γ and dκ_Γ/ds by finite differences along the traced points.
//!
//! **The reduced theory.** In tubular coordinates θ = Γ(s) + n N(s) (T' = κ_Γ N, N' = −κ_Γ T,
//! metric factor j = 1 − κ_Γ n) Itô's formula gives the SDE of (s, n):
//!
//!   A^s = −T·∇L / j + 2κ_Γ D_TN / j² + κ_Γ' n D_TT / j³,   B^ss = D_TT / j²,
//!   A^n = −N·∇L − κ_Γ D_TT / j,                            B^nn = D_NN,
//!
//! (D_TT = TᵀDT etc. at θ). At frozen s the fast n has the zero-flux law
//! ρ(n|s) ∝ (1/B^nn) exp(∫₀ⁿ A^n/B^nn dn'); integrating the FP over n gives
//! ∂t p = ∂s[b p + ∂s(a p)], b = −⟨A^s⟩_n, a = ⟨B^ss⟩_n, so p(s) ∝ (1/a) exp(−∫₀^s b/a).
//! On the straight valley (κ_Γ = 0, T = x̂, N = ŷ) this is term by term the `reduced` level; for
//! isotropic constant noise it is exact: ρ(n|s) = j e^{−L/T} / Z(s) and p(s) = ∫ j e^{−L/T} dn.
//!
//! Layout: a [`ValleyCurve`] is a table over its nodes (index k, s increasing); points between
//! nodes are interpolated by 6-point Lagrange polynomials in s.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::quad;
use crate::landscape::Loss2d;
use crate::noise::{Mat2, Noise};

/// Newton corrector: stop once the step is below this times (1 + |θ|), then polish twice more.
pub const NEWTON_TOL: f64 = 1e-12;
/// Newton corrector: give up after this many iterations.
pub const NEWTON_MAX_ITER: usize = 60;
/// Largest number of traced points (both directions together).
pub const MAX_TRACE_POINTS: usize = 2_000_000;
/// Fewest traced points for the finite-difference geometry (the stencils need [`STENCIL`]).
pub const MIN_TRACE_POINTS: usize = 7;
/// The fast law is integrated over |n| < REACH_FRACTION / |κ_Γ| on the concave side, where the
/// tubular coordinates stay one-to-one (j = 1 − κ_Γ n > 0).
pub const REACH_FRACTION: f64 = 0.9;
/// Quadrature steps per standard deviation σ(s) of n (each step also has a midpoint node).
pub const STEPS_PER_SIGMA: f64 = super::conditional::STEPS_PER_SIGMA;
/// The n-march stops once the density is below e^−LOG_CUTOFF of its value at n = 0.
pub const LOG_CUTOFF: f64 = super::conditional::LOG_CUTOFF;
/// Largest distance from n = 0, in σ(s), that an unbounded tube is integrated to.
pub const MAX_SIGMAS: f64 = super::conditional::MAX_SIGMAS;

/// Why the trace stopped at one end of Γ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStop {
    /// The next point would leave the box.
    Box,
    /// The requested arclength was reached.
    Length,
    /// The corrector did not converge, or H has no positive sharp eigenvalue (not a valley).
    Lost,
    /// [`MAX_TRACE_POINTS`] were traced.
    TooManyPoints,
}

/// Why the trace could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceError {
    /// The corrector did not converge from the start point (or H has no positive eigenvalue).
    StartNotInValley([f64; 2]),
    /// ds must be finite and > 0, the box non-empty and containing the start.
    BadInput(String),
    /// Fewer than [`MIN_TRACE_POINTS`] points before the trace stopped.
    TooShort(usize),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::StartNotInValley(p) => write!(
                f,
                "no valley floor found from ({}, {}): the Newton corrector along the sharp eigenvector did not converge",
                p[0], p[1]
            ),
            TraceError::BadInput(m) => write!(f, "{m}"),
            TraceError::TooShort(n) => write!(
                f,
                "the traced valley floor has only {n} points (needs {MIN_TRACE_POINTS}); use a smaller ds or a larger box"
            ),
        }
    }
}

impl std::error::Error for TraceError {}

/// The valley floor Γ in arclength parametrisation, tabulated on its traced nodes.
#[derive(Debug, Clone, Serialize)]
pub struct ValleyCurve {
    /// Arclength s (0 at the corrected start point, increasing along the orientation).
    pub s: Vec<f64>,
    /// x(s).
    pub x: Vec<f64>,
    /// y(s).
    pub y: Vec<f64>,
    /// Unit tangent T(s) = dθ/ds.
    pub tangent: Vec<[f64; 2]>,
    /// Signed curvature κ_Γ(s): dT/ds = κ_Γ N with the left normal N = (−T_y, T_x).
    pub curvature: Vec<f64>,
    /// dκ_Γ/ds.
    pub curvature_d1: Vec<f64>,
    /// Sharp (larger) eigenvalue λ(s) of H on Γ (the paper's λ(x), Eq. 8).
    pub lambda_sharp: Vec<f64>,
    /// Soft (smaller) eigenvalue of H on Γ.
    pub lambda_soft: Vec<f64>,
    /// L(s) on Γ.
    pub loss: Vec<f64>,
    /// Why the trace stopped at the s < 0 end and at the s > 0 end.
    pub stops: [TraceStop; 2],
}

/// A point of Γ with its Frenet frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Γ(s).
    pub point: [f64; 2],
    /// Unit tangent T.
    pub tangent: [f64; 2],
    /// Left unit normal N = (−T_y, T_x).
    pub normal: [f64; 2],
    /// κ_Γ(s).
    pub curvature: f64,
    /// dκ_Γ/ds.
    pub curvature_d1: f64,
}

/// Eigen-decomposition of a symmetric 2×2 matrix: (λ_sharp, λ_soft, v_sharp, v_soft).
#[inline]
fn eigen(h: Mat2) -> (f64, f64, [f64; 2], [f64; 2]) {
    let mean = 0.5 * (h[0][0] + h[1][1]);
    let half_diff = 0.5 * (h[0][0] - h[1][1]);
    let r = half_diff.hypot(h[0][1]);
    let phi = 0.5 * h[0][1].atan2(half_diff);
    let (sn, cs) = phi.sin_cos();
    (mean + r, mean - r, [cs, sn], [-sn, cs])
}

#[inline]
fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

#[inline]
fn quad_form(u: [f64; 2], m: Mat2, v: [f64; 2]) -> f64 {
    u[0] * (m[0][0] * v[0] + m[0][1] * v[1]) + u[1] * (m[1][0] * v[0] + m[1][1] * v[1])
}

/// Move `p` onto Γ by Newton steps along the sharp eigenvector: t ← t − (v_h·∇L)/λ_sharp.
///
/// `None` when H has no positive sharp eigenvalue on the way or the iteration does not settle.
pub fn correct_onto_floor(loss: &impl Loss2d, p: [f64; 2]) -> Option<[f64; 2]> {
    let mut p = p;
    let mut polish = 0;
    for _ in 0..NEWTON_MAX_ITER {
        let h = loss.hessian(p[0], p[1]);
        let (lam, _, vh, _) = eigen(h);
        if !(lam > 0.0 && lam.is_finite()) {
            return None;
        }
        let g = loss.gradient(p[0], p[1]);
        let dt = -dot(vh, g) / lam;
        if !dt.is_finite() {
            return None;
        }
        p = [p[0] + dt * vh[0], p[1] + dt * vh[1]];
        if dt.abs() <= NEWTON_TOL * (1.0 + p[0].hypot(p[1])) {
            polish += 1;
            if polish > 2 {
                return Some(p);
            }
        }
    }
    None
}

/// Trace the valley floor Γ through `start` in both directions with predictor step `ds`, inside
/// `bounds` = [[x_min, x_max], [y_min, y_max]] and up to arclength `max_length` on each side
/// (infinite allowed). The orientation (s increasing) is the soft eigenvector at the start with
/// a positive x component (positive y when it is vertical).
pub fn trace_valley(
    loss: &impl Loss2d,
    start: [f64; 2],
    bounds: [[f64; 2]; 2],
    ds: f64,
    max_length: f64,
) -> Result<ValleyCurve, TraceError> {
    if !(ds > 0.0 && ds.is_finite()) {
        return Err(TraceError::BadInput(format!(
            "ds must be finite and > 0, got {ds}"
        )));
    }
    if max_length.is_nan() || max_length <= 0.0 {
        return Err(TraceError::BadInput(format!(
            "max_length must be > 0, got {max_length}"
        )));
    }
    let inside = |p: [f64; 2]| {
        p[0] >= bounds[0][0] && p[0] <= bounds[0][1] && p[1] >= bounds[1][0] && p[1] <= bounds[1][1]
    };
    let p0 = correct_onto_floor(loss, start).ok_or(TraceError::StartNotInValley(start))?;
    if !inside(p0) {
        return Err(TraceError::BadInput(format!(
            "the floor point ({}, {}) found from the start lies outside the box {bounds:?}",
            p0[0], p0[1]
        )));
    }
    let (_, _, _, vs0) = eigen(loss.hessian(p0[0], p0[1]));
    let forward = if vs0[0] > 0.0 || (vs0[0] == 0.0 && vs0[1] > 0.0) {
        vs0
    } else {
        [-vs0[0], -vs0[1]]
    };
    let march = |dir: [f64; 2]| -> (Vec<[f64; 2]>, TraceStop) {
        let mut pts = Vec::new();
        let (mut p, mut d) = (p0, dir);
        let mut length = 0.0;
        loop {
            if pts.len() >= MAX_TRACE_POINTS / 2 {
                return (pts, TraceStop::TooManyPoints);
            }
            if length + 0.5 * ds > max_length {
                return (pts, TraceStop::Length);
            }
            // Predictor: a midpoint step along the soft eigenvector field, oriented along d.
            let soft = |q: [f64; 2], d: [f64; 2]| {
                let (_, _, _, v) = eigen(loss.hessian(q[0], q[1]));
                if dot(v, d) < 0.0 { [-v[0], -v[1]] } else { v }
            };
            let v1 = soft(p, d);
            let mid = [p[0] + 0.5 * ds * v1[0], p[1] + 0.5 * ds * v1[1]];
            let v2 = soft(mid, v1);
            let pred = [p[0] + ds * v2[0], p[1] + ds * v2[1]];
            let Some(q) = correct_onto_floor(loss, pred) else {
                return (pts, TraceStop::Lost);
            };
            if !inside(q) {
                return (pts, TraceStop::Box);
            }
            let step = [q[0] - p[0], q[1] - p[1]];
            let len = step[0].hypot(step[1]);
            if len.is_nan() || len <= 0.0 || dot(step, d) <= 0.0 {
                return (pts, TraceStop::Lost);
            }
            length += len;
            d = [step[0] / len, step[1] / len];
            pts.push(q);
            p = q;
        }
    };
    let (back, stop_back) = march([-forward[0], -forward[1]]);
    let (fwd, stop_fwd) = march(forward);
    let i0 = back.len();
    let pts: Vec<[f64; 2]> = back
        .into_iter()
        .rev()
        .chain(std::iter::once(p0))
        .chain(fwd)
        .collect();
    if pts.len() < MIN_TRACE_POINTS {
        return Err(TraceError::TooShort(pts.len()));
    }
    Ok(geometry(loss, &pts, i0, [stop_back, stop_fwd]))
}

/// Points of the finite-difference stencils along the node index (exact for polynomials of
/// degree STENCIL − 1; one-sided windows at the ends).
pub const STENCIL: usize = 7;

/// First and second derivatives along the node index by [`STENCIL`]-point Lagrange stencils.
fn index_derivatives(v: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = v.len();
    let m = STENCIL.min(n);
    let mut d1 = vec![0.0; n];
    let mut d2 = vec![0.0; n];
    // Weights for each position of the evaluation point inside the window.
    let weights: Vec<[Vec<f64>; 2]> = (0..m).map(|t| fornberg(t as f64, m)).collect();
    for k in 0..n {
        let j = k.saturating_sub(m / 2).min(n - m);
        let [c1, c2] = &weights[k - j];
        d1[k] = (0..m).map(|i| c1[i] * v[j + i]).sum();
        d2[k] = (0..m).map(|i| c2[i] * v[j + i]).sum();
    }
    (d1, d2)
}

/// Fornberg's weights of the first and second derivative at `t` of the Lagrange polynomial
/// through the nodes 0, 1, …, m − 1.
fn fornberg(t: f64, m: usize) -> [Vec<f64>; 2] {
    // c[d][j]: weight of node j for the d-th derivative, d = 0..=2.
    let mut c = vec![vec![0.0; m]; 3];
    c[0][0] = 1.0;
    let mut c1 = 1.0;
    let mut c4 = -t;
    for i in 1..m {
        let zi = i as f64;
        let mn = i.min(2);
        let mut c2 = 1.0;
        let c5 = c4;
        c4 = zi - t;
        for j in 0..i {
            let c3 = zi - j as f64;
            c2 *= c3;
            if j == i - 1 {
                for d in (1..=mn).rev() {
                    c[d][i] = c1 * (d as f64 * c[d - 1][i - 1] - c5 * c[d][i - 1]) / c2;
                }
                c[0][i] = -c1 * c5 * c[0][i - 1] / c2;
            }
            for d in (1..=mn).rev() {
                c[d][j] = (c4 * c[d][j] - d as f64 * c[d - 1][j]) / c3;
            }
            c[0][j] = c4 * c[0][j] / c3;
        }
        c1 = c2;
    }
    [c[1].clone(), c[2].clone()]
}

/// Arclength, tangent, curvature and dκ/ds of the traced points (start at index `i0`).
fn geometry(loss: &impl Loss2d, pts: &[[f64; 2]], i0: usize, stops: [TraceStop; 2]) -> ValleyCurve {
    let n = pts.len();
    let x: Vec<f64> = pts.iter().map(|p| p[0]).collect();
    let y: Vec<f64> = pts.iter().map(|p| p[1]).collect();
    let (x1, x2) = index_derivatives(&x);
    let (y1, y2) = index_derivatives(&y);
    let speed: Vec<f64> = (0..n).map(|k| x1[k].hypot(y1[k])).collect();
    // s(k) = ∫ |θ'(k)| dk: 4th-order rule per interval (−f₋₁ + 13f₀ + 13f₁ − f₂)/24, one-sided
    // (9f₀ + 19f₁ − 5f₂ + f₃)/24 at the ends.
    let mut s = vec![0.0; n];
    for k in 0..n - 1 {
        let inc = if k == 0 {
            (9.0 * speed[0] + 19.0 * speed[1] - 5.0 * speed[2] + speed[3]) / 24.0
        } else if k == n - 2 {
            (9.0 * speed[k + 1] + 19.0 * speed[k] - 5.0 * speed[k - 1] + speed[k - 2]) / 24.0
        } else {
            (-speed[k - 1] + 13.0 * speed[k] + 13.0 * speed[k + 1] - speed[k + 2]) / 24.0
        };
        s[k + 1] = s[k] + inc;
    }
    let s0 = s[i0];
    s.iter_mut().for_each(|v| *v -= s0);
    let tangent: Vec<[f64; 2]> = (0..n)
        .map(|k| [x1[k] / speed[k], y1[k] / speed[k]])
        .collect();
    let curvature: Vec<f64> = (0..n)
        .map(|k| (x1[k] * y2[k] - y1[k] * x2[k]) / speed[k].powi(3))
        .collect();
    let (k1, _) = index_derivatives(&curvature);
    let curvature_d1: Vec<f64> = (0..n).map(|k| k1[k] / speed[k]).collect();
    let mut lambda_sharp = Vec::with_capacity(n);
    let mut lambda_soft = Vec::with_capacity(n);
    let mut l = Vec::with_capacity(n);
    for p in pts {
        let (a, b, _, _) = eigen(loss.hessian(p[0], p[1]));
        lambda_sharp.push(a);
        lambda_soft.push(b);
        l.push(loss.loss(p[0], p[1]));
    }
    ValleyCurve {
        s,
        x,
        y,
        tangent,
        curvature,
        curvature_d1,
        lambda_sharp,
        lambda_soft,
        loss: l,
        stops,
    }
}

/// Points of the 6-point Lagrange interpolation in s.
const INTERP_POINTS: usize = 6;

impl ValleyCurve {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.s.len()
    }

    /// Whether the curve has no nodes.
    pub fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    /// The arclength range [s_min, s_max].
    pub fn s_range(&self) -> (f64, f64) {
        (self.s[0], self.s[self.s.len() - 1])
    }

    /// Total traced arclength.
    pub fn length(&self) -> f64 {
        let (a, b) = self.s_range();
        b - a
    }

    /// Lagrange weights of the nodes around `s` (first node index and weights).
    fn weights(&self, s: f64) -> (usize, [f64; INTERP_POINTS]) {
        let n = self.s.len();
        let k = self.s.partition_point(|&v| v <= s).saturating_sub(1);
        let j = k
            .saturating_sub(INTERP_POINTS / 2 - 1)
            .min(n.saturating_sub(INTERP_POINTS));
        let mut w = [0.0; INTERP_POINTS];
        let m = INTERP_POINTS.min(n);
        for (a, wa) in w.iter_mut().enumerate().take(m) {
            let mut v = 1.0;
            for b in 0..m {
                if b != a {
                    v *= (s - self.s[j + b]) / (self.s[j + a] - self.s[j + b]);
                }
            }
            *wa = v;
        }
        (j, w)
    }

    /// Γ(s) with its frame, interpolated between nodes (s is clamped into the traced range).
    pub fn frame(&self, s: f64) -> Frame {
        let (lo, hi) = self.s_range();
        let s = s.clamp(lo, hi);
        let (j, w) = self.weights(s);
        let m = INTERP_POINTS.min(self.s.len());
        let mut v = [0.0; 6];
        for (a, &wa) in w.iter().enumerate().take(m) {
            let k = j + a;
            v[0] += wa * self.x[k];
            v[1] += wa * self.y[k];
            v[2] += wa * self.tangent[k][0];
            v[3] += wa * self.tangent[k][1];
            v[4] += wa * self.curvature[k];
            v[5] += wa * self.curvature_d1[k];
        }
        let tn = v[2].hypot(v[3]);
        let t = [v[2] / tn, v[3] / tn];
        Frame {
            point: [v[0], v[1]],
            tangent: t,
            normal: [-t[1], t[0]],
            curvature: v[4],
            curvature_d1: v[5],
        }
    }

    /// The nearest point of Γ to θ, as (s, n): θ ≈ Γ(s) + n N(s). `None` when the foot of the
    /// normal falls beyond an end of the traced curve.
    pub fn project(&self, theta: [f64; 2]) -> Option<(f64, f64)> {
        let k = (0..self.s.len())
            .min_by(|&a, &b| {
                let da = (self.x[a] - theta[0]).hypot(self.y[a] - theta[1]);
                let db = (self.x[b] - theta[0]).hypot(self.y[b] - theta[1]);
                da.total_cmp(&db)
            })
            .unwrap_or(0);
        self.project_from(theta, self.s[k])
    }

    /// [`ValleyCurve::project`] starting the Newton iteration at arclength `s0` (a guess near
    /// the foot of the normal; O(1) instead of a search over the nodes).
    pub fn project_from(&self, theta: [f64; 2], s0: f64) -> Option<(f64, f64)> {
        let (lo, hi) = self.s_range();
        let mut s = s0;
        for _ in 0..8 {
            let f = self.frame(s);
            let d = [theta[0] - f.point[0], theta[1] - f.point[1]];
            let n = dot(d, f.normal);
            let j = 1.0 - f.curvature * n;
            if j <= 0.0 {
                return None;
            }
            s = (s + dot(d, f.tangent) / j).clamp(lo, hi);
        }
        let f = self.frame(s);
        let d = [theta[0] - f.point[0], theta[1] - f.point[1]];
        let along = dot(d, f.tangent);
        // At a clamped end the foot of the normal lies beyond the curve.
        (along.abs() <= 1e-9 * (1.0 + d[0].hypot(d[1]))).then(|| (s, dot(d, f.normal)))
    }
}

/// The diffusion tensor D(θ) of `noise` on any [`Loss2d`] (docs/reference.md §1.3):
/// `Noise::diffusion` with the Hessian taken from `loss`.
#[inline]
pub fn diffusion_at(noise: &Noise, loss: &impl Loss2d, x: f64, y: f64) -> Mat2 {
    noise.diffusion(loss, x, y)
}

/// The noise scale that turns −ln p into an effective loss: Δ_S (Hessian), T (isotropic), Δ
/// (anisotropic), ½ tr D (constant).
pub fn noise_scale(noise: &Noise) -> f64 {
    match *noise {
        Noise::Anisotropic { delta, .. } => delta,
        Noise::Hessian { eta, sigma, .. } => eta * sigma,
        Noise::Isotropic { temperature } => temperature,
        Noise::Constant { d } => 0.5 * (d[0][0] + d[1][1]),
    }
}

/// Which law of the normal coordinate n at frozen s the averages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalLaw {
    /// The exact zero-flux law of n with the metric (Itô) terms: the `reduced` level along Γ.
    Exact,
    /// The paper's Gaussian N(0, Δ(s)/λ(s)) (Eq. 11 across Γ), Δ(s) = D_NN on Γ.
    Gaussian,
}

/// Itô drift and diffusion of (s, n) at θ = Γ(s) + n N(s).
#[derive(Debug, Clone, Copy)]
struct Local {
    a_s: f64,
    b_ss: f64,
    a_n: f64,
    b_nn: f64,
}

#[inline]
fn local(loss: &impl Loss2d, noise: &Noise, f: &Frame, n: f64) -> Local {
    let th = [f.point[0] + n * f.normal[0], f.point[1] + n * f.normal[1]];
    let g = loss.gradient(th[0], th[1]);
    let d = diffusion_at(noise, loss, th[0], th[1]);
    let (t, nn, k) = (f.tangent, f.normal, f.curvature);
    let j = 1.0 - k * n;
    let d_tt = quad_form(t, d, t);
    let d_tn = quad_form(t, d, nn);
    let d_nn = quad_form(nn, d, nn);
    Local {
        a_s: -dot(t, g) / j + 2.0 * k * d_tn / (j * j) + f.curvature_d1 * n * d_tt / (j * j * j),
        b_ss: d_tt / (j * j),
        a_n: -dot(nn, g) - k * d_tt / j,
        b_nn: d_nn,
    }
}

/// Averages over the law of n at one s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NormalMoments {
    /// b(s) = −⟨A^s⟩_n, the averaged drift down the valley floor (Eq. 13's ∂x L generalised).
    pub drift: f64,
    /// a(s) = ⟨B^ss⟩_n = ⟨D_TT / j²⟩_n, the noise strength along Γ.
    pub along: f64,
    /// Δ(s) = D_NN on Γ, the noise strength across Γ.
    pub across: f64,
    /// λ(s) = NᵀHN on Γ, the curvature across Γ.
    pub lambda: f64,
    /// ⟨n⟩_s.
    pub mean_n: f64,
    /// ⟨n²⟩_s.
    pub mean_n2: f64,
    /// True when an unbounded tube was cut at [`MAX_SIGMAS`] with the density still above the cutoff.
    pub tail_truncated: bool,
}

impl NormalMoments {
    /// κ(s) ≡ Δ(s)/a(s), the effective anisotropy (paper, before Eq. 13).
    pub fn kappa(&self) -> f64 {
        self.across / self.along
    }
}

#[derive(Default)]
struct Sums {
    z: f64,
    a_s: f64,
    b_ss: f64,
    n1: f64,
    n2: f64,
}

/// The averages over the law of n at the frame `f`, with n in `tube` (infinite ends allowed;
/// further limited to |n| < [`REACH_FRACTION`]/|κ_Γ| on the concave side). `None` when the law
/// does not exist (λ(s) ≤ 0, D_NN ≤ 0 on the way, non-finite values).
pub fn normal_moments(
    loss: &impl Loss2d,
    noise: &Noise,
    f: &Frame,
    tube: (f64, f64),
    law: NormalLaw,
) -> Option<NormalMoments> {
    let (mut lo, mut hi) = tube;
    if lo.is_nan() || hi.is_nan() || lo > 0.0 || hi < 0.0 {
        return None;
    }
    if f.curvature > 0.0 {
        hi = hi.min(REACH_FRACTION / f.curvature);
    } else if f.curvature < 0.0 {
        lo = lo.max(REACH_FRACTION / f.curvature);
    }
    let h = loss.hessian(f.point[0], f.point[1]);
    let lam = quad_form(f.normal, h, f.normal);
    if !(lam > 0.0 && lam.is_finite()) {
        return None;
    }
    let c0 = local(loss, noise, f, 0.0);
    let delta = c0.b_nn;
    if !(delta.is_finite() && delta >= 0.0) {
        return None;
    }
    let sigma = (delta / lam).sqrt();
    if sigma == 0.0 || lo == hi {
        return Some(NormalMoments {
            drift: -c0.a_s,
            along: c0.b_ss,
            across: delta,
            lambda: lam,
            mean_n: 0.0,
            mean_n2: 0.0,
            tail_truncated: false,
        });
    }
    if law == NormalLaw::Exact && (c0.b_nn.is_nan() || c0.b_nn <= 0.0) {
        return None;
    }
    let bnn0 = c0.b_nn;
    let cutoff = (-LOG_CUTOFF).exp();
    let h0 = sigma / STEPS_PER_SIGMA;
    let max_steps = (MAX_SIGMAS * STEPS_PER_SIGMA) as usize;
    let mut sums = Sums::default();
    let mut truncated = false;
    // Weights w = (B^nn(0)/B^nn(n)) exp(−∫q) as values (one exp per node, no logarithm).
    let add = |sums: &mut Sums, weight: f64, w: f64, n: f64, c: &Local| {
        let ww = weight * w;
        sums.z += ww;
        sums.a_s += ww * c.a_s;
        sums.b_ss += ww * c.b_ss;
        sums.n1 += ww * n;
        sums.n2 += ww * n * n;
    };
    for dir in [1.0_f64, -1.0] {
        let bound = if dir > 0.0 { hi } else { -lo };
        if bound <= 0.0 {
            continue;
        }
        let (step, steps, aligned) = if bound.is_finite() && bound / h0 <= max_steps as f64 {
            let m = (bound / h0).ceil().max(1.0);
            (bound / m, m as usize, true)
        } else {
            (h0, max_steps, false)
        };
        let (mut n0, mut c_0) = (0.0, c0);
        let mut q0 = -c0.a_n / c0.b_nn;
        let (mut e0, mut w0) = (0.0, 1.0_f64);
        let mut reached = false;
        for k in 0..steps {
            let nm = dir * (k as f64 + 0.5) * step;
            let n1 = dir * (k as f64 + 1.0) * step;
            let cm = local(loss, noise, f, nm);
            let c1 = local(loss, noise, f, n1);
            let (wm, w1, q1, e1) = match law {
                NormalLaw::Gaussian => {
                    let g = |n: f64| (-n * n / (2.0 * sigma * sigma)).exp();
                    (g(nm), g(n1), 0.0, 0.0)
                }
                NormalLaw::Exact => {
                    if !(cm.b_nn > 0.0 && c1.b_nn > 0.0) {
                        return None;
                    }
                    let qm = -cm.a_n / cm.b_nn;
                    let q1 = -c1.a_n / c1.b_nn;
                    // Quadratic through (q0, qm, q1): ∫ to the midpoint and to the end.
                    let em = e0 + dir * step / 24.0 * (5.0 * q0 + 8.0 * qm - q1);
                    let e1 = e0 + dir * step / 6.0 * (q0 + 4.0 * qm + q1);
                    (
                        bnn0 / cm.b_nn * (-em).exp(),
                        bnn0 / c1.b_nn * (-e1).exp(),
                        q1,
                        e1,
                    )
                }
            };
            add(&mut sums, step / 6.0, w0, n0, &c_0);
            add(&mut sums, 4.0 * step / 6.0, wm, nm, &cm);
            add(&mut sums, step / 6.0, w1, n1, &c1);
            n0 = n1;
            c_0 = c1;
            q0 = q1;
            e0 = e1;
            w0 = w1;
            if w1 < cutoff {
                reached = true;
                break;
            }
        }
        if !aligned && !reached {
            truncated = true;
        }
    }
    if !(sums.z > 0.0 && sums.z.is_finite()) {
        return None;
    }
    let m = NormalMoments {
        drift: -sums.a_s / sums.z,
        along: sums.b_ss / sums.z,
        across: delta,
        lambda: lam,
        mean_n: sums.n1 / sums.z,
        mean_n2: sums.n2 / sums.z,
        tail_truncated: truncated,
    };
    (m.drift.is_finite() && m.along.is_finite()).then_some(m)
}

/// Why the theory along Γ could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum CurvedError {
    /// The s-points must be uniform, at least two, and inside the traced arclength range.
    BadPoints(String),
    /// The law of n does not exist at s (λ(s) ≤ 0 or D_NN ≤ 0 there).
    NoNormalLaw(f64),
    /// No noise along Γ at s (a(s) = 0): the density is a point mass; no 1-D theory.
    NoNoiseAlong(f64),
}

impl std::fmt::Display for CurvedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CurvedError::BadPoints(m) => write!(f, "{m}"),
            CurvedError::NoNormalLaw(s) => write!(
                f,
                "no stationary law across the valley floor at s = {s} (λ(s) ≤ 0 or D_NN ≤ 0)"
            ),
            CurvedError::NoNoiseAlong(s) => write!(
                f,
                "no noise along the valley floor at s = {s} (⟨D_TT⟩ = 0): the density is a point mass"
            ),
        }
    }
}

impl std::error::Error for CurvedError {}

/// The reduced 1-D theory along Γ on a list of s-points (Eqs. 11–14 along arclength).
#[derive(Debug, Clone, Serialize)]
pub struct CurvedTheory {
    /// The s-points.
    pub s: Vec<f64>,
    /// x(s) on Γ.
    pub x: Vec<f64>,
    /// y(s) on Γ.
    pub y: Vec<f64>,
    /// κ_Γ(s).
    pub curvature: Vec<f64>,
    /// λ(s) = NᵀHN on Γ (the sharp eigenvalue on a curve of minima).
    pub lambda: Vec<f64>,
    /// L on Γ.
    pub loss: Vec<f64>,
    /// Δ(s) = D_NN on Γ, the noise strength across Γ.
    pub delta_across: Vec<f64>,
    /// a(s) = ⟨D_TT/j²⟩_n, the noise strength along Γ.
    pub delta_along: Vec<f64>,
    /// κ(s) = Δ(s)/a(s), the effective anisotropy.
    pub kappa: Vec<f64>,
    /// b(s) = −⟨A^s⟩_n, the averaged drift (positive: towards smaller s… pointing down the slope).
    pub drift: Vec<f64>,
    /// ⟨n⟩_s, the mean offset from Γ (positive on the left of the orientation).
    pub mean_n: Vec<f64>,
    /// The stationary density p(s), Σ p Δs = 1 on the points.
    pub density: Vec<f64>,
    /// L_eff(s) = −[`noise_scale`] · ln p(s), 0 at its minimum (Eq. 12 along Γ).
    pub l_eff: Vec<f64>,
    /// Which law of n was used.
    pub law: NormalLaw,
    /// Whether some law of n was cut at [`MAX_SIGMAS`] with its density still above the cutoff.
    pub tail_truncated: bool,
}

/// The reduced theory along Γ on the uniform points `s_points` (e.g. cell centres), with n in
/// `tube` (infinite ends allowed): p(s) ∝ (1/a) exp(−∫₀^s b/a ds'), cumulative Simpson from s = 0.
pub fn solve(
    loss: &impl Loss2d,
    noise: &Noise,
    curve: &ValleyCurve,
    s_points: &[f64],
    tube: (f64, f64),
    law: NormalLaw,
) -> Result<CurvedTheory, CurvedError> {
    let (lo, hi) = curve.s_range();
    if s_points.len() < 2 {
        return Err(CurvedError::BadPoints(
            "needs at least two s-points".to_string(),
        ));
    }
    let first = s_points[0];
    let last = s_points[s_points.len() - 1];
    if !(first.min(last) >= lo && first.max(last) <= hi) {
        return Err(CurvedError::BadPoints(format!(
            "s-points [{first}, {last}] must lie inside the traced range [{lo}, {hi}]"
        )));
    }
    let eval = |s: f64| -> Result<(NormalMoments, f64), CurvedError> {
        let f = curve.frame(s);
        let m = normal_moments(loss, noise, &f, tube, law).ok_or(CurvedError::NoNormalLaw(s))?;
        if m.along.is_nan() || m.along <= 0.0 {
            return Err(CurvedError::NoNoiseAlong(s));
        }
        Ok((m, m.drift / m.along))
    };
    let st = quad::evaluate(s_points, eval);
    let st = quad::Staggered {
        zero: st.zero?,
        anchor_half: st.anchor_half?,
        nodes: st.nodes.into_iter().collect::<Result<Vec<_>, _>>()?,
        mids: st.mids.into_iter().collect::<Result<Vec<_>, _>>()?,
        anchor: st.anchor,
    };
    let phi = quad::cumulative_from_zero(s_points, &st, |v| v.1);
    let a0 = st.zero.0.along;
    let log_p: Vec<f64> = st
        .nodes
        .iter()
        .zip(&phi)
        .map(|((m, _), f)| -(m.along / a0).ln() - f)
        .collect();
    let density = quad::normalise_log_density(s_points, &log_p);
    let scale = noise_scale(noise);
    let max_log = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let l_eff = log_p.iter().map(|l| scale * (max_log - l)).collect();
    let frames: Vec<Frame> = s_points.par_iter().map(|&s| curve.frame(s)).collect();
    let nodes: Vec<NormalMoments> = st.nodes.iter().map(|v| v.0).collect();
    Ok(CurvedTheory {
        s: s_points.to_vec(),
        x: frames.iter().map(|f| f.point[0]).collect(),
        y: frames.iter().map(|f| f.point[1]).collect(),
        curvature: frames.iter().map(|f| f.curvature).collect(),
        lambda: nodes.iter().map(|m| m.lambda).collect(),
        loss: frames
            .iter()
            .map(|f| loss.loss(f.point[0], f.point[1]))
            .collect(),
        delta_across: nodes.iter().map(|m| m.across).collect(),
        delta_along: nodes.iter().map(|m| m.along).collect(),
        kappa: nodes.iter().map(|m| m.kappa()).collect(),
        drift: nodes.iter().map(|m| m.drift).collect(),
        mean_n: nodes.iter().map(|m| m.mean_n).collect(),
        density,
        l_eff,
        law,
        tail_truncated: nodes.iter().any(|m| m.tail_truncated),
    })
}

/// Integrate a 2-D density across Γ into a density along s: each cell (centres `xs` × `ys`,
/// `values[i·ny + j]` = P(xs[i], ys[j]), y fastest as in the FP grid) goes to the s-cell of its
/// nearest point of Γ when that point is within `tube` (|n| ≤ tube) and its foot lies on the
/// traced curve. `s_points` are uniform s-cell centres; the result is normalised Σ p Δs = 1
/// (all zeros when no mass falls in the tube).
pub fn marginal_along(
    curve: &ValleyCurve,
    xs: &[f64],
    ys: &[f64],
    values: &[f64],
    s_points: &[f64],
    tube: f64,
) -> Vec<f64> {
    let (nx, ny) = (xs.len(), ys.len());
    let mut out = vec![0.0; s_points.len()];
    if nx == 0
        || ny == 0
        || values.len() != nx * ny
        || s_points.is_empty()
        || tube.is_nan()
        || tube <= 0.0
    {
        return out;
    }
    let ds = quad::uniform_spacing(s_points);
    let s_lo = s_points[0].min(s_points[s_points.len() - 1]) - 0.5 * ds;
    // Spatial buckets of the curve's nodes, of side ≥ tube + node spacing, so the nearest node
    // of any cell within the tube lies in the 3×3 neighbourhood of the cell's bucket.
    let spacing = curve.length() / (curve.len() - 1).max(1) as f64;
    let (xmin, xmax) = curve
        .x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (ymin, ymax) = curve
        .y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let extent = (xmax - xmin).max(ymax - ymin).max(spacing);
    let side = (tube.min(extent) + 2.0 * spacing).max(extent / 2048.0);
    let bx = ((xmax - xmin) / side).floor() as usize + 1;
    let by = ((ymax - ymin) / side).floor() as usize + 1;
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); bx * by];
    let bucket_of = |x: f64, y: f64| -> (i64, i64) {
        (
            ((x - xmin) / side).floor() as i64,
            ((y - ymin) / side).floor() as i64,
        )
    };
    for k in 0..curve.len() {
        let (i, j) = bucket_of(curve.x[k], curve.y[k]);
        buckets[i as usize * by + j as usize].push(k);
    }
    let cell = quad::uniform_spacing(xs) * quad::uniform_spacing(ys);
    let partial: Vec<Vec<f64>> = (0..nx)
        .into_par_iter()
        .map(|i| {
            let mut acc = vec![0.0; s_points.len()];
            for j in 0..ny {
                let v = values[i * ny + j];
                if v == 0.0 {
                    continue;
                }
                let th = [xs[i], ys[j]];
                let (bi, bj) = bucket_of(th[0], th[1]);
                let mut best = (f64::INFINITY, usize::MAX);
                for di in -1..=1 {
                    for dj in -1..=1 {
                        let (ci, cj) = (bi + di, bj + dj);
                        if ci < 0 || cj < 0 || ci >= bx as i64 || cj >= by as i64 {
                            continue;
                        }
                        for &k in &buckets[ci as usize * by + cj as usize] {
                            let d = (curve.x[k] - th[0]).hypot(curve.y[k] - th[1]);
                            if d < best.0 {
                                best = (d, k);
                            }
                        }
                    }
                }
                if best.1 == usize::MAX || best.0 > tube + spacing {
                    continue;
                }
                let Some((s, n)) = curve.project_from(th, curve.s[best.1]) else {
                    continue;
                };
                if n.abs() > tube {
                    continue;
                }
                let b = ((s - s_lo) / ds).floor();
                if b >= 0.0 && (b as usize) < acc.len() {
                    acc[b as usize] += v * cell;
                }
            }
            acc
        })
        .collect();
    for p in partial {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    let mass: f64 = out.iter().sum::<f64>() * ds;
    if mass > 0.0 && mass.is_finite() {
        out.iter_mut().for_each(|v| *v /= mass);
    }
    out
}

/// `[valley_curve]`: the reduced theory along a curved valley of minima Γ (docs/reference.md §6.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValleyCurveConfig {
    /// A point on or near Γ: the trace starts from its projection onto the valley floor.
    pub start: [f64; 2],
    /// Half-width of the tube |n| ≤ tube across Γ that the theory averages over and that the FP
    /// density is integrated over.
    pub tube: f64,
    /// Tracing step along Γ (arclength).
    #[serde(default = "default_trace_ds")]
    pub ds: f64,
    /// Points along s (uniform cell centres over the traced curve) of `marginal_s.csv`.
    #[serde(default = "default_s_points")]
    pub points: usize,
    /// The law of n across Γ: "exact" (the reduced level along Γ) or "gaussian" (the paper's).
    #[serde(default = "default_law")]
    pub law: NormalLaw,
}

fn default_trace_ds() -> f64 {
    0.005
}

fn default_s_points() -> usize {
    200
}

fn default_law() -> NormalLaw {
    NormalLaw::Exact
}

/// Largest `points` accepted.
pub const MAX_S_POINTS: usize = 100_000;

/// A traced valley floor and what to compute on it: running it cannot fail on input.
#[derive(Debug, Clone)]
pub struct ValleyCurvePlan {
    /// The configuration.
    pub config: ValleyCurveConfig,
    /// Γ, traced inside the box.
    pub curve: ValleyCurve,
    /// Uniform cell centres along s.
    pub s_points: Vec<f64>,
    /// The box Γ was traced in (the FP domain): [[x_min, x_max], [y_min, y_max]].
    pub bounds: [[f64; 2]; 2],
}

impl ValleyCurvePlan {
    /// Check `config` and trace Γ from its start inside `bounds` = [[x_min, x_max], [y_min, y_max]];
    /// `key` is the table's dotted name.
    pub fn new(
        loss: &impl Loss2d,
        config: ValleyCurveConfig,
        bounds: [[f64; 2]; 2],
        key: &str,
    ) -> Result<Self, crate::config::Invalid> {
        use crate::config::{Invalid, check_finite, check_positive};
        check_finite(&format!("{key}.start"), config.start[0])?;
        check_finite(&format!("{key}.start"), config.start[1])?;
        check_positive(&format!("{key}.tube"), config.tube)?;
        check_positive(&format!("{key}.ds"), config.ds)?;
        if !(3..=MAX_S_POINTS).contains(&config.points) {
            return Err(Invalid::new(
                format!("{key}.points"),
                format!("must lie in 3 ..= {MAX_S_POINTS}, got {}", config.points),
            ));
        }
        let [[x0, x1], [y0, y1]] = bounds;
        let span = (x1 - x0).max(y1 - y0);
        if config.ds > 0.1 * span {
            return Err(Invalid::new(
                format!("{key}.ds"),
                format!(
                    "must be at most a tenth of the domain ({span}), got {}",
                    config.ds
                ),
            ));
        }
        let curve = trace_valley(loss, config.start, bounds, config.ds, 1e3 * span)
            .map_err(|e| Invalid::new(format!("{key}.start"), e.to_string()))?;
        let (lo, hi) = curve.s_range();
        let n = config.points;
        let h = (hi - lo) / n as f64;
        let s_points = (0..n).map(|k| lo + (k as f64 + 0.5) * h).collect();
        Ok(Self {
            config,
            curve,
            s_points,
            bounds,
        })
    }

    /// The theory along Γ and, given a 2-D density on cell centres `xs` × `ys` (y fastest), that
    /// density integrated across Γ on the same s-points.
    pub fn run(
        &self,
        loss: &impl Loss2d,
        noise: &Noise,
        density: Option<(&[f64], &[f64], &[f64])>,
    ) -> Result<(CurvedTheory, Option<Vec<f64>>), CurvedError> {
        let tube = self.config.tube;
        let theory = solve(
            loss,
            noise,
            &self.curve,
            &self.s_points,
            (-tube, tube),
            self.config.law,
        )?;
        let fp =
            density.map(|(xs, ys, p)| marginal_along(&self.curve, xs, ys, p, &self.s_points, tube));
        Ok((theory, fp))
    }
}
