//! Scenarios: a TOML file (or a [`ScenarioSpec`] built in code) → a validated [`Scenario`] that
//! holds one resolved plan per part (FP, theory, sampler, network) plus the sweep.
//!
//! Parsing rejects unknown keys; validation checks every number before any work starts. Every
//! error names the file, the dotted key and, where the key is in the text, its line and column
//! — found from the spans of `toml`'s own parse tree, not by searching the text.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::config::{Check, Invalid, RangeConfig};
use crate::fp::{FokkerPlanckConfig, FpPlan};
use crate::landscape::expr::ExprLoss;
use crate::landscape::valley_nd::ValleyNdSpec;
use crate::landscape::{Landscape, Valley2d};
use crate::network::{NetworkConfig, NetworkPlan};
use crate::noise::{Mat2, Noise};
use crate::sampler::{SamplerConfig, SamplerPlan};
use crate::theory::{TheoryConfig, TheoryPlan};

/// An error in a scenario, with its location (exit status 2 on the command line).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    /// The scenario file (or the name given to text and code-built scenarios).
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

impl ScenarioError {
    fn at(file: &Path, key: Option<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key,
            position: None,
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The schema as written
// ---------------------------------------------------------------------------------------------

/// A scenario as written: every table of the file, typed but not yet validated. Serialises back
/// to TOML (`to_toml`), so a scenario built in code can be saved and reloaded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Output sub-folder name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Master seed of every random stream.
    #[serde(default)]
    pub seed: u64,
    /// `[landscape]`.
    pub landscape: Option<LandscapeSpec>,
    /// `[noise]`.
    pub noise: Option<NoiseSpec>,
    /// `[fokker_planck]`.
    pub fokker_planck: Option<FokkerPlanckConfig>,
    /// `[theory]`.
    pub theory: Option<TheoryConfig>,
    /// `[sampler]`.
    pub sampler: Option<SamplerConfig>,
    /// `[sweep]`.
    pub sweep: Option<SweepConfig>,
    /// `[network]`.
    pub network: Option<NetworkConfig>,
}

impl ScenarioSpec {
    /// A scenario named `name` on `landscape` with `noise` and no computation yet.
    pub fn new(name: impl Into<String>, landscape: Landscape, noise: Noise) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            seed: 0,
            landscape: LandscapeSpec::from_landscape(&landscape),
            noise: Some(NoiseSpec::from(&noise)),
            fokker_planck: None,
            theory: None,
            sampler: None,
            sweep: None,
            network: None,
        }
    }

    /// The TOML text of this specification.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# not representable in TOML: {e}\n"))
    }
}

/// `[landscape]` as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LandscapeSpec {
    /// The 2-D valley of Eq. (8).
    Valley2d {
        /// ε.
        epsilon: f64,
        /// [λ0, λ1, …].
        lambda: Vec<f64>,
    },
    /// The N-D valley of Eq. (5).
    Valley(ValleyNdSpec),
    /// A 2-D loss written as an expression in x and y.
    Expression {
        /// The loss L(x, y), e.g. "0.5*(x*y - 1)^2 + 0.5*eps*x^2".
        loss: String,
        /// Named parameters used in `loss`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        params: BTreeMap<String, f64>,
    },
}

impl LandscapeSpec {
    /// The table of a landscape (`None` for [`Landscape::None`]).
    pub fn from_landscape(l: &Landscape) -> Option<Self> {
        match l {
            Landscape::None => None,
            Landscape::Valley2d(v) => Some(LandscapeSpec::Valley2d {
                epsilon: v.epsilon,
                lambda: v.lambda.clone(),
            }),
            Landscape::Valley(spec) => Some(LandscapeSpec::Valley(spec.clone())),
            Landscape::Expression(e) => Some(LandscapeSpec::Expression {
                loss: e.source.clone(),
                params: e.params.clone(),
            }),
        }
    }

    fn validate(&self) -> Result<Landscape, Invalid> {
        Ok(match self {
            LandscapeSpec::Valley2d { epsilon, lambda } => {
                let v = Valley2d {
                    epsilon: *epsilon,
                    lambda: lambda.clone(),
                };
                v.validate("landscape")?;
                Landscape::Valley2d(v)
            }
            LandscapeSpec::Valley(spec) => {
                spec.validate("landscape")?;
                Landscape::Valley(spec.clone())
            }
            LandscapeSpec::Expression { loss, params } => {
                Landscape::Expression(ExprLoss::new("landscape", loss, params)?)
            }
        })
    }
}

