//! Adiabatic elimination of the fast variable y: Eqs. (11)–(16) and the reduced 1-D equation
//! (docs/reference.md §3).
//!
//! Two levels, each giving an x-marginal and an effective loss along the valley:
//! - [`paper`]: the formulas as printed — Eq. (11) for constant anisotropy, Eqs. (13)/(14) for
//!   Hessian noise with κ(x) = Δ(x)/⟨D11⟩_y over the Gaussian law of y, the closed-form κ,
//!   Δ_S* = −ε/λ1 and the convergence condition;
//! - [`reduced`]: numerically exact adiabatic elimination — the exact stationary law of y at
//!   fixed x ([`conditional`]), the averaged drift ⟨∂xL⟩_y and diffusion ⟨D11⟩_y, the stationary
//!   density of the 1-D Itô equation, and its fixed points x_ss(Δ_S) (the pitchfork at Δ_S*).
//!
//! [`nd`] holds Eqs. (15)–(16) for the N-D valley as pure functions of the curvatures.

pub mod conditional;
pub mod curved;
pub mod divergence;
pub mod fibres;
pub mod homogenised;
pub mod hopping;
pub mod nd;
pub mod paper;
pub mod quad;
pub mod reduced;

use serde::{Deserialize, Serialize};

use crate::config::{AxisConfig, Check, Invalid, check_positive};
use crate::landscape::Valley2d;
use crate::noise::Noise;

pub use conditional::{ConditionalMoments, YLaw, conditional_moments, conditional_moments_with};
pub use homogenised::{
    HomogenisedSummary, l_eff_homogenised, l_eff_homogenised_with, marginal_x_homogenised,
    marginal_x_homogenised_with, summarize_homogenised, summarize_homogenised_with,
    x_ss_homogenised, x_ss_homogenised_with,
};
pub use nd::{flatness_geometric, flatness_weighted, l_sgd_flat, noise_weights};
pub use paper::{
    delta_s_star, delta_s_star_power, kappa_at, kappa_closed_form, l_sgd_paper, l_sgd_small_noise,
    marginal_x_paper, marginal_x_paper_small_noise, paper_constants,
};
pub use reduced::{FixedPoint, fixed_points_reduced, marginal_x_reduced, x_ss_reduced};

/// Half-width of the x-range of the theory when neither `[theory] x_max` nor an FP grid gives
/// one (the paper's FP domain, Fig. 5).
pub const DEFAULT_X_MAX: f64 = 1.6;
/// Cells of the x-grid on which the summary's statistics of the marginals are taken.
pub const DEFAULT_X_CELLS: usize = 801;
/// Largest `[theory] x_cells` accepted.
pub const MAX_X_CELLS: usize = 100_000;

/// `[theory] level`: which levels of the theory are computed (each gives its own x-marginal).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TheoryLevel {
    /// Eqs. (11)–(14) as printed ([`paper`]).
    Paper,
    /// Numerically exact adiabatic elimination ([`reduced`]).
    Reduced,
    /// Second-order homogenisation with the κ3/κ4 correction ([`homogenised`]; Hessian noise, γ = 2).
    Homogenised,
    /// Every level that applies to the scenario.
    #[default]
    All,
}

/// `[theory]` (docs/reference.md §6.5); an empty table runs the theory with defaults.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TheoryConfig {
    /// Half-width of the x-range searched for fixed points and used for the summary's
    /// statistics; default: the FP x-domain's max |x| (see [`TheoryConfig::with_fp_domain`]),
    /// else [`DEFAULT_X_MAX`].
    #[serde(default)]
    pub x_max: Option<f64>,
    /// y-domain [y_min, y_max] of the conditional law of y (reduced level); default: the FP
    /// y-domain, else unbounded.
    #[serde(default)]
    pub y_range: Option<[f64; 2]>,
    /// Cells of the summary's x-grid on [−x_max, x_max]; default [`DEFAULT_X_CELLS`].
    #[serde(default)]
    pub x_cells: Option<usize>,
    /// Which levels to compute; default [`TheoryLevel::All`] (the reduced level is always
    /// computed: x_ss and the summary rest on it).
    #[serde(default)]
    pub level: TheoryLevel,
    /// The homogenised level of the SGD map with the noise's η (discrete-time fast statistics,
    /// e.g. ⟨y²⟩ = Δ_Sλ/(1 − ηλ/2) for λ' = 0) instead of the continuum Eq. (10).
    #[serde(default)]
    pub discrete_time: bool,
}

