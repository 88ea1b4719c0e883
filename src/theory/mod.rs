//! Adiabatic elimination of the fast variable y: Eqs. (11)–(16) and the reduced 1-D equation
//! (SPEC §3). Owned by the theory work (issue 3).

use serde::Deserialize;

use crate::scenario::{Check, Scenario};

/// `[theory]` (SPEC §6); an empty table runs the theory with defaults.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TheoryConfig {}

impl TheoryConfig {
    /// Check every value against the scenario; `key` is the table's dotted name.
    pub fn validate(&self, _key: &str, _scenario: &Scenario) -> Check {
        Ok(())
    }
}
