//! Scenario files (SPEC §6): TOML → validated, typed [`Scenario`].
//!
//! Parsing rejects unknown keys; validation checks every number before any work starts.
//! Every error names the file, the dotted key and, where the key can be found in the text,
//! its line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::landscape::Valley2d;
use crate::landscape::valley_nd::ValleyNdSpec;
use crate::noise::{Mat2, Noise};
use crate::sampler::SamplerConfig;
use crate::theory::TheoryConfig;

/// A validation failure: the dotted key and what is wrong with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Dotted key path, e.g. `fokker_planck.x.cells`.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl Invalid {
    /// A failure at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Result of one validation step.
pub type Check = Result<(), Invalid>;

/// `v` must be finite.
pub fn check_finite(key: &str, v: f64) -> Check {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("must be a finite number, got {v}"),
        ))
    }
}

/// `v` must be finite and > 0.
pub fn check_positive(key: &str, v: f64) -> Check {
    check_finite(key, v)?;
    if v > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("must be > 0, got {v}")))
    }
}

/// `v` must be finite and ≥ 0.
pub fn check_non_negative(key: &str, v: f64) -> Check {
    check_finite(key, v)?;
    if v >= 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("must be >= 0, got {v}")))
    }
}

/// An error in a scenario file, with its location (SPEC §5: exit status 2).
#[derive(Debug, Clone)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// Dotted key, when known.
    pub key: Option<String>,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

// ---------------------------------------------------------------------------------------------
// Raw schema (serde)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: u64,
    landscape: Option<RawLandscape>,
    noise: Option<RawNoise>,
    fokker_planck: Option<FokkerPlanckConfig>,
    theory: Option<TheoryConfig>,
    sampler: Option<SamplerConfig>,
    sweep: Option<SweepConfig>,
    network: Option<crate::network::NetworkConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawLandscape {
    Valley2d { epsilon: f64, lambda: Vec<f64> },
    Valley(ValleyNdSpec),
}

/// `[noise]` as written: a flat table (so that type errors keep their exact position),
/// checked against its `kind` in validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    kind: NoiseKind,
    delta: Option<f64>,
    kappa: Option<f64>,
    eta: Option<f64>,
    sigma: Option<f64>,
    power: Option<f64>,
    temperature: Option<f64>,
    d: Option<[[f64; 2]; 2]>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum NoiseKind {
    Anisotropic,
    Hessian,
    Isotropic,
    Constant,
}