/// `[noise]` as written: a flat table (so that type errors keep their exact position), checked
/// against its `kind` in validation.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    /// "anisotropic", "hessian", "isotropic" or "constant".
    pub kind: NoiseKind,
    /// Δ (anisotropic).
    pub delta: Option<f64>,
    /// κ (anisotropic).
    pub kappa: Option<f64>,
    /// η (hessian).
    pub eta: Option<f64>,
    /// σ (hessian).
    pub sigma: Option<f64>,
    /// γ (hessian, default 2).
    pub power: Option<f64>,
    /// T (isotropic).
    pub temperature: Option<f64>,
    /// D (constant).
    pub d: Option<Mat2>,
}

/// The noise kinds of `[noise] kind`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// D = diag(Δ/κ, Δ).
    Anisotropic,
    /// D = Δ_S |H|^γ.
    Hessian,
    /// D = T I.
    Isotropic,
    /// A constant D.
    Constant,
}

impl NoiseKind {
    fn name(self) -> &'static str {
        match self {
            NoiseKind::Anisotropic => "anisotropic",
            NoiseKind::Hessian => "hessian",
            NoiseKind::Isotropic => "isotropic",
            NoiseKind::Constant => "constant",
        }
    }
}

impl From<&Noise> for NoiseSpec {
    fn from(n: &Noise) -> Self {
        let mut s = NoiseSpec {
            kind: NoiseKind::Isotropic,
            delta: None,
            kappa: None,
            eta: None,
            sigma: None,
            power: None,
            temperature: None,
            d: None,
        };
        match *n {
            Noise::Anisotropic { delta, kappa } => {
                s.kind = NoiseKind::Anisotropic;
                s.delta = Some(delta);
                s.kappa = Some(kappa);
            }
            Noise::Hessian { eta, sigma, power } => {
                s.kind = NoiseKind::Hessian;
                s.eta = Some(eta);
                s.sigma = Some(sigma);
                s.power = (power != DEFAULT_POWER).then_some(power);
            }
            Noise::Isotropic { temperature } => s.temperature = Some(temperature),
            Noise::Constant { d } => {
                s.kind = NoiseKind::Constant;
                s.d = Some(d);
            }
        }
        s
    }
}

/// γ when `noise.power` is not given: the random-shift model.
pub const DEFAULT_POWER: f64 = 2.0;

impl NoiseSpec {
    fn validate(&self) -> Result<Noise, Invalid> {
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
                        "is not a parameter of noise kind \"{}\" (it takes {})",
                        self.kind.name(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let need = |name: &str, v: Option<f64>| {
            v.ok_or_else(|| {
                Invalid::new(
                    format!("noise.{name}"),
                    format!("is required for noise kind \"{}\"", self.kind.name()),
                )
            })
        };
        let noise = match self.kind {
            NoiseKind::Anisotropic => Noise::Anisotropic {
                delta: need("delta", self.delta)?,
                kappa: need("kappa", self.kappa)?,
            },
            NoiseKind::Hessian => Noise::Hessian {
                eta: need("eta", self.eta)?,
                sigma: need("sigma", self.sigma)?,
                power: self.power.unwrap_or(DEFAULT_POWER),
            },
            NoiseKind::Isotropic => Noise::Isotropic {
                temperature: need("temperature", self.temperature)?,
            },
            NoiseKind::Constant => Noise::Constant {
                d: self.d.ok_or_else(|| {
                    Invalid::new("noise.d", "is required for noise kind \"constant\"")
                })?,
            },
        };
        noise.validate("noise")?;
        Ok(noise)
    }
}

/// Largest number of sweep points (validation resolves every point before any work starts).
pub const MAX_SWEEP_POINTS: usize = 1_000_000;

/// `[sweep]`: a grid over (σ, η), or over Δ_S (optionally × η).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// σ values.
    pub sigma: Option<RangeConfig>,
    /// η values.
    pub eta: Option<RangeConfig>,
    /// Δ_S values.
    pub delta_s: Option<RangeConfig>,
}

