//! The high-dimensional valley of Eq. (5) (SPEC §1.2). Owned by the sampler work (issue 4).

use serde::Deserialize;

use crate::scenario::{Check, Invalid};

/// `[landscape] kind = "valley"`: the N-D valley's parameters (SPEC §1.2).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValleyNdSpec {
    /// N_S, the number of sharp (non-degenerate) variables y.
    #[serde(default = "default_n_s")]
    pub n_s: usize,
    /// N_F, the number of flat (degenerate) variables x.
    #[serde(default = "default_n_f")]
    pub n_f: usize,
    /// ε, the degeneracy-breaking strength.
    #[serde(default)]
    pub epsilon: f64,
}

fn default_n_s() -> usize {
    5
}

fn default_n_f() -> usize {
    100
}

impl ValleyNdSpec {
    /// Check every value; `key` is the table's dotted name.
    pub fn validate(&self, key: &str) -> Check {
        if self.n_s == 0 {
            return Err(Invalid::new(format!("{key}.n_s"), "must be >= 1"));
        }
        if self.n_f == 0 {
            return Err(Invalid::new(format!("{key}.n_f"), "must be >= 1"));
        }
        crate::scenario::check_non_negative(&format!("{key}.epsilon"), self.epsilon)
    }
}