/// Largest ε λ0, |λ_n| or λ(±x_max) the theory accepts (beyond it exp(−L_eff) overflows).
pub const MAX_COEFFICIENT: f64 = 1e150;

impl TheoryConfig {
    /// Check every value against the landscape and the FP domain (when there is one); `key` is
    /// the table's dotted name.
    pub fn validate(
        &self,
        key: &str,
        valley: &Valley2d,
        fp_domain: Option<(&AxisConfig, &AxisConfig)>,
    ) -> Check {
        if let Some(x_max) = self.x_max {
            check_positive(&format!("{key}.x_max"), x_max)?;
        }
        if let Some([lo, hi]) = self.y_range {
            let k = format!("{key}.y_range");
            if lo.is_nan() || hi.is_nan() || !(lo <= 0.0 && hi >= 0.0 && lo < hi) {
                return Err(Invalid::new(
                    k,
                    format!(
                        "must be [y_min, y_max] with y_min <= 0 <= y_max and y_min < y_max, got [{lo}, {hi}]"
                    ),
                ));
            }
        }
        if let Some(cells) = self.x_cells
            && !(3..=MAX_X_CELLS).contains(&cells)
        {
            return Err(Invalid::new(
                format!("{key}.x_cells"),
                format!("must be in 3..={MAX_X_CELLS}, got {cells}"),
            ));
        }
        let cfg = self.with_fp_domain(fp_domain);
        let x_max = cfg.x_max();
        let min_lambda = valley.min_lambda_on(x_max);
        if !(min_lambda > 0.0 && min_lambda.is_finite()) {
            return Err(Invalid::new(
                "landscape.lambda",
                format!(
                    "the theory needs λ(x) > 0 on |x| <= {x_max}, but its minimum there is {min_lambda:.4}"
                ),
            ));
        }
        // The theory integrates exp(−L_eff) built from ε λ0 and λ(x): astronomically large
        // coefficients overflow it to NaN.
        let lambda_max = valley.lambda_at(x_max).max(valley.lambda_at(-x_max));
        let coefficient = (valley.epsilon * valley.lambda0())
            .abs()
            .max(valley.lambda.iter().fold(0.0f64, |m, c| m.max(c.abs())))
            .max(lambda_max);
        if coefficient.is_nan() || coefficient >= MAX_COEFFICIENT {
            return Err(Invalid::new(
                "landscape",
                format!(
                    "the theory needs ε λ0, the coefficients λ_n and λ(±{x_max}) below {MAX_COEFFICIENT:e}; the largest is {coefficient:e}"
                ),
            ));
        }
        Ok(())
    }

    /// This configuration with `x_max` and `y_range` filled from the FP grid's axes where not
    /// given.
    pub fn with_fp_domain(&self, fp_domain: Option<(&AxisConfig, &AxisConfig)>) -> TheoryConfig {
        let mut cfg = self.clone();
        if let Some((x, y)) = fp_domain {
            cfg.x_max.get_or_insert(x.min.abs().max(x.max.abs()));
            cfg.y_range.get_or_insert([y.min, y.max]);
        }
        cfg
    }

    /// Check `level` and `discrete_time` against the noise: the homogenised level needs Hessian
    /// noise of power 2 with σ > 0 when asked for alone.
    pub fn check_level(&self, key: &str, noise: &Noise) -> Check {
        if homogenised::delta_s_power2(noise).is_none() {
            if self.level == TheoryLevel::Homogenised {
                return Err(Invalid::new(
                    format!("{key}.level"),
                    "\"homogenised\" needs Hessian noise of power 2 and σ > 0 (use \"all\" to skip it where it does not apply)",
                ));
            }
            if self.discrete_time {
                return Err(Invalid::new(
                    format!("{key}.discrete_time"),
                    "the discrete-time (SGD map) theory needs Hessian noise of power 2 and σ > 0",
                ));
            }
        }
        Ok(())
    }

    /// Whether `level` is computed under this configuration (`All` computes every level).
    pub fn computes(&self, level: TheoryLevel) -> bool {
        self.level == TheoryLevel::All || self.level == level
    }

