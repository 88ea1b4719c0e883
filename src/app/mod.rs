//! The application layer: the `run`, `check`, `figures` and `sweep` commands, console progress, output
//! folders and exit codes. `main.rs` only parses arguments and calls these.

pub mod figures;
pub mod progress;
pub mod sweep;

use std::fs;
use std::path::{Path, PathBuf};

use crate::report::files::WriteError;
use crate::report::write_run;
use crate::scenario::{Scenario, ScenarioError};
use crate::study::{self, RunArtifacts, StudyError, Summary};

pub use progress::{ConsoleProgress, install_interrupt_handler};

/// Options shared by `run` and `figures`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Output folder; default `output/<scenario name>/`.
    pub out: Option<PathBuf>,
    /// Worker threads; default (and 0) all cores.
    pub threads: Option<usize>,
    /// Hide progress bars and the closing summary.
    pub quiet: bool,
    /// Shrink every run (smoke test of `figures`).
    pub quick: bool,
    /// `run --export-operator`: also write the FP generator as operator.mtx.
    pub export_operator: bool,
}

/// Why a command failed; [`AppError::exit_code`] maps it to the exit status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Invalid input (exit 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// The output folder given cannot be used (exit 2).
    #[error("output folder {}: {message}", path.display())]
    OutputFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// `check` found invalid files (exit 2).
    #[error("{failed} of {total} scenario files are invalid")]
    CheckFailed {
        /// Invalid files.
        failed: usize,
        /// Files checked.
        total: usize,
    },
    /// A sweep folder or scenario that `flatscape sweep` cannot use (exit 2).
    #[error("{}: {message}", path.display())]
    SweepFolder {
        /// The folder or scenario file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The sweep folder was planned for another scenario (exit 2).
    #[error("sweep folder {}: {message}", path.display())]
    SweepMismatch {
        /// The folder.
        path: PathBuf,
        /// Which scenarios.
        message: String,
    },
    /// `sweep merge` found points without a valid file (exit 1).
    #[error("sweep folder {}: {missing} of {total} points missing: ids {ids}; run `flatscape sweep run` for them", path.display())]
    SweepIncomplete {
        /// The folder.
        path: PathBuf,
        /// Points missing.
        missing: usize,
        /// Points in the sweep.
        total: usize,
        /// The missing ids as ranges (`3, 7-12`).
        ids: String,
    },
    /// A file could not be written (exit 1).
    #[error("{0}")]
    Write(#[from] WriteError),
    /// A computation failed (exit 1; 130 when interrupted).
    #[error("{0}")]
    Study(#[from] StudyError),
    /// The thread pool could not start (exit 1).
    #[error("cannot start the thread pool: {0}")]
    Threads(String),
    /// An option that does not fit the scenario (exit 2).
    #[error("{}: {message}", path.display())]
    Option {
        /// The scenario file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl AppError {
    /// Exit status: 2 for invalid input, 130 for an interrupt, 1 for a runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Scenario(_)
            | AppError::OutputFolder { .. }
            | AppError::CheckFailed { .. }
            | AppError::SweepFolder { .. }
            | AppError::SweepMismatch { .. }
            | AppError::Option { .. } => 2,
            AppError::Study(StudyError::Cancelled) => 130,
            _ => 1,
        }
    }
}

/// Run `f` in a rayon pool of `threads` threads (all cores for `None` or 0).
pub fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T, AppError> + Send,
) -> Result<T, AppError> {
    match threads.filter(|&n| n > 0) {
        None => f(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| AppError::Threads(e.to_string()))?
            .install(f),
    }
}

/// Where a run's files go: a fresh temporary sibling of the final folder, moved into place
/// when the run has finished. Until then the previous result (if any) is left as it was, so a
/// folder always holds the files of one complete run.
pub struct OutputFolder {
    /// The final folder.
    pub path: PathBuf,
    staging: PathBuf,
}

