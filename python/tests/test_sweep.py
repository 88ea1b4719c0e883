"""fs.sweep: a sweep's points mapped over executors (in process, ProcessPoolExecutor, dask)
give sweep.csv's columns bit for bit; `out=` writes the point files of `flatscape sweep run`,
which `flatscape sweep merge` turns into the CLI's sweep.csv byte for byte."""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import flatscape as fs
from conftest import SCENARIOS, SMALL_DELTA_S_SWEEP, read_csv, run_cli

# A 9 × 7 (σ, η) sweep of a short SGD sampler on a small N-D valley (no theory columns, so
# those are empty cells, NaN): 63 points in a fraction of a second.
ND_SWEEP = textwrap.dedent(
    """
    name = "sweep-nd"
    seed = 11
    [landscape]
    kind = "valley"
    n_s = 2
    n_f = 2
    epsilon = 1.0e-4
    seed = 1
    [noise]
    kind = "hessian"
    eta = 0.01
    sigma = 0.1
    [sampler]
    kind = "sgd"
    walkers = 8
    steps = 400
    burn_in = 200
    start = [0.1, 1.0]
    stored_trajectories = 0
    [sweep]
    sigma = { min = 0.0, max = 0.2, points = 9 }
    eta = { min = 0.005, max = 0.06, points = 7 }
    """
)


@pytest.fixture(scope="module")
def nd(cli, tmp_path_factory):
    """The scenario, the CLI's sweep.csv (path) and its columns."""
    tmp = tmp_path_factory.mktemp("nd")
    out = run_cli(cli, ND_SWEEP, tmp)
    return fs.Scenario.from_toml(ND_SWEEP), out / "sweep.csv", read_csv(out / "sweep.csv")


def assert_same_table(got, want):
    """Same columns in the same order, every value the same float64 bits (NaN for empty)."""
    assert list(got) == list(want)
    for name in want:
        a, b = np.asarray(got[name]), np.asarray(want[name])
        assert a.dtype == np.float64 and a.shape == b.shape, name
        assert np.array_equal(a.view(np.uint64), b.view(np.uint64)), name


def spawn_pool(n: int) -> ProcessPoolExecutor:
    """Worker processes that start fresh, like those of a cluster."""
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def test_in_process_sweep_is_the_cli_table(nd):
    sc, _, want = nd
    assert_same_table(fs.sweep(sc), want)
    assert_same_table(fs.sweep(sc, threads=1), want)
    assert_same_table(fs.run(sc).sweep, want)


def test_process_pool_reproduces_the_cli_table(nd):
    sc, _, want = nd
    seen = []
    with spawn_pool(2) as pool:
        got = fs.sweep(sc, pool, chunksize=5, progress=lambda d, t: seen.append((d, t)))
    assert_same_table(got, want)
    # 63 points in 13 tasks: a report before the first and after each one.
    assert seen[0] == (0, 63) and seen[-1] == (63, 63) and len(seen) == 14
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_dask_local_cluster_reproduces_the_cli_table(nd):
    distributed = pytest.importorskip("distributed")
    sc, _, want = nd
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        got = fs.sweep(sc, client)
        assert_same_table(got, want)
        # Tasks of one point each: 63 round trips through the scheduler.
        assert_same_table(fs.sweep(sc, client, chunksize=1), want)