impl SweepConfig {
    /// Check the ranges and their combination; `key` is the table's dotted name.
    pub fn validate(&self, key: &str, noise: &Noise) -> Check {
        if self.sigma.is_none() && self.eta.is_none() && self.delta_s.is_none() {
            return Err(Invalid::new(
                key,
                "needs `sigma` and `eta` ranges, or a `delta_s` range",
            ));
        }
        if self.sigma.is_some() && self.delta_s.is_some() {
            return Err(Invalid::new(
                format!("{key}.delta_s"),
                "give either `sigma` (with `eta`) or `delta_s` (optionally with `eta`), not both",
            ));
        }
        if self.sigma.is_some() && self.eta.is_none() {
            return Err(Invalid::new(
                format!("{key}.eta"),
                "a (σ, η) sweep needs both `sigma` and `eta` ranges",
            ));
        }
        if self.eta.is_some() && self.sigma.is_none() && self.delta_s.is_none() {
            return Err(Invalid::new(
                format!("{key}.sigma"),
                "a (σ, η) sweep needs both `sigma` and `eta` ranges",
            ));
        }
        for (name, r, min_ok) in [
            ("sigma", &self.sigma, 0.0),
            ("eta", &self.eta, f64::MIN_POSITIVE),
            ("delta_s", &self.delta_s, f64::MIN_POSITIVE),
        ] {
            if let Some(r) = r {
                let k = format!("{key}.{name}");
                r.validate(&k)?;
                if r.min < min_ok {
                    let bound = if min_ok == 0.0 { ">= 0" } else { "> 0" };
                    return Err(Invalid::new(format!("{k}.min"), format!("must be {bound}")));
                }
            }
        }
        if !matches!(noise, Noise::Hessian { .. }) {
            return Err(Invalid::new(
                key,
                "a sweep over σ, η or Δ_S needs noise.kind = \"hessian\"",
            ));
        }
        let count = |r: &Option<RangeConfig>| r.map_or(1, |r| r.points);
        let total = count(&self.eta).saturating_mul(count(&self.sigma).max(count(&self.delta_s)));
        if total > MAX_SWEEP_POINTS {
            return Err(Invalid::new(
                key,
                format!("has {total} points; at most {MAX_SWEEP_POINTS} are allowed"),
            ));
        }
        Ok(())
    }

    /// The η values: the range, else the noise's η.
    pub fn etas(&self, noise: &Noise) -> Vec<f64> {
        let base = match *noise {
            Noise::Hessian { eta, .. } => eta,
            _ => f64::NAN,
        };
        self.eta.map_or_else(|| vec![base], |r| r.values())
    }

    /// The (σ, η) pairs of the sweep in the documented point order: row-major over η (outer)
    /// then σ or Δ_S (inner); a point's index in this list is its id.
    pub fn points(&self, noise: &Noise) -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        for eta in self.etas(noise) {
            if let Some(sig) = &self.sigma {
                pts.extend(sig.values().into_iter().map(|s| (s, eta)));
            } else if let Some(ds) = &self.delta_s {
                pts.extend(ds.values().into_iter().map(|d| (d / eta, eta)));
            }
        }
        pts
    }
}

// ---------------------------------------------------------------------------------------------
// The validated scenario
// ---------------------------------------------------------------------------------------------

/// A validated scenario: the landscape, the noise and one resolved plan per part.
#[derive(Debug, Clone)]
pub struct Scenario {
    file: PathBuf,
    spec: ScenarioSpec,
    landscape: Landscape,
    noise: Noise,
    fokker_planck: Option<FpPlan>,
    theory: Option<TheoryPlan>,
    sampler: Option<SamplerPlan>,
    network: Option<NetworkPlan>,
}

