//! Monte-Carlo walkers: sgd, sgd-exact-shift, langevin, gld, gd (Eqs. 3, 7, 9; docs/reference.md §4).
//!
//! - [`rng`]: per-walker xoshiro256++ streams and a vectorisable Box–Muller generator;
//! - [`walk2d`]: the 2-D valley, `LANES` walkers in lock-step;
//! - [`walk_nd`]: the N-D valley, `walk_nd::W` walkers in lock-step, O(N_S·N_F) per step;
//! - [`observe`]: what walkers record (time series, extremes, histograms, trajectories).
//!
//! Reproducibility: walkers are split into fixed batches (`LANES` walkers for 2-D,
//! [`ND_BATCH`] walkers in lock-step for N-D) that rayon runs in any order on the current pool; every walker draws
//! from its own stream keyed by (seed, walker), and batch results are reduced in batch order,
//! so a run is bit-identical for any thread count.

pub mod observe;
pub mod rng;
pub mod walk2d;
pub mod walk_nd;

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::landscape::valley_nd::ValleyNd;
use crate::noise::{Noise, sym_abs_pow};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::{AxisConfig, Cancelled, Invalid, Progress, check_finite, check_positive};
use crate::landscape::Landscape;

use observe::{
    BatchOut, Hist, Plan, TRAJECTORY_POINTS, TS_ABS_X, TS_FLATNESS, TS_FLATNESS_HAT, TS_LOSS, TS_X,
    TS_Y_SQ, TsAcc,
};
use rng::LANES;
use walk_nd::RuleNd;
use walk2d::{ConstNoise, ExactShift, Gd, HessLin, HessPow, LaneLoss, Rule2d, V2};

/// Walkers per rayon task on the N-D valley (one lock-step batch).
pub const ND_BATCH: usize = walk_nd::W;
/// Batches run in parallel before their results are folded (bounds memory; fixed, so the
/// reduction order is the same for any thread count).
pub const REDUCE_GROUP: usize = 256;
/// How often the cancel watcher asks the progress callback.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// Largest number of walkers accepted.
pub const MAX_WALKERS: usize = 100_000_000;

/// The update rule of a walker (docs/reference.md §4.1).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// First-order random-shift SGD (Eqs. 3, 7).
    Sgd,
    /// SGD on the exactly shifted loss L(θ − μ).
    SgdExactShift,
    /// Euler–Maruyama of the Langevin equation (Eq. 9) with the scenario's D(θ).
    Langevin,
    /// Gradient Langevin dynamics with isotropic noise.
    Gld,
    /// Plain gradient descent.
    Gd,
}

impl SamplerKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Sgd => "sgd",
            SamplerKind::SgdExactShift => "sgd-exact-shift",
            SamplerKind::Langevin => "langevin",
            SamplerKind::Gld => "gld",
            SamplerKind::Gd => "gd",
        }
    }
}

/// `[sampler]` (docs/reference.md §6.6).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// The update rule.
    pub kind: SamplerKind,
    /// Number of independent walkers.
    #[serde(default = "default_walkers")]
    pub walkers: usize,
    /// Steps per walker.
    pub steps: usize,
    /// Steps discarded before time averages.
    #[serde(default)]
    pub burn_in: usize,
    /// Start point θ0: (x, y) for the 2-D valley; for the N-D valley either N_F + N_S values
    /// (x first) or two values [x0, y0] given to every x_j and every y_i.
    pub start: Vec<f64>,
    /// Time step, for `langevin` only.
    pub dt: Option<f64>,
    /// Learning rate η of `sgd`, `sgd-exact-shift`, `gld`, `gd`; default `noise.eta` when the
    /// noise is `hessian`.
    pub eta: Option<f64>,
    /// |θ| beyond which a walker has diverged.
    #[serde(default = "default_divergence_radius")]
    pub divergence_radius: f64,
    /// Walkers whose trajectories are stored (the first ones).
    #[serde(default = "default_stored_trajectories")]
    pub stored_trajectories: usize,
}

fn default_walkers() -> usize {
    1024
}

fn default_divergence_radius() -> f64 {
    1.0e3
}

fn default_stored_trajectories() -> usize {
    8
}

/// The model a run steps: the 2-D or the drawn N-D valley.
#[derive(Debug, Clone)]
enum Model {
    D2(V2),
    Expr(crate::landscape::expr::ExprLoss),
    Nd(ValleyNd),
}

