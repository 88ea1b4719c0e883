#!/usr/bin/env python3
"""Compare two output folders of `flatscape figures` (or `run`): for every CSV the largest
relative difference per numeric column, for every .npy the largest relative difference, and
whether each PNG/SVG is byte-identical. Timing fields (summary.json) are not compared.

usage: scripts/compare-outputs.py OLD_DIR NEW_DIR
"""
import csv
import filecmp
import sys
from pathlib import Path

import numpy as np


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    r = np.where(scale > 0, d / np.where(scale > 0, scale, 1), 0.0)
    r[both_nan] = 0.0
    return float(np.nanmax(r)) if r.size else 0.0


def main(old, new):
    old, new = Path(old), Path(new)
    worst, n_same, n_diff = 0.0, 0, 0
    for f in sorted(p for p in old.rglob("*") if p.is_file()):
        rp = f.relative_to(old)
        g = new / rp
        if not g.exists():
            print(f"MISSING {rp}")
            n_diff += 1
            continue
        if f.name == "summary.json":
            continue
        if filecmp.cmp(f, g, shallow=False):
            n_same += 1
            continue
        n_diff += 1
        if f.suffix == ".csv":
            ra, rb = list(csv.reader(open(f))), list(csv.reader(open(g)))
            if len(ra) != len(rb) or ra[0] != rb[0]:
                print(f"SHAPE {rp}")
                continue
            for j, name in enumerate(ra[0]):
                try:
                    a = [float(r[j]) for r in ra[1:]]
                    b = [float(r[j]) for r in rb[1:]]
                except ValueError:
                    continue
                m = rel(a, b)
                worst = max(worst, m)
                if m > 0:
                    print(f"{rp}: column {name}: max rel diff {m:.2e}")
        elif f.suffix == ".npy":
            a, b = np.load(f), np.load(g)
            m = rel(a, b) if a.shape == b.shape else float("inf")
            worst = max(worst, m)
            print(f"{rp}: max rel diff {m:.2e}")
        else:
            print(f"DIFFERENT BYTES {rp}")
    print(f"{n_same} files identical, {n_diff} differ; largest numeric relative difference {worst:.2e}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
