"""flatscape: SGD's effective, flatness-dependent regularisation on degenerate loss valleys
(Yang, Tang & Tu, PRL 130, 237101, 2023), computed by the flatscape Rust core.

    >>> import flatscape as fs
    >>> sc = fs.Scenario.load("scenarios/hessian-valley.toml")
    >>> res = fs.run(sc.replace({"noise.sigma": 0.1}))
    >>> res.fp.density.shape, res.summary["fokker_planck"]["mean_flatness"]
    >>> from concurrent.futures import ProcessPoolExecutor
    >>> with ProcessPoolExecutor(2) as pool:  # or a dask.distributed.Client
    ...     table = fs.sweep("scenarios/fig5b-phase-diagram.toml", pool, out="fig5b-points")

Every number comes from the same Rust code as the ``flatscape`` command line.
"""

from ._errors import ScenarioError, SolverError, SweepFolderError
from ._flatscape import (
    ExpressionLoss,
    FpSolution,
    RunResult,
    SamplerRun,
    Scenario,
    SweepTask,
    SweepTaskResult,
    __version__,
    check,
    run,
)
from ._sweep import sweep

__all__ = [
    "ExpressionLoss",
    "FpSolution",
    "RunResult",
    "SamplerRun",
    "Scenario",
    "ScenarioError",
    "SolverError",
    "SweepFolderError",
    "SweepTask",
    "SweepTaskResult",
    "__version__",
    "check",
    "run",
    "sweep",
]