/// A fully resolved update rule (numbers taken from the sampler and noise tables).
#[derive(Debug, Clone, Copy)]
enum Rule {
    HessLin {
        dt: f64,
        scale: f64,
    },
    HessPow {
        dt: f64,
        scale: f64,
        half_power: f64,
    },
    Const {
        dt: f64,
        b: [[f64; 2]; 2],
    },
    ExactShift {
        eta: f64,
        s: f64,
    },
    Gd {
        eta: f64,
    },
}

impl SamplerConfig {
    /// `walkers` walkers of rule `kind` for `steps` steps from `start`, averages after
    /// `burn_in`; every other key at its default.
    pub fn new(
        kind: SamplerKind,
        walkers: usize,
        steps: usize,
        burn_in: usize,
        start: Vec<f64>,
    ) -> Self {
        Self {
            kind,
            walkers,
            steps,
            burn_in,
            start,
            dt: None,
            eta: None,
            divergence_radius: default_divergence_radius(),
            stored_trajectories: default_stored_trajectories(),
        }
    }

    /// Check the values that do not depend on the landscape; `key` is the table's dotted name.
    fn validate_values(&self, key: &str) -> Result<(), Invalid> {
        if self.walkers == 0 || self.walkers > MAX_WALKERS {
            return Err(Invalid::new(
                format!("{key}.walkers"),
                format!("must be in 1..={MAX_WALKERS}, got {}", self.walkers),
            ));
        }
        if self.steps == 0 {
            return Err(Invalid::new(format!("{key}.steps"), "must be >= 1"));
        }
        if self.burn_in >= self.steps {
            return Err(Invalid::new(
                format!("{key}.burn_in"),
                format!("must be < steps ({}), got {}", self.steps, self.burn_in),
            ));
        }
        if let Some(dt) = self.dt {
            check_positive(&format!("{key}.dt"), dt)?;
        }
        if let Some(eta) = self.eta {
            check_positive(&format!("{key}.eta"), eta)?;
        }
        check_positive(&format!("{key}.divergence_radius"), self.divergence_radius)
    }

    fn model(&self, key: &str, landscape: &Landscape, seed: u64) -> Result<Model, Invalid> {
        match landscape {
            Landscape::Valley2d(v) => {
                let r = self.divergence_radius;
                let min = v.min_lambda_on(r.min(10.0)).min(v.min_lambda_on(r));
                if min.is_nan() || min <= 0.0 {
                    return Err(Invalid::new(
                        "landscape.lambda",
                        format!(
                            "λ(x) must stay > 0 for |x| <= {key}.divergence_radius = {r}, but its minimum there is {min:.4}"
                        ),
                    ));
                }
                Ok(Model::D2(V2::new(v)))
            }
            Landscape::Valley(spec) => Ok(Model::Nd(spec.build(seed)?)),
            Landscape::Expression(e) => Ok(Model::Expr(e.clone())),
            Landscape::None => Err(Invalid::new("landscape", "the sampler needs a [landscape]")),
        }
    }

    fn start_point(&self, key: &str, model: &Model) -> Result<Vec<f64>, Invalid> {
        let k = format!("{key}.start");
        for (i, &v) in self.start.iter().enumerate() {
            check_finite(&format!("{k}[{i}]"), v)?;
        }
        let start = match model {
            Model::D2(_) | Model::Expr(_) => {
                if self.start.len() != 2 {
                    return Err(Invalid::new(
                        k,
                        format!(
                            "needs 2 values [x, y] on the 2-D valley, got {}",
                            self.start.len()
                        ),
                    ));
                }
                self.start.clone()
            }
            Model::Nd(v) => {
                if self.start.len() == 2 {
                    let mut s = vec![self.start[0]; v.n_f];
                    s.extend(std::iter::repeat_n(self.start[1], v.n_s));
                    s
                } else if self.start.len() == v.dim() {
                    self.start.clone()
                } else {
                    return Err(Invalid::new(
                        k,
                        format!(
                            "needs N_F + N_S = {} values (x first), or 2 values [x0, y0] for every x_j and y_i, got {}",
                            v.dim(),
                            self.start.len()
                        ),
                    ));
                }
            }
        };
        let norm = start.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm.is_nan() || norm >= self.divergence_radius {
            return Err(Invalid::new(
                k,
                format!(
                    "|start| = {norm} must be < divergence_radius = {}",
                    self.divergence_radius
                ),
            ));
        }
        Ok(start)
    }

