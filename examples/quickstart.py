"""Quick start: load a shipped scenario, lower the SGD noise σ, run it, plot the results.

    pip install ./python matplotlib
    python examples/quickstart.py [output.png]

The x-marginal along the valley from the Fokker–Planck steady state and the two theory levels
(left), and the density P(x, y) with the valley floor (right).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flatscape as fs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("quickstart.png")

# The paper's valley with Hessian-aligned SGD noise; σ = 0.1 keeps Δ_S = ησ = 0.001 above the
# transition Δ_S* = 0.0005, so the density still leaves x* = 0 for the flatter region.
sc = fs.Scenario.load(ROOT / "scenarios" / "hessian-valley.toml")
sc = sc.replace({"noise.sigma": 0.1, "fokker_planck.x.cells": 320, "fokker_planck.y.cells": 160})
res = fs.run(sc)

fp = res.summary["fokker_planck"]
print(f"{sc.name}: σ = 0.1, <|x|> = {fp['mean_abs_x']:.4f}, mode |x| = {fp['mode_abs_x']:.4f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
m = res.marginals
left.plot(m["x"], m["fp"], "k-", lw=2, label="Fokker–Planck")
for key, style, label in (
    ("theory_paper", ":", "theory, paper level (Eq. 13)"),
    ("theory_reduced", "--", "theory, reduced 1-D equation"),
):
    if key in m and np.isfinite(m[key]).any():
        left.plot(m["x"], m[key], style, lw=1.8, label=label)
left.set_xlabel("x (degenerate direction)")
left.set_ylabel("p(x)")
left.set_title(f"x-marginal, Δ_S = {0.01 * 0.1:g}")
left.legend()

d = res.fp
mesh = right.pcolormesh(d.x, d.y, d.density.T, shading="auto", cmap="viridis")
right.axhline(0.0, color="w", lw=0.5, ls=":")
right.set_ylim(-0.3, 0.3)
right.set_xlabel("x (degenerate direction)")
right.set_ylabel("y (sharp direction)")
right.set_title("steady density P(x, y)")
fig.colorbar(mesh, ax=right, label="P")
fig.savefig(out, dpi=110)
print(f"wrote {out}")
