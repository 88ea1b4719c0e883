//! The homogenised level along a curved valley of minima Γ: the law of the gradient-flow limit
//! map φ (docs/theory.md, "Curved valleys", "The homogenised level along Γ").
//!
//! **Exact starting point.** With 𝓛f = −∇L·∇f + D:∇²f (the generator of Eq. 10), stationarity
//! gives E[𝓛 f(φ)] = 0 for every f, i.e. E[f'(φ) A + f''(φ) B] = 0 with A = −∇L·∇φ + D:∇²φ and
//! B = ∇φᵀD∇φ. With a(s) = E[A | φ = s] and b(s) = E[B | φ = s] this is the zero-flux 1-D
//! equation (b p)' = a p, so p_φ(s) ∝ (1/b) exp(∫₀^s a/b): exact if a and b are.
//!
//! **φ.** φ(θ) is the arclength on Γ of the point the gradient flow from θ converges to, so
//! ∇L·∇φ = 0 and A = D:∇²φ. Its level sets (fibres) are the two gradient-flow lines that end at
//! Γ(s). They are traced outwards in the coordinate ζ = ±√(2(L − L_Γ)): dθ/dζ = ζ ∇L/|∇L|²,
//! starting at Γ(s) ± n₀N + (λ'/4λ) n₀² T (the O(n₀²) bend of the fibre, λ' = dλ/ds).
//! In the coordinates (s, ζ): θ_s and θ_ss by 5-point differences across the fibres s ± k h,
//! θ_ζ = ζ∇L/|∇L|², θ_sζ and θ_ζζ from H; then ∇φ, ∇ζ are the rows of [θ_s θ_ζ]⁻¹ and
//! ∇²φ = −Σ_{c,d ∈ {s,ζ}} (∇φ·θ_cd) ∇c ⊗ ∇d.
//!
//! **The one approximation: the law on a fibre.** The zero-flux law of the fast coordinate ζ at
//! frozen s, ρ(ζ|s) ∝ (1/B^ζζ) exp ∫₀^ζ A^ζ/B^ζζ, with A^ζ = −|∇L|²/ζ + (D:H)/ζ − ∇LᵀD∇L/ζ³
//! and B^ζζ = ∇LᵀD∇L/ζ² (∇ζ = ∇L/ζ). ∇ζ ⊥ ∇φ, so for isotropic constant noise the law is the
//! exact conditional Boltzmann law. [`FibreLaw::Gaussian`] is the leading order ζ ~ N(0, D_NN).
//!
//! Only curves of minima (∇L = 0 on Γ): on a tilted valley the flow's limit map is degenerate.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::curved::{LOG_CUTOFF, MAX_SIGMAS, ValleyCurve, diffusion_at};
use super::quad;
use crate::landscape::Loss2d;
use crate::noise::Mat2;

/// Gauss–Legendre panels per σ_ζ = √D_NN on a fibre (3 nodes each).
pub const PANELS_PER_SIGMA: f64 = 8.0;
/// Step h of the differences across fibres (arclength; shrunk near the ends of Γ).
pub const FIBRE_STEP: f64 = 5e-3;
/// The fibre starts at ζ₀ = START_FRACTION · (quadrature panel width) from Γ.
pub const START_FRACTION: f64 = 1e-3;
/// RK4 steps per gap between quadrature nodes.
pub const RK_SUBSTEPS: usize = 2;
/// No box: fibres are traced until the tube, the cutoff or [`MAX_SIGMAS`].
pub const NO_BOX: [[f64; 2]; 2] = [
    [f64::NEG_INFINITY, f64::INFINITY],
    [f64::NEG_INFINITY, f64::INFINITY],
];
/// Γ is a curve of minima at s when |∇L(Γ(s))| ≤ TILT_TOL · max(λ(s), 1).
pub const TILT_TOL: f64 = 1e-8;

/// 3-point Gauss–Legendre nodes on [0, 1] and their weights.
const GL_NODES: [f64; 3] = [0.112_701_665_379_258_3, 0.5, 0.887_298_334_620_741_7];
const GL_WEIGHTS: [f64; 3] = [5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0];

/// Which law of ζ on a fibre the averages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FibreLaw {
    /// The zero-flux law of ζ at frozen s (exact for isotropic constant noise).
    Exact,
    /// The leading order ζ ~ N(0, D_NN(Γ(s))), the paper's Eq. 11 across Γ.
    Gaussian,
}

