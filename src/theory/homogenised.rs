//! The `homogenised` level: second-order averaging of the slow variable with the exact fast
//! statistics, plus the third and fourth cumulant rates that set the skewness (Hessian noise,
//! γ = 2, unbounded y; docs/theory.md derives every formula).
//!
//! Setting (Itô FP, Eq. 10): dθ = −∇L dt + √(2D) dW, D = Δ_S H², e = ελ0,
//! H = [[e + ½λ''y², λ'y], [λ'y, λ]].
//!
//! 1. At frozen x the fast generator 𝓛_y = −λy∂_y + Δ_S(λ² + λ'²y²)∂²_y maps y^{2k} to
//!    −2k a_k y^{2k} + 2k(2k−1)Δ_Sλ² y^{2k−2}, a_k = λ − (2k−1)Δ_Sλ'²: it is triangular on even
//!    polynomials, its stationary moments follow M_{2k} = (2k−1)Δ_Sλ² M_{2k−2}/a_k, and the
//!    Poisson equation 𝓛_y h = r is solved exactly by back substitution.
//! 2. The slow variable φ = x + c(x)(y² − m(x)), m = M_2, c = −λ'/(4a_1), has a drift that does
//!    not depend on y at frozen x (c removes the fluctuating part −½λ'(y² − m) of −∂xL).
//!    By Itô's formula with the x-dependence of c and m kept:
//!    A(x) = ⟨drift of φ⟩ and B(x) = ⟨½ d⟨φ⟩/dt⟩ over the frozen law of y.
//! 3. The third and fourth cumulant rates of φ at frozen x, C_3 = κ_3/6 and C_4 = κ_4/24, are the
//!    θ³ and θ⁴ coefficients of the principal eigenvalue of 𝓛_y + θκ(y)∂_y + ½θ²S(y), with
//!    κ(y) = d⟨φ, y⟩/dt and S(y) = d⟨φ⟩/dt (perturbation theory in θ on even polynomials).
//! 4. Stationary density of ∂_t p = −∂_x(Ap) + ∂²_x(Bp) − ∂³_x(C_3 p) + ∂⁴_x(C_4 p) to first
//!    order in C_3, C_4: p_0 ∝ B⁻¹ exp ∫A/B and p = p_0 (1 + h), B p_0 h' = (C_3 p_0)'' − (C_4 p_0)'''
//!    with ⟨h⟩ = 0 under p_0; 1 + h is continued as e^h where h < 0 (same first order, never
//!    negative in the tails).

use rayon::prelude::*;
use serde::Serialize;

use super::quad;
use crate::landscape::Valley2d;
use crate::noise::Noise;

/// Highest even power y^{2K} carried, K = [`POLY_LEN`] − 1 (the fourth cumulant needs y⁸).
const POLY_LEN: usize = 5;
/// Step of the finite differences in x (the coefficients vary on the scale of the valley, O(0.1)).
pub const FD_STEP: f64 = 5e-3;
/// Sub-intervals of the composite Simpson rule from x = 0 to the node nearest 0.
const ANCHOR_PANELS: usize = 256;

/// An even polynomial Σ_k p_k y^{2k}, k < [`POLY_LEN`].
type EvenPoly = [f64; POLY_LEN];

fn poly_mul(a: &EvenPoly, b: &EvenPoly) -> EvenPoly {
    let mut c = [0.0; POLY_LEN];
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            if i + j < POLY_LEN {
                c[i + j] += ai * bj;
            } else {
                debug_assert!(ai * bj == 0.0, "even polynomial overflows y^8");
            }
        }
    }
    c
}

fn poly_axpy(alpha: f64, x: &EvenPoly, y: &EvenPoly) -> EvenPoly {
    std::array::from_fn(|k| alpha * x[k] + y[k])
}

/// y ∂_y p (keeps evenness: y^{2k} → 2k y^{2k}).
fn poly_y_dy(p: &EvenPoly) -> EvenPoly {
    std::array::from_fn(|k| 2.0 * k as f64 * p[k])
}

/// The fast process at frozen x: 𝓛_y and the moments of its stationary law.
#[derive(Debug, Clone, Copy)]
struct FastLaw {
    /// Δ_S λ², the y-noise at y = 0.
    q: f64,
    /// a_k = λ − (2k−1)Δ_S λ'² (a_0 unused).
    a: [f64; POLY_LEN],
    /// M_{2k} = ⟨y^{2k}⟩.
    moments: [f64; POLY_LEN],
}

impl FastLaw {
    /// `None` when a moment up to y⁸ does not exist (the power-law tail is too heavy).
    fn new(delta_s: f64, lambda: f64, lambda_d1: f64) -> Option<Self> {
        let q = delta_s * lambda * lambda;
        let mut a = [0.0; POLY_LEN];
        let mut moments = [1.0; POLY_LEN];
        for k in 1..POLY_LEN {
            a[k] = lambda - (2 * k - 1) as f64 * delta_s * lambda_d1 * lambda_d1;
            if a[k].is_nan() || a[k] <= 0.0 {
                return None;
            }
            moments[k] = (2 * k - 1) as f64 * q * moments[k - 1] / a[k];
        }
        Some(Self { q, a, moments })
    }