    /// The x half-width in use.
    pub fn x_max(&self) -> f64 {
        self.x_max.unwrap_or(DEFAULT_X_MAX)
    }

    /// The y-domain in use (infinite ends when unbounded).
    pub fn y_range(&self) -> (f64, f64) {
        self.y_range.map_or(paper::UNBOUNDED, |[lo, hi]| (lo, hi))
    }

    /// The summary's x-grid: cell centres on [−x_max, x_max].
    pub fn x_grid(&self) -> Vec<f64> {
        let x_max = self.x_max();
        quad::cell_centres(-x_max, x_max, self.x_cells.unwrap_or(DEFAULT_X_CELLS))
    }
}

/// The convergence condition η⟨λ(x)⟩_ss < 2 of the Appendix (Hessian noise only).
#[derive(Debug, Clone, Serialize)]
pub struct Convergence {
    /// η, the learning rate.
    pub eta: f64,
    /// The paper's estimate λ(x_ss) + ½λ''(x_ss)(⟨x²⟩_ss − x_ss²), ⟨x²⟩ from the reduced marginal.
    pub lambda_mean_ss_paper: f64,
    /// ⟨λ(x)⟩ over the reduced marginal.
    pub lambda_mean_ss_reduced: f64,
    /// η · `lambda_mean_ss_paper` (must be < 2).
    pub eta_lambda_mean_ss: f64,
    /// Whether η⟨λ⟩_ss < 2 (paper estimate).
    pub converges: bool,
}

/// The theory's results: `summary.json` "theory" (docs/reference.md §7.4).
///
/// `Option` fields are `null` in JSON exactly when the quantity is undefined, and `notes` then
/// says why; every plain `f64` is finite.
#[derive(Debug, Clone, Serialize)]
pub struct TheorySummary {
    /// κ of the paper level: the noise's κ (anisotropic), 1 (isotropic), d22/d11 (constant);
    /// Hessian noise: the closed form (ε² + 2εΔ_Sλ1 + 3Δ_S²λ1²)^(−1) for γ = 2, κ(0) over the
    /// Gaussian law of y for other γ.
    pub kappa: Option<f64>,
    /// Δ of the paper level: the noise's Δ, or Δ(0) = Δ_S λ0^γ for Hessian noise.
    pub delta: Option<f64>,
    /// Δ_S = ησ (Hessian noise only).
    pub delta_s: Option<f64>,
    /// Δ_S* = −ε/λ1 (Appendix); `None` when λ1 ≥ 0.
    pub delta_s_star: Option<f64>,
    /// Stable positive root of the reduced drift on (0, x_max]; 0 if none.
    pub x_ss: f64,
    /// Plain-language statements about undefined or doubtful quantities.
    pub notes: Vec<String>,
    /// The closed-form κ (Hessian noise, γ = 2 only).
    pub kappa_closed_form: Option<f64>,
    /// κ(0) = Δ(0)/⟨D11⟩_y over the exact conditional law on the y-domain.
    pub kappa_conditional: Option<f64>,
    /// Δ_S at which x = 0 loses stability in the reduced level, −ε/(λ1 λ0^(γ−2)) (Hessian noise).
    pub delta_s_star_reduced: Option<f64>,
    /// Fixed points x ≥ 0 of the reduced drift with their stability.
    pub fixed_points: Vec<FixedPoint>,
    /// Flatness F(x_ss) = λ(x_ss)^(−1/2).
    pub flatness_ss: f64,
    /// ⟨|x|⟩ of the reduced marginal on the summary grid.
    pub mean_abs_x_reduced: f64,
    /// The |x| of the reduced marginal's maximum.
    pub mode_abs_x_reduced: f64,
    /// ⟨|x|⟩ of the paper-level marginal (Eq. 11/13), when it applies.
    pub mean_abs_x_paper: Option<f64>,
    /// The |x| of the paper-level marginal's maximum, when it applies.
    pub mode_abs_x_paper: Option<f64>,
    /// Convergence condition (Hessian noise only).
    pub convergence: Option<Convergence>,
    /// Half-width of the x-range used.
    pub x_max: f64,
    /// y-domain of the conditional law; `None` = unbounded.
    pub y_range: Option<[f64; 2]>,
    /// The homogenised level's statistics of |x| and x_ss on the summary grid (of the SGD map
    /// with `discrete_time`); `None` when not asked for or not applicable.
    pub homogenised: Option<HomogenisedSummary>,
}

