//! Conversions between Python objects and TOML / JSON values.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A Python value that has no TOML form, at a dotted key.
#[derive(Debug)]
pub struct BadValue {
    /// Dotted key of the value.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> BadValue {
    BadValue {
        key: if key.is_empty() {
            "<root>".to_string()
        } else {
            key.to_string()
        },
        message: message.into(),
    }
}

fn child(key: &str, name: &str) -> String {
    if key.is_empty() {
        name.to_string()
    } else {
        format!("{key}.{name}")
    }
}

/// A Python mapping with string keys as a TOML table.
pub fn py_to_table(obj: &Bound<'_, PyAny>, key: &str) -> Result<toml::Table, BadValue> {
    let Ok(dict) = obj.cast::<PyDict>() else {
        return Err(bad(key, format!("expected a dict, got {}", type_name(obj))));
    };
    let mut table = toml::Table::new();
    for (k, v) in dict.iter() {
        let Ok(name) = k.cast::<PyString>() else {
            return Err(bad(
                key,
                format!("table keys must be strings, got {}", type_name(&k)),
            ));
        };
        let name = name
            .to_cow()
            .map_err(|_| bad(key, "table keys must be valid UTF-8"))?
            .to_string();
        let value = py_to_toml(&v, &child(key, &name))?;
        table.insert(name, value);
    }
    Ok(table)
}

/// A Python value (bool, int, float, str, list/tuple, dict, numpy scalar or array) as TOML.
pub fn py_to_toml(obj: &Bound<'_, PyAny>, key: &str) -> Result<toml::Value, BadValue> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(obj.is_truthy().unwrap_or(false)));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| bad(key, "integer does not fit in 64 bits"));
    }
    if obj.is_instance_of::<PyFloat>() {
        return obj
            .extract::<f64>()
            .map(toml::Value::Float)
            .map_err(|e| bad(key, e.to_string()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_cow()
            .map(|s| toml::Value::String(s.to_string()))
            .map_err(|_| bad(key, "string is not valid UTF-8"));
    }
    if obj.is_instance_of::<PyDict>() {
        return py_to_table(obj, key).map(toml::Value::Table);
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (n, item) in obj
            .try_iter()
            .map_err(|e| bad(key, e.to_string()))?
            .enumerate()
        {
            let item = item.map_err(|e| bad(key, e.to_string()))?;
            out.push(py_to_toml(&item, &format!("{key}[{n}]"))?);
        }
        return Ok(toml::Value::Array(out));
    }
    // numpy scalars and arrays: `.tolist()` gives plain Python values.
    if obj.hasattr("tolist").unwrap_or(false) && obj.hasattr("dtype").unwrap_or(false) {
        let plain = obj
            .call_method0("tolist")
            .map_err(|e| bad(key, e.to_string()))?;
        if !plain.is(obj) {
            return py_to_toml(&plain, key);
        }
    }
    Err(bad(
        key,
        format!(
            "a value of type {} has no TOML form (use bool, int, float, str, list or dict)",
            type_name(obj)
        ),
    ))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string())
}

/// A TOML value as a plain Python object (dates become strings).
pub fn toml_to_py<'py>(py: Python<'py>, v: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        toml::Value::String(s) => PyString::new(py, s).into_any(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        toml::Value::Float(f) => PyFloat::new(py, *f).into_any(),
        toml::Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any(),
        toml::Value::Datetime(d) => PyString::new(py, &d.to_string()).into_any(),
        toml::Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| toml_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        toml::Value::Table(t) => table_to_py(py, t)?.into_any(),
    })
}

/// A TOML table as a Python dict.
pub fn table_to_py<'py>(py: Python<'py>, t: &toml::Table) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in t {
        d.set_item(k, toml_to_py(py, v)?)?;
    }
    Ok(d)
}