    fn mean(&self, p: &EvenPoly) -> f64 {
        p.iter().zip(&self.moments).map(|(c, m)| c * m).sum()
    }

    /// The solution h of 𝓛_y h = r − ⟨r⟩ with ⟨h⟩ = 0 (back substitution from the top power).
    fn solve(&self, r: &EvenPoly) -> EvenPoly {
        let mut h = [0.0; POLY_LEN];
        for k in (1..POLY_LEN).rev() {
            let from_above = if k + 1 < POLY_LEN {
                self.q * (2 * k + 2) as f64 * (2 * k + 1) as f64 * h[k + 1]
            } else {
                0.0
            };
            h[k] = (from_above - r[k]) / (2.0 * k as f64 * self.a[k]);
        }
        h[0] = -self.mean(&h);
        h
    }

    /// [ℓ2, ℓ3, ℓ4]: the θ², θ³, θ⁴ coefficients of the principal eigenvalue of
    /// 𝓛_y + θ κ(y) ∂_y + ½ θ² S(y), κ(y) = y (k0 + k1 y²), i.e. κ_n/n! of the additive functional
    /// whose covariation rate with y is κ and whose quadratic-variation rate is S.
    ///
    /// Perturbation in θ with eigenfunction 1 + θ² h2 + θ³ h3 + …, ⟨h_n⟩ = 0:
    /// 𝓛_y h2 = ℓ2 − ½S; ℓ3 = ⟨κ∂_y h2⟩, 𝓛_y h3 = ℓ3 − κ∂_y h2; ℓ4 = ⟨κ∂_y h3⟩ + ½⟨S h2⟩.
    fn cumulant_rates(&self, kappa: [f64; 2], s: &EvenPoly) -> [f64; 3] {
        let k: EvenPoly = [kappa[0], kappa[1], 0.0, 0.0, 0.0];
        let kappa_dy = |h: &EvenPoly| poly_mul(&k, &poly_y_dy(h));
        let half_s = s.map(|v| 0.5 * v);
        let ell2 = self.mean(&half_s);
        let h2 = self.solve(&half_s.map(|v| -v));
        let k_h2 = kappa_dy(&h2);
        let ell3 = self.mean(&k_h2);
        let h3 = self.solve(&k_h2.map(|v| -v));
        let ell4 = self.mean(&kappa_dy(&h3)) + self.mean(&poly_mul(&half_s, &h2));
        [ell2, ell3, ell4]
    }
}

/// Value and first two x-derivatives of a function, with the chain rule.
#[derive(Debug, Clone, Copy)]
struct Jet([f64; 3]);

impl Jet {
    fn mul(self, o: Jet) -> Jet {
        let (a, b) = (self.0, o.0);
        Jet([
            a[0] * b[0],
            a[0] * b[1] + a[1] * b[0],
            a[0] * b[2] + 2.0 * a[1] * b[1] + a[2] * b[0],
        ])
    }
    fn div(self, o: Jet) -> Jet {
        let b = o.0;
        let inv = Jet([
            1.0 / b[0],
            -b[1] / (b[0] * b[0]),
            2.0 * b[1] * b[1] / b[0].powi(3) - b[2] / (b[0] * b[0]),
        ]);
        self.mul(inv)
    }
    fn scale(self, s: f64) -> Jet {
        Jet(self.0.map(|v| v * s))
    }
    fn sub(self, o: Jet) -> Jet {
        Jet([self.0[0] - o.0[0], self.0[1] - o.0[1], self.0[2] - o.0[2]])
    }
}

/// λ^{(k)}(x) for k = 0..=4.
fn lambda_derivatives(valley: &Valley2d, x: f64) -> [f64; 5] {
    let mut d = [0.0; 5];
    for (n, &c) in valley.lambda.iter().enumerate() {
        let p = 2 * n;
        for (k, dk) in d.iter_mut().enumerate() {
            if k > p {
                break;
            }
            let falling: f64 = (0..k).map(|i| (p - i) as f64).product();
            *dk += c * falling * x.powi((p - k) as i32);
        }
    }
    d
}

/// The homogenised coefficients of the slow variable at one x.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HomogenisedCoefficients {
    /// A(x): averaged Itô drift of φ = x + c(y² − m), x-derivatives of c and m included.
    pub drift: f64,
    /// B(x): averaged half quadratic variation of φ.
    pub diffusion: f64,
    /// C_3(x) = κ_3/6, the third cumulant rate of φ at frozen x over 3!.
    pub c3: f64,
    /// C_4(x) = κ_4/24, the fourth cumulant rate of φ at frozen x over 4!.
    pub c4: f64,
    /// ⟨y²⟩ of the frozen law, Δ_S λ²/(λ − Δ_S λ'²).
    pub mean_y2: f64,
    /// The leading-order drift −ελ0 x − ½λ'⟨y²⟩ of the reduced level (for comparison).
    pub drift_leading: f64,
    /// ⟨D11⟩ of the frozen law, the leading-order diffusion of the reduced level.
    pub diffusion_leading: f64,
}

