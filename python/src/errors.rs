//! Python exceptions: `flatscape.ScenarioError` (a `ValueError`), `flatscape.SolverError`
//! (a `RuntimeError`) and `flatscape.SweepFolderError` (a `ValueError`), all defined in
//! `flatscape/_errors.py`.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use flatscape::scenario::ScenarioError;

static SCENARIO_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SOLVER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SWEEP_FOLDER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "flatscape._errors", name)
}

/// `flatscape.ScenarioError(message, key=…, line=…, column=…, file=…)`.
pub fn scenario_error(
    py: Python<'_>,
    message: &str,
    key: Option<&str>,
    position: Option<(usize, usize)>,
    file: Option<&str>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("key", key)?;
        kwargs.set_item("line", position.map(|p| p.0))?;
        kwargs.set_item("column", position.map(|p| p.1))?;
        kwargs.set_item("file", file)?;
        let cls = class(py, &SCENARIO_ERROR, "ScenarioError")?;
        let exc = cls.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|_| PyValueError::new_err(message.to_string()))
}

/// The core's [`ScenarioError`] as `flatscape.ScenarioError`; `str(e)` is the CLI's message.
pub fn from_scenario_error(py: Python<'_>, e: &ScenarioError) -> PyErr {
    let file = e.file.display().to_string();
    scenario_error(
        py,
        &e.to_string(),
        e.key.as_deref(),
        e.position,
        Some(&file),
    )
}

/// `flatscape.SolverError(message)`.
pub fn solver_error(py: Python<'_>, message: &str) -> PyErr {
    match class(py, &SOLVER_ERROR, "SolverError").and_then(|cls| cls.call1((message,))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(message.to_string()),
    }
}

/// `flatscape.SweepFolderError(message, path=…)`: a sweep folder that cannot be used (the
/// CLI's exit 2, e.g. a manifest of another scenario).
pub fn sweep_folder_error(py: Python<'_>, message: &str, path: &str) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("path", path)?;
        let cls = class(py, &SWEEP_FOLDER_ERROR, "SweepFolderError")?;
        Ok(PyErr::from_value(cls.call((message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|_| PyValueError::new_err(message.to_string()))
}