/// Compute the theory's summary for a 2-D valley and noise model (docs/reference.md §3, §7.4).
///
/// Call with `cfg.with_fp_domain(…)` to take the FP domain as the theory's domain.
pub fn summarize(valley: &Valley2d, noise: &Noise, cfg: &TheoryConfig) -> TheorySummary {
    let mut notes = Vec::new();
    let y_range = cfg.y_range();
    let x_max = confined_x_max(valley, cfg, &mut notes);
    let delta_s = noise.delta_s();
    let (kappa, delta) = paper::paper_constants(valley, noise);
    let dss = paper::delta_s_star(valley);
    if dss.is_none() {
        notes.push(format!(
            "λ1 = {} >= 0: the valley gets no flatter away from x = 0, so there is no transition Δ_S* (x = 0 stays the attractor)",
            valley.lambda1()
        ));
    } else if delta_s.is_none() {
        notes.push(
            "Δ_S* = −ε/λ1 refers to Hessian noise (Δ_S = ησ); this scenario's noise has no Δ_S"
                .into(),
        );
    }
    if valley.epsilon == 0.0 {
        notes.push("ε = 0: the valley is exactly degenerate; Δ_S* = 0".into());
    }
    let mut kappa_closed_form = None;
    let mut delta_s_star_reduced = None;
    match *noise {
        Noise::Hessian { power, .. } => {
            let ds = delta_s.unwrap_or(0.0);
            if power == 2.0 {
                kappa_closed_form = paper::kappa_closed_form(valley, ds);
            } else {
                notes.push(format!(
                    "γ = {power} ≠ 2: the closed-form κ assumes D = Δ_S H²; `kappa` is κ(0) over the Gaussian law of y"
                ));
            }
            delta_s_star_reduced = paper::delta_s_star_power(valley, power);
            if ds == 0.0 {
                notes.push("Δ_S = 0 (σ = 0): no noise, plain gradient descent; κ and Δ are undefined and x_ss = 0 for ε > 0".into());
            }
        }
        Noise::Constant { d } if d[0][1] != 0.0 => notes.push(
            "d12 ≠ 0: the cross diffusion drops out of the x-equation after averaging over y; the paper level ignores it".into(),
        ),
        _ => {}
    }
    if kappa.is_none() && delta_s != Some(0.0) {
        notes.push("κ is undefined: no noise in x (D11 = 0)".into());
    }
    let kappa_conditional = paper::kappa_at(valley, noise, 0.0, YLaw::Exact, y_range);
    if let Some(m) = conditional::conditional_moments(valley, noise, 0.0, y_range, YLaw::Exact)
        && m.tail_truncated
    {
        notes.push("the conditional law of y has a heavy tail that is not negligible at 64 σ: averages depend on where y is cut (adiabatic elimination is doubtful)".into());
    }

    let fixed_points = reduced::fixed_points_reduced(valley, noise, y_range, x_max);
    let x_ss = stable_x_ss(&fixed_points);

    let (xs, dx, p_red) = reduced_marginal_on_grid(valley, noise, cfg, x_max, y_range);
    let stats = |p: &[f64]| {
        let mean_abs: f64 = xs.iter().zip(p).map(|(x, p)| x.abs() * p).sum::<f64>() * dx;
        let mean_x2: f64 = xs.iter().zip(p).map(|(x, p)| x * x * p).sum::<f64>() * dx;
        let mode = xs
            .iter()
            .zip(p)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0.0, |(x, _)| x.abs());
        (mean_abs, mean_x2, mode)
    };
    let (mean_abs_x_reduced, mean_x2, mode_abs_x_reduced) = stats(&p_red);
    let p_paper = paper::marginal_x_paper(valley, noise, &xs);
    if p_paper.is_none() {
        notes.push(
            "the paper-level marginal (Eqs. 11/13) does not apply: no noise in x or y".into(),
        );
    }
    let paper_stats = p_paper.as_deref().map(stats);

    let convergence = convergence(valley, noise, x_ss, mean_x2, &xs, &p_red);
    TheorySummary {
        kappa,
        delta,
        delta_s,
        delta_s_star: dss,
        x_ss,
        notes,
        kappa_closed_form,
        kappa_conditional,
        delta_s_star_reduced,
        fixed_points,
        flatness_ss: valley.flatness(x_ss),
        mean_abs_x_reduced,
        mode_abs_x_reduced,
        mean_abs_x_paper: paper_stats.map(|s| s.0),
        mode_abs_x_paper: paper_stats.map(|s| s.2),
        convergence,
        x_max,
        y_range: cfg.y_range,
        homogenised: if cfg.computes(TheoryLevel::Homogenised) {
            homogenised::summarize_homogenised_with(valley, noise, &xs, cfg.discrete_time)
        } else {
            None
        },
    }
}

