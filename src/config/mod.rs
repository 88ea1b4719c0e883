//! The bottom layer: validation helpers, axis and range types, and the progress callback that
//! long computations are handed. Imports nothing else of flatscape.
//!
//! Every solver validates its own configuration with these helpers and reports a failure as an
//! [`Invalid`]: the dotted key of the scenario file and what is wrong. The scenario layer turns an
//! `Invalid` into a message with the file, line and column of that key.

use serde::Deserialize;

/// A validation failure: the dotted key and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
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

/// Largest number of cells along one axis of a grid.
pub const MAX_AXIS_CELLS: usize = 8192;

/// One axis of a grid: `{ min, max, cells }` (cell-centred, uniform).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AxisConfig {
    /// Lower edge of the domain.
    pub min: f64,
    /// Upper edge of the domain.
    pub max: f64,
    /// Number of cells.
    pub cells: usize,
}

impl AxisConfig {
    /// An axis of `cells` cells on [min, max].
    pub fn new(min: f64, max: f64, cells: usize) -> Self {
        Self { min, max, cells }
    }

    /// Check the axis; `key` is its dotted name.
    pub fn validate(&self, key: &str) -> Check {
        check_finite(&format!("{key}.min"), self.min)?;
        check_finite(&format!("{key}.max"), self.max)?;
        if self.max <= self.min {
            return Err(Invalid::new(
                format!("{key}.max"),
                format!("must be > min ({}), got {}", self.min, self.max),
            ));
        }
        if self.cells < 3 {
            return Err(Invalid::new(
                format!("{key}.cells"),
                format!("must be >= 3, got {}", self.cells),
            ));
        }
        if self.cells > MAX_AXIS_CELLS {
            return Err(Invalid::new(
                format!("{key}.cells"),
                format!("must be <= {MAX_AXIS_CELLS}, got {}", self.cells),
            ));
        }
        Ok(())
    }

    /// Cell width.
    pub fn width(&self) -> f64 {
        (self.max - self.min) / self.cells as f64
    }

    /// Cell centres.
    pub fn centres(&self) -> Vec<f64> {
        let h = self.width();
        (0..self.cells)
            .map(|i| self.min + (i as f64 + 0.5) * h)
            .collect()
    }
}

/// A 1-D range of values: `{ min, max, points, log }`.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq)]
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
    /// A linear range.
    pub fn linear(min: f64, max: f64, points: usize) -> Self {
        Self {
            min,
            max,
            points,
            log: false,
        }
    }

    /// A logarithmic range.
    pub fn log(min: f64, max: f64, points: usize) -> Self {
        Self {
            min,
            max,
            points,
            log: true,
        }
    }

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

    /// Check the range; `key` is its dotted name.
    pub fn validate(&self, key: &str) -> Check {
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

/// A long computation reports through this callback; the front end (console bars, Python)
/// implements it. Solvers call [`Progress::cancelled`] between units of work and stop with a
/// `Cancelled` error when it returns true.
pub trait Progress: Sync {
    /// A task of `total` units begins (`None`: unknown length, e.g. a direct solve).
    fn start(&self, task: &str, total: Option<u64>);
    /// `n` more units of the current task are done.
    fn advance(&self, n: u64);
    /// The current task is finished.
    fn finish(&self);
    /// True when the caller asked to stop (Ctrl-C); checked between units of work.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A progress callback that shows nothing and never cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _task: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

/// The computation was stopped because [`Progress::cancelled`] returned true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Cancelled;

/// `Err(Cancelled)` when the caller asked to stop.
pub fn check_cancelled(progress: &dyn Progress) -> Result<(), Cancelled> {
    if progress.cancelled() {
        Err(Cancelled)
    } else {
        Ok(())
    }
}
