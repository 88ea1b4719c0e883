//! The compiled half of `flatscape.sweep`: a sweep's points as small picklable tasks for any
//! executor ([`SweepTask`] → [`SweepTaskResult`], computed with the GIL released), and the
//! calling side ([`SweepJob`]) that plans them, writes the point files of `flatscape sweep run`
//! and assembles sweep.csv's columns.
//!
//! A task carries the scenario's canonical TOML text and a list of point ids (a few kB); a
//! result carries the rows as JSON (numbers read back to the same f64), so both pickle with any
//! protocol and cross process and machine boundaries unchanged.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use serde::{Deserialize, Serialize};

use flatscape::app::AppError;
use flatscape::app::sweep::{ensure_manifest, id_ranges};
use flatscape::config::NoProgress;
use flatscape::report::points::{PointState, point_path, read_point, scenario_hash, write_point};
use flatscape::scenario::{Scenario as CoreScenario, ScenarioError};
use flatscape::study::sweep::thread_cpu_seconds;
use flatscape::study::{PointOutcome, StudyError, SweepPlan, SweepPoint};

use crate::core::{self, sweep_columns};
use crate::errors::{from_scenario_error, scenario_error, solver_error, sweep_folder_error};
use crate::result::columns_to_dict;
use crate::scenario::PyScenario;
use crate::{PyErrFactory, check_threads, run_interruptible_with};

/// The `format` of a task result's JSON.
const RESULT_FORMAT: &str = "flatscape-sweep-task-result/1";

/// The version of the core compiled into this module (a worker must run the same).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The origin a task names in messages when none is given.
const TASK_ORIGIN: &str = "<sweep task>";

/// The plan a worker keeps between the tasks of one sweep, keyed by the scenario text: a
/// worker process parses and validates the scenario once, and solves each Δ_S's FP once.
static WORKER_PLAN: Mutex<Option<WorkerPlan>> = Mutex::new(None);

/// A worker's cached plan: the scenario text it was built from, the plan, the scenario's hash.
type WorkerPlan = (String, Arc<SweepPlan>, String);

/// Why a task failed on the worker.
enum TaskError {
    Scenario(ScenarioError),
    Solver(String),
}

/// The plan of the scenario `text` and its hash (cached per process).
fn worker_plan(text: &str, origin: &Path) -> Result<(Arc<SweepPlan>, String), TaskError> {
    let mut slot = WORKER_PLAN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached, plan, hash)) = slot.as_ref()
        && cached == text
    {
        return Ok((plan.clone(), hash.clone()));
    }
    let sc = CoreScenario::from_toml_str(text, origin).map_err(TaskError::Scenario)?;
    let plan = SweepPlan::new(&sc).ok_or_else(|| {
        TaskError::Solver(format!("scenario `{}` has no [sweep] table", sc.name()))
    })?;
    let plan = Arc::new(plan);
    let hash = scenario_hash(plan.scenario());
    *slot = Some((text.to_string(), plan.clone(), hash.clone()));
    Ok((plan, hash))
}

/// One computed point as it travels back from a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct WirePoint {
    id: usize,
    row: SweepPoint,
    wall_seconds: f64,
    cpu_seconds: Option<f64>,
}

/// A task's result as it travels back from a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Wire {
    format: String,
    flatscape_version: String,
    scenario_hash: String,
    points: Vec<WirePoint>,
}

thread_local! {
    /// A one-thread rayon pool per calling thread: a task's points run in it, so nested
    /// parallel loops stay on one core (an executor's worker is one core) and a task does not
    /// pay for starting threads.
    static ONE_THREAD: Option<rayon::ThreadPool> =
        rayon::ThreadPoolBuilder::new().num_threads(1).build().ok();
}