/// The x half-width of the theory: `cfg`'s, shrunk to where λ(x) stays positive (with a note).
/// The theory's x-grid on [−x_max, x_max], its spacing and the reduced level's x-marginal on it.
fn reduced_marginal_on_grid(
    valley: &Valley2d,
    noise: &Noise,
    cfg: &TheoryConfig,
    x_max: f64,
    y_range: (f64, f64),
) -> (Vec<f64>, f64, Vec<f64>) {
    let grid_cfg = TheoryConfig {
        x_max: Some(x_max),
        ..cfg.clone()
    };
    let xs = grid_cfg.x_grid();
    let dx = quad::uniform_spacing(&xs);
    let p_red = reduced::marginal_x_reduced(valley, noise, &xs, y_range);
    (xs, dx, p_red)
}

fn confined_x_max(valley: &Valley2d, cfg: &TheoryConfig, notes: &mut Vec<String>) -> f64 {
    let x_max = cfg.x_max();
    let min_lambda = valley.min_lambda_on(x_max);
    if !(min_lambda.is_nan() || min_lambda <= 0.0) {
        return x_max;
    }
    // Shrink to where λ stays positive.
    let mut lo = 0.0;
    let mut hi = x_max;
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if valley.min_lambda_on(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    notes.push(format!(
        "λ(x) <= 0 inside |x| <= {x_max}: y is not confined there; the theory is restricted to |x| <= {lo:.4}"
    ));
    lo
}

/// x_ss: the smallest stable positive fixed point, 0 if there is none.
fn stable_x_ss(fixed_points: &[FixedPoint]) -> f64 {
    fixed_points
        .iter()
        .find(|p| p.x > 0.0 && p.stable)
        .map_or(0.0, |p| p.x)
}

/// The convergence condition η⟨λ⟩_ss < 2 from x_ss, ⟨x²⟩ and the reduced marginal `p_red` on
/// the uniform points `xs` (Hessian noise only).
fn convergence(
    valley: &Valley2d,
    noise: &Noise,
    x_ss: f64,
    mean_x2: f64,
    xs: &[f64],
    p_red: &[f64],
) -> Option<Convergence> {
    let Noise::Hessian { eta, .. } = *noise else {
        return None;
    };
    let dx = quad::uniform_spacing(xs);
    let est = paper::lambda_mean_ss_estimate(valley, x_ss, mean_x2);
    let exact: f64 = xs
        .iter()
        .zip(p_red)
        .map(|(x, p)| valley.lambda_at(*x) * p)
        .sum::<f64>()
        * dx;
    Some(Convergence {
        eta,
        lambda_mean_ss_paper: est,
        lambda_mean_ss_reduced: exact,
        eta_lambda_mean_ss: eta * est,
        converges: eta * est < 2.0,
    })
}

/// What a sweep point needs of the theory: x_ss, F(x_ss) and the convergence condition.
#[derive(Debug, Clone)]
pub struct SweepTheory {
    /// Stable positive root of the reduced drift (as [`TheorySummary::x_ss`]).
    pub x_ss: f64,
    /// F(x_ss) = λ(x_ss)^(−1/2).
    pub flatness_ss: f64,
    /// The convergence condition (Hessian noise only).
    pub convergence: Option<Convergence>,
}

/// The fields of [`summarize`] a sweep point reads, bit for bit, without the paper-level and
/// homogenised marginals the sweep does not use (they cost more than half of [`summarize`]).
pub fn sweep_point(valley: &Valley2d, noise: &Noise, cfg: &TheoryConfig) -> SweepTheory {
    let y_range = cfg.y_range();
    let x_max = confined_x_max(valley, cfg, &mut Vec::new());
    let x_ss = stable_x_ss(&reduced::fixed_points_reduced(
        valley, noise, y_range, x_max,
    ));
    let convergence = match noise {
        Noise::Hessian { .. } => {
            let (xs, dx, p_red) = reduced_marginal_on_grid(valley, noise, cfg, x_max, y_range);
            let mean_x2: f64 = xs.iter().zip(&p_red).map(|(x, p)| x * x * p).sum::<f64>() * dx;
            convergence(valley, noise, x_ss, mean_x2, &xs, &p_red)
        }
        _ => None,
    };
    SweepTheory {
        x_ss,
        flatness_ss: valley.flatness(x_ss),
        convergence,
    }
}

/// Curves along the valley floor y = 0 for Fig. 4(b) (paper: loss before and after reshaping
/// by the noise). Additive constants follow Eq. (13) with the integral from x = 0, i.e.
/// L_eff(x, 0) = −Δ(x) ln[Z P(x, 0)] with Z P(x, y) = [p(x)/p(0)] √(2π) p(y|x); the reduced
/// curves use the same convention with the reduced p(x) and the exact p(y|x).
#[derive(Debug, Clone, Serialize)]
pub struct ValleyProfiles {
    /// The points.
    pub x: Vec<f64>,
    /// L(x, 0) = ½ ε λ0 x².
    pub loss: Vec<f64>,
    /// Δ(x) = D22(x, 0).
    pub delta: Vec<f64>,
    /// κ(x) over the Gaussian law of y (paper).
    pub kappa_paper: Option<Vec<f64>>,
    /// κ(x) over the exact conditional law of y (reduced).
    pub kappa_reduced: Option<Vec<f64>>,
    /// L_SGD(x) of Eq. (13).
    pub l_sgd_paper: Option<Vec<f64>>,
    /// L_eff(x, 0) = L(x, 0) + L_SGD(x), Eq. (13).
    pub l_eff_paper: Option<Vec<f64>>,
    /// L_SGD(x) of the small-noise form, Eq. (14) (Eq. 12 for ε = 0).
    pub l_sgd_small_noise: Option<Vec<f64>>,
    /// L_SGD(x) of the reduced level.
    pub l_sgd_reduced: Option<Vec<f64>>,
    /// L_eff(x, 0) of the reduced level.
    pub l_eff_reduced: Option<Vec<f64>>,
}

/// Curves for Fig. 4(b) on the points `x`: L(x, 0), Δ(x), κ(x) and the effective loss along the
/// valley at both levels (`y_range` is the reduced level's y-domain).
pub fn valley_profiles(
    valley: &Valley2d,
    noise: &Noise,
    x: &[f64],
    y_range: (f64, f64),
) -> ValleyProfiles {
    let loss: Vec<f64> = x.iter().map(|&xi| valley.loss(xi, 0.0)).collect();
    let delta: Vec<f64> = x
        .iter()
        .map(|&xi| noise.diffusion(valley, xi, 0.0)[1][1])
        .collect();
    let collect_opt = |f: &dyn Fn(f64) -> Option<f64>| -> Option<Vec<f64>> {
        x.iter().map(|&xi| f(xi)).collect()
    };
    let kappa_paper =
        collect_opt(&|xi| paper::kappa_at(valley, noise, xi, YLaw::Gaussian, paper::UNBOUNDED));
    let kappa_reduced = collect_opt(&|xi| paper::kappa_at(valley, noise, xi, YLaw::Exact, y_range));
    let l_sgd_paper = paper::l_sgd_paper(valley, noise, x);
    let l_eff_paper = l_sgd_paper
        .as_ref()
        .map(|l| l.iter().zip(&loss).map(|(a, b)| a + b).collect());
    let l_sgd_small_noise = match paper::paper_constants(valley, noise) {
        (Some(k), Some(d)) => Some(
            x.iter()
                .map(|&xi| paper::l_sgd_small_noise(valley, k, d, xi))
                .collect(),
        ),
        _ => None,
    };
    let l_eff_reduced: Option<Vec<f64>> =
        reduced::reduced_profile(valley, noise, x, y_range).map(|r| {
            let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
            r.log_p
                .iter()
                .zip(&r.nodes)
                .map(|(lp, m)| -m.delta * (lp + half_ln_2pi + m.log_density_at_ref))
                .collect()
        });
    let l_sgd_reduced = l_eff_reduced
        .as_ref()
        .map(|l| l.iter().zip(&loss).map(|(a, b)| a - b).collect());
    ValleyProfiles {
        x: x.to_vec(),
        loss,
        delta,
        kappa_paper,
        kappa_reduced,
        l_sgd_paper,
        l_eff_paper,
        l_sgd_small_noise,
        l_sgd_reduced,
        l_eff_reduced,
    }
}

/// A validated theory computation on the 2-D valley: landscape, noise and a configuration
/// whose domain is filled in. Built only by [`TheoryPlan::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct TheoryPlan {
    valley: Valley2d,
    noise: Noise,
    config: TheoryConfig,
}

