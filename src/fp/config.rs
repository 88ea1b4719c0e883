//! `[fokker_planck]`: the grid and time stepping of the FP solver, its validation, and the
//! resolved [`FpPlan`] that [`super::solve`] runs.

use serde::{Deserialize, Serialize};

use crate::config::{AxisConfig, Check, Invalid, check_finite, check_non_negative, check_positive};
use crate::landscape::{Landscape, Loss2d, Valley2d};
use crate::noise::Noise;

/// Largest `start_steps` accepted.
pub const MAX_START_STEPS: usize = 64;
/// Largest number of grid cells (2048 × 2048 and a little more).
pub const MAX_CELLS: usize = 4_200_000;
/// Largest D/h² or |∇L|/h on the grid the FP operator accepts (its rates must stay finite
/// through assembly, scaling and elimination).
pub const MAX_COEFFICIENT: f64 = 1e150;
/// Largest dt·D/h² of a transient step (beyond it the step's factorisation loses every digit).
pub const MAX_STIFFNESS: f64 = 1e15;
/// Largest `eigenvalues` accepted (the Krylov space grows as 3k + 20 vectors per parity sector).
pub const MAX_EIGENVALUES: usize = 64;

/// Initial density of a transient FP run.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum InitialConfig {
    /// A Gaussian with the given mean and per-axis standard deviation: its exact mass in each
    /// cell, normalised to mass 1.
    Gaussian {
        /// Mean [x, y].
        mean: [f64; 2],
        /// Standard deviations [σx, σy].
        std: [f64; 2],
    },
    /// The uniform density on the domain.
    Uniform {},
}

/// How the cross-diffusion terms D12 are discretised.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CrossDiffusionScheme {
    /// Corner-averaged gradients on each face (second order, not monotone).
    #[default]
    Central,
    /// Cross terms dropped (first check; biased when D12 ≠ 0).
    Drop,
}

/// Whether the steady solve and the spectrum use the generator's mirror symmetries.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Symmetry {
    /// Fold onto the symmetry sectors of every mirror (x → −x, y → −y) the generator commutes
    /// with (`fp::symmetry`); the whole grid when it commutes with none.
    #[default]
    Auto,
    /// Always the whole grid (the general path; for comparisons).
    Off,
}

impl Symmetry {
    /// Whether this is the default, [`Symmetry::Auto`].
    pub fn is_auto(&self) -> bool {
        *self == Symmetry::Auto
    }
}

/// `[fokker_planck]`: grid and time stepping of the FP solver.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FokkerPlanckConfig {
    /// The x axis.
    pub x: AxisConfig,
    /// The y axis.
    pub y: AxisConfig,
    /// Compute the steady state by a direct solve.
    #[serde(default = "default_true")]
    pub steady: bool,
    /// End time of the transient run (0 → no transient).
    #[serde(default)]
    pub t_end: f64,
    /// Time step of the transient run.
    #[serde(default = "default_dt")]
    pub dt: f64,
    /// Initial density of the transient run.
    pub initial: Option<InitialConfig>,
    /// Times at which the transient density is saved.
    #[serde(default)]
    pub snapshots: Vec<f64>,
    /// Discretisation of the cross-diffusion terms.
    #[serde(default)]
    pub cross_diffusion: CrossDiffusionScheme,
    /// The transient's first step is this many backward-Euler steps of dt/start_steps
    /// (positivity-preserving start; 0 = plain TR-BDF2 from the first step).
    #[serde(default = "default_start_steps")]
    pub start_steps: usize,
    /// Solve the modified equation of the SGD map with the noise's η (Hessian noise):
    /// D → Δ_S |H|^γ (I − ηH/2)⁻¹ (`fp::operator::discrete_time_diffusion`).
    #[serde(default)]
    pub discrete_time: bool,
    /// Number of slowest non-zero relaxation rates of the generator to compute (0 = none;
    /// `fp::spectrum::relaxation_rates`, summary key `relaxation_rates`).
    #[serde(default)]
    pub eigenvalues: usize,
    /// Relative tolerance of the adaptive transient (either tolerance switches error control on;
    /// then `dt` is the first step tried). Default 1e-3 when only `atol` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// Absolute tolerance (density units) of the adaptive transient. Default 1e-6 when only
    /// `rtol` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    /// Use the generator's mirror symmetries in the steady solve and the spectrum.
    #[serde(default, skip_serializing_if = "Symmetry::is_auto")]
    pub symmetry: Symmetry,
}