/// Compute the points `ids` of the scenario `text`, one after another on one thread (a Δ_S's
/// FP solve is counted on the first of its points that this process computes).
fn compute_task(text: &str, ids: &[usize], origin: &Path) -> Result<Wire, TaskError> {
    let (plan, scenario_hash) = worker_plan(text, origin)?;
    let points = || -> Result<Vec<WirePoint>, StudyError> {
        ids.iter()
            .map(|&id| {
                let (clock, cpu0) = (Instant::now(), thread_cpu_seconds());
                let row = plan.point(id, &NoProgress)?;
                let cpu_seconds = cpu0
                    .zip(thread_cpu_seconds())
                    .map(|(a, b)| (b - a).max(0.0));
                Ok(WirePoint {
                    id,
                    row,
                    wall_seconds: clock.elapsed().as_secs_f64(),
                    cpu_seconds,
                })
            })
            .collect()
    };
    let points = ONE_THREAD
        .with(|pool| match pool {
            Some(p) => p.install(points),
            None => points(),
        })
        .map_err(|e| TaskError::Solver(e.to_string()))?;
    Ok(Wire {
        format: RESULT_FORMAT.into(),
        flatscape_version: VERSION.into(),
        scenario_hash,
        points,
    })
}

/// A batch of sweep points to compute: the scenario's canonical TOML text and point ids
/// (picklable; `run()` computes them on the calling thread with the GIL released).
#[pyclass(frozen, module = "flatscape", name = "SweepTask")]
pub struct SweepTask {
    scenario_toml: String,
    ids: Vec<usize>,
    origin: String,
}

#[pymethods]
impl SweepTask {
    #[new]
    #[pyo3(signature = (scenario_toml, ids, origin = None))]
    fn new(scenario_toml: String, ids: Vec<usize>, origin: Option<String>) -> Self {
        Self {
            scenario_toml,
            ids,
            origin: origin.unwrap_or_else(|| TASK_ORIGIN.to_string()),
        }
    }

    /// The scenario's canonical TOML text.
    #[getter]
    fn scenario_toml(&self) -> &str {
        &self.scenario_toml
    }

    /// The point ids (indices in the sweep's grid order: η outer, σ or Δ_S inner).
    #[getter]
    fn ids(&self) -> Vec<usize> {
        self.ids.clone()
    }

    /// The scenario's source, named in error messages.
    #[getter]
    fn origin(&self) -> &str {
        &self.origin
    }

    /// Compute the points on this thread (the GIL released): the rows of sweep.csv, exactly
    /// those of `flatscape run`.
    fn run(&self, py: Python<'_>) -> PyResult<SweepTaskResult> {
        let origin = PathBuf::from(&self.origin);
        py.detach(|| compute_task(&self.scenario_toml, &self.ids, &origin))
            .map(|wire| SweepTaskResult { wire })
            .map_err(|e| match e {
                TaskError::Scenario(e) => from_scenario_error(py, &e),
                TaskError::Solver(m) => solver_error(py, &m),
            })
    }

    fn __len__(&self) -> usize {
        self.ids.len()
    }

    fn __repr__(&self) -> String {
        match (self.ids.first(), self.ids.last()) {
            (Some(a), Some(b)) => format!("SweepTask(points={}, ids={a}..={b})", self.ids.len()),
            _ => "SweepTask(points=0)".to_string(),
        }
    }

    /// Pickle support: rebuilt from (scenario text, ids, origin).
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        let args = (
            this.scenario_toml.as_str(),
            this.ids.clone(),
            this.origin.as_str(),
        )
            .into_pyobject(py)?;
        Ok((slf.get_type(), args))
    }
}

/// The computed points of a [`SweepTask`] (picklable: travels as compact JSON).
#[pyclass(frozen, module = "flatscape", name = "SweepTaskResult")]
pub struct SweepTaskResult {
    wire: Wire,
}

