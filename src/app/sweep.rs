//! `flatscape sweep plan | run | merge`: a sweep split into independent point files, so any
//! number of processes (SLURM array tasks, one after another, pre-empted and restarted) build
//! the same table as `flatscape run`.
//!
//! - `plan SCENARIO --out DIR` writes DIR/manifest.json (points, ids, seeds, scenario hash).
//! - `run SCENARIO --out DIR [--shard K/N] [--threads T]` computes the points of shard K of N
//!   (id % N == K − 1) that have no valid file yet, each into its own file; it writes the
//!   manifest if there is none and refuses (exit 2) a DIR planned for another scenario.
//! - `merge DIR` checks that every point is there (exit 1 naming the missing ids otherwise),
//!   writes DIR/sweep.csv and the sweep figures, and reports the per-point wall and CPU times.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::report::files::{WriteError, write_rows};
use crate::report::points::{
    self, Manifest, ManifestHead, PointState, read_manifest, read_point, scenario_hash, write_point,
};
use crate::report::sweep::{sweep_figure_names, write_sweep_figures};
use crate::scenario::Scenario;
use crate::study::{PointOutcome, SweepPlan, SweepPoint};

use super::{AppError, ConsoleProgress};

/// Shard K of N (K = 1..N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K.
    pub index: usize,
    /// N.
    pub count: usize,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const ALL: Shard = Shard { index: 1, count: 1 };
}

/// Parse `K/N` with 1 ≤ K ≤ N.
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("expected K/N with 1 <= K <= N (e.g. 3/100), got {s:?}");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let index: usize = k.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// What `sweep run` did.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardReport {
    /// The shard.
    pub shard: Shard,
    /// Points assigned to the shard.
    pub assigned: usize,
    /// Points computed now.
    pub computed: usize,
    /// Points skipped: a valid file existed.
    pub already_done: usize,
    /// Of the computed points, those whose file was corrupt.
    pub recomputed_corrupt: usize,
    /// Wall-clock seconds of the command.
    pub wall_seconds: f64,
}

/// What `sweep merge` found.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeReport {
    /// sweep.csv.
    pub csv: PathBuf,
    /// Points merged.
    pub points: usize,
    /// Per-point wall seconds: min, median, max.
    pub wall_min_median_max: [f64; 3],
    /// Total CPU seconds of the points (those that report it).
    pub cpu_seconds: f64,
}

fn scenario_without_sweep(sc: &Scenario) -> AppError {
    AppError::SweepFolder {
        path: sc.file().to_path_buf(),
        message: format!("scenario `{}` has no [sweep] table", sc.name()),
    }
}

/// Load a scenario and check that it has a sweep.
fn load_sweep_scenario(path: &Path) -> Result<Scenario, AppError> {
    let sc = Scenario::load(path)?;
    if sc.sweep().is_none() {
        return Err(scenario_without_sweep(&sc));
    }
    Ok(sc)
}

/// Make sure DIR holds the manifest of `sc` (writing it if absent); exit 2 if it holds
/// another scenario's.
pub fn ensure_manifest(sc: &Scenario, plan: &SweepPlan, dir: &Path) -> Result<String, AppError> {
    let hash = scenario_hash(sc);
    let folder_err = |message: String| AppError::SweepFolder {
        path: dir.to_path_buf(),
        message,
    };
    match read_manifest::<ManifestHead>(dir).map_err(folder_err)? {
        Some(head) => {
            if head.scenario_hash != hash || head.total_points != plan.len() {
                return Err(AppError::SweepMismatch {
                    path: dir.to_path_buf(),
                    message: format!(
                        "its manifest belongs to another scenario: `{}` ({}, {} points), not `{}` from {} ({}, {} points); use another --out folder",
                        head.scenario_name,
                        head.scenario_hash,
                        head.total_points,
                        sc.name(),
                        sc.file().display(),
                        hash,
                        plan.len()
                    ),
                });
            }
            if head.flatscape_version != env!("CARGO_PKG_VERSION") {
                eprintln!(
                    "warning: {} was planned by flatscape {}, this is {}: points computed by the two versions may differ",
                    points::manifest_path(dir).display(),
                    head.flatscape_version,
                    env!("CARGO_PKG_VERSION")
                );
            }
        }
        None => points::write_manifest(dir, &Manifest::new(sc, plan.specs()))?,
    }
    Ok(hash)
}

/// `flatscape sweep plan SCENARIO --out DIR`: write DIR/manifest.json; returns the number of
/// points.
pub fn plan(scenario: &Path, dir: &Path) -> Result<usize, AppError> {
    let sc = load_sweep_scenario(scenario)?;
    let plan = SweepPlan::new(&sc).ok_or_else(|| scenario_without_sweep(&sc))?;
    ensure_manifest(&sc, &plan, dir)?;
    Ok(plan.len())
}

