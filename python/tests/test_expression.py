"""Your own loss from Python: `ExpressionLoss` (exact derivatives on numpy arrays), the steady
probability current `FpSolution.current` and the density along a curved valley
`RunResult.marginal_s`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import flatscape as fs

from conftest import SCENARIOS

MF = "0.5*(x*y - 1)^2 + 0.5*eps*x^2"


def mf_closed_form(x: np.ndarray, y: np.ndarray, eps: float):
    """L, ∇L and H of ½(xy − 1)² + ½ε x² by hand."""
    r = x * y - 1.0
    loss = 0.5 * r**2 + 0.5 * eps * x**2
    grad = np.stack([r * y + eps * x, r * x], axis=-1)
    hxx = y**2 + eps
    hxy = 2.0 * x * y - 1.0
    hyy = x**2
    hess = np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)
    return loss, grad, hess


def test_expression_loss_matches_closed_form_on_broadcast_arrays() -> None:
    eps = 1e-3
    f = fs.ExpressionLoss(MF, {"eps": eps})
    rng = np.random.default_rng(3)
    x = rng.uniform(-2.0, 2.0, size=(7, 1))
    y = rng.uniform(-2.0, 2.0, size=(1, 5))
    loss, grad, hess = mf_closed_form(*np.broadcast_arrays(x, y), eps)
    assert f(x, y).shape == (7, 5)
    np.testing.assert_allclose(f(x, y), loss, rtol=1e-14, atol=1e-15)
    assert f.gradient(x, y).shape == (7, 5, 2)
    np.testing.assert_allclose(f.gradient(x, y), grad, rtol=1e-14, atol=1e-14)
    assert f.hessian(x, y).shape == (7, 5, 2, 2)
    np.testing.assert_allclose(f.hessian(x, y), hess, rtol=1e-14, atol=1e-14)
    # Two scalars in, a float out; a list is an array.
    assert isinstance(f(1.0, 2.0), float)
    assert f(1.0, 2.0) == pytest.approx(0.5 * 1.0 + 0.5 * eps)
    np.testing.assert_allclose(f([1.0, 2.0], 0.5), [0.125 + 0.5 * eps, 2 * eps])
    assert f.source == MF and f.params == {"eps": eps}


def test_expression_loss_derivatives_against_central_differences() -> None:
    f = fs.ExpressionLoss("(x^2 - 1)^2 + 0.5*(y - x^2)^2 + 0.3*x + sin(x*y)*exp(-y^2/4)")
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-1.5, 1.5, size=(2, 40))
    h = 1e-5
    g = f.gradient(x, y)
    np.testing.assert_allclose(g[:, 0], (f(x + h, y) - f(x - h, y)) / (2 * h), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(g[:, 1], (f(x, y + h) - f(x, y - h)) / (2 * h), rtol=1e-7, atol=1e-8)
    hs = f.hessian(x, y)
    dgx = (f.gradient(x + h, y) - f.gradient(x - h, y)) / (2 * h)
    dgy = (f.gradient(x, y + h) - f.gradient(x, y - h)) / (2 * h)
    np.testing.assert_allclose(hs[:, 0, :], dgx, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(hs[:, 1, :], dgy, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(hs[:, 0, 1], hs[:, 1, 0])


def test_expression_loss_errors_are_scenario_errors_and_it_pickles() -> None:
    with pytest.raises(fs.ScenarioError, match="column 3") as e:
        fs.ExpressionLoss("x^^2")
    assert e.value.key == "landscape.loss"
    with pytest.raises(fs.ScenarioError, match="unknown name `foo`"):
        fs.ExpressionLoss("x + foo")
    with pytest.raises(fs.ScenarioError, match="reserved") as e:
        fs.ExpressionLoss("x + a", {"x": 1.0})
    assert e.value.key == "landscape.params.x"
    with pytest.raises(fs.ScenarioError):
        fs.ExpressionLoss("")
    with pytest.raises(TypeError):
        fs.ExpressionLoss(MF, {"eps": "small"})  # type: ignore[dict-item]
    f = fs.ExpressionLoss(MF, {"eps": 0.25})
    g = pickle.loads(pickle.dumps(f))
    assert g.source == MF and g.params == {"eps": 0.25} and g(2.0, 1.0) == f(2.0, 1.0)


def small_mf(noise: dict) -> fs.Scenario:
    """The shipped matrix-factorisation scenario on a coarse grid, FP and curve only."""
    sc = fs.Scenario.load(SCENARIOS / "expression-matrix-factorisation.toml")
    d = sc.to_dict()
    d.pop("sampler")
    d["noise"] = noise
    d["fokker_planck"]["x"]["cells"] = 96
    d["fokker_planck"]["y"]["cells"] = 96
    d["valley_curve"]["points"] = 40
    return fs.Scenario.from_dict(d)


def test_current_and_marginal_s_from_a_run() -> None:
    res = fs.run(small_mf({"kind": "hessian", "eta": 0.1, "sigma": 0.05}))
    fp = res.fp
    assert fp is not None and fp.current is not None
    nx, ny = fp.density.shape
    jx, jy, psi = fp.current["jx"], fp.current["jy"], fp.current["psi"]
    assert jx.shape == (nx - 1, ny) and jy.shape == (nx, ny - 1) and psi.shape == (nx - 1, ny - 1)
    # summary.json's current_l1 recomputed from the face fluxes (walls carry no flux).
    dx, dy = fp.x[1] - fp.x[0], fp.y[1] - fp.y[0]
    jxp = np.pad(jx, ((1, 1), (0, 0)))
    jyp = np.pad(jy, ((0, 0), (1, 1)))
    cx = 0.5 * (jxp[:-1, :] + jxp[1:, :])
    cy = 0.5 * (jyp[:, :-1] + jyp[:, 1:])
    l1 = np.hypot(cx, cy).sum() * dx * dy
    summary = res.summary["fokker_planck"]
    assert l1 == pytest.approx(summary["current_l1"], rel=1e-12)
    assert np.abs(psi).max() == pytest.approx(summary["circulation"], rel=1e-12)
    # Hessian noise leaves a current behind: not small against the density's scale.
    assert summary["current_l1"] > 1e-3
    # Steady state: the discrete divergence of J vanishes to solver precision.
    div = np.diff(jxp, axis=0) / dx + np.diff(jyp, axis=1) / dy
    assert np.abs(div).max() < 1e-8 * max(np.abs(jx).max(), np.abs(jy).max()) / min(dx, dy)

    ms = res.marginal_s
    assert ms is not None and list(ms) == ["s", "x", "y", "fp", "theory", "theory_homogenised"]
    np.testing.assert_allclose(ms["x"] * ms["y"], 1.0, atol=1e-9)  # points of Γ: xy = 1
    # Both densities along Γ peak at the balanced point x = y = 1.
    for col in ("fp", "theory", "theory_homogenised"):
        k = int(np.argmax(ms[col]))
        assert abs(ms["x"][k] - 1.0) < 0.05, (col, ms["x"][k])
    assert "marginal_s" in repr(res)


def test_isotropic_noise_leaves_no_current() -> None:
    res = fs.run(small_mf({"kind": "isotropic", "temperature": 0.005}))
    summary = res.summary["fokker_planck"]
    assert summary["current_l1"] < 1e-10
    assert res.fp is not None and res.fp.current is not None
    assert np.abs(res.fp.current["jx"]).max() < 1e-10


def test_transient_run_and_no_curve_give_none() -> None:
    sc = fs.Scenario.load(SCENARIOS / "anisotropic-valley.toml")
    d = sc.to_dict()
    d.pop("sampler", None)
    d.pop("theory", None)
    d["fokker_planck"]["x"]["cells"] = 32
    d["fokker_planck"]["y"]["cells"] = 32
    d["fokker_planck"]["steady"] = False
    res = fs.run(fs.Scenario.from_dict(d))
    assert res.fp is not None and res.fp.current is None
    assert res.marginal_s is None