/// Δ_S of Hessian noise of power 2; `None` for any other noise (the level does not apply).
pub fn delta_s_power2(noise: &Noise) -> Option<f64> {
    match *noise {
        Noise::Hessian {
            eta,
            sigma,
            power: 2.0,
        } => {
            let ds = eta * sigma;
            (ds > 0.0 && ds.is_finite()).then_some(ds)
        }
        _ => None,
    }
}

/// A(x), B(x), C_3(x), C_4(x) of the homogenised slow variable at x (module docs, steps 1–3);
/// `None` where λ(x) ≤ 0 or a moment up to y⁸ of the frozen law does not exist.
pub fn coefficients(valley: &Valley2d, delta_s: f64, x: f64) -> Option<HomogenisedCoefficients> {
    coefficients_at(valley, delta_s, None, x)
}

/// The frozen-x drift and diffusion of the slow variable of the SGD map
/// θ' = θ − η∇L + √(2ηΔ_S) H ξ (per unit time t = nη): y' = αy + sU, α = 1 − ηλ, s² = 2ηΔ_S,
/// U = λ'y ξ1 + λ ξ2, and φ = x + c_d(y² − m_d) with c_d = −λ'/(4 a_d),
/// a_d = λ − ηλ²/2 − Δ_Sλ'², which makes E[Δφ | y] independent of y.
/// Returns (A_d, B_d, m_d); `None` when the chain has no stationary fourth moment.
pub fn discrete_frozen(
    valley: &Valley2d,
    delta_s: f64,
    eta: f64,
    x: f64,
) -> Option<(f64, f64, f64)> {
    let ds = delta_s;
    let (lam, lam1, lam2) = (
        valley.lambda_at(x),
        valley.lambda_d1(x),
        valley.lambda_d2(x),
    );
    let e = valley.epsilon * valley.lambda0();
    let alpha = 1.0 - eta * lam;
    let s2 = 2.0 * eta * ds;
    let (l1sq, lsq) = (lam1 * lam1, lam * lam);
    let den2 = 1.0 - alpha * alpha - s2 * l1sq;
    let den4 = 1.0 - alpha.powi(4) - 6.0 * alpha * alpha * s2 * l1sq - 3.0 * s2 * s2 * l1sq * l1sq;
    if den2.is_nan() || den2 <= 0.0 || den4.is_nan() || den4 <= 0.0 {
        return None;
    }
    let m = s2 * lsq / den2;
    let m4 = (6.0 * m * (alpha * alpha + s2 * l1sq) * s2 * lsq + 3.0 * s2 * s2 * lsq * lsq) / den4;
    let c = -lam1 / (4.0 * den2 / (2.0 * eta));
    let mean = |p: [f64; 3]| p[0] + p[1] * m + p[2] * m4;
    // Var(Δφ | y)/(2η) = Δ_S[V² + 4αc λ'y²(H11 + λ) + 4α²c² y²(λ'²y² + λ²) + 2c²s²(λ'²y² + λ²)²],
    // V² = H11² + λ'²y², as polynomials in y (coefficients of 1, y², y⁴).
    let h11_sq = [e * e, e * lam2 + l1sq, 0.25 * lam2 * lam2];
    let cross = [
        0.0,
        4.0 * alpha * c * lam1 * (lam + e),
        4.0 * alpha * c * lam1 * 0.5 * lam2,
    ];
    let quad = [
        0.0,
        4.0 * alpha * alpha * c * c * lsq,
        4.0 * alpha * alpha * c * c * l1sq,
    ];
    let fourth = [
        2.0 * c * c * s2 * lsq * lsq,
        2.0 * c * c * s2 * 2.0 * l1sq * lsq,
        2.0 * c * c * s2 * l1sq * l1sq,
    ];
    let b = ds * (mean(h11_sq) + mean(cross) + mean(quad) + mean(fourth));
    let a = -e * x - 0.5 * lam1 * m;
    [a, b, m].iter().all(|v| v.is_finite()).then_some((a, b, m))
}

