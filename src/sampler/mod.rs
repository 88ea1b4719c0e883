//! Monte-Carlo walkers: sgd, sgd-exact-shift, langevin, gld, gd (Eqs. 3, 7, 9; SPEC §4).
//! Owned by the sampler work (issue 4).

use serde::Deserialize;

use crate::scenario::{Check, Invalid, Scenario, check_positive};

/// The update rule of a walker (SPEC §4).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
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

/// `[sampler]` (SPEC §6).
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// Start point θ0.
    pub start: Vec<f64>,
    /// Time step, for `langevin` only.
    pub dt: Option<f64>,
    /// |θ| beyond which a walker has diverged.
    #[serde(default = "default_divergence_radius")]
    pub divergence_radius: f64,
}

fn default_walkers() -> usize {
    1024
}

fn default_divergence_radius() -> f64 {
    1.0e3
}

impl SamplerConfig {
    /// Check every value against the scenario; `key` is the table's dotted name.
    pub fn validate(&self, key: &str, _scenario: &Scenario) -> Check {
        if self.walkers == 0 {
            return Err(Invalid::new(format!("{key}.walkers"), "must be >= 1"));
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
        check_positive(&format!("{key}.divergence_radius"), self.divergence_radius)
    }
}
