"""Vectorised NumPy peer of flatscape's 2-D `sgd` sampler (Eqs. 3, 7) on the paper valley.

L = ½ ε λ(0) x² + ½ λ(x) y², λ(x) = 8 − 2x² + x⁴, ε = 0.001; one step of every walker:
θ ← θ − η ∇L + η √(2σ) H ξ, ξ ~ N(0, I), plus the running sums of x, y after burn-in that the
Rust sampler also keeps. Prints walker-steps per second (wall clock, one process, NumPy's own
threading; the update is element-wise, so in practice one core).
usage: numpy_sgd.py [walkers] [steps]     (default 2048 walkers × 20000 steps, burn-in half)
"""

import sys
import time

import numpy as np


def run(walkers: int, steps: int, eta=0.01, sigma=0.2, eps=0.001, seed=1):
    rng = np.random.default_rng(seed)
    lam0 = 8.0
    x = np.full(walkers, 1.0)
    y = np.full(walkers, 0.1)
    sx = np.zeros(walkers)
    sy = np.zeros(walkers)
    xi = np.empty((2, walkers))
    scale = eta * np.sqrt(2.0 * sigma)
    burn = steps // 2
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        rng.standard_normal(out=xi)
        x2 = x * x
        lam = 8.0 + x2 * (-2.0 + x2)  # λ(x)
        dp = -4.0 + 4.0 * x2  # λ'(x)/x
        dpp = -4.0 + 12.0 * x2  # λ''(x)
        y2 = y * y
        gx = eps * lam0 * x + 0.5 * dp * x * y2
        gy = lam * y
        h11 = eps * lam0 + 0.5 * dpp * y2
        h12 = dp * x * y
        m1 = scale * xi[0]
        m2 = scale * xi[1]
        x, y = (
            x - eta * gx + (h11 * m1 + h12 * m2),
            y - eta * gy + (h12 * m1 + lam * m2),
        )
        if k > burn:
            sx += x
            sy += y
    seconds = time.perf_counter() - t0
    n = steps - burn
    return walkers * steps / seconds, float(np.mean(np.abs(sx / n)))


if __name__ == "__main__":
    walkers = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rate, x_abs = run(walkers, steps)
    print(f"numpy sgd 2-D: {rate:.3e} walker-steps/s ({walkers} walkers x {steps} steps, |x_ss| = {x_abs:.3f})")