/// [`coefficients`] for the SGD map with learning rate η (`discrete_eta`): the frozen drift and
/// diffusion are the map's ([`discrete_frozen`]); the x-derivative corrections of A and B and
/// the cumulant rates C_3, C_4 stay those of the continuum (their η-dependence is O(ηλ) of a
/// correction).
pub fn coefficients_at(
    valley: &Valley2d,
    delta_s: f64,
    discrete_eta: Option<f64>,
    x: f64,
) -> Option<HomogenisedCoefficients> {
    let ds = delta_s;
    let l = lambda_derivatives(valley, x);
    let (lam, lam1, lam2) = (l[0], l[1], l[2]);
    if !(lam > 0.0 && lam.is_finite()) {
        return None;
    }
    let e = valley.epsilon * valley.lambda0();
    let law = FastLaw::new(ds, lam, lam1)?;
    let m = law.moments[1];

    // c and m as functions of x, with two derivatives.
    let lam_j = Jet([l[0], l[1], l[2]]);
    let lam1_j = Jet([l[1], l[2], l[3]]);
    let a1_j = lam_j.sub(lam1_j.mul(lam1_j).scale(ds));
    let m_j = lam_j.mul(lam_j).scale(ds).div(a1_j);
    let c_j = lam1_j.scale(-0.25).div(a1_j);
    let [c, c1, c2] = c_j.0;
    let [_, m1, m2] = m_j.0;

    // Polynomials in y (coefficients of 1, y², y⁴, …).
    let d11: EvenPoly = [
        ds * e * e,
        ds * (e * lam2 + lam1 * lam1),
        ds * 0.25 * lam2 * lam2,
        0.0,
        0.0,
    ];
    let y_d12: EvenPoly = [0.0, ds * lam1 * (lam + e), ds * lam1 * 0.5 * lam2, 0.0, 0.0];
    let y2_d22: EvenPoly = [0.0, ds * lam * lam, ds * lam1 * lam1, 0.0, 0.0];
    let d22: EvenPoly = [ds * lam * lam, ds * lam1 * lam1, 0.0, 0.0, 0.0];
    let grad_drift: EvenPoly = [-e * x, -0.5 * lam1, 0.0, 0.0, 0.0];
    // ∂_x F and ∂²_x F of F = c(x)(y² − m(x)).
    let u: EvenPoly = [-c1 * m - c * m1, c1, 0.0, 0.0, 0.0];
    let f_xx: EvenPoly = [-c2 * m - 2.0 * c1 * m1 - c * m2, c2, 0.0, 0.0, 0.0];

    // Drift of φ: b(1 + u) + 2cy(−λy) + F_xx D11 + 2 F_xy D12 + F_yy D22, F_xy = 2c'y, F_yy = 2c.
    let mut drift = poly_mul(&grad_drift, &poly_axpy(1.0, &u, &[1.0, 0.0, 0.0, 0.0, 0.0]));
    drift[1] -= 2.0 * c * lam;
    drift = poly_axpy(1.0, &poly_mul(&f_xx, &d11), &drift);
    drift = poly_axpy(4.0 * c1, &y_d12, &drift);
    drift = poly_axpy(2.0 * c, &d22, &drift);
    // Half quadratic variation: (1 + u)² D11 + 4c(1 + u) y D12 + 4c² y² D22.
    let one_u = poly_axpy(1.0, &u, &[1.0, 0.0, 0.0, 0.0, 0.0]);
    let mut qv = poly_mul(&poly_mul(&one_u, &one_u), &d11);
    qv = poly_axpy(4.0 * c, &poly_mul(&one_u, &y_d12), &qv);
    qv = poly_axpy(4.0 * c * c, &y2_d22, &qv);

    // Frozen tilted generator 𝓛_y + θκ∂_y + ½θ²S: φ's noise √(2Δ_S)(σ1 dW1 + σ2 dW2).
    let beta = 0.5 * lam2 + 2.0 * c * lam1; // σ1 = e + βy²
    let gamma = lam1 + 2.0 * c * lam; // σ2 = γy
    // κ(y) = 2Δ_S y (λ'e + γλ + λ'βy²) = y (k0 + k1 y²); S(y) = 2Δ_S (σ1² + σ2²).
    let kappa = [2.0 * ds * (lam1 * e + gamma * lam), 2.0 * ds * lam1 * beta];
    let s: EvenPoly = [
        2.0 * ds * e * e,
        2.0 * ds * (2.0 * e * beta + gamma * gamma),
        2.0 * ds * beta * beta,
        0.0,
        0.0,
    ];
    let [ell2, ell3, ell4] = law.cumulant_rates(kappa, &s);

    let (mut drift, mut diffusion) = (law.mean(&drift), law.mean(&qv));
    let drift_leading = -e * x - 0.5 * lam1 * m;
    if let Some(eta) = discrete_eta {
        // Replace the frozen parts (−ελ0x − ½λ'm and ℓ2 = ½⟨S⟩) by the map's.
        let (a_d, b_d, _) = discrete_frozen(valley, ds, eta, x)?;
        drift += a_d - drift_leading;
        diffusion += b_d - ell2;
    }
    let out = HomogenisedCoefficients {
        drift,
        diffusion,
        c3: ell3,
        c4: ell4,
        mean_y2: m,
        drift_leading,
        diffusion_leading: law.mean(&d11),
    };
    [out.drift, out.diffusion, out.c3, out.c4]
        .iter()
        .all(|v| v.is_finite())
        .then_some(out)
}