impl Scenario {
    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::at(path, None, format!("cannot read the file: {e}")))?;
        Self::from_toml_str(&src, path)
    }

    /// Parse and validate scenario text; `origin` names it in messages.
    pub fn from_toml_str(src: &str, origin: &Path) -> Result<Self, ScenarioError> {
        let doc = DeTable::parse(src).map_err(|e| {
            let mut err = ScenarioError::at(origin, None, e.message().trim());
            err.position = e.span().map(|s| line_col(src, s.start));
            // An array or inline table left open is only noticed on a later line: name the
            // line where it was opened.
            if let Some((line, _)) = err.position
                && err.message.contains("expected `,`")
                && let Some(open) = unclosed_before(src, line)
            {
                err.message.push_str(&format!(
                    " (is the `[` or `{{` opened on line {open} closed?)"
                ));
                let mut first = err.clone();
                first.position = Some((open, 1));
                quote_line(&mut first, src);
                err.message = first.message;
            }
            quote_line(&mut err, src);
            err
        })?;
        let spec: ScenarioSpec = serde_path_to_error::deserialize(toml::de::Deserializer::from(
            doc.clone(),
        ))
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let raw = inner.message().trim().to_string();
            let mut key = (path != ".").then_some(path);
            if let Some(field) = unknown_field(&raw) {
                // The path may or may not end with the unknown field (once or twice).
                let mut parts: Vec<&str> = key
                    .as_deref()
                    .map_or_else(Vec::new, |k| k.split('.').collect());
                while parts.last() == Some(&field.as_str()) {
                    parts.pop();
                }
                parts.push(&field);
                key = Some(parts.join("."));
            }
            let mut err = ScenarioError::at(origin, key, plain_words(&raw));
            err.position = inner.span().map(|s| line_col(src, s.start)).or_else(|| {
                err.key
                    .as_deref()
                    .and_then(|k| key_span(doc.get_ref(), k))
                    .map(|s| line_col(src, s.start))
            });
            quote_line(&mut err, src);
            err
        })?;
        Self::from_spec(spec, origin).map_err(|mut e| {
            if let Some(span) = e.key.as_deref().and_then(|k| key_span(doc.get_ref(), k)) {
                e.position = Some(line_col(src, span.start));
                quote_line(&mut e, src);
            }
            e
        })
    }

    /// Validate a specification built in code (or parsed); `origin` names it in messages.
    pub fn from_spec(spec: ScenarioSpec, origin: &Path) -> Result<Self, ScenarioError> {
        Self::validate(spec, origin).map_err(|inv| ScenarioError {
            file: origin.to_path_buf(),
            key: Some(inv.key),
            position: None,
            message: inv.message,
        })
    }

    /// Parse and validate a TOML table (e.g. edited from [`Scenario::to_table`]).
    pub fn from_table(table: toml::Table, origin: &Path) -> Result<Self, ScenarioError> {
        let text =
            toml::to_string(&table).map_err(|e| ScenarioError::at(origin, None, e.to_string()))?;
        Self::from_toml_str(&text, origin)
    }

    fn validate(spec: ScenarioSpec, origin: &Path) -> Result<Self, Invalid> {
        let name = &spec.name;
        if name.trim().is_empty()
            || name
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            || name.starts_with('.')
        {
            return Err(Invalid::new(
                "name",
                format!(
                    "must be a non-empty folder name of letters, digits, '-', '_' or '.', got {name:?}"
                ),
            ));
        }
        let physics = spec.fokker_planck.is_some()
            || spec.theory.is_some()
            || spec.sampler.is_some()
            || spec.sweep.is_some();
        if !physics && spec.network.is_none() {
            return Err(Invalid::new(
                "name",
                "nothing to compute: add at least one of [fokker_planck], [theory], [sampler], [sweep] or [network]",
            ));
        }
        for (table, missing) in [
            ("landscape", spec.landscape.is_none()),
            ("noise", spec.noise.is_none()),
        ] {
            if missing && physics {
                return Err(Invalid::new(
                    table,
                    format!(
                        "missing table [{table}]: the Fokker–Planck, theory, sampler and sweep sections need [landscape] and [noise] (only a [network] scenario may omit them)"
                    ),
                ));
            }
        }
        let network = spec
            .network
            .clone()
            .map(|n| NetworkPlan::new(n, spec.seed))
            .transpose()?;
        let landscape = match &spec.landscape {
            None => Landscape::None,
            Some(l) => l.validate()?,
        };
        // A network-only scenario has no noise model; no plan reads this placeholder.
        let noise = match &spec.noise {
            Some(n) => n.validate()?,
            None => Noise::Isotropic { temperature: 0.0 },
        };
        let valley = landscape.valley2d();
        let fokker_planck = spec
            .fokker_planck
            .as_ref()
            .map(|cfg| FpPlan::from_landscape(landscape.clone(), noise.clone(), cfg.clone()))
            .transpose()?;
        let fp_domain = spec.fokker_planck.as_ref().map(|f| (&f.x, &f.y));
        let theory = match (&spec.theory, valley) {
            (None, _) => None,
            (Some(_), None) if landscape.expression().is_some() => {
                return Err(Invalid::new(
                    "theory",
                    "the straight-valley theory (Eqs. 11–16) applies only to landscape.kind = \"valley2d\", not to an expression loss; remove [theory] (the FP solver and the sampler run on expressions)",
                ));
            }
            (Some(_), None) => {
                return Err(Invalid::new(
                    "theory",
                    "the adiabatic-elimination theory needs a 2-D landscape (landscape.kind = \"valley2d\"); remove [theory] for this landscape",
                ));
            }
            (Some(cfg), Some(v)) => {
                Some(TheoryPlan::new(v.clone(), noise.clone(), cfg, fp_domain)?)
            }
        };
        let sampler = spec
            .sampler
            .as_ref()
            .map(|cfg| SamplerPlan::new(cfg, &landscape, &noise, spec.seed))
            .transpose()?;
        if let Some(sweep) = &spec.sweep {
            sweep.validate("sweep", &noise)?;
            if fokker_planck.is_none() && theory.is_none() && sampler.is_none() && valley.is_none()
            {
                return Err(Invalid::new(
                    "sweep",
                    "nothing to compute at the sweep points: add [sampler], [theory] or [fokker_planck], or use landscape.kind = \"valley2d\"",
                ));
            }
            let power = match noise {
                Noise::Hessian { power, .. } => power,
                _ => DEFAULT_POWER,
            };
            // Every point must resolve, so that running the sweep cannot fail on input.
            for (sigma, eta) in sweep.points(&noise) {
                if let Some(s) = &sampler {
                    s.with_hessian_noise(eta, sigma, power)?;
                }
            }
            if let (Some(fp), Some(ds)) = (&fokker_planck, &sweep.delta_s) {
                for d in ds.values() {
                    fp.with_noise(Noise::Hessian {
                        eta: 1.0,
                        sigma: d,
                        power,
                    })?;
                }
            }
        }
        check_toml_integers(&spec)?;
        Ok(Scenario {
            file: origin.to_path_buf(),
            landscape,
            noise,
            fokker_planck,
            theory,
            sampler,
            network,
            spec,
        })
    }

    /// The file (or name) it came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The scenario's name (its output sub-folder).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.spec.seed
    }

    /// The specification it was validated from.
    pub fn spec(&self) -> &ScenarioSpec {
        &self.spec
    }

    /// The landscape.
    pub fn landscape(&self) -> &Landscape {
        &self.landscape
    }

    /// The 2-D valley, if the landscape is one.
    pub fn valley2d(&self) -> Option<&Valley2d> {
        self.landscape.valley2d()
    }

    /// The noise model.
    pub fn noise(&self) -> &Noise {
        &self.noise
    }

    /// The FP plan.
    pub fn fokker_planck(&self) -> Option<&FpPlan> {
        self.fokker_planck.as_ref()
    }

    /// The theory plan.
    pub fn theory(&self) -> Option<&TheoryPlan> {
        self.theory.as_ref()
    }

    /// The sampler plan.
    pub fn sampler(&self) -> Option<&SamplerPlan> {
        self.sampler.as_ref()
    }

    /// The sweep.
    pub fn sweep(&self) -> Option<&SweepConfig> {
        self.spec.sweep.as_ref()
    }

    /// The network plan.
    pub fn network(&self) -> Option<&NetworkPlan> {
        self.network.as_ref()
    }

    /// The specification as a TOML table (every default written out).
    pub fn to_table(&self) -> toml::Table {
        toml::Table::try_from(&self.spec).unwrap_or_default()
    }

    /// The specification as TOML text.
    pub fn to_toml(&self) -> String {
        self.spec.to_toml()
    }
}

