//! The results of `flatscape.run`: numpy arrays and dicts over the core's output.
//!
//! The FP density is not copied: the numpy array is a read-only view of the solver's own
//! buffer, kept alive by a small owner object set as the array's `base`.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::ndarray::ArrayView2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::core::{self, Columns, Computed};
use crate::errors::solver_error;
use crate::scenario::PyScenario;

/// Owns the computed data that numpy views point into (the `base` of `FpSolution.density`).
#[pyclass(frozen, weakref, module = "flatscape._flatscape", name = "_Buffer")]
pub struct Buffer {
    _data: Arc<Computed>,
}

/// The Fokker–Planck steady state (Eq. 3) on its grid.
#[pyclass(frozen, module = "flatscape", name = "FpSolution")]
pub struct FpSolution {
    x: Py<PyArray1<f64>>,
    y: Py<PyArray1<f64>>,
    density: Py<PyArray2<f64>>,
    current: Option<Py<PyDict>>,
}

#[pymethods]
impl FpSolution {
    /// Cell centres along x (the degenerate direction).
    #[getter]
    fn x(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        self.x.clone_ref(py)
    }

    /// Cell centres along y (the sharp direction).
    #[getter]
    fn y(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        self.y.clone_ref(py)
    }

    /// The density P(x, y), float64 of shape (nx, ny), read-only (the values of density.npy).
    #[getter]
    fn density(&self, py: Python<'_>) -> Py<PyArray2<f64>> {
        self.density.clone_ref(py)
    }

    /// The steady probability current J = −(P∇L + ∇·(DP)) on cell faces, or None for a
    /// transient-only run: a dict with `jx` (nx − 1, ny) on the x-faces between neighbouring
    /// cell centres, `jy` (nx, ny − 1) on the y-faces, and `psi` (nx − 1, ny − 1), the stream
    /// function at the interior cell corners (J = (∂yψ, −∂xψ)); summary.json has its integrals.
    #[getter]
    fn current(&self, py: Python<'_>) -> Option<Py<PyDict>> {
        self.current.as_ref().map(|c| c.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let d = self.density.bind(py);
        let s = d.shape();
        format!("FpSolution(nx={}, ny={})", s[0], s[1])
    }
}

/// The Monte-Carlo sampler's ensemble curves.
#[pyclass(frozen, module = "flatscape", name = "SamplerRun")]
pub struct SamplerRun {
    timeseries: Py<PyDict>,
    summary: Py<PyAny>,
}

#[pymethods]
impl SamplerRun {
    /// The timeseries.csv columns as 1-D arrays (`step` and `alive` are int64).
    #[getter]
    fn timeseries(&self, py: Python<'_>) -> Py<PyDict> {
        self.timeseries.clone_ref(py)
    }

    /// summary.json's `sampler` entry.
    #[getter]
    fn summary(&self, py: Python<'_>) -> Py<PyAny> {
        self.summary.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("SamplerRun(points={})", self.timeseries.bind(py).len())
    }
}

/// Everything `flatscape.run` computed.
#[pyclass(frozen, module = "flatscape", name = "RunResult")]
pub struct RunResult {
    scenario: Py<PyScenario>,
    computed: Arc<Computed>,
    summary: Py<PyDict>,
    fp: Option<Py<FpSolution>>,
    sampler: Option<Py<SamplerRun>>,
    marginals: Option<Py<PyDict>>,
    marginals_y: Option<Py<PyDict>>,
    marginal_s: Option<Py<PyDict>>,
    sweep: Option<Py<PyDict>>,
}

/// `json.loads(text)`: exactly what `json.load` gives for summary.json (key order included).
fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// Named columns as a dict of 1-D float64 arrays, in order.
pub(crate) fn columns_to_dict<'py>(
    py: Python<'py>,
    cols: &Columns,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, values) in cols {
        d.set_item(name, values.clone().into_pyarray(py))?;
    }
    Ok(d)
}