    /// η from `sampler.eta`, else `noise.eta` for Hessian noise.
    fn eta(&self, key: &str, noise: &Noise) -> Result<f64, Invalid> {
        match (self.eta, noise) {
            (Some(e), Noise::Hessian { eta, .. }) if e != *eta => Err(Invalid::new(
                format!("{key}.eta"),
                format!(
                    "differs from noise.eta = {eta}; omit it (Δ_S = η σ uses noise.eta) or make them equal"
                ),
            )),
            (Some(e), _) => Ok(e),
            (None, Noise::Hessian { eta, .. }) => Ok(*eta),
            (None, _) => Err(Invalid::new(
                format!("{key}.eta"),
                format!(
                    "kind = \"{}\" needs a learning rate: set {key}.eta (the noise model has no eta)",
                    self.kind.name()
                ),
            )),
        }
    }

    fn rule(&self, key: &str, noise: &Noise, model: &Model) -> Result<Rule, Invalid> {
        let nd = matches!(model, Model::Nd(_));
        let kind_key = format!("{key}.kind");
        let need_hessian = |what: &str| {
            Invalid::new(
                kind_key.clone(),
                format!(
                    "kind = \"{what}\" needs noise.kind = \"hessian\" (σ of the minibatch shift)"
                ),
            )
        };
        match self.kind {
            SamplerKind::Sgd => {
                let eta = self.eta(key, noise)?;
                let Noise::Hessian { sigma, power, .. } = *noise else {
                    return Err(need_hessian("sgd"));
                };
                let scale = eta * (2.0 * sigma).sqrt();
                if power == 2.0 {
                    Ok(Rule::HessLin { dt: eta, scale })
                } else if nd {
                    Err(Invalid::new(
                        "noise.power",
                        "the N-D valley supports only power = 2 (|H|^γ/2 would need an eigendecomposition per step)",
                    ))
                } else {
                    Ok(Rule::HessPow {
                        dt: eta,
                        scale,
                        half_power: 0.5 * power,
                    })
                }
            }
            SamplerKind::SgdExactShift => {
                let eta = self.eta(key, noise)?;
                let Noise::Hessian { sigma, power, .. } = *noise else {
                    return Err(need_hessian("sgd-exact-shift"));
                };
                if power != 2.0 {
                    return Err(Invalid::new(
                        "noise.power",
                        "kind = \"sgd-exact-shift\" is the random-shift model itself (γ = 2); use kind = \"sgd\" for other powers",
                    ));
                }
                Ok(Rule::ExactShift {
                    eta,
                    s: (2.0 * sigma).sqrt(),
                })
            }
            SamplerKind::Gld => {
                let eta = self.eta(key, noise)?;
                let Noise::Isotropic { temperature } = *noise else {
                    return Err(Invalid::new(
                        kind_key,
                        "kind = \"gld\" needs noise.kind = \"isotropic\" (its temperature T)",
                    ));
                };
                let s = (2.0 * eta * temperature).sqrt();
                Ok(Rule::Const {
                    dt: eta,
                    b: [[s, 0.0], [0.0, s]],
                })
            }
            SamplerKind::Gd => Ok(Rule::Gd {
                eta: self.eta(key, noise)?,
            }),
            SamplerKind::Langevin => {
                let Some(dt) = self.dt else {
                    return Err(Invalid::new(
                        format!("{key}.dt"),
                        "kind = \"langevin\" needs a time step dt",
                    ));
                };
                match *noise {
                    Noise::Hessian { eta, sigma, power } => {
                        let scale = (2.0 * eta * sigma * dt).sqrt();
                        if power == 2.0 {
                            Ok(Rule::HessLin { dt, scale })
                        } else if nd {
                            Err(Invalid::new(
                                "noise.power",
                                "the N-D valley supports only power = 2 (|H|^γ/2 would need an eigendecomposition per step)",
                            ))
                        } else {
                            Ok(Rule::HessPow {
                                dt,
                                scale,
                                half_power: 0.5 * power,
                            })
                        }
                    }
                    Noise::Isotropic { temperature } => {
                        let s = (2.0 * temperature * dt).sqrt();
                        Ok(Rule::Const {
                            dt,
                            b: [[s, 0.0], [0.0, s]],
                        })
                    }
                    Noise::Anisotropic { .. } | Noise::Constant { .. } if nd => Err(Invalid::new(
                        "noise.kind",
                        "on the N-D valley langevin supports noise.kind = \"hessian\" or \"isotropic\" (the other models are 2 x 2)",
                    )),
                    Noise::Anisotropic { .. } | Noise::Constant { .. } => {
                        let d = match &model {
                            Model::D2(v) => noise.diffusion(&v.valley, 0.0, 0.0),
                            Model::Expr(e) => noise.diffusion(e, 0.0, 0.0),
                            Model::Nd(_) => unreachable!("rejected above"),
                        };
                        let two_d_dt = [
                            [2.0 * dt * d[0][0], 2.0 * dt * d[0][1]],
                            [2.0 * dt * d[1][0], 2.0 * dt * d[1][1]],
                        ];
                        Ok(Rule::Const {
                            dt,
                            b: sym_abs_pow(two_d_dt, 0.5),
                        })
                    }
                }
            }
        }
    }