impl RawNoise {
    fn validate(self) -> Result<Noise, Invalid> {
        let allowed: &[&str] = match self.kind {
            NoiseKind::Anisotropic => &["delta", "kappa"],
            NoiseKind::Hessian => &["eta", "sigma", "power"],
            NoiseKind::Isotropic => &["temperature"],
            NoiseKind::Constant => &["d"],
        };
        let present = [
            ("delta", self.delta.is_some()),
            ("kappa", self.kappa.is_some()),
            ("eta", self.eta.is_some()),
            ("sigma", self.sigma.is_some()),
            ("power", self.power.is_some()),
            ("temperature", self.temperature.is_some()),
            ("d", self.d.is_some()),
        ];
        for (name, there) in present {
            if there && !allowed.contains(&name) {
                return Err(Invalid::new(
                    format!("noise.{name}"),
                    format!(
                        "is not a parameter of noise kind {:?} (it takes {})",
                        format!("{:?}", self.kind).to_lowercase(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let need = |name: &str, v: Option<f64>| {
            v.ok_or_else(|| {
                Invalid::new(format!("noise.{name}"), "is required for this noise kind")
            })
        };
        Ok(match self.kind {
            NoiseKind::Anisotropic => {
                let (delta, kappa) = (need("delta", self.delta)?, need("kappa", self.kappa)?);
                check_positive("noise.delta", delta)?;
                check_positive("noise.kappa", kappa)?;
                Noise::Anisotropic { delta, kappa }
            }
            NoiseKind::Hessian => {
                let (eta, sigma) = (need("eta", self.eta)?, need("sigma", self.sigma)?);
                let power = self.power.unwrap_or_else(default_power);
                check_positive("noise.eta", eta)?;
                check_non_negative("noise.sigma", sigma)?;
                check_positive("noise.power", power)?;
                if power > 4.0 {
                    return Err(Invalid::new(
                        "noise.power",
                        format!("must be in (0, 4] (γ = 2 is the random-shift model), got {power}"),
                    ));
                }
                Noise::Hessian { eta, sigma, power }
            }
            NoiseKind::Isotropic => {
                let temperature = need("temperature", self.temperature)?;
                check_positive("noise.temperature", temperature)?;
                Noise::Isotropic { temperature }
            }
            NoiseKind::Constant => {
                let d = self.d.ok_or_else(|| {
                    Invalid::new("noise.d", "is required for noise kind \"constant\"")
                })?;
                validate_psd("noise.d", d)?;
                Noise::Constant { d }
            }
        })
    }
}

fn default_power() -> f64 {
    2.0
}

/// One axis of the FP grid: `{ min, max, cells }`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AxisConfig {
    /// Lower edge of the domain.
    pub min: f64,
    /// Upper edge of the domain.
    pub max: f64,
    /// Number of cells.
    pub cells: usize,
}

/// Initial density of a transient FP run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum InitialConfig {
    /// A Gaussian with the given mean and per-axis standard deviation (cell-averaged).
    Gaussian {
        /// Mean [x, y].
        mean: [f64; 2],
        /// Standard deviations [σx, σy].
        std: [f64; 2],
    },
    /// The uniform density on the domain.
    Uniform {},
}

/// How the cross-diffusion terms D12 are discretised (SPEC §2).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CrossDiffusionScheme {
    /// Corner-averaged gradients on each face (second order, not monotone).
    #[default]
    Central,
    /// Cross terms dropped (first check; biased when D12 ≠ 0).
    Drop,
}

/// `[fokker_planck]`: grid and time stepping of the FP solver (SPEC §2, §6).
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// Solve the modified equation of the SGD map with the noise's η (Hessian noise):
    /// D → Δ_S |H|^γ (I − ηH/2)⁻¹ (`fp::operator::discrete_time_diffusion`).
    #[serde(default)]
    pub discrete_time: bool,
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
            discrete_time: false,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_dt() -> f64 {
    0.01
}

/// A 1-D range of sweep values: `{ min, max, points }` (linear spacing).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeConfig {
    /// First value.
    pub min: f64,
    /// Last value.
    pub max: f64,
    /// Number of values (≥ 1).
    pub points: usize,
    /// Logarithmic spacing instead of linear.
    #[serde(default)]
    pub log: bool,
}

impl RangeConfig {
    /// The values of the range.
    pub fn values(&self) -> Vec<f64> {
        if self.points == 1 {
            return vec![self.min];
        }
        (0..self.points)
            .map(|k| {
                let s = k as f64 / (self.points - 1) as f64;
                if self.log {
                    (self.min.ln() + s * (self.max.ln() - self.min.ln())).exp()
                } else {
                    self.min + s * (self.max - self.min)
                }
            })
            .collect()
    }

    fn validate(&self, key: &str) -> Check {
        check_finite(&format!("{key}.min"), self.min)?;
        check_finite(&format!("{key}.max"), self.max)?;
        if self.points == 0 {
            return Err(Invalid::new(format!("{key}.points"), "must be >= 1"));
        }
        if self.points > 1 && self.max <= self.min {
            return Err(Invalid::new(
                format!("{key}.max"),
                format!("must be > min ({}), got {}", self.min, self.max),
            ));
        }
        if self.log && self.min <= 0.0 {
            return Err(Invalid::new(
                format!("{key}.min"),
                "must be > 0 for a logarithmic range",
            ));
        }
        Ok(())
    }
}

/// `[sweep]`: a grid over (σ, η), or Δ_S alone (SPEC §6).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// σ values.
    pub sigma: Option<RangeConfig>,
    /// η values.
    pub eta: Option<RangeConfig>,
    /// Δ_S values (FP and theory only).
    pub delta_s: Option<RangeConfig>,
}

// ---------------------------------------------------------------------------------------------
// Typed scenario
// ---------------------------------------------------------------------------------------------

/// The landscape of a scenario.
#[derive(Debug, Clone)]
pub enum Landscape {
    /// No loss landscape: a scenario with only a `[network]` section.
    None,
    /// The 2-D valley of Eq. (8).
    Valley2d(Valley2d),
    /// The N-D valley of Eq. (5).
    Valley(ValleyNdSpec),
}

/// A validated scenario (SPEC §6).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from.
    pub file: PathBuf,
    /// Output sub-folder name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Master seed of every random stream.
    pub seed: u64,
    /// The loss landscape.
    pub landscape: Landscape,
    /// The noise model.
    pub noise: Noise,
    /// `[fokker_planck]`, when present.
    pub fokker_planck: Option<FokkerPlanckConfig>,
    /// `[theory]`, when present.
    pub theory: Option<TheoryConfig>,
    /// `[sampler]`, when present.
    pub sampler: Option<SamplerConfig>,
    /// `[sweep]`, when present.
    pub sweep: Option<SweepConfig>,
    /// `[network]`, when present (the real-network check, Figs. 1, 2b, 3b).
    pub network: Option<crate::network::NetworkConfig>,
}