/// Why the homogenised level along Γ could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum FibreError {
    /// The s-points must be uniform, at least two, and strictly inside the traced range.
    BadPoints(String),
    /// ∇L ≠ 0 on Γ at s: a tilted valley floor, not a curve of minima.
    NotMinima {
        /// Arclength.
        s: f64,
        /// |∇L| there.
        grad: f64,
    },
    /// No law on the fibre at s (λ ≤ 0, D_NN ≤ 0, or the fibre could not be traced).
    NoFibreLaw(f64),
    /// b(s) = 0: no noise moves φ at s.
    NoNoiseAlong(f64),
}

impl std::fmt::Display for FibreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FibreError::BadPoints(m) => write!(f, "{m}"),
            FibreError::NotMinima { s, grad } => write!(
                f,
                "the homogenised level along the valley needs a curve of minima, but |∇L| = {grad:e} on it at s = {s}"
            ),
            FibreError::NoFibreLaw(s) => write!(
                f,
                "no stationary law on the gradient-flow fibre at s = {s} (λ ≤ 0, no noise across, or the fibre could not be traced)"
            ),
            FibreError::NoNoiseAlong(s) => write!(
                f,
                "no noise moves the limit point at s = {s} (E[∇φᵀD∇φ] = 0)"
            ),
        }
    }
}

impl std::error::Error for FibreError {}

/// A quadrature node on a fibre.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FibreNode {
    /// θ on the fibre.
    pub theta: [f64; 2],
    /// ζ = ±√(2(L − L_Γ)) (the parameter of the trace).
    pub zeta: f64,
    /// Conditional probability of the node (Σ over the fibre = 1).
    pub weight: f64,
    /// ∇φ.
    pub grad_phi: [f64; 2],
    /// ∇²φ.
    pub hess_phi: Mat2,
    /// ∇ζ from the fibre geometry (equals ∇L/ζ; a check).
    pub grad_zeta: [f64; 2],
    /// A = −∇L·∇φ + D:∇²φ.
    pub a: f64,
    /// B = ∇φᵀD∇φ.
    pub b: f64,
}

/// The fibre through Γ(s) with its law and the averages a(s), b(s).
#[derive(Debug, Clone, Serialize)]
pub struct Fibre {
    /// Arclength of its foot on Γ.
    pub s: f64,
    /// Nodes on both sides, ζ increasing.
    pub nodes: Vec<FibreNode>,
    /// a(s) = E[A | φ = s].
    pub drift: f64,
    /// b(s) = E[B | φ = s].
    pub diffusion: f64,
    /// max over the nodes of |∇L·∇φ| / (|∇L| |∇φ|) (0 up to the tracing error).
    pub flow_residual: f64,
    /// The law was cut at [`MAX_SIGMAS`], or the trace failed, with density above the cutoff.
    pub tail_truncated: bool,
}

#[inline]
fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

#[inline]
fn mat_vec(m: Mat2, v: [f64; 2]) -> [f64; 2] {
    [
        m[0][0] * v[0] + m[0][1] * v[1],
        m[1][0] * v[0] + m[1][1] * v[1],
    ]
}

#[inline]
fn contract(d: Mat2, h: Mat2) -> f64 {
    d[0][0] * h[0][0] + d[0][1] * h[0][1] + d[1][0] * h[1][0] + d[1][1] * h[1][1]
}

/// dθ/dζ = ζ ∇L/|∇L|² (None where ∇L vanishes).
#[inline]
fn field(loss: &impl Loss2d, th: [f64; 2], zeta: f64) -> Option<[f64; 2]> {
    let g = loss.gradient(th[0], th[1]);
    let g2 = dot(g, g);
    let v = [zeta * g[0] / g2, zeta * g[1] / g2];
    (g2 > 0.0 && v[0].is_finite() && v[1].is_finite()).then_some(v)
}

/// λ(s) = NᵀHN on Γ.
fn lambda_at(loss: &impl Loss2d, curve: &ValleyCurve, s: f64) -> f64 {
    let f = curve.frame(s);
    let h = loss.hessian(f.point[0], f.point[1]);
    dot(f.normal, mat_vec(h, f.normal))
}