/// rtol of the adaptive transient when only atol is given (SciPy's default).
pub const DEFAULT_RTOL: f64 = 1e-3;
/// atol of the adaptive transient when only rtol is given (SciPy's default).
pub const DEFAULT_ATOL: f64 = 1e-6;

/// Backward-Euler steps that replace the first TR-BDF2 step by default.
pub const DEFAULT_START_STEPS: usize = 4;

fn default_start_steps() -> usize {
    DEFAULT_START_STEPS
}

fn default_true() -> bool {
    true
}

fn default_dt() -> f64 {
    0.01
}

impl FokkerPlanckConfig {
    /// A steady-state-only configuration on the given axes (defaults for everything else).
    pub fn steady(x: AxisConfig, y: AxisConfig) -> Self {
        Self {
            x,
            y,
            steady: true,
            t_end: 0.0,
            dt: default_dt(),
            initial: None,
            snapshots: Vec::new(),
            cross_diffusion: CrossDiffusionScheme::Central,
            start_steps: DEFAULT_START_STEPS,
            discrete_time: false,
            eigenvalues: 0,
            rtol: None,
            atol: None,
            symmetry: Symmetry::Auto,
        }
    }

    /// The tolerances of an adaptive transient, if error control is on (`rtol` or `atol` set).
    pub fn tolerance(&self) -> Option<super::transient::Tolerance> {
        (self.rtol.is_some() || self.atol.is_some()).then(|| super::transient::Tolerance {
            rtol: self.rtol.unwrap_or(DEFAULT_RTOL),
            atol: self.atol.unwrap_or(DEFAULT_ATOL),
        })
    }

    /// Check the table against the landscape and noise it will run on; `key` is its dotted name.
    pub fn validate(&self, key: &str, valley: &Valley2d, noise: &Noise) -> Check {
        self.validate_common(key, noise)?;
        let x_max = self.x.min.abs().max(self.x.max.abs());
        let min_lambda = valley.min_lambda_on(x_max);
        if min_lambda <= 0.0 || !min_lambda.is_finite() {
            return Err(Invalid::new(
                "landscape.lambda",
                format!(
                    "λ(x) must stay > 0 on the domain |x| <= {x_max}, but its minimum there is {min_lambda:.4}"
                ),
            ));
        }
        self.validate_scale(key, valley, noise)
    }

    /// The operator's coefficients must be representable (see [`CoefficientScale`]): one scan of
    /// D and ∇L over the cell centres.
    fn validate_scale<L: Loss2d + ?Sized>(&self, key: &str, loss: &L, noise: &Noise) -> Check {
        let grid = super::grid::Grid::new(&self.x, &self.y);
        let mut scale = CoefficientScale::default();
        for i in 0..grid.nx {
            let x = grid.x(i);
            for j in 0..grid.ny {
                let y = grid.y(j);
                scale.add(x, y, noise.diffusion(loss, x, y), loss.gradient(x, y));
            }
        }
        scale.check(self, key, &grid)
    }