/// The pointwise ingredients of the stationary density at one x.
#[derive(Debug, Clone, Copy)]
struct Local {
    /// A/B, the integrand of ln p_0.
    a_over_b: f64,
    /// ln B.
    ln_b: f64,
    /// h' = [(C_3 p_0)'' − (C_4 p_0)''']/(B p_0).
    dh: f64,
}

/// Central differences of order 4 or better on the 7 values f(x + jh), j = −3..=3:
/// [f, f', f'', f'''].
fn derivatives(f: &[f64; 7], h: f64) -> [f64; 4] {
    let d = |j: isize| f[(j + 3) as usize];
    [
        d(0),
        (-d(-3) + 9.0 * d(-2) - 45.0 * d(-1) + 45.0 * d(1) - 9.0 * d(2) + d(3)) / (60.0 * h),
        (2.0 * d(-3) - 27.0 * d(-2) + 270.0 * d(-1) - 490.0 * d(0) + 270.0 * d(1) - 27.0 * d(2)
            + 2.0 * d(3))
            / (180.0 * h * h),
        (d(-3) - 8.0 * d(-2) + 13.0 * d(-1) - 13.0 * d(1) + 8.0 * d(2) - d(3)) / (8.0 * h * h * h),
    ]
}

fn local(valley: &Valley2d, delta_s: f64, eta: Option<f64>, x: f64) -> Option<Local> {
    let mut vals = [[0.0; 7]; 4];
    for j in 0..7 {
        let c = coefficients_at(valley, delta_s, eta, x + (j as f64 - 3.0) * FD_STEP)?;
        for (row, v) in vals.iter_mut().zip([c.drift, c.diffusion, c.c3, c.c4]) {
            row[j] = v;
        }
    }
    let [a, a1, a2, _] = derivatives(&vals[0], FD_STEP);
    let [b, b1, b2, b3] = derivatives(&vals[1], FD_STEP);
    let [c3, c3_1, c3_2, _] = derivatives(&vals[2], FD_STEP);
    let [c4, c4_1, c4_2, c4_3] = derivatives(&vals[3], FD_STEP);
    if b.is_nan() || b <= 0.0 {
        return None;
    }
    // u = p_0'/p_0 = (A − B')/B and its derivatives (from uB = A − B').
    let u = (a - b1) / b;
    let u1 = ((a1 - b2) - u * b1) / b;
    let u2 = ((a2 - b3) - 2.0 * u1 * b1 - u * b2) / b;
    // (C_3 p_0)'' = (v3' + v3 u) p_0 with v3 = C_3' + C_3 u.
    let v3 = c3_1 + c3 * u;
    let v3_1 = c3_2 + c3_1 * u + c3 * u1;
    // (C_4 p_0)''' = (w2' + w2 u) p_0 with w1 = C_4' + C_4 u, w2 = w1' + w1 u.
    let w1 = c4_1 + c4 * u;
    let w1_1 = c4_2 + c4_1 * u + c4 * u1;
    let w1_2 = c4_3 + c4_2 * u + 2.0 * c4_1 * u1 + c4 * u2;
    let w2 = w1_1 + w1 * u;
    let w2_1 = w1_2 + w1_1 * u + w1 * u1;
    let dh = ((v3_1 + v3 * u) - (w2_1 + w2 * u)) / b;
    let out = Local {
        a_over_b: a / b,
        ln_b: b.ln(),
        dh,
    };
    (out.a_over_b.is_finite() && out.dh.is_finite()).then_some(out)
}

/// ln p(x) of the homogenised density on the points (up to a constant), and the two parts
/// ln p_0 (second-order A, B only) and h − ⟨h⟩ (first-order cumulant correction).
#[derive(Debug, Clone)]
pub struct HomogenisedProfile {
    /// ln p_0(x) = −ln B(x) + ∫₀^x A/B (the constant: ln p_0 = −ln B(0) at x = 0).
    pub log_p0: Vec<f64>,
    /// h(x) with ⟨h⟩ = 0 under p_0 on the points.
    pub h: Vec<f64>,
}

impl HomogenisedProfile {
    /// ln p = ln p_0 + ln(1 + h), with 1 + h continued as e^h where h < 0 (never negative).
    pub fn log_p(&self) -> Vec<f64> {
        self.log_p0
            .iter()
            .zip(&self.h)
            .map(|(l0, &h)| l0 + if h >= 0.0 { h.ln_1p() } else { h })
            .collect()
    }
}

/// ∫₀^x A/B by composite Simpson with [`ANCHOR_PANELS`] panels.
fn integral_from_zero(valley: &Valley2d, delta_s: f64, eta: Option<f64>, x: f64) -> Option<f64> {
    let n = ANCHOR_PANELS;
    let h = x / n as f64;
    let mut acc = 0.0;
    for k in 0..=2 * n {
        let xi = 0.5 * h * k as f64;
        let c = coefficients_at(valley, delta_s, eta, xi)?;
        let w = if k == 0 || k == 2 * n {
            1.0
        } else if k % 2 == 1 {
            4.0
        } else {
            2.0
        };
        acc += w * c.drift / c.diffusion;
    }
    Some(acc * h / 6.0)
}

