"""Shared fixtures: the repository's scenarios and the `flatscape` command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

# flatness-vs-delta-s.toml shrunk to seconds: a Δ_S sweep at two learning rates with FP, theory
# and SGD at every point (shared by the CLI-parity and the executor tests).
SMALL_DELTA_S_SWEEP = {
    "fokker_planck.x.cells": 64,
    "fokker_planck.y.cells": 32,
    "sampler.walkers": 8,
    "sampler.steps": 4000,
    "sampler.burn_in": 2000,
    "sweep.delta_s.points": 3,
    "sweep.eta.points": 2,
}

# summary.json keys that hold timings (they differ from run to run).
TIMING = re.compile(r"(^|_)seconds$|per_second$")


def strip_timings(value: Any) -> Any:
    """A copy of a summary without its timing keys."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items() if not TIMING.search(k)}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def assert_same_json(a: Any, b: Any, where: str = "summary") -> None:
    """Value-for-value equality; NaN equals NaN (null in JSON)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for n, (x, y) in enumerate(zip(a, b)):
            assert_same_json(x, y, f"{where}[{n}]")
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        pass
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def read_csv(path: Path) -> Dict[str, np.ndarray]:
    """A CSV file written by the CLI as named float columns (empty cells and `nan` → NaN)."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    rows = [[float(c) if c not in ("", "nan") else np.nan for c in ln.split(",")] for ln in lines[1:]]
    data = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {h: data[:, k] for k, h in enumerate(header)}


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `flatscape` binary (FLATSCAPE_CLI, else target/release/flatscape, built if missing)."""
    env = os.environ.get("FLATSCAPE_CLI")
    if env:
        return Path(env)
    exe = ROOT / "target" / "release" / "flatscape"
    if not exe.exists():
        cargo = shutil.which("cargo")
        if cargo is None:
            pytest.skip("no flatscape binary and no cargo to build it")
        subprocess.run(
            [cargo, "build", "--release", "--bin", "flatscape"], cwd=ROOT, check=True
        )
    return exe


def run_cli(cli: Path, scenario_toml: str, tmp: Path) -> Path:
    """Write a scenario, run `flatscape run` on it, return its output folder."""
    src = tmp / "scenario.toml"
    src.write_text(scenario_toml)
    out = tmp / "cli-out"
    subprocess.run(
        [str(cli), "run", str(src), "--out", str(out), "--quiet"], check=True, cwd=tmp
    )
    return out


def load_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)