impl Scenario {
    /// The 2-D valley, if the landscape is one.
    pub fn valley2d(&self) -> Option<&Valley2d> {
        match &self.landscape {
            Landscape::Valley2d(v) => Some(v),
            Landscape::Valley(_) | Landscape::None => None,
        }
    }

    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            key: None,
            position: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_str_at(&src, path)
    }

    /// Parse and validate scenario text; `path` is used in messages only.
    pub fn from_str_at(src: &str, path: &Path) -> Result<Self, ScenarioError> {
        let raw: RawScenario = toml::from_str(src).map_err(|e| {
            let mut position = e.span().map(|s| line_col(src, s.start));
            let mut key = e.span().and_then(|s| key_at(src, s.start));
            // Errors inside tagged tables point at the table header: find the named field.
            if let (Some(span), Some(field)) = (e.span(), backticked(e.message()))
                && let Some((table, line)) = table_at(src, span.start)
            {
                {
                    let dotted = if table.is_empty() {
                        field.clone()
                    } else {
                        format!("{table}.{field}")
                    };
                    if let Some(pos) = locate_path_from(src, &dotted, line) {
                        position = Some(pos);
                        key = Some(dotted);
                    }
                }
            }
            let mut message = e.message().trim().to_string();
            if let Some((line, _)) = position {
                // Quote the offending line, like a compiler does.
                if let Some(text) = src.lines().nth(line - 1) {
                    message.push_str(&format!("\n  {line} | {}", text.trim_end()));
                }
            }
            ScenarioError {
                file: path.to_path_buf(),
                key,
                position,
                message,
            }
        })?;
        raw.validate(path).map_err(|inv| ScenarioError {
            file: path.to_path_buf(),
            position: locate_key(src, &inv.key),
            key: Some(inv.key),
            message: inv.message,
        })
    }
}