/// Δ_S and, for `discrete_time`, the noise's learning rate η (Hessian noise of power 2 only).
fn time_model(noise: &Noise, discrete_time: bool) -> Option<(f64, Option<f64>)> {
    let ds = delta_s_power2(noise)?;
    match *noise {
        Noise::Hessian { eta, .. } if discrete_time => Some((ds, Some(eta))),
        _ => Some((ds, None)),
    }
}

/// The homogenised ln p_0 and h on the uniform points `xs` (cell centres), of the continuum
/// (Eq. 10) or, with `discrete_time`, of the SGD map with the noise's η; `None` when the level
/// does not apply (not Hessian noise of power 2, λ ≤ 0, a missing moment, or B ≤ 0).
pub fn homogenised_profile(
    valley: &Valley2d,
    noise: &Noise,
    xs: &[f64],
    discrete_time: bool,
) -> Option<HomogenisedProfile> {
    let (ds, eta) = time_model(noise, discrete_time)?;
    let n = xs.len();
    if n == 0 {
        return Some(HomogenisedProfile {
            log_p0: Vec::new(),
            h: Vec::new(),
        });
    }
    let mut points = Vec::with_capacity(2 * n);
    points.extend_from_slice(xs);
    points.extend(xs.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    let values: Vec<Local> = points
        .par_iter()
        .map(|&x| local(valley, ds, eta, x))
        .collect::<Option<Vec<_>>>()?;
    let (nodes, mids) = values.split_at(n);
    let anchor = quad::nearest_to_zero(xs);
    let phi0 = integral_from_zero(valley, ds, eta, xs[anchor])?;
    let cumulative = |g: &dyn Fn(&Local) -> f64, start: f64| -> Vec<f64> {
        let mut phi = vec![0.0; n];
        phi[anchor] = start;
        for i in anchor + 1..n {
            let h = xs[i] - xs[i - 1];
            phi[i] =
                phi[i - 1] + h / 6.0 * (g(&nodes[i - 1]) + 4.0 * g(&mids[i - 1]) + g(&nodes[i]));
        }
        for i in (0..anchor).rev() {
            let h = xs[i] - xs[i + 1];
            phi[i] = phi[i + 1] + h / 6.0 * (g(&nodes[i + 1]) + 4.0 * g(&mids[i]) + g(&nodes[i]));
        }
        phi
    };
    let int_ab = cumulative(&|l| l.a_over_b, phi0);
    let log_p0: Vec<f64> = nodes.iter().zip(&int_ab).map(|(l, f)| f - l.ln_b).collect();
    let mut h = cumulative(&|l| l.dh, 0.0);
    let p0 = quad::normalise_log_density(xs, &log_p0);
    let dx = quad::uniform_spacing(xs);
    let mean_h: f64 = p0.iter().zip(&h).map(|(p, h)| p * h).sum::<f64>() * dx;
    h.iter_mut().for_each(|v| *v -= mean_h);
    (log_p0.iter().chain(&h).all(|v| v.is_finite())).then_some(HomogenisedProfile { log_p0, h })
}

/// The x-marginal of the homogenised level on the uniform points `xs` (cell centres),
/// normalised Σ p·dx = 1, on the unbounded y-line; `None` when the level does not apply.
pub fn marginal_x_homogenised(valley: &Valley2d, noise: &Noise, xs: &[f64]) -> Option<Vec<f64>> {
    marginal_x_homogenised_with(valley, noise, xs, false)
}

/// [`marginal_x_homogenised`] of the continuum, or with `discrete_time` of the SGD map with the
/// noise's η (`[theory] discrete_time`).
pub fn marginal_x_homogenised_with(
    valley: &Valley2d,
    noise: &Noise,
    xs: &[f64],
    discrete_time: bool,
) -> Option<Vec<f64>> {
    let prof = homogenised_profile(valley, noise, xs, discrete_time)?;
    Some(quad::normalise_log_density(xs, &prof.log_p()))
}

/// The x-marginal p_0 ∝ B⁻¹ exp ∫A/B of the second-order drift and diffusion alone (no cumulant
/// correction), normalised like [`marginal_x_homogenised`].
pub fn marginal_x_homogenised_second_order(
    valley: &Valley2d,
    noise: &Noise,
    xs: &[f64],
) -> Option<Vec<f64>> {
    let prof = homogenised_profile(valley, noise, xs, false)?;
    Some(quad::normalise_log_density(xs, &prof.log_p0))
}

/// The effective loss of the homogenised level, L_eff(x) = −Δ_S ln p(x), shifted to 0 at its
/// minimum over the points (the stationary density is ∝ exp(−L_eff/Δ_S)).
pub fn l_eff_homogenised(valley: &Valley2d, noise: &Noise, xs: &[f64]) -> Option<Vec<f64>> {
    l_eff_homogenised_with(valley, noise, xs, false)
}

/// [`l_eff_homogenised`] of the continuum or (`discrete_time`) of the SGD map.
pub fn l_eff_homogenised_with(
    valley: &Valley2d,
    noise: &Noise,
    xs: &[f64],
    discrete_time: bool,
) -> Option<Vec<f64>> {
    let ds = delta_s_power2(noise)?;
    let log_p = homogenised_profile(valley, noise, xs, discrete_time)?.log_p();
    let max = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(log_p.iter().map(|l| -ds * (l - max)).collect())
}

/// `summary.json` → `theory.homogenised`: the statistics of |x| under the homogenised marginal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HomogenisedSummary {
    /// ⟨|x|⟩.
    pub mean: f64,
    /// Standard deviation of |x|.
    pub std: f64,
    /// Skewness ⟨(|x| − mean)³⟩/std³.
    pub skewness: f64,
    /// The smallest stable positive root of the homogenised drift A(x) (0 if none).
    pub x_ss: f64,
}