/// `flatscape sweep run SCENARIO --out DIR --shard K/N --threads T`: compute the shard's
/// points that have no valid file yet (T workers; `None` or 0: all cores).
pub fn run(
    scenario: &Path,
    dir: &Path,
    shard: Shard,
    threads: Option<usize>,
    quiet: bool,
) -> Result<ShardReport, AppError> {
    let clock = Instant::now();
    let sc = load_sweep_scenario(scenario)?;
    let plan = SweepPlan::new(&sc).ok_or_else(|| scenario_without_sweep(&sc))?;
    let hash = ensure_manifest(&sc, &plan, dir)?;
    let assigned = crate::study::sweep::shard_ids(plan.len(), shard.index, shard.count);
    let mut todo = Vec::new();
    let mut corrupt = 0;
    for &id in &assigned {
        let Some(spec) = plan.spec(id) else { continue };
        match read_point(dir, &spec, &hash) {
            PointState::Done(_) => {}
            PointState::Missing => todo.push(id),
            PointState::Corrupt(why) => {
                if !quiet {
                    eprintln!(
                        "point {id}: {} {why}; recomputing",
                        points::point_path(dir, id).display()
                    );
                }
                corrupt += 1;
                todo.push(id);
            }
        }
    }
    let threads = threads
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let written = AtomicUsize::new(0);
    let write_error: Mutex<Option<WriteError>> = Mutex::new(None);
    let sink = |out: PointOutcome| -> bool {
        let Some(spec) = plan.spec(out.id) else {
            return false;
        };
        match write_point(dir, &spec, &hash, &out) {
            Ok(()) => {
                written.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                if let Ok(mut slot) = write_error.lock() {
                    slot.get_or_insert(e);
                }
                false
            }
        }
    };
    let progress = ConsoleProgress::new(quiet);
    plan.compute(&todo, threads, &sink, &progress)?;
    if let Ok(Some(e)) = write_error.into_inner() {
        return Err(e.into());
    }
    let report = ShardReport {
        shard,
        assigned: assigned.len(),
        computed: written.into_inner(),
        already_done: assigned.len() - todo.len(),
        recomputed_corrupt: corrupt,
        wall_seconds: clock.elapsed().as_secs_f64(),
    };
    if !quiet {
        println!(
            "shard {}/{} of `{}`: {} points assigned, {} computed ({} of them over corrupt files), {} already done, {:.2} s on {} threads; points in {}",
            shard.index,
            shard.count,
            sc.name(),
            report.assigned,
            report.computed,
            report.recomputed_corrupt,
            report.already_done,
            report.wall_seconds,
            threads,
            dir.join("points").display()
        );
    }
    Ok(report)
}

/// Ranges listed in a message before `…`.
const MAX_RANGES: usize = 20;

/// Ids as short ranges: `3, 7-12, 40` (the first 20, then `…`).
pub fn id_ranges(ids: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        if parts.len() == MAX_RANGES {
            parts.push("…".into());
            break;
        }
        parts.push(if j == i {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// `flatscape sweep merge DIR`: sweep.csv (the bytes `flatscape run` writes) and the sweep
/// figures, once every point is present.
pub fn merge(dir: &Path, quiet: bool) -> Result<MergeReport, AppError> {
    let folder_err = |message: String| AppError::SweepFolder {
        path: dir.to_path_buf(),
        message,
    };
    let manifest: Manifest = read_manifest(dir).map_err(folder_err)?.ok_or_else(|| {
        folder_err("has no manifest.json (run `flatscape sweep plan` or `sweep run` first)".into())
    })?;
    let sc = Scenario::from_toml_str(&manifest.scenario_toml, &points::manifest_path(dir))?;
    let hash = scenario_hash(&sc);
    if hash != manifest.scenario_hash {
        return Err(folder_err(format!(
            "manifest.json is inconsistent: its scenario text hashes to {hash}, not {}",
            manifest.scenario_hash
        )));
    }
    let sw = sc.sweep().ok_or_else(|| scenario_without_sweep(&sc))?;
    let mut rows: Vec<SweepPoint> = Vec::with_capacity(manifest.points.len());
    let mut walls = Vec::with_capacity(manifest.points.len());
    let mut cpu = 0.0;
    let mut missing = Vec::new();
    for spec in &manifest.points {
        match read_point(dir, spec, &hash) {
            PointState::Done(p) => {
                walls.push(p.wall_seconds);
                cpu += p.cpu_seconds.unwrap_or(0.0);
                rows.push(p.row);
            }
            PointState::Missing | PointState::Corrupt(_) => missing.push(spec.id),
        }
    }
    if !missing.is_empty() {
        return Err(AppError::SweepIncomplete {
            path: dir.to_path_buf(),
            missing: missing.len(),
            total: manifest.points.len(),
            ids: id_ranges(&missing),
        });
    }
    let csv = dir.join("sweep.csv");
    write_rows(&csv, &rows)?;
    let [a, b] = sweep_figure_names(sw);
    write_sweep_figures([&dir.join(a), &dir.join(b)], &sc, sw, &rows, "")?;
    walls.sort_by(f64::total_cmp);
    let n = walls.len();
    let median = if n == 0 {
        f64::NAN
    } else {
        0.5 * (walls[(n - 1) / 2] + walls[n / 2])
    };
    let ends = (walls.first().copied(), walls.last().copied());
    let report = MergeReport {
        csv,
        points: rows.len(),
        wall_min_median_max: [
            ends.0.unwrap_or(f64::NAN),
            median,
            ends.1.unwrap_or(f64::NAN),
        ],
        cpu_seconds: cpu,
    };
    if !quiet {
        let [lo, med, hi] = report.wall_min_median_max;
        println!(
            "merged {} points of `{}` into {} (+ {a}.png, {b}.png)",
            report.points,
            sc.name(),
            report.csv.display()
        );
        println!(
            "  wall time per point: min {lo:.4} s, median {med:.4} s, max {hi:.4} s; total CPU time {:.2} s ({:.3} core-hours)",
            report.cpu_seconds,
            report.cpu_seconds / 3600.0
        );
    }
    Ok(report)
}
