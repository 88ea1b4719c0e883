//! The one place that calls the core crate: load and validate scenarios, run them, save them.
//!
//! Everything else in the binding speaks in terms of [`Scenario`], [`Computed`] and
//! [`RunFailure`], so a change of the core's public API touches this file only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flatscape::run::{self as core_run, RunError, RunOptions};
use flatscape::scenario::{Scenario as CoreScenario, ScenarioError};

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
        let inner = CoreScenario::from_str_at(text, origin)?;
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
        let inner = CoreScenario::from_str_at(&text, origin).map_err(|mut e| {
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
        &self.inner.name
    }

    /// The file (or pseudo-file such as `<dict>`) it came from.
    pub fn file(&self) -> &Path {
        &self.inner.file
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
    /// The scenario is invalid for running (found only at run time).
    Scenario(ScenarioError),
    /// A solver failed, or a file could not be written.
    Solver(String),
    /// The caller cancelled it.
    Cancelled,
}

/// A callback the binding hands to a run: whether to stop, and whether to draw progress.
pub struct Control {
    /// Set by the caller (Ctrl-C) to ask the run to stop.
    pub cancel: Arc<AtomicBool>,
    /// Draw progress bars on stderr.
    pub progress: bool,
}

impl Control {
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
}

/// The FP density on its grid (owned).
struct FpData {
    x: Vec<f64>,
    y: Vec<f64>,
    density: Vec<f64>,
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
    summary: String,
    fp: Option<FpData>,
    marginals: Option<Columns>,
    marginals_y: Option<Columns>,
    timeseries: Option<Timeseries>,
    sweep: Option<Columns>,
    /// The files `flatscape run` wrote (a stop-gap until the core can compute without writing).
    files: tempfile::TempDir,
}

impl Computed {
    /// summary.json's text (compact), in the file's key order.
    pub fn summary_json(&self) -> &str {
        &self.summary
    }

    /// The FP density and its grid, when the FP part ran.
    pub fn fp(&self) -> Option<FpView<'_>> {
        self.fp.as_ref().map(|f| FpView {
            x: f.x.clone(),
            y: f.y.clone(),
            density: &f.density,
        })
    }

    /// marginal_x.csv columns (`x` first), when the FP or the theory ran.
    pub fn marginals(&self) -> Option<Columns> {
        self.marginals.clone()
    }

    /// marginal_y.csv columns (`y` first), when the FP ran.
    pub fn marginals_y(&self) -> Option<Columns> {
        self.marginals_y.clone()
    }

    /// timeseries.csv columns, when the sampler ran.
    pub fn timeseries(&self) -> Option<&Timeseries> {
        self.timeseries.as_ref()
    }

    /// sweep.csv columns, when a sweep ran.
    pub fn sweep(&self) -> Option<Columns> {
        self.sweep.clone()
    }
}