/// Mean, standard deviation and skewness of |x| under the density `p` on the uniform points.
pub fn abs_x_statistics(xs: &[f64], p: &[f64]) -> (f64, f64, f64) {
    let dx = quad::uniform_spacing(xs);
    let mass: f64 = p.iter().sum::<f64>() * dx;
    let moment = |f: &dyn Fn(f64) -> f64| {
        xs.iter().zip(p).map(|(x, p)| f(x.abs()) * p).sum::<f64>() * dx / mass
    };
    let mean = moment(&|x| x);
    let var = moment(&|x| (x - mean) * (x - mean));
    let third = moment(&|x| (x - mean).powi(3));
    let std = var.max(0.0).sqrt();
    (mean, std, if std > 0.0 { third / std.powi(3) } else { 0.0 })
}

/// Scan points of the fixed-point search for x_ss.
const X_SS_SCAN: usize = 2048;

/// The smallest stable positive root of A(x) on (0, x_max] (A changes sign from + to −); 0 if
/// there is none or the level does not apply.
pub fn x_ss_homogenised(valley: &Valley2d, noise: &Noise, x_max: f64) -> f64 {
    x_ss_homogenised_with(valley, noise, x_max, false)
}

/// [`x_ss_homogenised`] of the continuum or (`discrete_time`) of the SGD map.
pub fn x_ss_homogenised_with(
    valley: &Valley2d,
    noise: &Noise,
    x_max: f64,
    discrete_time: bool,
) -> f64 {
    let Some((ds, eta)) = time_model(noise, discrete_time) else {
        return 0.0;
    };
    let drift = |x: f64| coefficients_at(valley, ds, eta, x).map(|c| c.drift);
    let mut prev: Option<(f64, f64)> = None;
    for k in 1..=X_SS_SCAN {
        let x = x_max * k as f64 / X_SS_SCAN as f64;
        let Some(ax) = drift(x) else { break };
        if let Some((xa, aa)) = prev
            && aa > 0.0
            && ax <= 0.0
        {
            let (mut lo, mut hi) = (xa, x);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                match drift(mid) {
                    Some(am) if am > 0.0 => lo = mid,
                    Some(_) => hi = mid,
                    None => break,
                }
            }
            return 0.5 * (lo + hi);
        }
        prev = Some((x, ax));
    }
    0.0
}

/// The summary of the homogenised level on the uniform points `xs`; `None` when it does not apply.
pub fn summarize_homogenised(
    valley: &Valley2d,
    noise: &Noise,
    xs: &[f64],
) -> Option<HomogenisedSummary> {
    summarize_homogenised_with(valley, noise, xs, false)
}