    /// The physical time of one step: η, or dt for `langevin`.
    fn time_step(&self, rule: &Rule) -> f64 {
        match *rule {
            Rule::HessLin { dt, .. } | Rule::HessPow { dt, .. } | Rule::Const { dt, .. } => dt,
            Rule::ExactShift { eta, .. } | Rule::Gd { eta } => eta,
        }
    }
}

/// A validated sampler run: the walkers' rule resolved against the landscape and noise, the
/// start point expanded, the N-D coefficient table drawn once. Built only by
/// [`SamplerPlan::new`], so [`run`] never meets invalid input.
#[derive(Debug, Clone)]
pub struct SamplerPlan {
    config: SamplerConfig,
    model: Arc<Model>,
    start: Vec<f64>,
    rule: Rule,
    seed: u64,
}

impl SamplerPlan {
    /// Validate `config` (keys under `sampler`) against the landscape and noise; `seed` is the
    /// scenario's master seed (walker streams and the N-D coefficient draw).
    pub fn new(
        config: &SamplerConfig,
        landscape: &Landscape,
        noise: &Noise,
        seed: u64,
    ) -> Result<Self, Invalid> {
        let key = "sampler";
        config.validate_values(key)?;
        let model = config.model(key, landscape, seed)?;
        let start = config.start_point(key, &model)?;
        let rule = config.rule(key, noise, &model)?;
        Ok(Self {
            config: config.clone(),
            model: Arc::new(model),
            start,
            rule,
            seed,
        })
    }

    /// The same walkers under Hessian noise with learning rate `eta` and shift scale `sigma`
    /// (a sweep point; η comes from the noise, the power is `power`).
    pub fn with_hessian_noise(&self, eta: f64, sigma: f64, power: f64) -> Result<Self, Invalid> {
        let mut config = self.config.clone();
        config.eta = None;
        let noise = Noise::Hessian { eta, sigma, power };
        let rule = config.rule("sampler", &noise, &self.model)?;
        Ok(Self {
            config,
            rule,
            ..self.clone()
        })
    }

    /// The same walkers on master seed `seed` (the walker streams; the N-D coefficient table
    /// drawn at construction is kept), e.g. a sweep point's own seed.
    pub fn with_seed(&self, seed: u64) -> Self {
        Self {
            seed,
            ..self.clone()
        }
    }

    /// The master seed of the walker streams.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// True on the 2-D valley (histograms on the FP grid are possible).
    pub fn is_2d(&self) -> bool {
        matches!(*self.model, Model::D2(_) | Model::Expr(_))
    }

    /// The physical time of one step: η, or dt for `langevin`.
    pub fn time_step(&self) -> f64 {
        self.config.time_step(&self.rule)
    }
}