/// Run every part of `sc` in a pool of `threads` threads (all cores when `None`).
pub fn run(sc: &Scenario, threads: Option<usize>, ctl: &Control) -> Result<Computed, RunFailure> {
    if ctl.cancelled() {
        return Err(RunFailure::Cancelled);
    }
    let files = tempfile::Builder::new()
        .prefix("flatscape-run-")
        .tempdir()
        .map_err(|e| RunFailure::Solver(format!("cannot create a temporary folder: {e}")))?;
    let opts = RunOptions {
        out: Some(files.path().to_path_buf()),
        threads,
        quiet: !ctl.progress,
        quick: false,
    };
    let art = core_run::with_threads(threads, || {
        core_run::run_parts(&sc.inner, files.path(), &opts)
    })
    .map_err(|e| match e {
        RunError::Scenario(e) => RunFailure::Scenario(e),
        other => RunFailure::Solver(other.to_string()),
    })?;
    if ctl.cancelled() {
        return Err(RunFailure::Cancelled);
    }
    let summary = serde_json::to_string(&art.summary)
        .map_err(|e| RunFailure::Solver(format!("summary: {e}")))?;
    let mut marginals: Option<Columns> = None;
    let mut marginals_y: Option<Columns> = None;
    let fp = art.fp.map(|res| {
        let g = &res.grid;
        marginals = Some(vec![
            ("x".to_string(), g.xs()),
            ("fp".to_string(), g.marginal_x(&res.density)),
        ]);
        marginals_y = Some(vec![
            ("y".to_string(), g.ys()),
            ("fp".to_string(), g.marginal_y(&res.density)),
        ]);
        FpData {
            x: g.xs(),
            y: g.ys(),
            density: res.density,
        }
    });
    if let (Some(tcfg), Some(valley)) = (&sc.inner.theory, sc.inner.valley2d()) {
        let cfg = tcfg.with_fp_domain(sc.inner.fokker_planck.as_ref());
        let m = marginals.get_or_insert_with(|| vec![("x".to_string(), cfg.x_grid())]);
        let xs = m[0].1.clone();
        let noise = &sc.inner.noise;
        let paper = flatscape::theory::marginal_x_paper(valley, noise, &xs)
            .unwrap_or_else(|| vec![f64::NAN; xs.len()]);
        let reduced = flatscape::theory::marginal_x_reduced(valley, noise, &xs, cfg.y_range());
        m.push(("theory_paper".to_string(), paper));
        m.push(("theory_reduced".to_string(), reduced));
    }
    let mut timeseries = None;
    if let Some(s) = art.sampler {
        if let (Some(h), Some(m)) = (s.hist_x, marginals.as_mut()) {
            m.push(("sampler".to_string(), h));
        }
        if let (Some(h), Some(m)) = (s.hist_y, marginals_y.as_mut()) {
            m.push(("sampler".to_string(), h));
        }
        let ts = &s.timeseries;
        let int = |v: &[usize]| v.iter().map(|&n| n as u64).collect::<Vec<u64>>();
        timeseries = Some(Timeseries {
            ints: vec![
                ("step".to_string(), int(&ts.step)),
                ("alive".to_string(), int(&ts.alive)),
            ],
            floats: vec![
                ("t".to_string(), ts.t.clone()),
                ("mean_flatness".to_string(), ts.mean_flatness.clone()),
                (
                    "mean_flatness_hat".to_string(),
                    ts.mean_flatness_hat.clone(),
                ),
                ("mean_loss".to_string(), ts.mean_loss.clone()),
                ("mean_x".to_string(), ts.mean_x.clone()),
                ("mean_abs_x".to_string(), ts.mean_abs_x.clone()),
                ("mean_y_sq".to_string(), ts.mean_y_sq.clone()),
            ],
        });
    }
    let sweep = art.sweep.map(|rows| {
        let col = |f: fn(&flatscape::sweep::SweepPoint) -> Option<f64>| -> Vec<f64> {
            rows.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect()
        };
        vec![
            ("sigma".to_string(), col(|r| Some(r.sigma))),
            ("eta".to_string(), col(|r| Some(r.eta))),
            ("delta_s".to_string(), col(|r| Some(r.delta_s))),
            ("flatness_ss".to_string(), col(|r| r.flatness_ss)),
            ("x_ss_abs".to_string(), col(|r| r.x_ss_abs)),
            ("search_time".to_string(), col(|r| r.search_time)),
            (
                "diverged_fraction".to_string(),
                col(|r| r.diverged_fraction),
            ),
            ("theory_x_ss".to_string(), col(|r| r.theory_x_ss)),
            (
                "theory_flatness_ss".to_string(),
                col(|r| r.theory_flatness_ss),
            ),
            (
                "theory_eta_lambda".to_string(),
                col(|r| r.theory_eta_lambda),
            ),
            ("fp_mean_abs_x".to_string(), col(|r| r.fp_mean_abs_x)),
            ("fp_mode_abs_x".to_string(), col(|r| r.fp_mode_abs_x)),
            ("fp_mean_flatness".to_string(), col(|r| r.fp_mean_flatness)),
        ]
    });
    Ok(Computed {
        summary,
        fp,
        marginals,
        marginals_y,
        timeseries,
        sweep,
        files,
    })
}

/// Write exactly the files `flatscape run --out dir` writes.
pub fn save(_sc: &Scenario, computed: &Computed, dir: &Path) -> Result<(), String> {
    copy_tree(computed.files.path(), dir)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(())
}