impl RawScenario {
    fn validate(self, path: &Path) -> Result<Scenario, Invalid> {
        if self.name.trim().is_empty()
            || self
                .name
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            || self.name.starts_with('.')
        {
            return Err(Invalid::new(
                "name",
                format!(
                    "must be a non-empty folder name of letters, digits, '-', '_' or '.', got {:?}",
                    self.name
                ),
            ));
        }
        let physics = self.fokker_planck.is_some()
            || self.theory.is_some()
            || self.sampler.is_some()
            || self.sweep.is_some();
        for (table, missing) in [
            ("landscape", self.landscape.is_none()),
            ("noise", self.noise.is_none()),
        ] {
            if missing && (physics || self.network.is_none()) {
                return Err(Invalid::new(
                    table,
                    format!(
                        "missing table [{table}]: the Fokker–Planck, theory, sampler and sweep sections need [landscape] and [noise] (only a [network] scenario may omit them)"
                    ),
                ));
            }
        }
        if let Some(net) = &self.network {
            net.validate("network")?;
        }
        let landscape = match self.landscape {
            None => Landscape::None,
            Some(l) => match l {
                RawLandscape::Valley2d { epsilon, lambda } => {
                    check_non_negative("landscape.epsilon", epsilon)?;
                    if lambda.is_empty() {
                        return Err(Invalid::new(
                            "landscape.lambda",
                            "needs at least λ0, e.g. [8.0, -2.0, 1.0]",
                        ));
                    }
                    for (n, &c) in lambda.iter().enumerate() {
                        check_finite(&format!("landscape.lambda[{n}]"), c)?;
                    }
                    if lambda[0] <= 0.0 {
                        return Err(Invalid::new(
                            "landscape.lambda",
                            format!("λ0 must be > 0, got {}", lambda[0]),
                        ));
                    }
                    Landscape::Valley2d(Valley2d { epsilon, lambda })
                }
                RawLandscape::Valley(spec) => {
                    spec.validate("landscape")?;
                    Landscape::Valley(spec)
                }
            },
        };
        // A network-only scenario has no noise model; nothing reads this placeholder.
        let noise = match self.noise {
            Some(n) => n.validate()?,
            None => Noise::Isotropic { temperature: 0.0 },
        };
        let scenario = Scenario {
            file: path.to_path_buf(),
            name: self.name,
            description: self.description,
            seed: self.seed,
            landscape,
            noise,
            fokker_planck: self.fokker_planck,
            theory: self.theory,
            sampler: self.sampler,
            sweep: self.sweep,
            network: self.network,
        };
        if let Some(fp) = &scenario.fokker_planck {
            validate_fp(fp, &scenario)?;
        }
        if let Some(sampler) = &scenario.sampler {
            sampler.validate("sampler", &scenario)?;
        }
        if let Some(theory) = &scenario.theory {
            theory.validate("theory", &scenario)?;
        }
        if let Some(sweep) = &scenario.sweep {
            validate_sweep(sweep, &scenario)?;
        }
        Ok(scenario)
    }
}

fn validate_psd(key: &str, d: Mat2) -> Check {
    for (i, row) in d.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            check_finite(&format!("{key}[{i}][{j}]"), v)?;
        }
    }
    if (d[0][1] - d[1][0]).abs() > 1e-12 * (d[0][1].abs() + d[1][0].abs()).max(1e-300) {
        return Err(Invalid::new(
            key,
            format!(
                "must be symmetric, got d12 = {} and d21 = {}",
                d[0][1], d[1][0]
            ),
        ));
    }
    let det = d[0][0] * d[1][1] - d[0][1] * d[1][0];
    if d[0][0] < 0.0 || d[1][1] < 0.0 || det < 0.0 {
        return Err(Invalid::new(
            key,
            format!(
                "must be positive semi-definite (d11 >= 0, d22 >= 0, d11 d22 - d12² >= 0), got {d:?}"
            ),
        ));
    }
    Ok(())
}

fn validate_axis(key: &str, a: &AxisConfig) -> Check {
    check_finite(&format!("{key}.min"), a.min)?;
    check_finite(&format!("{key}.max"), a.max)?;
    if a.max <= a.min {
        return Err(Invalid::new(
            format!("{key}.max"),
            format!("must be > min ({}), got {}", a.min, a.max),
        ));
    }
    if a.cells < 3 {
        return Err(Invalid::new(
            format!("{key}.cells"),
            format!("must be >= 3, got {}", a.cells),
        ));
    }
    if a.cells > 8192 {
        return Err(Invalid::new(
            format!("{key}.cells"),
            format!("must be <= 8192, got {}", a.cells),
        ));
    }
    Ok(())
}