/// The start of the half-fibre through Γ(s) on `side` (±1) at ζ ≈ side·`zeta0`, with its exact ζ.
fn fibre_start(
    loss: &impl Loss2d,
    curve: &ValleyCurve,
    s: f64,
    side: f64,
    zeta0: f64,
    l_floor: f64,
) -> Option<([f64; 2], f64)> {
    let f = curve.frame(s);
    let lam = lambda_at(loss, curve, s);
    if !(lam > 0.0 && lam.is_finite()) {
        return None;
    }
    let e = 1e-3;
    let (lo, hi) = curve.s_range();
    let (sa, sb) = ((s - e).max(lo), (s + e).min(hi));
    let dlam = (lambda_at(loss, curve, sb) - lambda_at(loss, curve, sa)) / (sb - sa);
    let n0 = side * zeta0 / lam.sqrt();
    let c = dlam / (4.0 * lam) * n0 * n0;
    let th = [
        f.point[0] + n0 * f.normal[0] + c * f.tangent[0],
        f.point[1] + n0 * f.normal[1] + c * f.tangent[1],
    ];
    let dl = loss.loss(th[0], th[1]) - l_floor;
    (dl > 0.0).then(|| (th, side * (2.0 * dl).sqrt()))
}

/// One RK4 step of dθ/dζ from (θ, ζ) to ζ + h.
fn rk4(loss: &impl Loss2d, th: [f64; 2], z: f64, h: f64) -> Option<[f64; 2]> {
    let k1 = field(loss, th, z)?;
    let p2 = [th[0] + 0.5 * h * k1[0], th[1] + 0.5 * h * k1[1]];
    let k2 = field(loss, p2, z + 0.5 * h)?;
    let p3 = [th[0] + 0.5 * h * k2[0], th[1] + 0.5 * h * k2[1]];
    let k3 = field(loss, p3, z + 0.5 * h)?;
    let p4 = [th[0] + h * k3[0], th[1] + h * k3[1]];
    let k4 = field(loss, p4, z + h)?;
    Some([
        th[0] + h / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
        th[1] + h / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
    ])
}

/// Trace the half-fibre through Γ(s) from its start to the signed parameters `zetas` (same sign,
/// |ζ| increasing); stops early where ∇L vanishes or θ stops being finite.
pub fn trace_fibre(
    loss: &impl Loss2d,
    curve: &ValleyCurve,
    s: f64,
    zetas: &[f64],
    zeta0: f64,
) -> Vec<[f64; 2]> {
    let Some(&first) = zetas.first() else {
        return Vec::new();
    };
    let side = first.signum();
    let f = curve.frame(s);
    let l_floor = loss.loss(f.point[0], f.point[1]);
    let Some((mut th, mut z)) = fibre_start(loss, curve, s, side, zeta0, l_floor) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(zetas.len());
    for &target in zetas {
        let h = (target - z) / RK_SUBSTEPS as f64;
        for _ in 0..RK_SUBSTEPS {
            match rk4(loss, th, z, h) {
                Some(next) if next[0].is_finite() && next[1].is_finite() => th = next,
                _ => return out,
            }
            z += h;
        }
        z = target;
        out.push(th);
    }
    out
}

/// ζ-drift over ζ-noise of the fast coordinate, A^ζ/B^ζζ, and B^ζζ at θ.
#[inline]
fn fast(loss: &impl Loss2d, noise: &crate::noise::Noise, th: [f64; 2], zeta: f64) -> (f64, f64) {
    let g = loss.gradient(th[0], th[1]);
    let h = loss.hessian(th[0], th[1]);
    let d = diffusion_at(noise, loss, th[0], th[1]);
    let gdg = dot(g, mat_vec(d, g));
    let z2 = zeta * zeta;
    let a = -dot(g, g) / zeta + (contract(d, h) - gdg / z2) / zeta;
    let b = gdg / z2;
    (a / b, b)
}

/// ζ(θ) = side·√(2(L − L_Γ)) from the loss (the ζ the fast coefficients are evaluated with).
#[inline]
fn actual_zeta(loss: &impl Loss2d, th: [f64; 2], side: f64, l_floor: f64) -> f64 {
    side * (2.0 * (loss.loss(th[0], th[1]) - l_floor).max(0.0)).sqrt()
}

