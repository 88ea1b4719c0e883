//! `flatscape._flatscape`: the compiled half of the `flatscape` Python package, a thin PyO3
//! layer over the Rust core (no second implementation of any solver).

mod convert;
mod core;
mod errors;
mod expression;
mod result;
mod scenario;
mod sweep;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;

use crate::errors::solver_error;
use crate::result::RunResult;
use crate::scenario::PyScenario;

/// The largest worker pool `run` starts (a guard against typos such as `threads=10**6`).
const MAX_THREADS: i64 = 4096;

/// How often the waiting Python thread wakes to look for signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run `job` on a worker thread with the GIL released; every [`SIGNAL_POLL`] the calling
/// thread checks Python's signal handlers, and on an exception (KeyboardInterrupt) it sets
/// the cancel flag and returns that exception at once.
fn run_interruptible<T: Send + 'static>(
    py: Python<'_>,
    job: impl FnOnce(Arc<AtomicBool>) -> Result<T, PyErrFactory> + Send + 'static,
) -> PyResult<T> {
    run_interruptible_with(py, job, |_| Ok(()))
}

/// [`run_interruptible`] that also calls `tick` (with the GIL) at every wake-up, e.g. to report
/// progress to a Python callback; an exception from `tick` cancels the job and is returned.
pub(crate) fn run_interruptible_with<T: Send + 'static>(
    py: Python<'_>,
    job: impl FnOnce(Arc<AtomicBool>) -> Result<T, PyErrFactory> + Send + 'static,
    mut tick: impl FnMut(Python<'_>) -> PyResult<()>,
) -> PyResult<T> {
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = cancel.clone();
    std::thread::Builder::new()
        .name("flatscape-run".to_string())
        .spawn(move || {
            let out = panic::catch_unwind(AssertUnwindSafe(|| job(flag)));
            let _ = tx.send(out);
        })
        .map_err(|e| solver_error(py, &format!("cannot start a worker thread: {e}")))?;
    let mut rx = rx;
    loop {
        let (got, back) = py.detach(move || (rx.recv_timeout(SIGNAL_POLL), rx));
        rx = back;
        match got {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(make))) => return Err(make.into_err(py)),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                return Err(solver_error(py, &format!("internal error: {what}")));
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals().and_then(|()| tick(py)) {
                    cancel.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(solver_error(
                    py,
                    "the worker thread stopped without a result",
                ));
            }
        }
    }
}

/// A `threads=` argument: `None` (all cores) or 1..=[`MAX_THREADS`].
pub(crate) fn check_threads(threads: Option<i64>) -> PyResult<Option<usize>> {
    match threads {
        None => Ok(None),
        Some(n) if (1..=MAX_THREADS).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(PyValueError::new_err(format!(
            "threads must be in 1..={MAX_THREADS}, got {n}"
        ))),
    }
}

/// An error made on the worker thread, turned into a Python exception once the GIL is held.
pub(crate) enum PyErrFactory {
    Solver(String),
    Cancelled,
    /// A file could not be written.
    Os(String),
}

impl PyErrFactory {
    fn into_err(self, py: Python<'_>) -> PyErr {
        match self {
            PyErrFactory::Solver(m) => solver_error(py, &m),
            PyErrFactory::Cancelled => PyKeyboardInterrupt::new_err("interrupted"),
            PyErrFactory::Os(m) => pyo3::exceptions::PyOSError::new_err(m),
        }
    }
}

/// Run every part of a scenario (FP, theory, sampler, sweep) and return the results.
///
/// The GIL is released while it computes; Ctrl-C raises KeyboardInterrupt within a fraction
/// of a second. `threads` sizes the worker pool (all cores by default).
#[pyfunction]
#[pyo3(signature = (scenario, threads = None, progress = false))]
fn run(
    py: Python<'_>,
    scenario: &Bound<'_, PyAny>,
    threads: Option<i64>,
    progress: bool,
) -> PyResult<RunResult> {
    let sc = PyScenario::coerce(scenario)?;
    let threads = check_threads(threads)?;
    let job_sc = sc.clone();
    let computed = run_interruptible(py, move |cancel| {
        let ctl = core::Control {
            cancel,
            console: progress.then(|| flatscape::app::ConsoleProgress::new(false)),
        };
        core::run(job_sc, threads, &ctl).map_err(|e| match e {
            core::RunFailure::Solver(m) => PyErrFactory::Solver(m),
            core::RunFailure::Cancelled => PyErrFactory::Cancelled,
        })
    })?;
    let scenario = Py::new(py, PyScenario { sc })?;
    RunResult::new(py, scenario, computed)
}

/// Validate a scenario (a Scenario, a path or a dict): raises ScenarioError, returns None.
#[pyfunction]
fn check(scenario: &Bound<'_, PyAny>) -> PyResult<()> {
    PyScenario::coerce(scenario).map(|_| ())
}

#[pymodule]
fn _flatscape(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyScenario>()?;
    m.add_class::<RunResult>()?;
    m.add_class::<result::FpSolution>()?;
    m.add_class::<result::SamplerRun>()?;
    m.add_class::<expression::ExpressionLoss>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_class::<sweep::SweepTask>()?;
    m.add_class::<sweep::SweepTaskResult>()?;
    m.add_class::<sweep::SweepJob>()?;
    Ok(())
}