impl TheoryPlan {
    /// Validate `config` (keys under `theory`) on `valley`; `fp_domain` fills the x- and
    /// y-ranges that the configuration leaves open.
    pub fn new(
        valley: Valley2d,
        noise: Noise,
        config: &TheoryConfig,
        fp_domain: Option<(&AxisConfig, &AxisConfig)>,
    ) -> Result<Self, Invalid> {
        config.validate("theory", &valley, fp_domain)?;
        config.check_level("theory", &noise)?;
        Ok(Self {
            config: config.with_fp_domain(fp_domain),
            valley,
            noise,
        })
    }

    /// The landscape.
    pub fn valley(&self) -> &Valley2d {
        &self.valley
    }

    /// The noise model.
    pub fn noise(&self) -> &Noise {
        &self.noise
    }

    /// The configuration, domain filled in.
    pub fn config(&self) -> &TheoryConfig {
        &self.config
    }

    /// The same plan with another noise model (a sweep point; the theory takes any noise).
    pub fn with_noise(&self, noise: Noise) -> Self {
        Self {
            noise,
            ..self.clone()
        }
    }
}

/// What the theory computes for a run: the summary, the levels' x-marginals and the profiles
/// along the valley, on one x-grid.
#[derive(Debug, Clone)]
pub struct TheorySolution {
    /// summary.json's `theory`.
    pub summary: TheorySummary,
    /// The x-grid of the marginals (cell centres).
    pub x: Vec<f64>,
    /// Its spacing.
    pub dx: f64,
    /// Paper level, Eq. (13) (`None` where it does not apply).
    pub marginal_paper: Option<Vec<f64>>,
    /// Reduced 1-D equation.
    pub marginal_reduced: Vec<f64>,
    /// L, Δ, κ and L_eff along the valley.
    pub profiles: ValleyProfiles,
    /// Homogenised level (`None` where it does not apply or is not asked for).
    pub marginal_homogenised: Option<Vec<f64>>,
    /// Its effective loss −Δ_S ln p(x) on the same points, 0 at its minimum.
    pub l_eff_homogenised: Option<Vec<f64>>,
}