    /// Check the table against an expression loss: L finite at every cell centre, D(θ) finite
    /// and positive semi-definite at every cell centre and face (the points the operator uses).
    pub fn validate_expression<L: Loss2d + ?Sized>(
        &self,
        key: &str,
        loss: &L,
        noise: &Noise,
    ) -> Check {
        self.validate_common(key, noise)?;
        let grid = super::grid::Grid::new(&self.x, &self.y);
        let discrete_eta = match *noise {
            Noise::Hessian { eta, .. } if self.discrete_time => Some(eta),
            _ => None,
        };
        let diffusion = |x: f64, y: f64| match discrete_eta {
            Some(eta) => super::operator::discrete_time_diffusion(loss, noise, eta, x, y),
            None => noise.diffusion(loss, x, y),
        };
        let check_d = |x: f64, y: f64| -> Result<[[f64; 2]; 2], Invalid> {
            let d = diffusion(x, y);
            let finite = d.iter().flatten().all(|v| v.is_finite());
            let scale = d[0][0].abs().max(d[1][1].abs());
            let det = d[0][0] * d[1][1] - d[0][1] * d[1][0];
            if !finite || d[0][0] < 0.0 || d[1][1] < 0.0 || det < -1e-12 * scale * scale {
                let h = loss.hessian(x, y);
                return Err(Invalid::new(
                    "landscape.loss",
                    format!(
                        "the diffusion tensor D = {d:?} of noise.kind = \"{}\" is not finite and positive semi-definite at (x, y) = ({x}, {y}) of the Fokker–Planck grid (the Hessian of the loss there is {h:?}); change the loss or the domain",
                        noise_name(noise)
                    ),
                ));
            }
            Ok(d)
        };
        // One scan: L, D (centres and faces) and, for the coefficient scale, ∇L at the centres.
        let mut scale = CoefficientScale::default();
        for i in 0..grid.nx {
            let x = grid.x(i);
            for j in 0..grid.ny {
                let y = grid.y(j);
                let l = loss.loss(x, y);
                if !l.is_finite() {
                    return Err(Invalid::new(
                        "landscape.loss",
                        format!(
                            "the loss is not finite at (x, y) = ({x}, {y}) of the Fokker–Planck grid (L = {l}); change the loss or fokker_planck.x / fokker_planck.y"
                        ),
                    ));
                }
                scale.add(x, y, check_d(x, y)?, loss.gradient(x, y));
                if i + 1 < grid.nx {
                    check_d(grid.x_min + (i + 1) as f64 * grid.dx, y)?;
                }
                if j + 1 < grid.ny {
                    check_d(x, grid.y_min + (j + 1) as f64 * grid.dy)?;
                }
            }
        }
        scale.check(self, key, &grid)
    }

