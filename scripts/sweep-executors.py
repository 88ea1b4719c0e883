#!/usr/bin/env python3
"""Throughput of fs.sweep on executors, and its per-point overhead.

The 10^4-point sweep of scripts/sweep-throughput.sh (100 x 100 (sigma, eta) points of a 4-walker,
200-step SGD sampler on a small N-D valley, no theory columns) computed
  - in process (executor=None) on 1 and 2 Rust threads,
  - on a ProcessPoolExecutor (spawned workers) and a dask LocalCluster (threads_per_worker=1)
    of 1 and 2 workers, with the default chunk size (16 tasks per worker),
then the overhead per point of the executor path (payload + call + result), measured in one
process on 1-point tasks: pickle the task, unpickle, run, pickle the result, unpickle, add it to
the job — against the same points computed in process.

    python scripts/sweep-executors.py [--points-side 100] [--no-dask]

Every table is checked to be bit-identical to the in-process one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import time
import timeit
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import flatscape as fs

# The sweep of scripts/sweep-throughput.sh; `points` is set per measurement.
SCENARIO = Path(__file__).with_name("bench") / "throughput-nd.toml"


def scenario(points_side: int) -> "fs.Scenario":
    """The throughput sweep with points_side x points_side (sigma, eta) points."""
    return fs.Scenario.load(SCENARIO).replace(
        {"sweep.sigma.points": points_side, "sweep.eta.points": points_side}
    )


def same(a, b):
    return list(a) == list(b) and all(
        np.array_equal(a[k].view(np.uint64), b[k].view(np.uint64)) for k in a
    )


REPEAT = 3


def timed(f, repeat=1):
    """f's result and its best wall time of `repeat` calls (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-side", type=int, default=100)
    ap.add_argument("--overhead-points", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=REPEAT)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    sc = scenario(args.points_side)
    n = args.points_side**2
    rows = []

    r = args.repeat
    ref, dt = timed(lambda: fs.sweep(sc, threads=1), r)
    rows.append(("in process, 1 thread (executor=None, threads=1)", dt))
    got, dt = timed(lambda: fs.sweep(sc, threads=2), r)
    assert same(got, ref)
    rows.append(("in process, 2 threads (executor=None)", dt))

    spawn = multiprocessing.get_context("spawn")
    for w in (1, 2):
        with ProcessPoolExecutor(w, mp_context=spawn) as pool:
            pool.submit(int).result()  # workers started before the clock
            list(pool.map(abs, range(w * 4)))
            got, dt = timed(lambda: fs.sweep(sc, pool), r)
        assert same(got, ref)
        rows.append((f"ProcessPoolExecutor({w}), default chunks", dt))

    if not args.no_dask:
        import distributed

        for w in (1, 2):
            with distributed.LocalCluster(
                n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster, distributed.Client(cluster) as client:
                got, dt = timed(lambda: fs.sweep(sc, client), r)
                assert same(got, ref)
                rows.append((f"dask LocalCluster({w} x 1 thread), default chunks", dt))
                m = min(args.overhead_points, n)
                sub = scenario(int(m**0.5))
                m = int(m**0.5) ** 2
                _, dt = timed(lambda: fs.sweep(sub, client, chunksize=1))
                rows.append((f"dask LocalCluster({w} x 1 thread), 1-point tasks ({m} points)", dt * n / m))

    print(f"{n} points, {sc.name}")
    print("| how | points/s | wall (s) |")
    print("|---|---|---|")
    for what, dt in rows:
        print(f"| {what} | {n / dt:.0f} | {dt:.2f} |")

    # Overhead of the executor path (payload + call + result) measured piece by piece in one
    # process, best of `repeat` timeit runs: the call of an empty task (GIL release, plan cache,
    # pool, result), pickling the task and its result to and fro, and `add` (checks, rows).
    text = job_text(sc)
    empty = fs.SweepTask(text, [])
    empty.run()
    call = best_of(lambda: empty.run(), r)
    _, local_all = timed(lambda: fs._flatscape._SweepJob(sc).run_local(1), r)
    print(f"in process, 1 thread: {local_all / n * 1e3:.3f} ms per point")
    for size in (1, 16, 313):
        task = fs.SweepTask(text, list(range(size)))
        res = task.run()
        ship = best_of(lambda: pickle.loads(pickle.dumps(task)), r) + best_of(
            lambda: pickle.loads(pickle.dumps(res)), r
        )
        add = best_of(lambda: fs._flatscape._SweepJob(sc).add(res), r) - best_of(
            lambda: fs._flatscape._SweepJob(sc), r
        )
        per_task = call + ship + add
        print(
            f"{size:4d}-point tasks: {per_task / size * 1e3:.4f} ms per point "
            f"(call {call * 1e3:.3f} + pickle {ship * 1e3:.3f} + add {add * 1e3:.3f} ms per task; "
            f"task {len(pickle.dumps(task))} B, result {len(pickle.dumps(res))} B pickled)"
        )


def best_of(f, repeat: int, number: int = 200) -> float:
    """Seconds per call of f, best of `repeat` timeit runs."""
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number


def job_text(sc: fs.Scenario) -> str:
    return fs._flatscape._SweepJob(sc).tasks(1)[0].scenario_toml


if __name__ == "__main__":
    main()