/// TOML integers are 64-bit signed: a spec holding a larger `u64` (a seed built in code) could
/// not be saved as TOML and read back (`to_table` came back empty), so it is rejected, naming
/// the first such key.
fn check_toml_integers(spec: &ScenarioSpec) -> Check {
    use serde_json::Value;
    fn walk(v: &Value, key: &str) -> Check {
        let join = |k: &str| {
            if key.is_empty() {
                k.to_string()
            } else {
                format!("{key}.{k}")
            }
        };
        match v {
            Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_some() => Err(Invalid::new(
                key,
                format!(
                    "must be <= {} (the largest TOML integer), got {n}",
                    i64::MAX
                ),
            )),
            Value::Object(m) => m.iter().try_for_each(|(k, v)| walk(v, &join(k))),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| walk(v, &format!("{key}[{i}]"))),
            _ => Ok(()),
        }
    }
    match serde_json::to_value(spec) {
        Ok(v) => walk(&v, ""),
        Err(e) => Err(Invalid::new("name", format!("cannot be written out: {e}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Locating keys and wording errors
// ---------------------------------------------------------------------------------------------

/// The field named in serde's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// serde's type names in words a scenario author uses.
fn plain_words(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, words) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected usize", "expected a whole number >= 0"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected i64", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("invalid type: floating point", "invalid type: the number"),
        ("invalid type: integer", "invalid type: the whole number"),
        ("expected a sequence", "expected a list [ … ]"),
        ("expected a borrowed string", "expected a string"),
    ] {
        m = m.replace(rust, words);
    }
    m
}

/// 1-based (line, column) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

/// The last line before `line` (1-based) that leaves a `[` or `{` of a value open.
fn unclosed_before(src: &str, line: usize) -> Option<usize> {
    let mut depth: i32 = 0;
    let mut opened = None;
    for (n, text) in src.lines().take(line.saturating_sub(1)).enumerate() {
        let trimmed = text.trim_start();
        if depth == 0 && trimmed.starts_with('[') {
            continue; // a table header
        }
        let before = depth;
        let mut in_string = false;
        for ch in text.chars() {
            match ch {
                '"' => in_string = !in_string,
                '#' if !in_string => break,
                '[' | '{' if !in_string => depth += 1,
                ']' | '}' if !in_string => depth -= 1,
                _ => {}
            }
        }
        if before == 0 && depth > 0 {
            opened = Some(n + 1);
        }
        if depth <= 0 {
            depth = 0;
        }
    }
    opened.filter(|_| depth > 0)
}

/// Append the offending line to the message, as a compiler does.
fn quote_line(err: &mut ScenarioError, src: &str) {
    if let Some((line, _)) = err.position
        && let Some(text) = src.lines().nth(line - 1)
    {
        err.message
            .push_str(&format!("\n  {line} | {}", text.trim_end()));
    }
}

/// The span of a dotted key (`a.b[2].c`) in the parsed document: the key itself for a table
/// entry, the element for an array index; the deepest part found when the rest is absent.
pub fn key_span(doc: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    let mut table = Some(doc);
    let mut found: Option<Range<usize>> = None;
    for part in key.split('.') {
        let (name, indices) = match part.find('[') {
            Some(p) => (&part[..p], &part[p..]),
            None => (part, ""),
        };
        let Some(t) = table else { break };
        let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        found = Some(k.span());
        let mut current = v;
        for idx in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            match current.get_ref() {
                DeValue::Array(a) if idx < a.len() => {
                    current = &a[idx];
                    found = Some(current.span());
                }
                _ => break,
            }
        }
        table = match current.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name = \"t\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[fokker_planck]\nx = { min = -1.6, max = 1.6, cells = 64 }\ny = { min = -0.6, max = 0.6, cells = 32 }\n";

    fn pos(key: &str) -> Option<(usize, usize)> {
        let doc = DeTable::parse(SRC).unwrap();
        key_span(doc.get_ref(), key).map(|s| line_col(SRC, s.start))
    }

    #[test]
    fn locates_keys_in_tables_and_inline_tables() {
        assert_eq!(pos("noise.sigma"), Some((9, 1)));
        assert_eq!(pos("fokker_planck.x.cells").map(|p| p.0), Some(11));
        assert_eq!(pos("landscape.lambda[2]"), Some((5, 22)));
        assert_eq!(pos("fokker_planck").map(|p| p.0), Some(10));
    }

    #[test]
    fn a_hash_inside_a_string_is_not_a_comment() {
        let src = "name = \"t\"\ndescription = \"a # b\"\n[landscape]\nkind = \"valley2d\"\nepsilon = -1.0\nlambda = [8.0]\n[noise]\nkind = \"isotropic\"\ntemperature = 0.1\n[theory]\n";
        let e = Scenario::from_toml_str(src, Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("landscape.epsilon"));
        assert_eq!(e.position, Some((5, 1)));
    }

    #[test]
    fn an_unknown_key_is_named_once_with_its_line() {
        let src = format!("{SRC}foo = 1\n");
        let e = Scenario::from_toml_str(&src, Path::new("t.toml")).unwrap_err();
        // `foo` after [fokker_planck] belongs to that table.
        assert_eq!(e.key.as_deref(), Some("fokker_planck.foo"));
        assert_eq!(e.position.map(|p| p.0), Some(13));
        let top = SRC.replacen("name = \"t\"\n", "name = \"t\"\nfoo = 1\n", 1);
        let e = Scenario::from_toml_str(&top, Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("foo"));
        assert_eq!(e.position, Some((2, 1)));
        let sub = SRC.replace("sigma = 0.2", "sigmaa = 0.2");
        let e = Scenario::from_toml_str(&sub, Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("noise.sigmaa"));
        assert_eq!(e.position, Some((9, 1)));
    }

    #[test]
    fn type_errors_speak_the_scenario_authors_words_and_quote_the_line() {
        let src = SRC.replace("cells = 64", "cells = 6.5");
        let e = Scenario::from_toml_str(&src, Path::new("t.toml")).unwrap_err();
        assert!(e.message.contains("a whole number"), "{}", e.message);
        assert!(!e.message.contains("usize"), "{}", e.message);
        assert_eq!(e.position.map(|p| p.0), Some(11));
        let src = SRC.replace("sigma = 0.2", "sigma = -0.2");
        let e = Scenario::from_toml_str(&src, Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("noise.sigma"));
        assert!(e.message.contains("9 | sigma = -0.2"), "{}", e.message);
    }

    #[test]
    fn a_section_that_computes_nothing_is_an_error() {
        let nd = "name = \"t\"\n[landscape]\nkind = \"valley\"\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[theory]\n";
        let e = Scenario::from_toml_str(nd, Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("theory"));
        let nothing = "name = \"t\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0]\n[noise]\nkind = \"isotropic\"\ntemperature = 0.1\n";
        let e = Scenario::from_toml_str(nothing, Path::new("t.toml")).unwrap_err();
        assert!(e.message.contains("nothing to compute"), "{}", e.message);
    }

    #[test]
    fn an_unclosed_array_names_the_line_where_it_was_opened() {
        let src = SRC.replace("lambda = [8.0, -2.0, 1.0]", "lambda = [8.0, -2.0, 1.0");
        let e = Scenario::from_toml_str(&src, Path::new("t.toml")).unwrap_err();
        assert!(e.message.contains("opened on line 5"), "{}", e.message);
        assert!(
            e.message.contains("5 | lambda = [8.0, -2.0, 1.0"),
            "{}",
            e.message
        );
    }

    #[test]
    fn parses_a_minimal_scenario() {
        let sc = Scenario::from_toml_str(SRC, Path::new("t.toml")).unwrap();
        assert_eq!(sc.name(), "t");
        assert_eq!(sc.noise().delta_s(), Some(0.01 * 0.2));
        assert_eq!(sc.fokker_planck().unwrap().config().x.cells, 64);
    }

    #[test]
    fn a_spec_round_trips_through_toml() {
        let sc = Scenario::from_toml_str(SRC, Path::new("t.toml")).unwrap();
        let again = Scenario::from_toml_str(&sc.to_toml(), Path::new("t.toml")).unwrap();
        assert_eq!(sc.spec(), again.spec());
        let from_table = Scenario::from_table(sc.to_table(), Path::new("t.toml")).unwrap();
        assert_eq!(sc.spec(), from_table.spec());
    }
}