def test_out_folder_merges_with_the_cli_to_the_same_sweep_csv(nd, cli, tmp_path):
    sc, cli_csv, want = nd
    out = tmp_path / "sweep"
    with spawn_pool(2) as pool:
        assert_same_table(fs.sweep(sc, pool, out=out, chunksize=8), want)
    manifest = (out / "manifest.json").read_text()
    assert '"total_points":63' in manifest.replace(" ", "")
    assert len(list((out / "points").rglob("*.json"))) == 63
    # The CLI finds nothing to do, and merges to run's bytes.
    src = tmp_path / "sc.toml"
    src.write_text(sc.to_toml())
    done = subprocess.run(
        [str(cli), "sweep", "run", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "63 already done" in done.stdout
    subprocess.run([str(cli), "sweep", "merge", str(out), "--quiet"], check=True)
    assert (out / "sweep.csv").read_bytes() == cli_csv.read_bytes()


def test_cli_shard_and_python_share_a_folder_and_only_missing_points_are_computed(
    nd, cli, tmp_path
):
    sc, cli_csv, want = nd
    src = tmp_path / "sc.toml"
    src.write_text(ND_SWEEP)
    out = tmp_path / "sweep"
    # Shard 1 of 3 by the CLI (ids 0, 3, 6, …: 21 points), then one file truncated.
    subprocess.run(
        [str(cli), "sweep", "run", str(src), "--out", str(out), "--shard", "1/3", "--quiet"],
        check=True,
    )
    job = fs._flatscape._SweepJob(sc, out)
    truncated = Path(job.point_path(3))
    truncated.write_text(truncated.read_text()[:40])
    job = fs._flatscape._SweepJob(sc, out)
    assert (job.reused, job.corrupt, job.done, job.total) == (20, 1, 20, 63)
    assert sorted(job.todo()) == [i for i in range(63) if i % 3 != 0 or i == 3]

    computed = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, task, *args, **kwargs):
            computed.extend(task.ids)
            return super().submit(fn, task, *args, **kwargs)

    with CountingPool(2) as pool, pytest.warns(RuntimeWarning, match="1 point file"):
        assert_same_table(fs.sweep(sc, pool, out=out), want)
    assert sorted(computed) == sorted(job.todo())
    subprocess.run([str(cli), "sweep", "merge", str(out), "--quiet"], check=True)
    assert (out / "sweep.csv").read_bytes() == cli_csv.read_bytes()
    # Everything is there now: nothing is submitted.
    computed.clear()
    with CountingPool(2) as pool:
        assert_same_table(fs.sweep(sc, pool, out=out), want)
    assert computed == []


def test_a_folder_of_another_scenario_is_refused_like_the_cli(nd, cli, tmp_path):
    sc, _, _ = nd
    out = tmp_path / "sweep"
    fs.sweep(sc, out=out)
    other = sc.replace({"seed": 12})
    with pytest.raises(fs.SweepFolderError, match="belongs to another scenario") as err:
        fs.sweep(other, out=out)
    assert isinstance(err.value, ValueError)
    assert err.value.path == str(out)
    assert pickle.loads(pickle.dumps(err.value)).path == str(out)
    # The CLI's exit-2 case, with the same message.
    src = tmp_path / "other.toml"
    src.write_text(other.to_toml())
    done = subprocess.run(
        [str(cli), "sweep", "run", str(src), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert str(err.value).split(": its manifest")[1].split(" from ")[0] in done.stderr


def test_a_scenario_without_sweep_is_a_scenario_error():
    sc = fs.Scenario.load(SCENARIOS / "sampler-quadratic.toml")
    with pytest.raises(fs.ScenarioError, match=r"has no \[sweep\] table") as err:
        fs.sweep(sc)
    assert err.value.key == "sweep"


def test_missing_dask_is_a_clear_import_error_only_when_a_client_is_passed(nd, monkeypatch):
    sc, _, want = nd
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails

    class Client:  # looks like dask.distributed.Client
        pass

    Client.__module__ = "distributed.client"
    with pytest.raises(ImportError, match=r"pip install 'flatscape\[dask\]'"):
        fs.sweep(sc, Client())
    # Without a Client, dask is never imported.
    assert_same_table(fs.sweep(sc), want)
    with ThreadPoolExecutor(2) as pool:
        assert_same_table(fs.sweep(sc, pool), want)
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        fs.sweep(sc, object())


def test_tasks_and_results_pickle_and_carry_the_rows(nd):
    sc, _, want = nd
    job = fs._flatscape._SweepJob(sc)
    tasks = job.tasks(10)
    assert [len(t) for t in tasks] == [10] * 6 + [3]
    task = pickle.loads(pickle.dumps(tasks[2], protocol=pickle.HIGHEST_PROTOCOL))
    assert task.ids == list(range(20, 30))
    assert fs.Scenario.from_toml(task.scenario_toml).name == sc.name  # canonical text
    assert len(pickle.dumps(task)) < 2000
    result = pickle.loads(pickle.dumps(task.run()))
    assert result.ids == task.ids and result.flatscape_version == fs.__version__
    assert result.scenario_hash == job.scenario_hash
    assert len(result.wall_seconds) == len(result.cpu_seconds) == 10
    cols = result.columns()
    for name in want:
        assert np.array_equal(
            cols[name].view(np.uint64), want[name][20:30].view(np.uint64)
        ), name
    again = fs.SweepTaskResult.from_json(result.to_json())
    assert again.to_json() == result.to_json()
    with pytest.raises(ValueError, match="not a sweep task result"):
        fs.SweepTaskResult.from_json('{"format": "x"}')
    # The job takes it once; a result of another scenario is refused.
    assert job.add(result) == 10 and job.add(result) == 0 and job.done == 10
    foreign = fs.SweepTask(sc.replace({"seed": 3}).to_toml(), [0]).run()
    with pytest.raises(fs.SolverError, match="a worker computed scenario"):
        job.add(foreign)
    with pytest.raises(fs.SolverError, match="53 of 63 sweep points missing: ids 0-19, 30-62"):
        job.table()


def test_delta_s_sweep_with_fp_on_a_pool_is_the_run_table():
    # FP + theory + sampler at each point; tasks keep a Δ_S's points together.
    sc = fs.Scenario.load(SCENARIOS / "flatness-vs-delta-s.toml").replace(SMALL_DELTA_S_SWEEP)
    job = fs._flatscape._SweepJob(sc)
    assert job.todo() == [0, 3, 1, 4, 2, 5]
    want = fs.run(sc).sweep
    with spawn_pool(2) as pool:
        assert_same_table(fs.sweep(sc, pool, chunksize=2), want)


def test_a_progress_callback_that_raises_stops_the_sweep(nd, tmp_path):
    sc, _, _ = nd

    def stop(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with ThreadPoolExecutor(1) as pool, pytest.raises(KeyboardInterrupt):
        fs.sweep(sc, pool, out=tmp_path / "a", chunksize=4, progress=stop)
    job = fs._flatscape._SweepJob(sc, tmp_path / "a")
    assert 4 <= job.reused < 63  # the finished task kept its files


def test_ctrl_c_in_process_raises_keyboard_interrupt_and_keeps_finished_points(tmp_path):
    out = tmp_path / "sweep"
    script = textwrap.dedent(
        f"""
        import sys
        import flatscape as fs
        sc = fs.Scenario.load({str(SCENARIOS / "fig5b-phase-diagram.toml")!r})
        print("running", flush=True)
        try:
            fs.sweep(sc, out={str(out)!r}, threads=2)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    # Wait for a few points (each ≈ 0.2 s) before the interrupt.
    points = out / "points"
    for _ in range(200):
        if points.exists() and len(list(points.rglob("*.json"))) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert rest.split() == ["interrupted"]
    job = fs._flatscape._SweepJob(SCENARIOS / "fig5b-phase-diagram.toml", out)
    assert job.reused >= 3 and job.corrupt == 0 and job.total == 315


def test_a_task_runs_with_the_gil_released():
    # Three theory points of the 2-D valley (≈ 0.2 s each) on a Python thread, while this
    # thread keeps counting: with the GIL held it could not count at all.
    sc = fs.Scenario.load(SCENARIOS / "fig5b-phase-diagram.toml").replace({"sampler": None})
    job = fs._flatscape._SweepJob(sc)
    task = fs.SweepTask(job.tasks(job.total)[0].scenario_toml, [1, 2, 3])
    result = []
    worker = threading.Thread(target=lambda: result.append(task.run()))
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert result[0].ids == [1, 2, 3]
    assert ticks > 20


def test_pickling_a_run_result_says_why_not(nd):
    sc, _, _ = nd
    with pytest.raises(TypeError, match="cannot be pickled .* send its scenario"):
        pickle.dumps(fs.run(sc))