/// The `sampler` object of summary.json (docs/reference.md §7.4). Statistics are over the walkers that did
/// not diverge; they are absent when every walker diverged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SamplerSummary {
    /// Update rule.
    pub kind: SamplerKind,
    /// Walkers run.
    pub walkers: usize,
    /// Steps per walker.
    pub steps: usize,
    /// Steps before the time averages.
    pub burn_in: usize,
    /// Physical time of one step (η, or dt for langevin): t = time_step · step.
    pub time_step: f64,
    /// Fraction of walkers that diverged.
    pub diverged_fraction: f64,
    /// Mean over walkers of |x̄| (time-averaged x after burn-in); N-D: of the RMS of x̄_j.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_ss_abs: Option<f64>,
    /// Standard error of `x_ss_abs` (walker-to-walker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_ss_abs_stderr: Option<f64>,
    /// Mean over walkers of F(x̄) (Eq. 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flatness_ss: Option<f64>,
    /// Standard error of `flatness_ss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flatness_ss_stderr: Option<f64>,
    /// Mean over walkers of F̂(x̄) (Eq. 16; equals `flatness_ss` in 2-D).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flatness_hat_ss: Option<f64>,
    /// Mean over walkers of the time-averaged mean y_i².
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_sq_ss: Option<f64>,
    /// Standard error of `y_sq_ss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_sq_ss_stderr: Option<f64>,
    /// 2-D: time- and walker-averaged [x, y].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_ss: Option<[f64; 2]>,
    /// 2-D: standard errors of `mean_ss` (walker-to-walker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_ss_stderr: Option<[f64; 2]>,
    /// 2-D: time- and walker-averaged [[x², xy], [xy, y²]].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_moment_ss: Option<[[f64; 2]; 2]>,
    /// 2-D: standard errors of `second_moment_ss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_moment_ss_stderr: Option<[[f64; 2]; 2]>,
    /// Search time τ_s = time_step · ⟨t_s⟩ (docs/reference.md §4.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_time: Option<f64>,
    /// Standard error of `search_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_time_stderr: Option<f64>,
    /// Expression landscapes: mean over walkers of the time average of ln(x/y)² (every
    /// fourth post-burn-in step; ln|x/y| off the branches xy > 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_ratio_sq_ss: Option<f64>,
    /// Standard error of `log_ratio_sq_ss` (walker-to-walker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_ratio_sq_ss_stderr: Option<f64>,
    /// Fraction of histogram samples that fell outside the FP grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hist_outside_fraction: Option<f64>,
    /// walkers · steps / wall time of the walk.
    pub walker_steps_per_second: f64,
    /// Wall time of the walk.
    pub seconds: f64,
}

/// Ensemble curves on the log-spaced record steps (written as timeseries.csv).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// Step index.
    pub step: Vec<usize>,
    /// Time t = time_step · step.
    pub t: Vec<f64>,
    /// Walkers still alive.
    pub alive: Vec<usize>,
    /// Mean flatness F (Eq. 6).
    pub mean_flatness: Vec<f64>,
    /// Mean noise-weighted flatness F̂ (Eq. 16; = F in 2-D).
    pub mean_flatness_hat: Vec<f64>,
    /// Mean loss L.
    pub mean_loss: Vec<f64>,
    /// Mean x (N-D: mean over walkers and j of x_j).
    pub mean_x: Vec<f64>,
    /// Mean |x| (N-D: of |x_j|).
    pub mean_abs_x: Vec<f64>,
    /// Mean y² (N-D: of y_i²).
    pub mean_y_sq: Vec<f64>,
}

/// Everything a sampler run produces.
#[derive(Debug, Clone)]
pub struct SamplerRun {
    /// Scalar results (summary.json `sampler`).
    pub summary: SamplerSummary,
    /// Density of x on the FP x-grid (Σ p·dx = 1), when a grid is given (2-D only).
    pub hist_x: Option<Vec<f64>>,
    /// Density of y on the FP y-grid.
    pub hist_y: Option<Vec<f64>>,
    /// Ensemble curves on a log-spaced time grid.
    pub timeseries: TimeSeries,
    /// The first `stored_trajectories` walkers, every `trajectory_stride` steps; 2-D: (x, y),
    /// N-D: (RMS of the x_j, RMS of the y_i). A diverged walker's list stops early.
    pub trajectories: Vec<Vec<[f64; 2]>>,
    /// Steps between stored trajectory points (point k is step k · stride).
    pub trajectory_stride: usize,
}

