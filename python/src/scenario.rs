//! `flatscape.Scenario`: a validated scenario, built from a file, TOML text or a dict.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::convert::{BadValue, py_to_table, py_to_toml, table_to_py};
use crate::core;
use crate::errors::{from_scenario_error, scenario_error};

/// Pseudo-file names used in messages for scenarios that did not come from a file.
const FROM_STRING: &str = "<string>";
const FROM_DICT: &str = "<dict>";

/// A validated scenario (immutable; `replace` returns a validated copy).
#[pyclass(frozen, module = "flatscape", name = "Scenario")]
pub struct PyScenario {
    pub(crate) sc: Arc<core::Scenario>,
}

fn bad_value(py: Python<'_>, file: &Path, e: BadValue) -> PyErr {
    let message = format!("{}: key `{}`: {}", file.display(), e.key, e.message);
    let file = file.display().to_string();
    scenario_error(py, &message, Some(&e.key), None, Some(&file))
}

impl PyScenario {
    /// Validate a table, mapping errors to `ScenarioError`.
    fn from_table(py: Python<'_>, table: toml::Table, origin: &Path) -> PyResult<Self> {
        let origin = origin.to_path_buf();
        py.detach(move || core::Scenario::from_table(table, &origin))
            .map(|sc| Self { sc: Arc::new(sc) })
            .map_err(|e| from_scenario_error(py, &e))
    }

    /// A scenario from any of: a `Scenario`, a path (str or os.PathLike) or a dict.
    pub(crate) fn coerce(obj: &Bound<'_, PyAny>) -> PyResult<Arc<core::Scenario>> {
        let py = obj.py();
        if let Ok(sc) = obj.cast::<PyScenario>() {
            return Ok(sc.get().sc.clone());
        }
        if obj.is_instance_of::<PyDict>() {
            let table = py_to_table(obj, "").map_err(|e| bad_value(py, Path::new(FROM_DICT), e))?;
            return Ok(Self::from_table(py, table, Path::new(FROM_DICT))?.sc);
        }
        if let Ok(path) = obj.extract::<PathBuf>() {
            return Ok(Self::load(py, path)?.sc);
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected a flatscape.Scenario, a path or a dict, got {}",
            obj.get_type().name()?
        )))
    }
}

#[pymethods]
impl PyScenario {
    /// Read, parse and validate a scenario file (TOML).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        py.detach(|| core::Scenario::load(&path))
            .map(|sc| Self { sc: Arc::new(sc) })
            .map_err(|e| from_scenario_error(py, &e))
    }

    /// Parse and validate scenario text (TOML); `path` names it in messages.
    #[staticmethod]
    #[pyo3(signature = (text, path = None))]
    fn from_toml(py: Python<'_>, text: &str, path: Option<PathBuf>) -> PyResult<Self> {
        let origin = path.unwrap_or_else(|| PathBuf::from(FROM_STRING));
        let text = text.to_string();
        py.detach(move || core::Scenario::from_toml(&text, &origin))
            .map(|sc| Self { sc: Arc::new(sc) })
            .map_err(|e| from_scenario_error(py, &e))
    }

    /// Validate a dict with the layout of a scenario file (nested tables as dicts).
    #[staticmethod]
    #[pyo3(signature = (data, path = None))]
    fn from_dict(py: Python<'_>, data: &Bound<'_, PyAny>, path: Option<PathBuf>) -> PyResult<Self> {
        let origin = path.unwrap_or_else(|| PathBuf::from(FROM_DICT));
        let table = py_to_table(data, "").map_err(|e| bad_value(py, &origin, e))?;
        Self::from_table(py, table, &origin)
    }

    /// The scenario as a dict (the layout of the file; a fresh copy each call).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        table_to_py(py, &self.sc.table)
    }

    /// The scenario as TOML text (comments of the source file are not kept).
    fn to_toml(&self) -> PyResult<String> {
        toml::to_string(&self.sc.table)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    /// A validated copy with dotted keys set, e.g. `{"noise.sigma": 0.1}`; `None` removes a key.
    fn replace(&self, py: Python<'_>, changes: &Bound<'_, PyAny>) -> PyResult<Self> {
        let file = self.sc.file().to_path_buf();
        let changes = changes.cast::<PyDict>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("replace() takes a dict of dotted keys")
        })?;
        let mut table = self.sc.table.clone();
        for (k, v) in changes.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err("replace() keys must be dotted strings")
                })?
                .to_cow()?
                .to_string();
            let value = if v.is_none() {
                None
            } else {
                Some(py_to_toml(&v, &key).map_err(|e| bad_value(py, &file, e))?)
            };
            set_dotted(&mut table, &key, value).map_err(|e| bad_value(py, &file, e))?;
        }
        Self::from_table(py, table, &file)
    }

    /// The scenario's name (the output folder of `flatscape run`).
    #[getter]
    fn name(&self) -> &str {
        self.sc.name()
    }

    /// The file it came from (`<string>` or `<dict>` otherwise).
    #[getter]
    fn path(&self) -> String {
        self.sc.file().display().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario(name={:?}, path={:?})",
            self.sc.name(),
            self.sc.file().display().to_string()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyScenario>()
            .is_ok_and(|o| o.get().sc.table == self.sc.table)
    }

    /// Pickle support: rebuilt from its TOML text.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        let ctor = slf.get_type().getattr("from_toml")?;
        let args = PyTuple::new(
            py,
            [
                this.to_toml()?.into_pyobject(py)?.into_any(),
                this.path().into_pyobject(py)?.into_any(),
            ],
        )?;
        Ok((ctor, args))
    }
}

/// Set (or with `None` remove) `table[a][b]…` at the dotted key `a.b…`, creating tables.
fn set_dotted(
    table: &mut toml::Table,
    key: &str,
    value: Option<toml::Value>,
) -> Result<(), BadValue> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(BadValue {
            key: key.to_string(),
            message: "is not a dotted key (empty part)".to_string(),
        });
    }
    let mut node = table;
    for (n, part) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(BadValue {
                    key: parts[..=n].join("."),
                    message: format!("is not a table, so `{key}` cannot be set"),
                });
            }
        };
    }
    let last = parts[parts.len() - 1].to_string();
    match value {
        Some(v) => {
            node.insert(last, v);
        }
        None => {
            node.remove(&last);
        }
    }
    Ok(())
}
