"""fs.run gives the CLI's numbers: summary.json value for value (timings aside), density.npy
bit for bit, the CSV columns exactly (the CLI prints shortest round-trip numbers), and `save`
writes the CLI's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flatscape as fs
from conftest import SCENARIOS, SMALL_DELTA_S_SWEEP, assert_same_json, load_json, read_csv, run_cli, strip_timings

# Three shipped scenarios, shrunk so that the whole comparison takes a few seconds.
CASES = {
    # FP only (the theory section removed).
    "fp-only": (
        "hessian-valley.toml",
        {"theory": None, "fokker_planck.x.cells": 160, "fokker_planck.y.cells": 60},
    ),
    # FP + theory + Langevin sampler on one flat well.
    "fp-theory-sampler": (
        "sampler-langevin-hessian.toml",
        {
            "fokker_planck.x.cells": 120,
            "fokker_planck.y.cells": 60,
            "sampler.walkers": 64,
            "sampler.steps": 20000,
            "sampler.burn_in": 5000,
        },
    ),
    # A Δ_S sweep at two learning rates, with FP, theory and SGD at every point.
    "sweep": (
        "flatness-vs-delta-s.toml",
        SMALL_DELTA_S_SWEEP,
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, cli, tmp_path_factory):
    file, changes = CASES[request.param]
    sc = fs.Scenario.load(SCENARIOS / file).replace(changes)
    tmp = tmp_path_factory.mktemp(request.param)
    out = run_cli(cli, sc.to_toml(), tmp)
    return request.param, sc, fs.run(sc), out, tmp


def test_summary_equals_summary_json(case):
    name, _, res, out, _ = case
    cli_summary = load_json(out / "summary.json")
    assert_same_json(strip_timings(res.summary), strip_timings(cli_summary))
    # The parts that ran are the ones the case was chosen for.
    expected = {
        "fp-only": {"fokker_planck"},
        "fp-theory-sampler": {"fokker_planck", "theory", "sampler"},
        "sweep": {"fokker_planck", "theory", "sampler", "sweep_points"},
    }[name]
    assert expected <= set(res.summary)
    if name == "fp-only":
        assert "theory" not in res.summary and "sampler" not in res.summary
    if name == "sweep":
        assert res.summary["sweep_points"] == 6


def test_density_equals_density_npy_exactly(case):
    _, sc, res, out, _ = case
    npy = np.load(out / "density.npy")
    d = res.fp.density
    assert d.dtype == np.float64 and d.shape == npy.shape
    assert d.shape == (sc.to_dict()["fokker_planck"]["x"]["cells"], sc.to_dict()["fokker_planck"]["y"]["cells"])
    assert np.array_equal(d, npy)
    # Cell centres and normalisation: Σ P dx dy = 1.
    dx, dy = res.fp.x[1] - res.fp.x[0], res.fp.y[1] - res.fp.y[0]
    assert abs(d.sum() * dx * dy - 1.0) < 1e-10
    assert not d.flags.writeable


def test_marginals_and_tables_equal_the_csv_files(case):
    _, _, res, out, _ = case
    csv = read_csv(out / "marginal_x.csv")
    assert list(res.marginals) == list(csv)
    for k, col in csv.items():
        np.testing.assert_array_equal(res.marginals[k], col)
    csv_y = read_csv(out / "marginal_y.csv")
    assert list(res.marginals_y) == list(csv_y)
    for k, col in csv_y.items():
        np.testing.assert_array_equal(res.marginals_y[k], col)
    if res.sampler is not None:
        ts = read_csv(out / "timeseries.csv")
        assert list(res.sampler.timeseries) == list(ts)
        for k, col in ts.items():
            np.testing.assert_array_equal(res.sampler.timeseries[k], col)
        assert res.sampler.timeseries["step"].dtype == np.int64
    if res.sweep is not None:
        sw = read_csv(out / "sweep.csv")
        assert list(res.sweep) == list(sw)
        for k, col in sw.items():
            np.testing.assert_array_equal(res.sweep[k], col)


def test_save_writes_the_files_of_the_cli(case):
    _, _, res, out, tmp = case
    saved = tmp / "saved"
    res.save(saved)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())
    for n in names:
        if n.endswith((".csv", ".npy")):
            assert (saved / n).read_bytes() == (out / n).read_bytes(), n
    assert_same_json(
        strip_timings(load_json(saved / "summary.json")), strip_timings(load_json(out / "summary.json"))
    )