fn validate_fp(fp: &FokkerPlanckConfig, sc: &Scenario) -> Check {
    let Some(valley) = sc.valley2d() else {
        return Err(Invalid::new(
            "fokker_planck",
            "the Fokker–Planck solver needs a 2-D landscape (landscape.kind = \"valley2d\")",
        ));
    };
    validate_axis("fokker_planck.x", &fp.x)?;
    validate_axis("fokker_planck.y", &fp.y)?;
    if fp.x.cells * fp.y.cells > 4_200_000 {
        return Err(Invalid::new(
            "fokker_planck.x.cells",
            format!(
                "grid of {} x {} cells is larger than the 2048 x 2048 limit",
                fp.x.cells, fp.y.cells
            ),
        ));
    }
    check_non_negative("fokker_planck.t_end", fp.t_end)?;
    if !fp.steady && fp.t_end == 0.0 {
        return Err(Invalid::new(
            "fokker_planck.steady",
            "nothing to compute: set steady = true, or t_end > 0 for a transient run",
        ));
    }
    check_positive("fokker_planck.dt", fp.dt)?;
    let x_max = fp.x.min.abs().max(fp.x.max.abs());
    let min_lambda = valley.min_lambda_on(x_max);
    if min_lambda <= 0.0 || !min_lambda.is_finite() {
        return Err(Invalid::new(
            "landscape.lambda",
            format!(
                "λ(x) must stay > 0 on the domain |x| <= {x_max}, but its minimum there is {min_lambda:.4}"
            ),
        ));
    }
    if fp.t_end > 0.0 {
        if fp.initial.is_none() {
            return Err(Invalid::new(
                "fokker_planck.initial",
                "a transient run (t_end > 0) needs an initial density, e.g. { kind = \"gaussian\", mean = [1.0, 0.5], std = [0.1, 0.1] }",
            ));
        }
        if fp.dt > fp.t_end {
            return Err(Invalid::new(
                "fokker_planck.dt",
                format!("must be <= t_end ({}), got {}", fp.t_end, fp.dt),
            ));
        }
    }
    if let Some(InitialConfig::Gaussian { mean, std }) = &fp.initial {
        check_finite("fokker_planck.initial.mean", mean[0])?;
        check_finite("fokker_planck.initial.mean", mean[1])?;
        check_positive("fokker_planck.initial.std", std[0])?;
        check_positive("fokker_planck.initial.std", std[1])?;
        if mean[0] < fp.x.min || mean[0] > fp.x.max || mean[1] < fp.y.min || mean[1] > fp.y.max {
            return Err(Invalid::new(
                "fokker_planck.initial.mean",
                format!("{mean:?} lies outside the grid"),
            ));
        }
    }
    for &t in &fp.snapshots {
        check_non_negative("fokker_planck.snapshots", t)?;
        if t > fp.t_end {
            return Err(Invalid::new(
                "fokker_planck.snapshots",
                format!("snapshot time {t} is after t_end = {}", fp.t_end),
            ));
        }
    }
    match sc.noise {
        Noise::Hessian { eta, sigma, .. } if eta * sigma <= 0.0 => Err(Invalid::new(
            "noise.sigma",
            "the Fokker–Planck solver needs noise: σ must be > 0",
        )),
        Noise::Constant { d } if d[0][0] <= 0.0 || d[1][1] <= 0.0 => Err(Invalid::new(
            "noise.d",
            "the Fokker–Planck solver needs d11 > 0 and d22 > 0",
        )),
        _ => Ok(()),
    }
}

