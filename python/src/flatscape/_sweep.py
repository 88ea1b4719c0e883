"""`flatscape.sweep`: a scenario's sweep points mapped over any executor.

The unit of work is a `SweepTask` (the scenario's canonical TOML text and a list of point ids,
a few kB when pickled); a worker computes it with `SweepTask.run()` (the Rust core, GIL
released, one thread) and sends back a `SweepTaskResult` (the rows as JSON, every number to the
same bits). The calling process checks each result, writes its point files when ``out`` is
given (the files of ``flatscape sweep run``), and assembles sweep.csv's columns.

dask is imported only when a ``dask.distributed.Client`` is passed.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

from ._flatscape import SweepTask, SweepTaskResult, _SweepJob

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ._flatscape import _ScenarioLike

__all__ = ["sweep"]

# Tasks per worker when `chunksize` is not given: enough for load balance and progress, few
# enough that the per-task cost of an executor (≈ 1 ms for dask) stays small.
TASKS_PER_WORKER = 16

ProgressArg = Union[None, bool, Callable[[int, int], Any]]


def _run_task(task: SweepTask) -> SweepTaskResult:
    """What a worker runs (a module-level function, so executors pickle it by name)."""
    return task.run()


def _is_dask_client(executor: object) -> bool:
    """True for a dask.distributed Client (or subclass), recognised without importing dask."""
    return any(
        c.__module__.split(".")[0] == "distributed" and c.__name__ == "Client"
        for c in type(executor).__mro__
    )


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as e:
        raise ImportError(
            "flatscape.sweep was given a dask.distributed Client, but dask.distributed cannot be "
            "imported here; install the extra: pip install 'flatscape[dask]' "
            "(from a checkout: pip install './python[dask]')"
        ) from e
    return distributed


def _workers(executor: object, dask: bool) -> int:
    """How many tasks the executor runs at once (a guess where it does not say)."""
    if dask:
        try:
            return max(1, sum(executor.nthreads().values()))  # type: ignore[attr-defined]
        except Exception:
            return os.cpu_count() or 1
    n = getattr(executor, "_max_workers", None)
    return n if isinstance(n, int) and n > 0 else (os.cpu_count() or 1)


def _reporter(progress: ProgressArg, name: str) -> Optional[Callable[[int, int], Any]]:
    if progress is None or progress is False:
        return None
    if progress is True:

        def show(done: int, total: int) -> None:
            end = "\n" if done == total else ""
            print(f"\rsweep {name}: {done}/{total} points", end=end, file=sys.stderr, flush=True)

        return show
    if callable(progress):
        return progress
    raise TypeError(f"progress must be None, a bool or a callable(done, total), got {progress!r}")


def sweep(
    scenario: _ScenarioLike,
    executor: Optional[Any] = None,
    out: Union[str, os.PathLike[str], None] = None,
    *,
    threads: Optional[int] = None,
    chunksize: Optional[int] = None,
    progress: ProgressArg = None,
) -> Dict[str, npt.NDArray[np.float64]]:
    """Compute a scenario's ``[sweep]`` and return sweep.csv's columns (numpy float64 arrays,
    NaN in empty cells), bit for bit those of ``flatscape run``.

    executor: None computes in this process on ``threads`` Rust threads (all cores by default);
        a ``concurrent.futures.Executor`` (process, thread or any pool with ``submit``) or a
        ``dask.distributed.Client`` gets the points as picklable `SweepTask` batches of
        ``chunksize`` points (default: about 16 tasks per worker).
    out: a sweep folder. Its manifest.json is written (or checked: a folder planned for another
        scenario raises `SweepFolderError`), points with a valid file there are not recomputed,
        and every computed point is written by this process as the point file of
        ``flatscape sweep run`` — so ``flatscape sweep merge OUT`` accepts the folder.
    progress: True prints ``done/total`` to stderr; a callable gets ``(done, total)``.

    Ctrl-C raises KeyboardInterrupt: pending tasks are cancelled; finished points keep their files.
    """
    job = _SweepJob(scenario, None if out is None else os.fspath(out))
    if job.corrupt:
        warnings.warn(
            f"{job.corrupt} point file(s) under {os.fspath(out or '')}/points are not valid "
            "results of this sweep (truncated or foreign); recomputing them",
            RuntimeWarning,
            stacklevel=2,
        )
    report = _reporter(progress, getattr(scenario, "name", "") or "")
    if executor is None:
        if chunksize is not None:
            raise TypeError("chunksize applies to an executor; executor=None takes threads=")
        job.run_local(threads, report)
        return job.table()
    if threads is not None:
        raise TypeError("threads applies to executor=None; size the executor's pool instead")
    dask = _is_dask_client(executor)
    distributed = _import_distributed() if dask else None
    if not dask and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            "executor must be None, a concurrent.futures.Executor or a dask.distributed.Client, "
            f"got {type(executor).__name__}"
        )
    todo = len(job.todo())
    if chunksize is None:
        chunksize = max(1, math.ceil(todo / (TASKS_PER_WORKER * _workers(executor, dask))))
    elif not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive integer, got {chunksize!r}")
    tasks = job.tasks(chunksize)
    if report is not None:
        report(job.done, job.total)
    if not tasks:
        return job.table()
    futures: List[Any] = []
    try:
        if distributed is not None:
            futures = executor.map(_run_task, tasks, pure=False)
            completed = distributed.as_completed(futures)
        else:
            futures = [executor.submit(_run_task, t) for t in tasks]
            completed = concurrent.futures.as_completed(futures)
        for fut in completed:
            job.add(fut.result())
            if report is not None:
                report(job.done, job.total)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    return job.table()