impl RunResult {
    /// Wrap computed results; only the small columns are copied, not the density.
    pub fn new(py: Python<'_>, scenario: Py<PyScenario>, computed: Computed) -> PyResult<Self> {
        let computed = Arc::new(computed);
        let summary = json_loads(py, computed.summary_json())?
            .cast_into::<PyDict>()
            .map_err(|_| solver_error(py, "internal error: the summary is not a JSON object"))?
            .unbind();
        let fp = match computed.fp() {
            None => None,
            Some(fp) => {
                let (nx, ny) = (fp.x.len(), fp.y.len());
                let view = ArrayView2::from_shape((nx, ny), fp.density).map_err(|e| {
                    solver_error(py, &format!("internal error: density shape: {e}"))
                })?;
                let owner = Bound::new(
                    py,
                    Buffer {
                        _data: computed.clone(),
                    },
                )?;
                // SAFETY: `owner` holds an `Arc` of the data, which is never mutated or
                // reallocated; numpy keeps `owner` alive as the array's base.
                let density = unsafe { PyArray2::borrow_from_array(&view, owner.into_any()) };
                density.readwrite().make_nonwriteable();
                let current = match fp.current {
                    None => None,
                    Some(c) => {
                        let d = PyDict::new(py);
                        let field = |v: &[f64], rows: usize, cols: usize| {
                            numpy::ndarray::Array2::from_shape_vec((rows, cols), v.to_vec())
                                .map_err(|e| {
                                    solver_error(py, &format!("internal error: current: {e}"))
                                })
                        };
                        d.set_item("jx", field(&c.jx, nx - 1, ny)?.into_pyarray(py))?;
                        d.set_item("jy", field(&c.jy, nx, ny - 1)?.into_pyarray(py))?;
                        d.set_item("psi", field(&c.psi, nx - 1, ny - 1)?.into_pyarray(py))?;
                        Some(d.unbind())
                    }
                };
                Some(Py::new(
                    py,
                    FpSolution {
                        x: fp.x.into_pyarray(py).unbind(),
                        y: fp.y.into_pyarray(py).unbind(),
                        density: density.unbind(),
                        current,
                    },
                )?)
            }
        };
        let sampler = match computed.timeseries() {
            None => None,
            Some(ts) => {
                let d = PyDict::new(py);
                let int = |name: &str| ts.ints.iter().find(|(n, _)| n == name);
                if let Some((n, v)) = int("step") {
                    let v: Vec<i64> = v.iter().map(|&k| k as i64).collect();
                    d.set_item(n, v.into_pyarray(py))?;
                }
                if let Some((n, v)) = ts.floats.iter().find(|(n, _)| n == "t") {
                    d.set_item(n, v.clone().into_pyarray(py))?;
                }
                if let Some((n, v)) = int("alive") {
                    let v: Vec<i64> = v.iter().map(|&k| k as i64).collect();
                    d.set_item(n, v.into_pyarray(py))?;
                }
                for (n, v) in ts.floats.iter().filter(|(n, _)| n != "t") {
                    d.set_item(n, v.clone().into_pyarray(py))?;
                }
                let sub = summary
                    .bind(py)
                    .get_item("sampler")?
                    .map_or_else(|| py.None(), |s| s.unbind());
                Some(Py::new(
                    py,
                    SamplerRun {
                        timeseries: d.unbind(),
                        summary: sub,
                    },
                )?)
            }
        };
        let dict = |c: &Option<Columns>| -> PyResult<Option<Py<PyDict>>> {
            c.as_ref()
                .map(|c| columns_to_dict(py, c).map(Bound::unbind))
                .transpose()
        };
        Ok(Self {
            scenario,
            summary,
            fp,
            sampler,
            marginals: dict(&computed.marginals())?,
            marginals_y: dict(&computed.marginals_y())?,
            marginal_s: dict(&computed.marginal_s())?,
            sweep: dict(&computed.sweep())?,
            computed,
        })
    }
}

#[pymethods]
impl RunResult {
    /// The scenario that was run.
    #[getter]
    fn scenario(&self, py: Python<'_>) -> Py<PyScenario> {
        self.scenario.clone_ref(py)
    }

    /// summary.json as a dict.
    #[getter]
    fn summary(&self, py: Python<'_>) -> Py<PyDict> {
        self.summary.clone_ref(py)
    }

    /// The FP solution, or None when the scenario has no `[fokker_planck]`.
    #[getter]
    fn fp(&self, py: Python<'_>) -> Option<Py<FpSolution>> {
        self.fp.as_ref().map(|f| f.clone_ref(py))
    }

    /// The sampler's curves, or None when the scenario has no `[sampler]`.
    #[getter]
    fn sampler(&self, py: Python<'_>) -> Option<Py<SamplerRun>> {
        self.sampler.as_ref().map(|f| f.clone_ref(py))
    }

    /// The x-marginals (marginal_x.csv): `x`, then `fp`, `theory_paper`, `theory_reduced`,
    /// `sampler` for the parts that ran; an empty dict when neither FP nor theory ran.
    #[getter]
    fn marginals<'py>(&self, py: Python<'py>) -> Bound<'py, PyDict> {
        match &self.marginals {
            Some(d) => d.bind(py).clone(),
            None => PyDict::new(py),
        }
    }

    /// The y-marginals (marginal_y.csv): `y`, `fp`, and `sampler` when it ran; empty without FP.
    #[getter]
    fn marginals_y<'py>(&self, py: Python<'py>) -> Bound<'py, PyDict> {
        match &self.marginals_y {
            Some(d) => d.bind(py).clone(),
            None => PyDict::new(py),
        }
    }

    /// The densities along a curved valley of minima Γ (marginal_s.csv): `s` (arclength), `x`,
    /// `y` (the point of Γ), `fp` (FP density integrated across Γ; NaN without FP) and `theory`
    /// (the reduced theory along Γ); None without a `[valley_curve]` table.
    #[getter]
    fn marginal_s(&self, py: Python<'_>) -> Option<Py<PyDict>> {
        self.marginal_s.as_ref().map(|f| f.clone_ref(py))
    }

    /// The sweep table (sweep.csv columns; NaN where a column does not apply), or None.
    #[getter]
    fn sweep(&self, py: Python<'_>) -> Option<Py<PyDict>> {
        self.sweep.as_ref().map(|f| f.clone_ref(py))
    }

    /// Write exactly the files `flatscape run --out DIR` writes.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        let computed = self.computed.clone();
        py.detach(move || core::save(&computed, &dir))
            .map_err(pyo3::exceptions::PyOSError::new_err)
    }

    /// Pickling is refused with the reason: the result holds the solver's buffers.
    fn __reduce__(&self) -> PyResult<()> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "a RunResult cannot be pickled (it holds the solvers' buffers): send its scenario \
             (picklable) and run it there, save(dir) it, or use flatscape.sweep for sweeps",
        ))
    }

    fn __repr__(&self) -> String {
        let parts: Vec<&str> = [
            ("fp", self.fp.is_some()),
            ("marginals", self.marginals.is_some()),
            ("marginal_s", self.marginal_s.is_some()),
            ("sampler", self.sampler.is_some()),
            ("sweep", self.sweep.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, there)| there.then_some(n))
        .collect();
        format!(
            "RunResult(scenario={:?}, parts=[{}])",
            self.scenario.get().sc.name(),
            parts.join(", ")
        )
    }
}
