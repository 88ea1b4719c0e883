//! `flatscape.ExpressionLoss`: the compiled loss of `[landscape] kind = "expression"`, evaluated
//! on numpy arrays with its exact gradient and Hessian (the same code the solvers call).

use std::collections::BTreeMap;

use flatscape::landscape::expr::ExprLoss;
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::scenario_error;

/// What `__reduce__` returns: the class and the constructor's arguments.
type Reduced<'py> = (Bound<'py, PyAny>, (String, BTreeMap<String, f64>));

/// Points evaluated per instruction dispatch (the sampler's lane width).
const LANES: usize = 8;

/// A loss L(x, y) written as text, as in `[landscape] kind = "expression"`:
/// `ExpressionLoss("0.5*(x*y - 1)^2 + 0.5*eps*x^2", {"eps": 1e-3})`. Calling it gives L,
/// `gradient` ∇L and `hessian` the 2 × 2 Hessian, exact (forward-mode second-order jets), on
/// numpy arrays broadcast together. A bad expression raises ScenarioError (key `landscape.loss`,
/// the column inside the string in the message).
#[pyclass(frozen, module = "flatscape", name = "ExpressionLoss")]
pub struct ExpressionLoss {
    loss: ExprLoss,
}

/// x and y broadcast together, as contiguous float64 arrays.
fn broadcast<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<(PyReadonlyArrayDyn<'py, f64>, PyReadonlyArrayDyn<'py, f64>)> {
    let np = py.import("numpy")?;
    let both = np.call_method1("broadcast_arrays", (x, y))?;
    let as_f64 = |a: Bound<'py, PyAny>| -> PyResult<PyReadonlyArrayDyn<'py, f64>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("dtype", "float64")?;
        kwargs.set_item("order", "C")?;
        np.call_method("asarray", (a,), Some(&kwargs))?
            .cast_into::<PyArrayDyn<f64>>()
            .map_err(PyErr::from)
            .map(|a| a.readonly())
    };
    Ok((as_f64(both.get_item(0)?)?, as_f64(both.get_item(1)?)?))
}

impl ExpressionLoss {
    /// Jets of C components at every point, point-major (C values per point).
    fn jets<const C: usize>(&self, x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; x.len() * C];
        let mut regs = Vec::new();
        for (k, (xs, ys)) in x.chunks(LANES).zip(y.chunks(LANES)).enumerate() {
            let mut xl = [0.0; LANES];
            let mut yl = [0.0; LANES];
            xl[..xs.len()].copy_from_slice(xs);
            yl[..ys.len()].copy_from_slice(ys);
            let jet = self.loss.eval_lanes::<LANES, C>(&xl, &yl, &mut regs);
            for lane in 0..xs.len() {
                for (c, comp) in jet.iter().enumerate().take(C) {
                    out[(k * LANES + lane) * C + c] = comp[lane];
                }
            }
        }
        out
    }

    /// Evaluate jets of C components and return them with the broadcast shape + `tail`.
    fn evaluate<'py, const C: usize>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        pick: &[usize],
        tail: &[usize],
    ) -> PyResult<Bound<'py, PyAny>> {
        let (xa, ya) = broadcast(py, x, y)?;
        let shape: Vec<usize> = xa.shape().to_vec();
        let (xs, ys) = (xa.as_slice()?, ya.as_slice()?);
        let jets = py.detach(|| self.jets::<C>(xs, ys));
        let values: Vec<f64> = jets
            .chunks(C)
            .flat_map(|j| pick.iter().map(move |&c| j[c]))
            .collect();
        let full: Vec<usize> = shape.iter().chain(tail).copied().collect();
        let arr = ArrayD::from_shape_vec(IxDyn(&full), values)
            .map_err(|e| crate::errors::solver_error(py, &format!("internal error: {e}")))?;
        let arr = arr.into_pyarray(py).into_any();
        if full.is_empty() {
            // Two scalars in, a float out (as numpy's ufuncs give a scalar).
            return arr.call_method0("item");
        }
        Ok(arr)
    }
}

#[pymethods]
impl ExpressionLoss {
    #[new]
    #[pyo3(signature = (loss, params = None))]
    fn new(py: Python<'_>, loss: &str, params: Option<BTreeMap<String, f64>>) -> PyResult<Self> {
        let params = params.unwrap_or_default();
        ExprLoss::new("landscape", loss, &params)
            .map(|loss| Self { loss })
            .map_err(|e| {
                scenario_error(
                    py,
                    &format!("{}: {}", e.key, e.message),
                    Some(&e.key),
                    None,
                    None,
                )
            })
    }

    /// The text of the loss.
    #[getter]
    fn source(&self) -> &str {
        &self.loss.source
    }

    /// The named parameters and their values.
    #[getter]
    fn params(&self) -> BTreeMap<String, f64> {
        self.loss.params.clone()
    }

    /// L(x, y), with x and y broadcast together (a float for two scalars).
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.evaluate::<1>(py, x, y, &[0], &[])
    }

    /// ∇L(x, y): shape (..., 2) with [..., 0] = ∂L/∂x and [..., 1] = ∂L/∂y.
    fn gradient<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.evaluate::<3>(py, x, y, &[1, 2], &[2])
    }

    /// The Hessian of L at (x, y): shape (..., 2, 2), symmetric.
    fn hessian<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.evaluate::<6>(py, x, y, &[3, 4, 4, 5], &[2, 2])
    }

    fn __repr__(&self) -> String {
        if self.loss.params.is_empty() {
            format!("ExpressionLoss({:?})", self.loss.source)
        } else {
            format!(
                "ExpressionLoss({:?}, {:?})",
                self.loss.source, self.loss.params
            )
        }
    }

    /// Pickled as its text and parameters.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let this = slf.get();
        Ok((
            slf.get_type().into_any(),
            (this.loss.source.clone(), this.loss.params.clone()),
        ))
    }
}