/// One RK4 step of (θ, e) with dθ/dζ = ζ∇L/|∇L|², de/dζ = A^ζ/B^ζζ: the new θ and the increment of e.
fn rk4_with_exponent(
    loss: &impl Loss2d,
    noise: &crate::noise::Noise,
    th: [f64; 2],
    z: f64,
    h: f64,
    l_floor: f64,
) -> Option<([f64; 2], f64)> {
    let side = if z + h >= 0.0 { 1.0 } else { -1.0 };
    let stage = |p: [f64; 2], zz: f64| -> Option<([f64; 2], f64)> {
        let v = field(loss, p, zz)?;
        let (q, _) = fast(loss, noise, p, actual_zeta(loss, p, side, l_floor));
        q.is_finite().then_some((v, q))
    };
    let (k1, q1) = stage(th, z)?;
    let (k2, q2) = stage(
        [th[0] + 0.5 * h * k1[0], th[1] + 0.5 * h * k1[1]],
        z + 0.5 * h,
    )?;
    let (k3, q3) = stage(
        [th[0] + 0.5 * h * k2[0], th[1] + 0.5 * h * k2[1]],
        z + 0.5 * h,
    )?;
    let (k4, q4) = stage([th[0] + h * k3[0], th[1] + h * k3[1]], z + h)?;
    let next = [
        th[0] + h / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
        th[1] + h / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
    ];
    (next[0].is_finite() && next[1].is_finite())
        .then_some((next, h / 6.0 * (q1 + 2.0 * q2 + 2.0 * q3 + q4)))
}