/// Run the walkers of a plan (Eqs. 3, 7, 9) in the current rayon pool.
///
/// `grid` (2-D only) gives the FP axes for the x and y histograms; `progress` counts batches of
/// walkers and may cancel between groups of batches.
pub fn run(
    sampler: &SamplerPlan,
    grid: Option<(AxisConfig, AxisConfig)>,
    progress: &dyn Progress,
) -> Result<SamplerRun, Cancelled> {
    let cfg = &sampler.config;
    let model: &Model = &sampler.model;
    let (start, rule) = (&sampler.start, sampler.rule);
    let time_step = cfg.time_step(&rule);
    let plan = Plan {
        seed: sampler.seed,
        walkers: cfg.walkers,
        steps: cfg.steps,
        burn_in: cfg.burn_in,
        radius_sq: cfg.divergence_radius * cfg.divergence_radius,
        record_steps: Plan::log_steps(cfg.steps),
        traj_walkers: cfg.stored_trajectories.min(cfg.walkers),
        traj_stride: cfg.steps.div_ceil(TRAJECTORY_POINTS).max(1),
        grid: match model {
            Model::D2(_) | Model::Expr(_) => grid,
            Model::Nd(_) => None,
        },
        log_ratio_stride: Plan::log_ratio_stride(
            matches!(model, Model::Expr(_)),
            cfg.steps,
            cfg.burn_in,
        ),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let (batches, per_batch) = match model {
        Model::D2(_) | Model::Expr(_) => (cfg.walkers.div_ceil(LANES), LANES),
        Model::Nd(_) => (cfg.walkers.div_ceil(ND_BATCH), ND_BATCH),
    };
    progress.start("sampler: batches of walkers", Some(batches as u64));

    let clock = Instant::now();
    let run_batch = |b: usize| -> BatchOut {
        let out = match (&model, rule) {
            (Model::D2(v), rule) => run_rule_2d(rule, v, &plan, start, b),
            (Model::Expr(e), rule) => run_rule_2d(rule, e, &plan, start, b),
            (Model::Nd(v), rule) => {
                let nd = match rule {
                    Rule::HessLin { dt, scale } => RuleNd::HessLin { dt, scale },
                    Rule::Const { dt, b } => RuleNd::Iso { dt, scale: b[0][0] },
                    Rule::ExactShift { eta, s } => RuleNd::ExactShift { eta, s },
                    Rule::Gd { eta } => RuleNd::Gd { eta },
                    Rule::HessPow { .. } => unreachable!("rejected by SamplerConfig::rule"),
                };
                let lo = b * per_batch;
                let hi = (lo + per_batch).min(cfg.walkers);
                run_nd(nd, v, &plan, start, lo..hi)
            }
        };
        progress.advance(1);
        out
    };
    // Fixed groups of batches run in parallel, then fold in batch order: memory stays bounded
    // and the reduction order does not depend on the thread count.
    // A watcher thread turns a cancel request into `plan.stop`, which the walks check every
    // STOP_CHECK_STEPS steps, so a cancel takes effect within a fraction of a second.
    let done = AtomicBool::new(false);
    let acc = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if progress.cancelled() {
                    plan.stop.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::park_timeout(CANCEL_POLL);
            }
        });
        let mut acc = Some(Reduction::new(&plan));
        for first in (0..batches).step_by(REDUCE_GROUP) {
            let outs: Vec<BatchOut> = (first..(first + REDUCE_GROUP).min(batches))
                .into_par_iter()
                .map(run_batch)
                .collect();
            if plan.stop.load(Ordering::Relaxed) || progress.cancelled() {
                acc = None;
                break;
            }
            if let Some(a) = acc.as_mut() {
                for out in outs {
                    a.add(out);
                }
            }
        }
        done.store(true, Ordering::Release);
        watcher.thread().unpark();
        acc
    });
    let Some(acc) = acc else {
        progress.finish();
        return Err(Cancelled);
    };
    let seconds = clock.elapsed().as_secs_f64();
    progress.finish();

    let is_2d = matches!(model, Model::D2(_) | Model::Expr(_));
    Ok(acc.finish(is_2d, cfg, &plan, time_step, seconds))
}

/// Run 2-D batch `b` of a resolved rule on the lane-wise loss `v`.
fn run_rule_2d<M: LaneLoss>(rule: Rule, v: &M, plan: &Plan, start: &[f64], b: usize) -> BatchOut {
    match rule {
        Rule::HessLin { dt, scale } => run_2d(&HessLin { dt, scale }, v, plan, start, b),
        Rule::HessPow {
            dt,
            scale,
            half_power,
        } => run_2d(
            &HessPow {
                dt,
                scale,
                half_power,
            },
            v,
            plan,
            start,
            b,
        ),
        Rule::Const { dt, b: m } => run_2d(&ConstNoise { dt, b: m }, v, plan, start, b),
        Rule::ExactShift { eta, s } => run_2d(&ExactShift { eta, s }, v, plan, start, b),
        Rule::Gd { eta } => run_2d(&Gd { eta }, v, plan, start, b),
    }
}