    fn validate_common(&self, key: &str, noise: &Noise) -> Check {
        if self.discrete_time && !matches!(noise, Noise::Hessian { .. }) {
            return Err(Invalid::new(
                format!("{key}.discrete_time"),
                "the modified equation of the SGD map needs noise.kind = \"hessian\" (it uses η)",
            ));
        }
        self.x.validate(&format!("{key}.x"))?;
        self.y.validate(&format!("{key}.y"))?;
        if self.x.cells * self.y.cells > MAX_CELLS {
            return Err(Invalid::new(
                format!("{key}.x.cells"),
                format!(
                    "grid of {} x {} cells is larger than the 2048 x 2048 limit",
                    self.x.cells, self.y.cells
                ),
            ));
        }
        if self.eigenvalues > MAX_EIGENVALUES {
            return Err(Invalid::new(
                format!("{key}.eigenvalues"),
                format!(
                    "must be between 0 and {MAX_EIGENVALUES} (the number of slowest relaxation rates), got {}",
                    self.eigenvalues
                ),
            ));
        }
        if self.eigenvalues > 0 && self.eigenvalues + 1 >= self.x.cells * self.y.cells {
            return Err(Invalid::new(
                format!("{key}.eigenvalues"),
                format!(
                    "asks for {} rates but the grid has only {} cells",
                    self.eigenvalues,
                    self.x.cells * self.y.cells
                ),
            ));
        }
        check_non_negative(&format!("{key}.t_end"), self.t_end)?;
        if !self.steady && self.t_end == 0.0 {
            return Err(Invalid::new(
                format!("{key}.steady"),
                "nothing to compute: set steady = true, or t_end > 0 for a transient run",
            ));
        }
        check_positive(&format!("{key}.dt"), self.dt)?;
        if self.start_steps > MAX_START_STEPS {
            return Err(Invalid::new(
                format!("{key}.start_steps"),
                format!("must be <= {MAX_START_STEPS}, got {}", self.start_steps),
            ));
        }
        if self.t_end > 0.0 {
            if self.initial.is_none() {
                return Err(Invalid::new(
                    format!("{key}.initial"),
                    "a transient run (t_end > 0) needs an initial density, e.g. { kind = \"gaussian\", mean = [1.0, 0.5], std = [0.1, 0.1] }",
                ));
            }
            for (name, value) in [("rtol", self.rtol), ("atol", self.atol)] {
                if let Some(v) = value {
                    check_positive(&format!("{key}.{name}"), v)?;
                    if !(1e-14..=1.0).contains(&v) {
                        return Err(Invalid::new(
                            format!("{key}.{name}"),
                            format!("must lie in [1e-14, 1] (a tolerance), got {v}"),
                        ));
                    }
                }
            }
            if self.dt > self.t_end {
                return Err(Invalid::new(
                    format!("{key}.dt"),
                    format!("must be <= t_end ({}), got {}", self.t_end, self.dt),
                ));
            }
        }
        if let Some(InitialConfig::Gaussian { mean, std }) = &self.initial {
            let k = format!("{key}.initial");
            check_finite(&format!("{k}.mean"), mean[0])?;
            check_finite(&format!("{k}.mean"), mean[1])?;
            check_positive(&format!("{k}.std"), std[0])?;
            check_positive(&format!("{k}.std"), std[1])?;
            if mean[0] < self.x.min
                || mean[0] > self.x.max
                || mean[1] < self.y.min
                || mean[1] > self.y.max
            {
                return Err(Invalid::new(
                    format!("{k}.mean"),
                    format!("{mean:?} lies outside the grid"),
                ));
            }
        }
        for &t in &self.snapshots {
            check_non_negative(&format!("{key}.snapshots"), t)?;
            if t > self.t_end {
                return Err(Invalid::new(
                    format!("{key}.snapshots"),
                    format!("snapshot time {t} is after t_end = {}", self.t_end),
                ));
            }
        }
        match *noise {
            Noise::Hessian { eta, sigma, .. } if eta * sigma <= 0.0 => Err(Invalid::new(
                "noise.sigma",
                "the Fokker–Planck solver needs noise: σ must be > 0",
            )),
            Noise::Isotropic { temperature } if temperature <= 0.0 => Err(Invalid::new(
                "noise.temperature",
                "the Fokker–Planck solver needs noise: the temperature must be > 0",
            )),
            Noise::Constant { d } if d[0][0] <= 0.0 || d[1][1] <= 0.0 => Err(Invalid::new(
                "noise.d",
                "the Fokker–Planck solver needs d11 > 0 and d22 > 0",
            )),
            _ => Ok(()),
        }
    }
}

/// A validated FP computation: landscape, noise and configuration that fit together.
/// Built only by [`FpPlan::new`], so [`super::solve`] never meets invalid input.
#[derive(Debug, Clone, PartialEq)]
pub struct FpPlan {
    landscape: Landscape,
    noise: Noise,
    config: FokkerPlanckConfig,
}

impl FpPlan {
    /// Validate `config` against `valley` and `noise` (keys are reported under `fokker_planck`).
    pub fn new(
        valley: Valley2d,
        noise: Noise,
        config: FokkerPlanckConfig,
    ) -> Result<Self, Invalid> {
        noise.validate("noise")?;
        config.validate("fokker_planck", &valley, &noise)?;
        Ok(Self {
            landscape: Landscape::Valley2d(valley),
            noise,
            config,
        })
    }

    /// Validate `config` against a 2-D `landscape` (the valley of Eq. 8 or an expression).
    pub fn from_landscape(
        landscape: Landscape,
        noise: Noise,
        config: FokkerPlanckConfig,
    ) -> Result<Self, Invalid> {
        match landscape {
            Landscape::Valley2d(v) => Self::new(v, noise, config),
            Landscape::Expression(e) => {
                noise.validate("noise")?;
                config.validate_expression("fokker_planck", &e, &noise)?;
                Ok(Self {
                    landscape: Landscape::Expression(e),
                    noise,
                    config,
                })
            }
            Landscape::Valley(_) | Landscape::None => Err(Invalid::new(
                "fokker_planck",
                "the Fokker–Planck solver needs a 2-D landscape (landscape.kind = \"valley2d\" or \"expression\")",
            )),
        }
    }

