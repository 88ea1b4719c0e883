//! The one place that calls the core crate: load and validate scenarios, run them, save them.
//!
//! Everything else in the binding speaks in terms of [`Scenario`], [`Computed`] and
//! [`RunFailure`], so a change of the core's public API touches this file only.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flatscape::app::ConsoleProgress;
use flatscape::config::Progress;
use flatscape::scenario::{Scenario as CoreScenario, ScenarioError};
use flatscape::study::{self, RunArtifacts, StudyError};

/// A validated scenario together with the TOML table it was built from.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The validated, typed scenario.
    pub inner: CoreScenario,
    /// The source table (what `to_dict`, `to_toml` and `replace` work on).
    pub table: toml::Table,
}

impl Scenario {
    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            key: None,
            position: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parse and validate TOML text; `origin` names the source in messages.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ScenarioError> {
        let inner = CoreScenario::from_toml_str(text, origin)?;
        let table = text.parse::<toml::Table>().map_err(|e| ScenarioError {
            file: origin.to_path_buf(),
            key: None,
            position: None,
            message: e.message().to_string(),
        })?;
        Ok(Self { inner, table })
    }

    /// Validate a table (from a dict or an edited copy); positions are dropped because they
    /// would point into generated text.
    pub fn from_table(table: toml::Table, origin: &Path) -> Result<Self, ScenarioError> {
        let text = toml::to_string(&table).map_err(|e| ScenarioError {
            file: origin.to_path_buf(),
            key: None,
            position: None,
            message: format!("cannot be written as TOML: {e}"),
        })?;
        let inner = CoreScenario::from_toml_str(&text, origin).map_err(|mut e| {
            if e.key.is_none() {
                e.key = e.position.and_then(|(line, _)| key_on_line(&text, line));
            }
            e.position = None;
            // The quoted source line refers to generated text too.
            if let Some(cut) = e.message.find("\n  ") {
                e.message.truncate(cut);
            }
            e
        })?;
        Ok(Self { inner, table })
    }

    /// The scenario's name (its output folder).
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The file (or pseudo-file such as `<dict>`) it came from.
    pub fn file(&self) -> &Path {
        self.inner.file()
    }
}

