//! Atomic file writers: JSON, CSV and `.npy` (docs/reference.md §7.1). Every file is written to a temporary
//! sibling first and renamed into place, so an interrupted run never leaves half a result.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::ArrayView;
use ndarray_npy::WriteNpyExt;

/// A failed write, with the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl WriteError {
    /// An error about `path`.
    pub fn new(path: &Path, message: impl ToString) -> Self {
        Self {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// A temporary sibling of `path` that keeps its extension (plotters picks the format by it).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

/// Create the folder that will hold `path`.
pub fn ensure_parent_dir(path: &Path) -> Result<(), WriteError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|e| WriteError::new(dir, e))
        }
        _ => Ok(()),
    }
}

/// Move a finished temporary file into place.
pub fn commit(tmp: &Path, path: &Path) -> Result<(), WriteError> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        WriteError::new(path, e)
    })
}

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    ensure_parent_dir(path)?;
    let tmp = temp_sibling(path);
    let mut f = fs::File::create(&tmp).map_err(|e| WriteError::new(path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| WriteError::new(path, e))?;
    commit(&tmp, path)
}

/// Write a serialisable value as pretty JSON (non-finite numbers become `null`).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), WriteError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| WriteError::new(path, e))?;
    write_atomic(path, (text + "\n").as_bytes())
}

/// CSV text of serialisable rows with a header from their field names. Every file flatscape
/// writes uses this one convention: numbers in the shortest form that reads back to the same
/// f64 (e.g. `0.001`, `1.5e-7`), a missing or non-finite value as an empty field.
pub fn csv_text<T: serde::Serialize>(rows: impl IntoIterator<Item = T>) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A value for a CSV cell: `None` (an empty field) unless finite.
pub fn cell(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Write serialisable rows as CSV (see [`csv_text`]) atomically.
pub fn write_rows<T: serde::Serialize>(
    path: &Path,
    rows: impl IntoIterator<Item = T>,
) -> Result<(), WriteError> {
    let bytes = csv_text(rows).map_err(|e| WriteError::new(path, e))?;
    write_atomic(path, &bytes)
}

/// Write columns of equal length as CSV with a header line (the convention of [`csv_text`]).
pub fn write_csv(path: &Path, header: &[&str], columns: &[&[f64]]) -> Result<(), WriteError> {
    let rows = columns.first().map_or(0, |c| c.len());
    if columns.iter().any(|c| c.len() != rows) || header.len() != columns.len() {
        return Err(WriteError::new(path, "internal error: ragged CSV columns"));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| WriteError::new(path, e);
    w.write_record(header).map_err(fail)?;
    for r in 0..rows {
        let row: Vec<Option<f64>> = columns.iter().map(|c| cell(c[r])).collect();
        w.serialize(row).map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| WriteError::new(path, e))?;
    write_atomic(path, &bytes)
}

/// Write a row-major array of the given shape as `.npy` (float64, C order).
pub fn write_npy(path: &Path, shape: &[usize], data: &[f64]) -> Result<(), WriteError> {
    ensure_parent_dir(path)?;
    let view = ArrayView::from_shape(shape.to_vec(), data).map_err(|e| WriteError::new(path, e))?;
    let tmp = temp_sibling(path);
    let file = fs::File::create(&tmp).map_err(|e| WriteError::new(path, e))?;
    view.write_npy(std::io::BufWriter::new(file))
        .map_err(|e| WriteError::new(path, e))?;
    commit(&tmp, path)
}