    /// The 2-D valley of Eq. (8), when the landscape is one.
    pub fn valley(&self) -> Option<&Valley2d> {
        self.landscape.valley2d()
    }

    /// The landscape (the valley of Eq. 8 or an expression).
    pub fn landscape(&self) -> &Landscape {
        &self.landscape
    }

    /// The noise model.
    pub fn noise(&self) -> &Noise {
        &self.noise
    }

    /// The grid and time-stepping configuration.
    pub fn config(&self) -> &FokkerPlanckConfig {
        &self.config
    }

    /// The same plan with another noise model (a sweep point), validated again.
    pub fn with_noise(&self, noise: Noise) -> Result<Self, Invalid> {
        Self::from_landscape(self.landscape.clone(), noise, self.config.clone())
    }
}

fn noise_name(noise: &Noise) -> &'static str {
    match noise {
        Noise::Anisotropic { .. } => "anisotropic",
        Noise::Hessian { .. } => "hessian",
        Noise::Isotropic { .. } => "isotropic",
        Noise::Constant { .. } => "constant",
    }
}

/// The largest |D| and |∇L| over the cell centres and where they occur. The operator's
/// coefficients must be representable: D/h² and |∇L|/h below [`MAX_COEFFICIENT`], and for a
/// transient dt·D/h² below [`MAX_STIFFNESS`] (beyond it a step's matrix I − γ dt A is I to
/// round-off only where D vanishes and its factorisation loses every digit elsewhere).
#[derive(Debug, Default)]
struct CoefficientScale {
    d_max: f64,
    d_at: [f64; 2],
    g_max: f64,
    g_at: [f64; 2],
}

impl CoefficientScale {
    /// Take D and ∇L at (x, y) into the maxima; a NaN is kept as the maximum (and rejected).
    fn add(&mut self, x: f64, y: f64, d: [[f64; 2]; 2], g: [f64; 2]) {
        let dm = d[0][0].abs().max(d[1][1].abs()).max(d[0][1].abs());
        let gm = g[0].abs().max(g[1].abs());
        if dm.is_nan() || dm > self.d_max {
            self.d_max = dm;
            self.d_at = [x, y];
        }
        if gm.is_nan() || gm > self.g_max {
            self.g_max = gm;
            self.g_at = [x, y];
        }
    }

    /// The bounds, with `cfg`'s time step for the stiffness; errors name the point.
    fn check(&self, cfg: &FokkerPlanckConfig, key: &str, grid: &super::grid::Grid) -> Check {
        let Self {
            d_max,
            d_at,
            g_max,
            g_at,
        } = *self;
        let h = grid.dx.min(grid.dy);
        if !d_max.is_finite() || d_max / (h * h) >= MAX_COEFFICIENT {
            return Err(Invalid::new(
                "noise",
                format!(
                    "the diffusion tensor reaches {d_max:e} at (x, y) = ({}, {}) of the Fokker–Planck grid: D/h² = {:e} is beyond what the solver represents ({MAX_COEFFICIENT:e}); reduce the noise or the loss's scale",
                    d_at[0],
                    d_at[1],
                    d_max / (h * h)
                ),
            ));
        }
        if !g_max.is_finite() || g_max / h >= MAX_COEFFICIENT {
            return Err(Invalid::new(
                "landscape",
                format!(
                    "the loss's gradient reaches {g_max:e} at (x, y) = ({}, {}) of the Fokker–Planck grid: |∇L|/h = {:e} is beyond what the solver represents ({MAX_COEFFICIENT:e}); rescale the loss or shrink the domain",
                    g_at[0],
                    g_at[1],
                    g_max / h
                ),
            ));
        }
        let stiffness = cfg.dt * d_max / (h * h);
        if cfg.t_end > 0.0 && stiffness >= MAX_STIFFNESS {
            return Err(Invalid::new(
                format!("{key}.dt"),
                format!(
                    "the transient step is too stiff for double precision: dt·D/h² = {stiffness:e} (at most {MAX_STIFFNESS:e}); take a smaller dt, or a steady solve"
                ),
            ));
        }
        Ok(())
    }
}