#[pymethods]
impl SweepTaskResult {
    /// Rebuild a result from `to_json()`'s text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        let wire: Wire = serde_json::from_str(text)
            .map_err(|e| PyValueError::new_err(format!("not a sweep task result: {e}")))?;
        if wire.format != RESULT_FORMAT {
            return Err(PyValueError::new_err(format!(
                "not a sweep task result: format {:?}, expected {RESULT_FORMAT:?}",
                wire.format
            )));
        }
        Ok(Self { wire })
    }

    /// The result as JSON text (`from_json` reads it back, every number to the same bits).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.wire).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The point ids, ascending.
    #[getter]
    fn ids(&self) -> Vec<usize> {
        self.wire.points.iter().map(|p| p.id).collect()
    }

    /// The hash of the scenario the worker computed (`fnv1a64:…`, as in manifest.json).
    #[getter]
    fn scenario_hash(&self) -> &str {
        &self.wire.scenario_hash
    }

    /// The flatscape version of the worker.
    #[getter]
    fn flatscape_version(&self) -> &str {
        &self.wire.flatscape_version
    }

    /// Wall-clock seconds of each point (a Δ_S's FP solve counted on its first point).
    #[getter]
    fn wall_seconds(&self) -> Vec<f64> {
        self.wire.points.iter().map(|p| p.wall_seconds).collect()
    }

    /// CPU seconds of each point (None where the platform does not report them).
    #[getter]
    fn cpu_seconds(&self) -> Vec<Option<f64>> {
        self.wire.points.iter().map(|p| p.cpu_seconds).collect()
    }

    /// The rows as sweep.csv columns (numpy arrays; NaN where a cell is empty).
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rows: Vec<SweepPoint> = self.wire.points.iter().map(|p| p.row.clone()).collect();
        match sweep_columns(&rows) {
            Some(c) => columns_to_dict(py, &c),
            None => Ok(PyDict::new(py)),
        }
    }

    fn __len__(&self) -> usize {
        self.wire.points.len()
    }

    fn __repr__(&self) -> String {
        format!("SweepTaskResult(points={})", self.wire.points.len())
    }

    /// Pickle support: rebuilt from its JSON text.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let ctor = slf.get_type().getattr("from_json")?;
        let args = PyTuple::new(py, [slf.get().to_json()?])?;
        Ok((ctor, args))
    }
}

/// The state of one `flatscape.sweep` call on the calling side.
struct JobState {
    plan: Arc<SweepPlan>,
    /// The scenario's canonical TOML text (what tasks carry).
    text: String,
    /// Its source, for messages.
    origin: String,
    /// Its hash (manifest.json's `scenario_hash`).
    hash: String,
    /// The sweep folder, when point files are written.
    out: Option<PathBuf>,
    /// Rows by id, `None` until computed or read.
    rows: Mutex<Vec<Option<SweepPoint>>>,
    /// Rows present.
    done: AtomicUsize,
    /// Points read from valid files in `out` at the start.
    reused: usize,
    /// Files in `out` that were not valid results (truncated, foreign): recomputed.
    corrupt: usize,
    /// Points per FP group (the Δ_S count of a Δ_S sweep with `[fokker_planck]`): tasks keep
    /// a group's points together, so each worker solves few FP steady states.
    fp_group: Option<usize>,
}

/// Why a point could not be stored.
enum StoreError {
    Write(String),
    Foreign(String),
}

impl JobState {
    /// Store a computed point (and write its file when there is a folder); false if it was
    /// there already.
    fn store(&self, o: &PointOutcome) -> Result<bool, StoreError> {
        let spec = self.plan.spec(o.id).ok_or_else(|| {
            StoreError::Foreign(format!(
                "point id {} is past the last point ({} points)",
                o.id,
                self.plan.len()
            ))
        })?;
        if o.row.sigma.to_bits() != spec.sigma.to_bits()
            || o.row.eta.to_bits() != spec.eta.to_bits()
        {
            return Err(StoreError::Foreign(format!(
                "point {} came back at (σ, η) = ({}, {}), planned at ({}, {})",
                o.id, o.row.sigma, o.row.eta, spec.sigma, spec.eta
            )));
        }
        if let Some(dir) = &self.out {
            write_point(dir, &spec, &self.hash, o).map_err(|e| StoreError::Write(e.to_string()))?;
        }
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = rows[o.id].is_none();
        rows[o.id] = Some(o.row.clone());
        if fresh {
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(fresh)
    }

    /// The ids without a row, grouped by FP group where there is one.
    fn todo(&self) -> Vec<usize> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<usize> = (0..rows.len()).filter(|&id| rows[id].is_none()).collect();
        if let Some(g) = self.fp_group.filter(|&g| g > 0) {
            ids.sort_by_key(|&id| (id % g, id));
        }
        ids
    }
}

/// The calling side of `flatscape.sweep`: the plan, the sweep folder, the rows so far.
#[pyclass(frozen, module = "flatscape._flatscape", name = "_SweepJob")]
pub struct SweepJob {
    state: Arc<JobState>,
}

