"""Independent checks in numpy/scipy: the FP density against closed forms."""

from __future__ import annotations

import numpy as np
import scipy.linalg

import flatscape as fs
from conftest import SCENARIOS


def valley_loss(x, y, epsilon, lam):
    """Eq. (8): L = ½ ε λ0 x² + ½ λ(x) y², λ(x) = Σ λ_n x^(2n)."""
    lam_x = sum(c * x ** (2 * n) for n, c in enumerate(lam))
    return 0.5 * epsilon * lam[0] * x**2 + 0.5 * lam_x * y**2


def test_isotropic_noise_gives_the_boltzmann_density():
    sc = fs.Scenario.load(SCENARIOS / "validation-isotropic-boltzmann.toml").replace(
        {"theory": None, "fokker_planck.x.cells": 96, "fokker_planck.y.cells": 64}
    )
    d = sc.to_dict()
    T = d["noise"]["temperature"]
    res = fs.run(sc)
    X, Y = np.meshgrid(res.fp.x, res.fp.y, indexing="ij")
    ref = np.exp(-valley_loss(X, Y, d["landscape"]["epsilon"], d["landscape"]["lambda"]) / T)
    dx, dy = res.fp.x[1] - res.fp.x[0], res.fp.y[1] - res.fp.y[0]
    ref /= ref.sum() * dx * dy
    err = np.max(np.abs(res.fp.density - ref)) / np.max(ref)
    print(f"max |P - exp(-L/T)/Z| / max P = {err:.3e}")
    assert err < 1e-8
    np.testing.assert_allclose(res.fp.density, ref, rtol=1e-8, atol=1e-8 * ref.max())


def ou_covariance_error(cells: int) -> float:
    """Relative error of the FP steady covariance against the Lyapunov solution."""
    eps, lam0 = 0.5, 2.0
    D = np.array([[0.05, 0.02], [0.02, 0.04]])
    sc = fs.Scenario.from_dict(
        {
            "name": "ou",
            "landscape": {"kind": "valley2d", "epsilon": eps, "lambda": [lam0]},
            "noise": {"kind": "constant", "d": D.tolist()},
            "fokker_planck": {
                "x": {"min": -1.5, "max": 1.5, "cells": cells},
                "y": {"min": -1.0, "max": 1.0, "cells": cells},
            },
        }
    )
    res = fs.run(sc)
    # dθ = −Aθ dt + √(2D) dW with A = ∇²L = diag(ε λ0, λ0): A Σ + Σ Aᵀ = 2D.
    A = np.diag([eps * lam0, lam0])
    sigma = scipy.linalg.solve_continuous_lyapunov(-A, -2.0 * D)
    X, Y = np.meshgrid(res.fp.x, res.fp.y, indexing="ij")
    w = res.fp.density / res.fp.density.sum()
    mx, my = (w * X).sum(), (w * Y).sum()
    cov = np.array(
        [
            [(w * (X - mx) ** 2).sum(), (w * (X - mx) * (Y - my)).sum()],
            [(w * (X - mx) * (Y - my)).sum(), (w * (Y - my) ** 2).sum()],
        ]
    )
    # The core's own moments agree with numpy's.
    np.testing.assert_allclose(res.summary["fokker_planck"]["cov"], cov, rtol=1e-9, atol=1e-15)
    return float(np.max(np.abs(cov - sigma)) / np.max(np.abs(sigma)))


def test_ornstein_uhlenbeck_covariance_solves_the_lyapunov_equation():
    coarse, fine = ou_covariance_error(48), ou_covariance_error(96)
    order = np.log2(coarse / fine)
    print(f"OU covariance: rel. error {coarse:.3e} (48²), {fine:.3e} (96²), order {order:.2f}")
    assert fine < 2e-3
    # Second-order scheme: halving the cells divides the error by about four.
    assert 1.7 < order < 2.5
