"""Type stub of the compiled module `flatscape._flatscape` (checked by mypy.stubtest)."""

import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "FpSolution",
    "RunResult",
    "SamplerRun",
    "Scenario",
    "check",
    "run",
]

__version__: str

_PathLike = Union[str, "os.PathLike[str]"]
_ScenarioLike = Union["Scenario", _PathLike, Mapping[str, Any]]

@final
class Scenario:
    """A validated scenario (immutable; `replace` returns a validated copy)."""

    @staticmethod
    def load(path: _PathLike) -> Scenario: ...
    @staticmethod
    def from_toml(text: str, path: Optional[_PathLike] = None) -> Scenario: ...
    @staticmethod
    def from_dict(data: Mapping[str, Any], path: Optional[_PathLike] = None) -> Scenario: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_toml(self) -> str: ...
    def replace(self, changes: Mapping[str, Any]) -> Scenario: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __reduce__(self) -> Tuple[Any, Tuple[str, str]]: ...

@final
class FpSolution:
    """The Fokker–Planck steady state on its grid."""

    @property
    def x(self) -> npt.NDArray[np.float64]: ...
    @property
    def y(self) -> npt.NDArray[np.float64]: ...
    @property
    def density(self) -> npt.NDArray[np.float64]: ...

@final
class SamplerRun:
    """The Monte-Carlo sampler's ensemble curves."""

    @property
    def timeseries(self) -> Dict[str, npt.NDArray[Any]]: ...
    @property
    def summary(self) -> Dict[str, Any]: ...

@final
class RunResult:
    """Everything `flatscape.run` computed."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def summary(self) -> Dict[str, Any]: ...
    @property
    def fp(self) -> Optional[FpSolution]: ...
    @property
    def sampler(self) -> Optional[SamplerRun]: ...
    @property
    def marginals(self) -> Dict[str, npt.NDArray[np.float64]]: ...
    @property
    def marginals_y(self) -> Dict[str, npt.NDArray[np.float64]]: ...
    @property
    def sweep(self) -> Optional[Dict[str, npt.NDArray[np.float64]]]: ...
    def save(self, dir: _PathLike) -> None: ...

def run(
    scenario: _ScenarioLike, threads: Optional[int] = None, progress: bool = False
) -> RunResult: ...
def check(scenario: _ScenarioLike) -> None: ...