fn folder_error(py: Python<'_>, e: AppError) -> PyErr {
    match e {
        AppError::SweepFolder { ref path, .. } | AppError::SweepMismatch { ref path, .. } => {
            sweep_folder_error(py, &e.to_string(), &path.display().to_string())
        }
        AppError::Scenario(s) => from_scenario_error(py, &s),
        other => PyOSError::new_err(other.to_string()),
    }
}

#[pymethods]
impl SweepJob {
    /// Plan the sweep of `scenario`; with `out`, make sure the folder's manifest is this
    /// scenario's (writing it when absent) and read the points already there.
    #[new]
    #[pyo3(signature = (scenario, out = None))]
    fn new(py: Python<'_>, scenario: &Bound<'_, PyAny>, out: Option<PathBuf>) -> PyResult<Self> {
        let sc = PyScenario::coerce(scenario)?;
        let file = sc.file().display().to_string();
        let Some(plan) = SweepPlan::new(&sc.inner) else {
            let message = format!("{file}: scenario `{}` has no [sweep] table", sc.name());
            return Err(scenario_error(
                py,
                &message,
                Some("sweep"),
                None,
                Some(&file),
            ));
        };
        let inner = &sc.inner;
        let fp_group = match inner.sweep() {
            Some(sw) if sw.sigma.is_none() && inner.fokker_planck().is_some() => {
                sw.delta_s.as_ref().map(|d| d.values().len())
            }
            _ => None,
        };
        let text = inner.to_toml();
        let total = plan.len();
        let prepared = py.detach(|| -> Result<_, AppError> {
            let Some(dir) = &out else {
                return Ok((scenario_hash(inner), vec![None; total], 0, 0));
            };
            let hash = ensure_manifest(inner, &plan, dir)?;
            let mut rows = vec![None; total];
            let (mut reused, mut corrupt) = (0, 0);
            for spec in plan.specs() {
                match read_point(dir, &spec, &hash) {
                    PointState::Done(p) => {
                        rows[spec.id] = Some(p.row);
                        reused += 1;
                    }
                    PointState::Missing => {}
                    PointState::Corrupt(_) => corrupt += 1,
                }
            }
            Ok((hash, rows, reused, corrupt))
        });
        let (hash, rows, reused, corrupt) = prepared.map_err(|e| folder_error(py, e))?;
        Ok(Self {
            state: Arc::new(JobState {
                plan: Arc::new(plan),
                text,
                origin: file,
                hash,
                out,
                done: AtomicUsize::new(reused),
                rows: Mutex::new(rows),
                reused,
                corrupt,
                fp_group,
            }),
        })
    }

    /// Points in the sweep.
    #[getter]
    fn total(&self) -> usize {
        self.state.plan.len()
    }

    /// Points with a row (computed, or read from `out`).
    #[getter]
    fn done(&self) -> usize {
        self.state.done.load(Ordering::Relaxed)
    }

    /// Points read from valid files in `out` when the job was made.
    #[getter]
    fn reused(&self) -> usize {
        self.state.reused
    }

    /// Files in `out` that were not valid results (they are recomputed).
    #[getter]
    fn corrupt(&self) -> usize {
        self.state.corrupt
    }

    /// The scenario's hash (manifest.json's `scenario_hash`).
    #[getter]
    fn scenario_hash(&self) -> &str {
        &self.state.hash
    }

    /// The ids still to compute, in task order.
    fn todo(&self) -> Vec<usize> {
        self.state.todo()
    }

    /// The points still to compute as tasks of at most `chunksize` points.
    fn tasks(&self, chunksize: usize) -> PyResult<Vec<SweepTask>> {
        if chunksize == 0 {
            return Err(PyValueError::new_err("chunksize must be at least 1"));
        }
        Ok(self
            .state
            .todo()
            .chunks(chunksize)
            .map(|ids| SweepTask {
                scenario_toml: self.state.text.clone(),
                ids: ids.to_vec(),
                origin: self.state.origin.clone(),
            })
            .collect())
    }

