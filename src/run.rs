//! Orchestration: scenario → solvers → results → report (SPEC §5, §7).

use std::path::{Path, PathBuf};

use crate::scenario::{Scenario, ScenarioError};

/// Options shared by `run` and `figures`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Output folder; default `output/<scenario name>/`.
    pub out: Option<PathBuf>,
    /// Worker threads; default all cores.
    pub threads: Option<usize>,
    /// Hide progress bars.
    pub quiet: bool,
    /// Shrink every run (smoke test of `figures`).
    pub quick: bool,
}

/// Why a run failed; [`RunError::exit_code`] maps it to SPEC §5's exit status.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Invalid input (exit 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// A file could not be written (exit 1).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A solver failed at run time (exit 1).
    #[error("{0}")]
    Solver(String),
}

impl RunError {
    /// Exit status: 2 for invalid input, 1 for a runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Scenario(_) => 2,
            _ => 1,
        }
    }
}

/// `flatscape run FILE`.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<PathBuf, RunError> {
    let scenario = Scenario::load(path)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(&scenario.name));
    Err(RunError::Solver(format!(
        "running `{}` into {} is not implemented yet",
        scenario.name,
        out.display()
    )))
}

/// `flatscape figures`.
pub fn figures(_scenarios: &Path, _opts: &RunOptions) -> Result<(), RunError> {
    Err(RunError::Solver(
        "`figures` is not implemented yet (issue 5)".into(),
    ))
}