fn validate_sweep(sw: &SweepConfig, sc: &Scenario) -> Check {
    if sw.sigma.is_none() && sw.eta.is_none() && sw.delta_s.is_none() {
        return Err(Invalid::new(
            "sweep",
            "needs `sigma` and `eta` ranges, or a `delta_s` range",
        ));
    }
    if sw.sigma.is_some() && sw.delta_s.is_some() {
        return Err(Invalid::new(
            "sweep.delta_s",
            "give either `sigma` (with `eta`) or `delta_s` (optionally with `eta`), not both",
        ));
    }
    if sw.sigma.is_some() && sw.eta.is_none() {
        return Err(Invalid::new(
            "sweep.eta",
            "a (σ, η) sweep needs both `sigma` and `eta` ranges",
        ));
    }
    if sw.eta.is_some() && sw.sigma.is_none() && sw.delta_s.is_none() {
        return Err(Invalid::new(
            "sweep.sigma",
            "a (σ, η) sweep needs both `sigma` and `eta` ranges",
        ));
    }
    if let Some(r) = &sw.sigma {
        r.validate("sweep.sigma")?;
        if r.min < 0.0 {
            return Err(Invalid::new("sweep.sigma.min", "must be >= 0"));
        }
    }
    if let Some(r) = &sw.eta {
        r.validate("sweep.eta")?;
        if r.min <= 0.0 {
            return Err(Invalid::new("sweep.eta.min", "must be > 0"));
        }
    }
    if let Some(r) = &sw.delta_s {
        r.validate("sweep.delta_s")?;
        if r.min <= 0.0 {
            return Err(Invalid::new("sweep.delta_s.min", "must be > 0"));
        }
    }
    if !matches!(sc.noise, Noise::Hessian { .. }) {
        return Err(Invalid::new(
            "sweep",
            "a sweep over σ, η or Δ_S needs noise.kind = \"hessian\"",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Locating keys in the source text
// ---------------------------------------------------------------------------------------------

/// The first `name` in backticks of an error message (serde's unknown/missing field).
fn backticked(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("duplicate field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

/// The table whose header is on the line holding byte `offset`, and that line (1-based).
fn table_at(src: &str, offset: usize) -> Option<(String, usize)> {
    let (line, _) = line_col(src, offset);
    let text = src.lines().nth(line - 1)?.trim();
    if text.starts_with('[') && !text.starts_with("[[") {
        let close = text.find(']')?;
        return Some((text[1..close].trim().to_string(), line));
    }
    None
}

/// Like [`locate_key`], but only at or after line `from` (1-based).
fn locate_path_from(src: &str, key: &str, from: usize) -> Option<(usize, usize)> {
    let tail: String = src.lines().skip(from - 1).collect::<Vec<_>>().join("\n");
    // Keep the table header of line `from` in the text so the path resolves.
    locate_key(&tail, key).map(|(l, c)| (l + from - 1, c))
}

/// 1-based (line, column) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

/// The dotted key whose value contains byte `offset` (best effort, for parse errors).
fn key_at(src: &str, offset: usize) -> Option<String> {
    let offset = offset.min(src.len());
    let mut table = String::new();
    let mut line_start = 0;
    for line in src.split_inclusive('\n') {
        let end = line_start + line.len();
        let trimmed = line.trim();
        if trimmed.starts_with('[')
            && !trimmed.starts_with("[[")
            && let Some(close) = trimmed.find(']')
        {
            table = trimmed[1..close].trim().to_string();
        }
        if offset < end || end == src.len() {
            let upto = &line[..(offset - line_start).min(line.len())];
            // The nearest `key =` before the offset on this line.
            let eq = upto.rfind('=')?;
            let head = &upto[..eq];
            let start = head.rfind(['{', ',']).map_or(0, |p| p + 1);
            let key = head[start..].trim().trim_matches('"');
            if key.is_empty() || key.starts_with('[') {
                return None;
            }
            let outer = if start > 0 {
                // Inside an inline table: prefix the key that owns the table.
                let before_brace = &line[..line[..start].rfind('{').unwrap_or(0)];
                before_brace
                    .rfind('=')
                    .map(|p| before_brace[..p].trim().to_string())
                    .filter(|k| !k.is_empty())
            } else {
                None
            };
            let mut parts: Vec<&str> = Vec::new();
            if !table.is_empty() && !trimmed.starts_with('[') {
                parts.push(&table);
            }
            if let Some(o) = &outer {
                parts.push(o);
            }
            parts.push(key);
            return Some(parts.join("."));
        }
        line_start = end;
    }
    None
}

/// 1-based (line, column) of a dotted key in TOML text (best effort: table headers,
/// `key = …` lines, inline tables and `[i]`/`[i][j]` index suffixes).
pub fn locate_key(src: &str, key: &str) -> Option<(usize, usize)> {
    let path: Vec<String> = key
        .split('.')
        .map(|p| p.split('[').next().unwrap_or(p).to_string())
        .collect();
    // Try the longest prefix that can be found.
    for n in (1..=path.len()).rev() {
        if let Some(pos) = locate_path(src, &path[..n]) {
            return Some(pos);
        }
    }
    None
}

fn locate_path(src: &str, path: &[String]) -> Option<(usize, usize)> {
    let mut table: Vec<String> = Vec::new();
    for (ln, line) in src.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("");
        let trimmed = content.trim();
        if trimmed.starts_with('[') {
            if let Some(close) = trimmed.find(']') {
                table = trimmed[1..close]
                    .split('.')
                    .map(|s| s.trim().to_string())
                    .collect();
                if table == path {
                    let col = line.find('[').unwrap_or(0) + 1;
                    return Some((ln + 1, col));
                }
            }
            continue;
        }
        // Relative path of the key we look for inside the current table.
        if path.len() <= table.len() || path[..table.len()] != table[..] {
            continue;
        }
        let rel = &path[table.len()..];
        let Some(eq) = content.find('=') else {
            continue;
        };
        let first = content[..eq].trim().trim_matches('"');
        let dotted: Vec<&str> = first.split('.').map(str::trim).collect();
        if dotted.len() <= rel.len() && dotted.iter().zip(rel).all(|(a, b)| a == b) {
            let rest = &rel[dotted.len()..];
            if rest.is_empty() {
                let col = line.find(dotted[0]).unwrap_or(0) + 1;
                return Some((ln + 1, col));
            }
            // Look for the remaining key inside an inline table on this line.
            let value = &content[eq + 1..];
            let needle = &rest[rest.len() - 1];
            if let Some(p) = find_word(value, needle) {
                return Some((ln + 1, eq + 1 + p + 1));
            }
            let col = line.find(dotted[0]).unwrap_or(0) + 1;
            return Some((ln + 1, col));
        }
    }
    None
}

fn find_word(hay: &str, word: &str) -> Option<usize> {
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(p) = hay[from..].find(word) {
        let s = from + p;
        let e = s + word.len();
        let ok_before = s == 0 || !(bytes[s - 1].is_ascii_alphanumeric() || bytes[s - 1] == b'_');
        let ok_after = e >= bytes.len() || !(bytes[e].is_ascii_alphanumeric() || bytes[e] == b'_');
        if ok_before && ok_after {
            return Some(s);
        }
        from = e;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name = \"t\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[fokker_planck]\nx = { min = -1.6, max = 1.6, cells = 64 }\ny = { min = -0.6, max = 0.6, cells = 32 }\n";

    #[test]
    fn locates_keys_in_tables_and_inline_tables() {
        assert_eq!(locate_key(SRC, "noise.sigma"), Some((9, 1)));
        assert_eq!(
            locate_key(SRC, "fokker_planck.x.cells").map(|p| p.0),
            Some(11)
        );
        assert_eq!(locate_key(SRC, "landscape.lambda[2]"), Some((5, 1)));
        assert_eq!(locate_key(SRC, "fokker_planck"), Some((10, 1)));
    }

    #[test]
    fn parses_a_minimal_scenario() {
        let sc = Scenario::from_str_at(SRC, Path::new("t.toml")).unwrap();
        assert_eq!(sc.name, "t");
        assert_eq!(sc.noise.delta_s(), Some(0.01 * 0.2));
        assert_eq!(sc.fokker_planck.unwrap().x.cells, 64);
    }
}