/// The dotted key set on a 1-based line of TOML written by `toml::to_string` (`[a.b]` headers,
/// `key = value` lines).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (n, l) in text.lines().enumerate().take(line) {
        let l = l.trim();
        if l.starts_with('[') && !l.starts_with("[[") {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if n + 1 == line {
            let key = l.split('=').next()?.trim().trim_matches('"');
            if key.is_empty() {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

/// Why a run did not produce results.
#[derive(Debug)]
pub enum RunFailure {
    /// A solver failed, or the worker pool could not start.
    Solver(String),
    /// The caller cancelled it.
    Cancelled,
}

/// The [`Progress`] callback the binding hands to a run: the CLI's progress bars when asked
/// for, and the cancel flag that Ctrl-C sets.
pub struct Control {
    /// Set by the caller (Ctrl-C) to ask the run to stop.
    pub cancel: Arc<AtomicBool>,
    /// The CLI's bars on stderr, when progress is shown.
    pub console: Option<ConsoleProgress>,
}

impl Progress for Control {
    fn start(&self, task: &str, total: Option<u64>) {
        if let Some(c) = &self.console {
            c.start(task, total);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(c) = &self.console {
            c.advance(n);
        }
    }

    fn finish(&self) {
        if let Some(c) = &self.console {
            c.finish();
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// The FP steady (or final transient) density on its grid.
pub struct FpView<'a> {
    /// Cell centres along x.
    pub x: Vec<f64>,
    /// Cell centres along y.
    pub y: Vec<f64>,
    /// Row-major (nx, ny) density: the solver's own buffer.
    pub density: &'a [f64],
    /// The steady probability current, when a steady state was solved.
    pub current: Option<&'a flatscape::fp::current::Current>,
}

/// Named float columns, in file order.
pub type Columns = Vec<(String, Vec<f64>)>;

/// timeseries.csv: integer columns (`step`, `alive`) and float columns, in file order.
pub struct Timeseries {
    /// Integer columns.
    pub ints: Vec<(String, Vec<u64>)>,
    /// Float columns (NaN where no walker is alive).
    pub floats: Columns,
}

/// Everything a run computed, as the binding hands it to Python.
pub struct Computed {
    scenario: Arc<Scenario>,
    artifacts: RunArtifacts,
    summary: String,
}

impl Computed {
    /// summary.json's text (compact), in the file's key order.
    pub fn summary_json(&self) -> &str {
        &self.summary
    }

    /// The FP density and its grid, when the FP part ran.
    pub fn fp(&self) -> Option<FpView<'_>> {
        self.artifacts.fp.as_ref().map(|f| FpView {
            x: f.grid.xs(),
            y: f.grid.ys(),
            density: &f.density,
            current: f.current.as_ref(),
        })
    }

    /// marginal_s.csv columns (`s, x, y, fp, theory, theory_homogenised`; `fp` NaN without an FP
    /// run, `theory_homogenised` NaN where that level does not apply), when the
    /// scenario has a `[valley_curve]` table.
    pub fn marginal_s(&self) -> Option<Columns> {
        let c = self.artifacts.valley_curve.as_ref()?;
        let t = &c.theory;
        let fp = c.fp.clone().unwrap_or_else(|| vec![f64::NAN; t.s.len()]);
        Some(vec![
            ("s".to_string(), t.s.clone()),
            ("x".to_string(), t.x.clone()),
            ("y".to_string(), t.y.clone()),
            ("fp".to_string(), fp),
            ("theory".to_string(), t.density.clone()),
            (
                "theory_homogenised".to_string(),
                c.homogenised
                    .as_ref()
                    .map_or_else(|| vec![f64::NAN; t.s.len()], |(_, a)| a.clone()),
            ),
        ])
    }

    /// marginal_x.csv columns (`x` first), when the FP or the theory ran.
    pub fn marginals(&self) -> Option<Columns> {
        self.artifacts.marginals.as_ref().map(|m| {
            std::iter::once(("x".to_string(), m.x.clone()))
                .chain(m.columns.iter().map(|(n, v)| (n.to_string(), v.clone())))
                .collect()
        })
    }

    /// marginal_y.csv columns (`y` first), when the FP ran.
    pub fn marginals_y(&self) -> Option<Columns> {
        let sol = self.artifacts.fp.as_ref()?;
        let mut cols = vec![
            ("y".to_string(), sol.grid.ys()),
            ("fp".to_string(), sol.grid.marginal_y(&sol.density)),
        ];
        if let Some(hy) = self
            .artifacts
            .sampler
            .as_ref()
            .and_then(|s| s.hist_y.as_ref())
        {
            cols.push(("sampler".to_string(), hy.clone()));
        }
        Some(cols)
    }

    /// timeseries.csv columns, when the sampler ran.
    pub fn timeseries(&self) -> Option<Timeseries> {
        let ts = &self.artifacts.sampler.as_ref()?.timeseries;
        let int = |v: &[usize]| v.iter().map(|&n| n as u64).collect::<Vec<u64>>();
        let f = |name: &str, v: &[f64]| (name.to_string(), v.to_vec());
        Some(Timeseries {
            ints: vec![
                ("step".to_string(), int(&ts.step)),
                ("alive".to_string(), int(&ts.alive)),
            ],
            floats: vec![
                f("t", &ts.t),
                f("mean_flatness", &ts.mean_flatness),
                f("mean_flatness_hat", &ts.mean_flatness_hat),
                f("mean_loss", &ts.mean_loss),
                f("mean_x", &ts.mean_x),
                f("mean_abs_x", &ts.mean_abs_x),
                f("mean_y_sq", &ts.mean_y_sq),
            ],
        })
    }

    /// sweep.csv columns (empty cells as NaN), when a sweep ran.
    pub fn sweep(&self) -> Option<Columns> {
        sweep_columns(&self.artifacts.sweep.as_ref()?.rows)
    }
}

/// sweep.csv's columns of these rows (empty cells as NaN): the rows go through the report's own
/// CSV convention (shortest round-trip numbers), so the columns are sweep.csv's, value for value.
pub fn sweep_columns(rows: &[flatscape::study::SweepPoint]) -> Option<Columns> {
    let text = flatscape::report::files::csv_text(rows).ok()?;
    let text = String::from_utf8(text).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let mut cols: Columns = header
        .iter()
        .map(|h| (h.to_string(), Vec::with_capacity(rows.len())))
        .collect();
    for line in lines {
        for (col, cell) in cols.iter_mut().zip(line.split(',')) {
            col.1.push(cell.parse::<f64>().unwrap_or(f64::NAN));
        }
    }
    Some(cols)
}

/// Run every part of `sc` in a pool of `threads` threads (all cores when `None`).
pub fn run(
    sc: Arc<Scenario>,
    threads: Option<usize>,
    ctl: &Control,
) -> Result<Computed, RunFailure> {
    let study = || study::run(&sc.inner, ctl);
    let result = match threads {
        None => study(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| RunFailure::Solver(format!("cannot start {n} threads: {e}")))?
            .install(study),
    };
    let artifacts = result.map_err(|e| match e {
        StudyError::Cancelled => RunFailure::Cancelled,
        other => RunFailure::Solver(other.to_string()),
    })?;
    let summary = serde_json::to_string(&artifacts.summary)
        .map_err(|e| RunFailure::Solver(format!("summary: {e}")))?;
    Ok(Computed {
        scenario: sc,
        artifacts,
        summary,
    })
}

/// Write exactly the files `flatscape run --out dir` writes.
pub fn save(computed: &Computed, dir: &Path) -> Result<(), String> {
    flatscape::report::write_run(dir, &computed.scenario.inner, &computed.artifacts)
        .map_err(|e| e.to_string())
}