impl OutputFolder {
    /// Check that `path` can become the output folder (creating its parent and probing that a
    /// file can be written there) before any computing starts.
    pub fn prepare(path: &Path) -> Result<Self, AppError> {
        let fail = |message: String| AppError::OutputFolder {
            path: path.to_path_buf(),
            message,
        };
        if path.exists() && !path.is_dir() {
            return Err(fail("exists and is not a folder".into()));
        }
        let name = path
            .file_name()
            .ok_or_else(|| fail("is not a folder name".into()))?
            .to_string_lossy()
            .into_owned();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| fail(format!("cannot create its parent: {e}")))?;
        remove_abandoned_partials(&parent, &name);
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir(&staging).map_err(|e| fail(format!("cannot write next to it: {e}")))?;
        let probe = staging.join(".probe");
        fs::write(&probe, b"")
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| fail(format!("cannot write into it: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            staging,
        })
    }

    /// The folder the run writes into.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// Replace the final folder by the finished run.
    pub fn commit(self) -> Result<PathBuf, AppError> {
        let old = self.staging.with_extension("old");
        if self.path.exists() {
            fs::rename(&self.path, &old).map_err(|e| WriteError::new(&self.path, e))?;
        }
        fs::rename(&self.staging, &self.path).map_err(|e| WriteError::new(&self.path, e))?;
        let _ = fs::remove_dir_all(&old);
        Ok(self.path)
    }

    /// Remove the unfinished files.
    pub fn abandon(self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

/// Remove `.NAME.partial-PID` siblings left by a run that was killed (its process is gone).
fn remove_abandoned_partials(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .map(|rest| rest.trim_end_matches(".old"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive || pid == std::process::id() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Compute a scenario and write its files into `out` (one complete run, or nothing).
pub fn run_into(
    scenario: &Scenario,
    out: &Path,
    quiet: bool,
) -> Result<(RunArtifacts, PathBuf), AppError> {
    run_into_with(scenario, out, quiet, false)
}

/// [`run_into`], and with `export_operator` also the FP generator as `operator.mtx`.
pub fn run_into_with(
    scenario: &Scenario,
    out: &Path,
    quiet: bool,
    export_operator: bool,
) -> Result<(RunArtifacts, PathBuf), AppError> {
    let folder = OutputFolder::prepare(out)?;
    let progress = ConsoleProgress::new(quiet);
    let result = study::run(scenario, &progress)
        .map_err(AppError::from)
        .and_then(|art| {
            write_run(folder.staging(), scenario, &art)?;
            if let Some(plan) = scenario.fokker_planck().filter(|_| export_operator) {
                crate::report::files::write_operator_matrix_market(
                    &crate::fp::generator(plan),
                    &folder.staging().join("operator.mtx"),
                )?;
            }
            Ok(art)
        });
    match result {
        Ok(art) => Ok((art, folder.commit()?)),
        Err(e) => {
            folder.abandon();
            Err(e)
        }
    }
}

/// `flatscape run FILE`.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<Summary, AppError> {
    let scenario = Scenario::load(path)?;
    if opts.export_operator && scenario.fokker_planck().is_none() {
        return Err(AppError::Option {
            path: path.to_path_buf(),
            message:
                "--export-operator needs a [fokker_planck] table (the operator is the FP generator)"
                    .into(),
        });
    }
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(scenario.name()));
    let (art, out) = with_threads(opts.threads, || {
        run_into_with(&scenario, &out, opts.quiet, opts.export_operator)
    })?;
    for w in &art.summary.warnings {
        eprintln!("warning: {w}");
    }
    if !opts.quiet {
        print_summary(&art.summary, &out);
    }
    Ok(art.summary)
}

/// `flatscape check FILE…`: one line per file; an error if any is invalid.
pub fn check_files(paths: &[PathBuf]) -> Result<(), AppError> {
    let mut failed = 0;
    for path in paths {
        match Scenario::load(path) {
            Ok(sc) => println!("{}: valid scenario `{}`", path.display(), sc.name()),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(AppError::CheckFailed {
            failed,
            total: paths.len(),
        });
    }
    Ok(())
}

fn print_summary(summary: &Summary, out: &Path) {
    println!(
        "scenario `{}` finished in {:.2} s",
        summary.scenario, summary.wall_seconds
    );
    if let Some(fp) = &summary.fokker_planck {
        println!(
            "  Fokker–Planck {}x{}: mode |x| = {:.4}, <|x|> = {:.4}, <F> = {:.4}, mass = {:.12}, negative mass = {:.2e}{}",
            fp.grid[0],
            fp.grid[1],
            fp.mode_abs_x,
            fp.mean_abs_x,
            fp.mean_flatness,
            fp.mass,
            fp.negative_mass,
            fp.solve_seconds
                .map(|s| format!(", steady solve {s:.3} s"))
                .unwrap_or_default()
        );
    }
    if let Some(th) = &summary.theory {
        // The transition of this noise model (the reduced level's, which follows γ).
        let star = match (th.delta_s, th.delta_s_star_reduced) {
            (None, _) => "does not apply (this noise has no Δ_S = ησ)".to_string(),
            (Some(_), None) => "none (λ1 >= 0: no transition)".to_string(),
            (Some(_), Some(v)) => format!("{v:.5}"),
        };
        println!("  theory: x_ss = {:.4} (reduced), Δ_S* = {star}", th.x_ss);
    }
    if let Some(sm) = &summary.sampler {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        println!(
            "  sampler {}: {} walkers × {} steps, diverged {:.3}, |x_ss| = {}, F(x_ss) = {}, τ_s = {}, {:.2e} walker-steps/s",
            sm.kind.name(),
            sm.walkers,
            sm.steps,
            sm.diverged_fraction,
            show(sm.x_ss_abs),
            show(sm.flatness_ss),
            show(sm.search_time),
            sm.walker_steps_per_second
        );
    }
    if let Some(c) = &summary.comparison {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3e}"));
        println!(
            "  L1 distances of x-marginals: FP–reduced {}, FP–paper {}, FP–homogenised {}, FP–sampler {}",
            show(c.l1_fp_theory_reduced),
            show(c.l1_fp_theory_paper),
            show(c.l1_fp_theory_homogenised),
            show(c.l1_fp_sampler)
        );
    }
    println!("  outputs in {}", out.display());
}