/// Run the theory of a plan (Eqs. 11–14 and the reduced equation); the marginals are taken on
/// `x_grid` = (cell centres, spacing) when given, else on the configuration's own grid.
pub fn solve(plan: &TheoryPlan, x_grid: Option<(&[f64], f64)>) -> TheorySolution {
    let (valley, noise, cfg) = (&plan.valley, &plan.noise, &plan.config);
    let summary = summarize(valley, noise, cfg);
    let (x, dx) = match x_grid {
        Some((xs, dx)) => (xs.to_vec(), dx),
        None => {
            let xs = cfg.x_grid();
            let dx = if xs.len() > 1 { xs[1] - xs[0] } else { 1.0 };
            (xs, dx)
        }
    };
    let marginal_paper = marginal_x_paper(valley, noise, &x);
    let marginal_reduced = marginal_x_reduced(valley, noise, &x, cfg.y_range());
    let profiles = valley_profiles(valley, noise, &x, cfg.y_range());
    let wants_homogenised = cfg.computes(TheoryLevel::Homogenised);
    let marginal_homogenised = wants_homogenised
        .then(|| homogenised::marginal_x_homogenised_with(valley, noise, &x, cfg.discrete_time))
        .flatten();
    let l_eff_homogenised = wants_homogenised
        .then(|| homogenised::l_eff_homogenised_with(valley, noise, &x, cfg.discrete_time))
        .flatten();
    TheorySolution {
        summary,
        x,
        dx,
        marginal_paper,
        marginal_reduced,
        profiles,
        marginal_homogenised,
        l_eff_homogenised,
    }
}