/// [`summarize_homogenised`] of the continuum or (`discrete_time`) of the SGD map.
pub fn summarize_homogenised_with(
    valley: &Valley2d,
    noise: &Noise,
    xs: &[f64],
    discrete_time: bool,
) -> Option<HomogenisedSummary> {
    let p = marginal_x_homogenised_with(valley, noise, xs, discrete_time)?;
    let (mean, std, skewness) = abs_x_statistics(xs, &p);
    let x_max = xs.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    Some(HomogenisedSummary {
        mean,
        std,
        skewness,
        x_ss: x_ss_homogenised_with(valley, noise, x_max, discrete_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::conditional::{YLaw, conditional_moments};
    use crate::theory::paper::UNBOUNDED;

    /// OU y, dy = −λy dt + √(2q) dW, and φ with dφ = √2 γ y dW: φ_t = (γ/√q)(λ∫y² − q t) + O(1),
    /// whose cumulant generating function is known in closed form,
    /// Λ(θ) = [λ − √(λ² − 4qλγθ/√q)]/2 − γ√q θ: ℓ2 = γ²q/λ, ℓ3 = 2γ³q^{3/2}/λ², ℓ4 = 5γ⁴q²/λ³.
    #[test]
    fn cumulant_rates_match_the_closed_form_for_an_ou_functional() {
        let (lam, q, gamma) = (3.0_f64, 0.02_f64, 0.7_f64);
        let law = FastLaw::new(q / (lam * lam), lam, 0.0).unwrap();
        let s: EvenPoly = [0.0, 2.0 * gamma * gamma, 0.0, 0.0, 0.0];
        let [l2, l3, l4] = law.cumulant_rates([2.0 * gamma * q.sqrt(), 0.0], &s);
        let exact = [
            gamma * gamma * q / lam,
            2.0 * gamma.powi(3) * q.powf(1.5) / (lam * lam),
            5.0 * gamma.powi(4) * q * q / lam.powi(3),
        ];
        for (got, want) in [l2, l3, l4].iter().zip(exact) {
            assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn fast_moments_equal_the_quadrature_of_the_exact_conditional_law() {
        let v = Valley2d::paper();
        let noise = Noise::Hessian {
            eta: 0.01,
            sigma: 0.4,
            power: 2.0,
        };
        for x in [0.0, 0.3, 0.85, 1.2] {
            let law = FastLaw::new(0.004, v.lambda_at(x), v.lambda_d1(x)).unwrap();
            let m = conditional_moments(&v, &noise, x, UNBOUNDED, YLaw::Exact).unwrap();
            assert!((law.moments[1] / m.mean_y2 - 1.0).abs() < 1e-9, "x = {x}");
            let d11 = coefficients(&v, 0.004, x).unwrap().diffusion_leading;
            assert!((d11 / m.mean_d11 - 1.0).abs() < 1e-9, "x = {x}");
        }
    }

    #[test]
    fn fast_solver_inverts_the_fast_generator() {
        let law = FastLaw::new(0.002, 7.2, -0.9).unwrap();
        let r: EvenPoly = [0.3, -1.2, 0.5, 2.0, -0.7];
        let h = law.solve(&r);
        // 𝓛_y h, term by term, must equal r − ⟨r⟩.
        let mut lh = [0.0; POLY_LEN];
        for k in 1..POLY_LEN {
            lh[k] -= 2.0 * k as f64 * law.a[k] * h[k];
            lh[k - 1] += law.q * (2 * k) as f64 * (2 * k - 1) as f64 * h[k];
        }
        let mean_r = law.mean(&r);
        for k in 0..POLY_LEN {
            let want = r[k] - if k == 0 { mean_r } else { 0.0 };
            assert!(
                (lh[k] - want).abs() < 1e-12,
                "y^{}: {} vs {want}",
                2 * k,
                lh[k]
            );
        }
        assert!(law.mean(&h).abs() < 1e-15);
    }

    /// At leading order B = Δ_S⟨H11²⟩ + ¼Δ_S²λλ'² (a quarter of the λ'² part of ⟨D11⟩), and
    /// the drift of φ is the reduced level's ⟨−∂xL⟩ up to O(Δ_S²).
    #[test]
    fn diffusion_keeps_a_quarter_of_the_adiabatic_lambda_prime_term() {
        let v = Valley2d::paper();
        let x = 0.85;
        let (lam, lam1, lam2) = (v.lambda_at(x), v.lambda_d1(x), v.lambda_d2(x));
        let e = v.epsilon * v.lambda0();
        for ds in [1e-4, 1e-5] {
            let c = coefficients(&v, ds, x).unwrap();
            let m = ds * lam;
            let h11_sq = e * e + e * lam2 * m + 0.25 * lam2 * lam2 * 3.0 * m * m;
            let lead = ds * h11_sq + 0.25 * ds * ds * lam * lam1 * lam1;
            assert!((c.diffusion / lead - 1.0).abs() < 200.0 * ds, "Δ_S = {ds}");
            assert!(
                (c.drift - c.drift_leading).abs() < 50.0 * ds * ds,
                "Δ_S = {ds}"
            );
        }
    }

    #[test]
    fn finite_differences_are_exact_on_a_sextic() {
        let f = |x: f64| 1.0 + x - 2.0 * x.powi(3) + 0.5 * x.powi(6);
        let (x0, h) = (0.7, 0.01);
        let vals: [f64; 7] = std::array::from_fn(|j| f(x0 + (j as f64 - 3.0) * h));
        let d = derivatives(&vals, h);
        let exact = [
            f(x0),
            1.0 - 6.0 * x0 * x0 + 3.0 * x0.powi(5),
            -12.0 * x0 + 15.0 * x0.powi(4),
            -12.0 + 60.0 * x0.powi(3),
        ];
        for (k, (a, b)) in d.iter().zip(exact).enumerate() {
            assert!(
                (a - b).abs() < 1e-6 * b.abs().max(1.0),
                "f^({k}): {a} vs {b}"
            );
        }
    }
}
