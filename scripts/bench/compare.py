"""Driver of scripts/bench-vs-scipy: alternate flatscape and the SciPy peer on each grid."""

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

SCENARIO = """name = "bench"
seed = 1
[landscape]
kind = "valley2d"
epsilon = 0.0
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "anisotropic"
delta = 0.01
kappa = 4.0
[fokker_planck]
x = {{ min = -1.6, max = 1.6, cells = {n} }}
y = {{ min = -0.25, max = 0.25, cells = {n} }}
steady = true
symmetry = "{symmetry}"
"""


def timed(cmd):
    """Run `cmd` under /usr/bin/time; return (stdout, peak RSS in MB)."""
    res = subprocess.run(["/usr/bin/time", "-f", "RSS %M", *cmd], capture_output=True, text=True, check=True)
    rss = [l for l in res.stderr.splitlines() if l.startswith("RSS ")][-1]
    return res.stdout, int(rss.split()[1]) / 1024.0


def flatscape(binary, n, work, symmetry):
    """A fresh `flatscape run`: `symmetry` "auto" solves the quarter-grid sector (the scenario is
    symmetric in x and y), "off" the whole grid as SciPy does."""
    scen = work / f"s{n}-{symmetry}.toml"
    scen.write_text(SCENARIO.format(n=n, symmetry=symmetry))
    out = work / f"fs{n}-{symmetry}"
    _, rss = timed([binary, "run", str(scen), "--out", str(out), "--quiet"])
    summary = json.loads(next(out.rglob("summary.json")).read_text())
    density = np.load(next(out.rglob("density.npy")))
    return summary["fokker_planck"]["solve_seconds"], rss, density


def scipy_peer(n, work):
    npy = work / f"sp{n}.npy"
    stdout, rss = timed([sys.executable, str(HERE / "scipy_reference.py"), str(n), "--out", str(npy)])
    return json.loads(stdout)["total_seconds"], rss, np.load(npy)


def main():
    binary = sys.argv[1]
    grids = [int(a) for a in sys.argv[2:]] or [128, 256, 512, 1024]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in grids:
            fs_t, fs_rss, fs_p = flatscape(binary, n, work, "auto")
            sp_t, sp_rss, sp_p = scipy_peer(n, work)
            wg_t, wg_rss, wg_p = flatscape(binary, n, work, "off")
            diff = float(np.max(np.abs(fs_p - sp_p)) / np.max(np.abs(sp_p)))
            wg_diff = float(np.max(np.abs(wg_p - sp_p)) / np.max(np.abs(sp_p)))
            rows.append((n, fs_t, sp_t, fs_rss, sp_rss, diff, wg_t, wg_rss, wg_diff))
            print(f"{n}²: flatscape {fs_t:.3f} s (whole grid {wg_t:.3f} s), SciPy {sp_t:.3f} s", file=sys.stderr)
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Steady FP solve, anisotropic valley (Δ = 0.01, κ = 4, ε = 0); {datetime.date.today()}, "
          f"{platform.machine()} {cpu}, {os.cpu_count()} cores, load average {load:.1f} at the end.")
    print("flatscape: `solve_seconds` of a fresh `flatscape run` (assembly + LU + solve), with the default "
          "`symmetry = \"auto\"` (the generator commutes with x → −x and y → −y here, so the quarter-grid "
          "sector even under both is solved and unfolded) and with `symmetry = \"off\"` (the whole grid, "
          "the general path for asymmetric problems); SciPy: NumPy assembly + SuperLU (splu, COLAMD) of the "
          "whole-grid operator and the same shifted inverse iteration, in its own process.\n")
    print("| cells | flatscape s | whole grid s | SciPy s | SciPy / flatscape | SciPy / whole grid "
          "| flatscape RSS MB | whole grid RSS MB | SciPy RSS MB | max abs(ΔP) / max P (sector, whole) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, fs_t, sp_t, fs_rss, sp_rss, diff, wg_t, wg_rss, wg_diff in rows:
        print(f"| {n}² | {fs_t:.3f} | {wg_t:.3f} | {sp_t:.3f} | {sp_t / fs_t:.1f}× | {sp_t / wg_t:.1f}× "
              f"| {fs_rss:.0f} | {wg_rss:.0f} | {sp_rss:.0f} | {diff:.1e}, {wg_diff:.1e} |")
    cells = np.array([r[0] ** 2 for r in rows], dtype=float)
    fs_times = np.array([r[1] for r in rows])
    sp_times = np.array([r[2] for r in rows])
    wg_times = np.array([r[6] for r in rows])
    if len(rows) >= 2:
        slope = lambda t: np.polyfit(np.log(cells), np.log(t), 1)[0]
        fs_slope, sp_slope, wg_slope = slope(fs_times), slope(sp_times), slope(wg_times)
        print(f"\nfitted slopes of log t vs log cells: flatscape {fs_slope:.2f}, whole grid {wg_slope:.2f}, "
              f"SciPy {sp_slope:.2f}")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
        ax.loglog(cells, fs_times, "o-", label=f"flatscape, symmetry sector (slope {fs_slope:.2f})")
        ax.loglog(cells, wg_times, "^-", label=f"flatscape, whole grid (slope {wg_slope:.2f})")
        ax.loglog(cells, sp_times, "s--", label=f"SciPy + SuperLU, whole grid (slope {sp_slope:.2f})")
        # SciPy's time over each flatscape path's, next to that path's marker.
        for n, fs_t, sp_t, _, _, _, wg_t, *_ in rows:
            for t, dy in ((fs_t, -8), (wg_t, 8)):
                ax.annotate(f"{sp_t / t:.0f}×", (n * n, t), textcoords="offset points",
                            xytext=(6, dy), fontsize=8, va="center")
        ax.set_xlabel("grid cells")
        ax.set_ylabel("steady solve, seconds")
        ax.set_title("Steady Fokker–Planck solve: flatscape vs SciPy (same operator)\n"
                     "labels: SciPy time / flatscape time", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        out = ROOT / "output" / "bench-vs-scipy.png"
        fig.savefig(out)
        print(f"figure: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