/// The fibre through Γ(s): its nodes, law and averages. `tube` is the largest arclength along
/// the fibre on either side; the fibre also stops where it leaves `bounds` = [[x_min, x_max],
/// [y_min, y_max]] (the FP box; [`NO_BOX`] for none).
pub fn fibre_at(
    loss: &impl Loss2d,
    noise: &crate::noise::Noise,
    curve: &ValleyCurve,
    s: f64,
    tube: f64,
    bounds: [[f64; 2]; 2],
    law: FibreLaw,
) -> Result<Fibre, FibreError> {
    let inside = |p: [f64; 2]| {
        p[0] >= bounds[0][0] && p[0] <= bounds[0][1] && p[1] >= bounds[1][0] && p[1] <= bounds[1][1]
    };
    let (lo, hi) = curve.s_range();
    let room = (s - lo).min(hi - s);
    if room.is_nan() || room <= 0.0 {
        return Err(FibreError::BadPoints(format!(
            "s = {s} must lie strictly inside the traced range [{lo}, {hi}]"
        )));
    }
    let hs = FIBRE_STEP.min(0.4 * room);
    let f = curve.frame(s);
    let (px, py) = (f.point[0], f.point[1]);
    let lam = lambda_at(loss, curve, s);
    let g0 = loss.gradient(px, py);
    let gn = g0[0].hypot(g0[1]);
    if gn > TILT_TOL * lam.max(1.0) {
        return Err(FibreError::NotMinima { s, grad: gn });
    }
    let d0 = diffusion_at(noise, loss, px, py);
    let d_nn = dot(f.normal, mat_vec(d0, f.normal));
    if !(lam > 0.0 && lam.is_finite() && d_nn > 0.0 && d_nn.is_finite()) {
        return Err(FibreError::NoFibreLaw(s));
    }
    let l_floor = loss.loss(px, py);
    // Panels of width σ_ζ/PANELS_PER_SIGMA, σ_ζ² = D_NN (ζ ≈ √λ n, n ~ N(0, D_NN/λ)).
    let panel = d_nn.sqrt() / PANELS_PER_SIGMA;
    let zeta0 = START_FRACTION * panel;
    let max_panels = (MAX_SIGMAS * PANELS_PER_SIGMA) as usize;
    let b0 = lam * d_nn;
    let mut nodes: Vec<FibreNode> = Vec::new();
    let mut truncated = false;
    let mut residual: f64 = 0.0;
    for side in [-1.0_f64, 1.0] {
        // March the centre fibre panel by panel: ζ nodes, weights and the cut.
        let (start, z_start) =
            fibre_start(loss, curve, s, side, zeta0, l_floor).ok_or(FibreError::NoFibreLaw(s))?;
        let (mut th, mut z) = (start, z_start);
        // ∫₀^ζ A^ζ/B^ζζ: ≈ −ζ²/(2 D_NN) up to the start.
        let mut e = -z_start * z_start / (2.0 * d_nn);
        let mut zetas: Vec<f64> = Vec::new();
        let mut centre: Vec<[f64; 2]> = Vec::new();
        let mut gl_w: Vec<f64> = Vec::new();
        let mut log_w: Vec<f64> = Vec::new();
        let mut length = 0.0;
        let mut reached = false;
        'panels: for k in 0..max_panels {
            for (t, w) in GL_NODES.iter().zip(GL_WEIGHTS) {
                let target = side * (k as f64 + t) * panel;
                let h = (target - z) / RK_SUBSTEPS as f64;
                for _ in 0..RK_SUBSTEPS {
                    let Some((next, de)) = rk4_with_exponent(loss, noise, th, z, h, l_floor) else {
                        break 'panels;
                    };
                    length += (next[0] - th[0]).hypot(next[1] - th[1]);
                    e += de;
                    th = next;
                    z += h;
                }
                z = target;
                if length > tube || !inside(th) {
                    reached = true;
                    break 'panels;
                }
                let (qq, b) = fast(loss, noise, th, actual_zeta(loss, th, side, l_floor));
                if !(b > 0.0 && qq.is_finite()) {
                    // No ζ-noise here (∇LᵀD∇L = 0): the law ends (flagged as truncated).
                    break 'panels;
                }
                let lw = match law {
                    FibreLaw::Exact => (b0 / b).ln() + e,
                    FibreLaw::Gaussian => -z * z / (2.0 * d_nn),
                };
                zetas.push(z);
                centre.push(th);
                gl_w.push(w * panel);
                log_w.push(lw);
                if lw < -LOG_CUTOFF {
                    reached = true;
                    break 'panels;
                }
            }
        }
        if !reached {
            truncated = true;
        }
        // The four neighbouring fibres at the same ζ nodes.
        let mut cols: Vec<Vec<[f64; 2]>> = [-2.0, -1.0, 1.0, 2.0]
            .par_iter()
            .map(|&k: &f64| trace_fibre(loss, curve, s + k * hs, &zetas, zeta0))
            .collect();
        cols.insert(2, centre);
        let m = cols.iter().map(Vec::len).min().unwrap_or(0);
        if m < zetas.len() {
            truncated = true;
        }
        for i in 0..m {
            let z = zetas[i];
            let p: [[f64; 2]; 5] = std::array::from_fn(|k| cols[k][i]);
            let th = p[2];
            let d1 = |c: usize| (p[0][c] - 8.0 * p[1][c] + 8.0 * p[3][c] - p[4][c]) / (12.0 * hs);
            let d2 = |c: usize| {
                (-p[0][c] + 16.0 * p[1][c] - 30.0 * p[2][c] + 16.0 * p[3][c] - p[4][c])
                    / (12.0 * hs * hs)
            };
            let t_s = [d1(0), d1(1)];
            let t_ss = [d2(0), d2(1)];
            let g = loss.gradient(th[0], th[1]);
            let hm = loss.hessian(th[0], th[1]);
            let g2 = dot(g, g);
            let hg = mat_vec(hm, g);
            // J_F = ∂F/∂θ for F = ζ g/|g|².
            let jf: Mat2 = std::array::from_fn(|r| {
                std::array::from_fn(|c| z * (hm[r][c] / g2 - 2.0 * g[r] * hg[c] / (g2 * g2)))
            });
            let t_z = [z * g[0] / g2, z * g[1] / g2];
            let t_sz = mat_vec(jf, t_s);
            let jt = mat_vec(jf, t_z);
            let t_zz = [g[0] / g2 + jt[0], g[1] / g2 + jt[1]];
            let det = t_s[0] * t_z[1] - t_s[1] * t_z[0];
            let grad_phi = [t_z[1] / det, -t_z[0] / det];
            let grad_zeta = [-t_s[1] / det, t_s[0] / det];
            let (us, uz) = (dot(grad_phi, t_ss), dot(grad_phi, t_sz));
            let uzz = dot(grad_phi, t_zz);
            let hess_phi: Mat2 = std::array::from_fn(|r| {
                std::array::from_fn(|c| {
                    -(us * grad_phi[r] * grad_phi[c]
                        + uz * (grad_phi[r] * grad_zeta[c] + grad_zeta[r] * grad_phi[c])
                        + uzz * grad_zeta[r] * grad_zeta[c])
                })
            });
            let d = diffusion_at(noise, loss, th[0], th[1]);
            let flow = dot(g, grad_phi);
            residual = residual.max(flow.abs() / (g2.sqrt() * grad_phi[0].hypot(grad_phi[1])));
            nodes.push(FibreNode {
                theta: th,
                zeta: z,
                weight: gl_w[i] * log_w[i].exp(),
                grad_phi,
                hess_phi,
                grad_zeta,
                a: -flow + contract(d, hess_phi),
                b: dot(grad_phi, mat_vec(d, grad_phi)),
            });
        }
    }
    nodes.sort_by(|a, b| a.zeta.total_cmp(&b.zeta));
    let z: f64 = nodes.iter().map(|n| n.weight).sum();
    if !(z > 0.0 && z.is_finite()) {
        return Err(FibreError::NoFibreLaw(s));
    }
    nodes.iter_mut().for_each(|n| n.weight /= z);
    let drift = nodes.iter().map(|n| n.weight * n.a).sum::<f64>();
    let diffusion = nodes.iter().map(|n| n.weight * n.b).sum::<f64>();
    if !(drift.is_finite() && diffusion > 0.0 && diffusion.is_finite()) {
        return Err(FibreError::NoNoiseAlong(s));
    }
    Ok(Fibre {
        s,
        nodes,
        drift,
        diffusion,
        flow_residual: residual,
        tail_truncated: truncated,
    })
}