/// Dispatch a 2-D batch to a copy of the kernel compiled for the best available vector
/// instructions. Every copy does the same IEEE operations in the same order: no implicit FMA
/// contraction, and the explicit `mul_add`s are single-rounding fused multiply-adds everywhere
/// (hardware FMA in the AVX-512 and AVX2 copies, the correctly rounded library `fma` in the
/// baseline copy), so results do not depend on which one runs.
fn run_2d<R: Rule2d, M: LaneLoss>(
    rule: &R,
    v: &M,
    plan: &Plan,
    start: &[f64],
    batch: usize,
) -> BatchOut {
    let start = [start[0], start[1]];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { run_2d_avx512(rule, v, plan, start, batch) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { run_2d_avx2(rule, v, plan, start, batch) };
        }
    }
    walk2d::run_batch(rule, v, plan, start, batch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_2d_avx2<R: Rule2d, M: LaneLoss>(
    rule: &R,
    v: &M,
    plan: &Plan,
    start: [f64; 2],
    b: usize,
) -> BatchOut {
    walk2d::run_batch(rule, v, plan, start, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_2d_avx512<R: Rule2d, M: LaneLoss>(
    rule: &R,
    v: &M,
    plan: &Plan,
    start: [f64; 2],
    b: usize,
) -> BatchOut {
    walk2d::run_batch(rule, v, plan, start, b)
}

/// Dispatch N-D walkers like [`run_2d`].
fn run_nd(
    rule: RuleNd,
    v: &ValleyNd,
    plan: &Plan,
    start: &[f64],
    range: std::ops::Range<usize>,
) -> BatchOut {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { run_nd_avx512(rule, v, plan, start, range) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { run_nd_avx2(rule, v, plan, start, range) };
        }
    }
    walk_nd::run_batch(rule, v, plan, start, range)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_nd_avx2(
    rule: RuleNd,
    v: &ValleyNd,
    plan: &Plan,
    start: &[f64],
    range: std::ops::Range<usize>,
) -> BatchOut {
    walk_nd::run_batch(rule, v, plan, start, range)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_nd_avx512(
    rule: RuleNd,
    v: &ValleyNd,
    plan: &Plan,
    start: &[f64],
    range: std::ops::Range<usize>,
) -> BatchOut {
    walk_nd::run_batch(rule, v, plan, start, range)
}

/// Running mean and variance (Welford), fed in walker order.
#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    n: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn add(&mut self, v: f64) {
        self.n += 1;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }

    /// (mean, standard error of the mean), None without samples.
    fn get(&self) -> Option<(f64, f64)> {
        if self.n == 0 {
            return None;
        }
        let var = if self.n > 1 {
            self.m2 / (self.n - 1) as f64
        } else {
            0.0
        };
        Some((self.mean, (var / self.n as f64).sqrt()))
    }
}

/// Everything accumulated over batches, in batch order.
struct Reduction {
    ts: TsAcc,
    hist: Hist,
    trajectories: Vec<(usize, Vec<[f64; 2]>)>,
    walkers: usize,
    diverged: usize,
    x_abs: Welford,
    flatness: Welford,
    flatness_hat: Welford,
    y_sq: Welford,
    mean: [Welford; 2],
    m2: [Welford; 3],
    search: Welford,
    log_ratio_sq: Welford,
}

impl Reduction {
    fn new(plan: &Plan) -> Self {
        Self {
            ts: TsAcc::new(plan.record_steps.len()),
            hist: Hist::new(&plan.grid),
            trajectories: Vec::new(),
            walkers: 0,
            diverged: 0,
            x_abs: Welford::default(),
            flatness: Welford::default(),
            flatness_hat: Welford::default(),
            y_sq: Welford::default(),
            mean: [Welford::default(); 2],
            m2: [Welford::default(); 3],
            search: Welford::default(),
            log_ratio_sq: Welford::default(),
        }
    }

    fn add(&mut self, out: BatchOut) {
        self.ts.merge(&out.ts);
        self.hist.merge(&out.hist);
        self.trajectories.extend(out.trajectories);
        for w in &out.walkers {
            self.walkers += 1;
            if w.diverged_at.is_some() {
                self.diverged += 1;
                continue;
            }
            self.x_abs.add(w.x_abs);
            self.flatness.add(w.flatness);
            self.flatness_hat.add(w.flatness_hat);
            self.y_sq.add(w.y_sq);
            for (a, v) in self.mean.iter_mut().zip(w.mean) {
                a.add(v);
            }
            for (a, v) in self.m2.iter_mut().zip(w.m2) {
                a.add(v);
            }
            if let Some(s) = w.search_step {
                self.search.add(s as f64);
            }
            if let Some(r) = w.log_ratio_sq {
                self.log_ratio_sq.add(r);
            }
        }
    }

    fn finish(
        mut self,
        is_2d: bool,
        cfg: &SamplerConfig,
        plan: &Plan,
        time_step: f64,
        seconds: f64,
    ) -> SamplerRun {
        self.trajectories.sort_by_key(|t| t.0);
        let x_abs = self.x_abs.get();
        let flat = self.flatness.get();
        let y_sq = self.y_sq.get();
        let search = self.search.get();
        let log_ratio_sq = self.log_ratio_sq.get();
        let (mean_ss, second, second_se) = match (is_2d, self.m2.map(|a| a.get())) {
            (true, [Some(xx), Some(xy), Some(yy)]) => {
                let m = self.mean.map(|a| a.get().map_or(0.0, |v| v.0));
                (
                    Some(m),
                    Some([[xx.0, xy.0], [xy.0, yy.0]]),
                    Some([[xx.1, xy.1], [xy.1, yy.1]]),
                )
            }
            _ => (None, None, None),
        };
        let hist = &self.hist;
        let total_in: u64 = hist.x.iter().sum();
        let (hist_x, hist_y, outside) = match &plan.grid {
            Some((gx, gy)) if hist.samples > 0 => (
                observe::density(gx, &hist.x),
                observe::density(gy, &hist.y),
                Some(1.0 - total_in as f64 / hist.samples as f64),
            ),
            _ => (None, None, None),
        };
        let summary = SamplerSummary {
            kind: cfg.kind,
            walkers: cfg.walkers,
            steps: cfg.steps,
            burn_in: cfg.burn_in,
            time_step,
            diverged_fraction: self.diverged as f64 / self.walkers.max(1) as f64,
            x_ss_abs: x_abs.map(|v| v.0),
            x_ss_abs_stderr: x_abs.map(|v| v.1),
            flatness_ss: flat.map(|v| v.0),
            flatness_ss_stderr: flat.map(|v| v.1),
            flatness_hat_ss: self.flatness_hat.get().map(|v| v.0),
            y_sq_ss: y_sq.map(|v| v.0),
            y_sq_ss_stderr: y_sq.map(|v| v.1),
            mean_ss,
            mean_ss_stderr: mean_ss.map(|_| self.mean.map(|a| a.get().map_or(0.0, |v| v.1))),
            second_moment_ss: second,
            second_moment_ss_stderr: second_se,
            search_time: search.map(|v| v.0 * time_step),
            search_time_stderr: search.map(|v| v.1 * time_step),
            log_ratio_sq_ss: log_ratio_sq.map(|v| v.0),
            log_ratio_sq_ss_stderr: log_ratio_sq.map(|v| v.1),
            hist_outside_fraction: outside,
            walker_steps_per_second: (cfg.walkers as f64 * cfg.steps as f64) / seconds.max(1e-9),
            seconds,
        };
        let ts = &self.ts;
        let n = plan.record_steps.len();
        let col = |c: usize| -> Vec<f64> {
            (0..n)
                .map(|k| {
                    if ts.alive[k] > 0 {
                        ts.sums[k][c] / ts.alive[k] as f64
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        };
        let timeseries = TimeSeries {
            step: plan.record_steps.clone(),
            t: plan
                .record_steps
                .iter()
                .map(|&s| s as f64 * time_step)
                .collect(),
            alive: ts.alive.iter().map(|&a| a as usize).collect(),
            mean_flatness: col(TS_FLATNESS),
            mean_flatness_hat: col(TS_FLATNESS_HAT),
            mean_loss: col(TS_LOSS),
            mean_x: col(TS_X),
            mean_abs_x: col(TS_ABS_X),
            mean_y_sq: col(TS_Y_SQ),
        };
        SamplerRun {
            summary,
            hist_x,
            hist_y,
            timeseries,
            trajectories: self.trajectories.into_iter().map(|t| t.1).collect(),
            trajectory_stride: plan.traj_stride,
        }
    }
}
