"""fs.run: threads, the GIL, Ctrl-C, memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numpy as np
import pytest

import flatscape as fs
from conftest import SCENARIOS


def small(file: str, **changes):
    return fs.Scenario.load(SCENARIOS / file).replace(changes)


def test_two_python_threads_run_at_once_and_match_the_sequential_results():
    a = small("hessian-valley.toml", **{"fokker_planck.x.cells": 320, "fokker_planck.y.cells": 120, "theory": None})
    b = small(
        "sampler-quadratic.toml",
    )
    seq = [fs.run(a, threads=1), fs.run(b, threads=1)]
    spans = {}
    results = {}

    def work(name, sc):
        t0 = time.perf_counter()
        results[name] = fs.run(sc, threads=1)
        spans[name] = (t0, time.perf_counter())

    ticks = 0
    threads = [threading.Thread(target=work, args=(n, s)) for n, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        ticks += 1  # the main thread keeps running Python: the GIL is free
        time.sleep(0.001)
    for t in threads:
        t.join()
    np.testing.assert_array_equal(results["a"].fp.density, seq[0].fp.density)
    for r, s in zip((results["a"], results["b"]), seq):
        assert r.summary.keys() == s.summary.keys()
    for k in ("fokker_planck",):
        assert results["a"].summary[k]["mean_abs_x"] == seq[0].summary[k]["mean_abs_x"]
    sb, rb = seq[1].summary["sampler"], results["b"].summary["sampler"]
    assert {k: v for k, v in sb.items() if "second" not in k} == {
        k: v for k, v in rb.items() if "second" not in k
    }
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    overlap = min(a1, b1) - max(a0, b0)
    print(f"thread a {a1 - a0:.2f} s, thread b {b1 - b0:.2f} s, overlap {overlap:.2f} s, main-thread ticks {ticks}")
    assert overlap > 0
    assert ticks > 10


LONG_RUN = textwrap.dedent(
    """
    import sys, flatscape as fs
    # 10^7 walkers x 5000 steps: minutes of work in short groups of walkers, between which the
    # sampler looks at the cancel flag.
    sc = fs.Scenario.load(sys.argv[1]).replace(
        {"sweep": None, "sampler.walkers": 10**7, "sampler.steps": 5000, "sampler.burn_in": 2500}
    )
    print("running", flush=True)
    {body}
    """
)


def _interrupt(body: str):
    script = LONG_RUN.replace("{body}", body)
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(SCENARIOS / "fig5b-phase-diagram.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "running"
    time.sleep(0.5)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return time.perf_counter() - t0, proc.returncode, out, err


def test_ctrl_c_raises_keyboard_interrupt_within_two_seconds():
    dt, code, _, err = _interrupt("fs.run(sc)")
    print(f"SIGINT to exit: {dt:.3f} s")
    assert "KeyboardInterrupt" in err
    assert code != 0
    assert dt < 2.0


def test_the_interpreter_stays_usable_after_ctrl_c():
    body = textwrap.dedent(
        """
        try:
            fs.run(sc)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        ok = fs.run(fs.Scenario.load(sys.argv[1].replace("fig5b-phase-diagram", "sampler-quadratic")))
        print("after", ok.summary["sampler"]["walkers"], flush=True)
        """
    )
    dt, code, out, err = _interrupt(body)
    assert code == 0, err
    assert out.split() == ["interrupted", "after", str(fs.Scenario.load(SCENARIOS / "sampler-quadratic.toml").to_dict()["sampler"]["walkers"])]


RSS_SCRIPT = textwrap.dedent(
    """
    import gc, os, sys
    import flatscape as fs

    def rss_mib():
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    sc = fs.Scenario.load(sys.argv[1]).replace(
        {"fokker_planck.x.cells": 400, "fokker_planck.y.cells": 300, "theory": None}
    )
    fs.run(sc)
    gc.collect()  # first-use imports (json, numpy internals) leave cycles once
    for _ in range(20):
        res = fs.run(sc)
        _ = res.fp.density.sum(), res.summary, res.marginals
        del res
        assert gc.collect() == 0  # no reference cycles: refcounting freed everything
        print(f"{rss_mib():.2f}", flush=True)
    """
)


def test_memory_does_not_grow_over_repeated_runs():
    # One malloc arena, so that RSS shows what is kept rather than how glibc spreads the LU
    # factor's ~25 MiB over per-thread arenas (that alone swings RSS by ±20 MiB).
    env = dict(os.environ, MALLOC_ARENA_MAX="1")
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(SCENARIOS / "hessian-valley.toml")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    rss = [float(v) for v in done.stdout.split()]
    print("RSS over 20 runs (MiB): " + " ".join(f"{r:.1f}" for r in rss))
    assert len(rss) == 20
    # One density is 400 x 300 x 8 B = 0.92 MiB: a leak of one per run would add 14 MiB over
    # the last 15 runs; glibc leaves plateaus of a few MiB.
    assert rss[-1] - rss[4] < 8.0


def test_results_free_the_solver_buffer_when_dropped():
    sc = small("hessian-valley.toml", **{"fokker_planck.x.cells": 64, "fokker_planck.y.cells": 32})
    res = fs.run(sc)
    density = res.fp.density
    owner = weakref.ref(density.base)  # the object that keeps the solver's buffer alive
    del res
    assert owner() is not None  # the array still needs it
    total = float(density.sum())
    del density
    assert owner() is None  # freed by refcounting alone, no cycle to wait for
    assert total > 0


def test_an_overflowing_operator_is_rejected_and_extreme_values_do_not_crash():
    sc = small("hessian-valley.toml", **{"fokker_planck.x.cells": 32, "fokker_planck.y.cells": 16})
    # D = Δ_S H² overflows: rejected when the scenario is built (it used to validate and then
    # fail in the solver as a singular matrix), naming the key and the point.
    with pytest.raises(fs.ScenarioError, match="beyond what the solver represents") as e:
        sc.replace({"landscape.lambda": [1e308, 1e308]})
    assert isinstance(e.value, ValueError) and e.value.key == "noise"
    # Extreme but valid inputs run to a result (divergent walkers are counted, not fatal).
    q = small("sampler-quadratic.toml", **{"sampler.walkers": 8, "sampler.steps": 200, "sampler.burn_in": 100})
    for changes in ({"noise.sigma": 1e300}, {"landscape.lambda": [1e308]}, {"sampler.stored_trajectories": 10**12}):
        res = fs.run(q.replace(changes))
        assert res.summary["sampler"]["walkers"] == 8
    assert fs.run(q.replace({"noise.sigma": 1e300})).summary["sampler"]["diverged_fraction"] == 1.0