/// The homogenised level along Γ on uniform s-points: p_φ(s) and the fibre laws.
#[derive(Debug, Clone, Serialize)]
pub struct FibreTheory {
    /// The s-points.
    pub s: Vec<f64>,
    /// p_φ(s), the density of the limit point's arclength, Σ p Δs = 1.
    pub density: Vec<f64>,
    /// a(s) = E[D:∇²φ | φ = s].
    pub drift: Vec<f64>,
    /// b(s) = E[∇φᵀD∇φ | φ = s].
    pub diffusion: Vec<f64>,
    /// The fibre at each s-point (nodes with their conditional weights).
    pub fibres: Vec<Fibre>,
    /// Which law on the fibres was used.
    pub law: FibreLaw,
    /// Some fibre law was cut with density still above the cutoff.
    pub tail_truncated: bool,
}

impl FibreTheory {
    /// E[f(θ)] under the level's 2-D law p_φ(s) ρ(ζ|s) (a Riemann sum over the s-points).
    pub fn expect(&self, f: impl Fn([f64; 2]) -> f64 + Sync) -> f64 {
        let ds = quad::uniform_spacing(&self.s);
        self.fibres
            .par_iter()
            .zip(&self.density)
            .map(|(fib, p)| p * ds * fib.nodes.iter().map(|n| n.weight * f(n.theta)).sum::<f64>())
            .sum()
    }

    /// The level's 2-D law integrated across Γ as [`super::curved::marginal_along`] does for the
    /// FP: each node goes to the s-cell (centres `s_points`, uniform) of its nearest point of Γ
    /// when |n| ≤ `tube`; Σ p Δs = 1 (all zeros when no mass falls in the tube).
    pub fn along_normals(&self, curve: &ValleyCurve, s_points: &[f64], tube: f64) -> Vec<f64> {
        let mut out = vec![0.0; s_points.len()];
        if s_points.is_empty() {
            return out;
        }
        let cell = quad::uniform_spacing(s_points);
        let ds = quad::uniform_spacing(&self.s);
        let s_lo = s_points[0].min(s_points[s_points.len() - 1]) - 0.5 * cell;
        let parts: Vec<Vec<(usize, f64)>> = self
            .fibres
            .par_iter()
            .zip(&self.density)
            .map(|(fib, p)| {
                fib.nodes
                    .iter()
                    .filter_map(|n| {
                        let (s, d) = curve.project_from(n.theta, fib.s)?;
                        let b = ((s - s_lo) / cell).floor();
                        (d.abs() <= tube && b >= 0.0 && (b as usize) < s_points.len())
                            .then(|| (b as usize, p * ds * n.weight))
                    })
                    .collect()
            })
            .collect();
        for (b, w) in parts.into_iter().flatten() {
            out[b] += w;
        }
        let mass: f64 = out.iter().sum::<f64>() * cell;
        if mass > 0.0 && mass.is_finite() {
            out.iter_mut().for_each(|v| *v /= mass);
        }
        out
    }