    /// Take a task's result: check that the worker computed this scenario with this version,
    /// write the point files (GIL released) and keep the rows; returns the points that were new.
    fn add(&self, py: Python<'_>, result: &SweepTaskResult) -> PyResult<usize> {
        let w = &result.wire;
        if w.flatscape_version != VERSION {
            return Err(solver_error(
                py,
                &format!(
                    "a worker runs flatscape {}, this process {VERSION}: install the same version on every worker",
                    w.flatscape_version
                ),
            ));
        }
        if w.scenario_hash != self.state.hash {
            return Err(solver_error(
                py,
                &format!(
                    "a worker computed scenario {}, not this sweep's {}",
                    w.scenario_hash, self.state.hash
                ),
            ));
        }
        let state = &self.state;
        let stored = py.detach(|| -> Result<usize, StoreError> {
            let mut fresh = 0;
            for p in &w.points {
                let o = PointOutcome {
                    id: p.id,
                    row: p.row.clone(),
                    wall_seconds: p.wall_seconds,
                    cpu_seconds: p.cpu_seconds,
                };
                fresh += usize::from(state.store(&o)?);
            }
            Ok(fresh)
        });
        stored.map_err(|e| match e {
            StoreError::Write(m) => PyOSError::new_err(m),
            StoreError::Foreign(m) => solver_error(py, &m),
        })
    }

    /// Compute the remaining points in this process on `threads` workers (all cores by
    /// default), writing point files as they finish; `progress(done, total)` is called from
    /// this thread as points finish. Ctrl-C raises KeyboardInterrupt (finished points keep
    /// their files).
    #[pyo3(signature = (threads = None, progress = None))]
    fn run_local(
        &self,
        py: Python<'_>,
        threads: Option<i64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let threads = check_threads(threads)?
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let state = self.state.clone();
        let todo = state.todo();
        let total = state.plan.len();
        let mut last = state.done.load(Ordering::Relaxed);
        let watched = self.state.clone();
        let mut tick = |py: Python<'_>| -> PyResult<()> {
            let now = watched.done.load(Ordering::Relaxed);
            if let Some(cb) = &progress
                && now != last
            {
                last = now;
                cb.call1(py, (now, total))?;
            }
            Ok(())
        };
        run_interruptible_with(
            py,
            move |cancel| {
                let ctl = core::Control {
                    cancel,
                    console: None,
                };
                let failure: Mutex<Option<StoreError>> = Mutex::new(None);
                let sink = |o: PointOutcome| -> bool {
                    match state.store(&o) {
                        Ok(_) => true,
                        Err(e) => {
                            let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                            f.get_or_insert(e);
                            false
                        }
                    }
                };
                state
                    .plan
                    .compute(&todo, threads, &sink, &ctl)
                    .map_err(|e| match e {
                        StudyError::Cancelled => PyErrFactory::Cancelled,
                        other => PyErrFactory::Solver(other.to_string()),
                    })?;
                match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
                    Some(StoreError::Write(m)) => Err(PyErrFactory::Os(m)),
                    Some(StoreError::Foreign(m)) => Err(PyErrFactory::Solver(m)),
                    None => Ok(()),
                }
            },
            &mut tick,
        )?;
        tick(py)
    }

    /// sweep.csv's columns (numpy arrays, NaN in empty cells), once every point has a row.
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rows = self.state.rows.lock().unwrap_or_else(|p| p.into_inner());
        let missing: Vec<usize> = (0..rows.len()).filter(|&id| rows[id].is_none()).collect();
        if !missing.is_empty() {
            let where_ = match &self.state.out {
                Some(dir) => format!(" (point files under {})", dir.join("points").display()),
                None => String::new(),
            };
            return Err(solver_error(
                py,
                &format!(
                    "{} of {} sweep points missing: ids {}{where_}",
                    missing.len(),
                    rows.len(),
                    id_ranges(&missing)
                ),
            ));
        }
        let table: Vec<SweepPoint> = rows.iter().flatten().cloned().collect();
        drop(rows);
        match sweep_columns(&table) {
            Some(c) => columns_to_dict(py, &c),
            None => Ok(PyDict::new(py)),
        }
    }

    /// The file of point `id` in the sweep folder (None without `out`).
    fn point_path(&self, id: usize) -> Option<PathBuf> {
        self.state.out.as_ref().map(|d| point_path(d, id))
    }
}