    /// Mean and standard deviation of φ.
    pub fn mean_std(&self) -> (f64, f64) {
        let ds = quad::uniform_spacing(&self.s);
        let m = self
            .s
            .iter()
            .zip(&self.density)
            .map(|(s, p)| s * p)
            .sum::<f64>()
            * ds;
        let v = self
            .s
            .iter()
            .zip(&self.density)
            .map(|(s, p)| (s - m).powi(2) * p)
            .sum::<f64>()
            * ds;
        (m, v.max(0.0).sqrt())
    }
}

/// The homogenised level along Γ on the uniform points `s_points` (fibres cut at arclength
/// `tube` and at `bounds`, as [`fibre_at`]):
/// p_φ(s) ∝ (1/b(s)) exp(∫₀^s a/b), cumulative Simpson from s = 0 as the reduced level.
pub fn solve(
    loss: &impl Loss2d,
    noise: &crate::noise::Noise,
    curve: &ValleyCurve,
    s_points: &[f64],
    tube: f64,
    bounds: [[f64; 2]; 2],
    law: FibreLaw,
) -> Result<FibreTheory, FibreError> {
    if s_points.len() < 2 {
        return Err(FibreError::BadPoints(
            "needs at least two s-points".to_string(),
        ));
    }
    if tube.is_nan() || tube <= 0.0 {
        return Err(FibreError::BadPoints(format!(
            "tube must be > 0, got {tube}"
        )));
    }
    let st = quad::evaluate(s_points, |s| {
        fibre_at(loss, noise, curve, s, tube, bounds, law)
    });
    let st = quad::Staggered {
        zero: st.zero?,
        anchor_half: st.anchor_half?,
        nodes: st.nodes.into_iter().collect::<Result<Vec<_>, _>>()?,
        mids: st.mids.into_iter().collect::<Result<Vec<_>, _>>()?,
        anchor: st.anchor,
    };
    let integral = quad::cumulative_from_zero(s_points, &st, |f| f.drift / f.diffusion);
    let b0 = st.zero.diffusion;
    let log_p: Vec<f64> = st
        .nodes
        .iter()
        .zip(&integral)
        .map(|(f, i)| -(f.diffusion / b0).ln() + i)
        .collect();
    let density = quad::normalise_log_density(s_points, &log_p);
    Ok(FibreTheory {
        s: s_points.to_vec(),
        density,
        drift: st.nodes.iter().map(|f| f.drift).collect(),
        diffusion: st.nodes.iter().map(|f| f.diffusion).collect(),
        tail_truncated: st.nodes.iter().any(|f| f.tail_truncated),
        fibres: st.nodes,
        law,
    })
}

/// The gradient-flow limit map φ(θ) by direct descent (RK4 in time, step 0.05/λ_max) until
/// |∇L| ≤ 1e-11 λ_max, then the nearest point of Γ: an independent route for checks.
pub fn flow_limit(loss: &impl Loss2d, curve: &ValleyCurve, theta: [f64; 2]) -> Option<f64> {
    let mut th = theta;
    for _ in 0..200_000 {
        let h = loss.hessian(th[0], th[1]);
        let top = 0.5 * (h[0][0] + h[1][1]) + (0.5 * (h[0][0] - h[1][1])).hypot(h[0][1]);
        if !(top > 0.0 && top.is_finite()) {
            return None;
        }
        let g = |p: [f64; 2]| loss.gradient(p[0], p[1]);
        let g1 = g(th);
        if g1[0].hypot(g1[1]) <= 1e-11 * top {
            return curve.project(th).map(|(s, _)| s);
        }
        let dt = 0.05 / top;
        let k1 = g1;
        let k2 = g([th[0] - 0.5 * dt * k1[0], th[1] - 0.5 * dt * k1[1]]);
        let k3 = g([th[0] - 0.5 * dt * k2[0], th[1] - 0.5 * dt * k2[1]]);
        let k4 = g([th[0] - dt * k3[0], th[1] - dt * k3[1]]);
        th = [
            th[0] - dt / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
            th[1] - dt / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
        ];
    }
    None
}
