"""The exceptions of flatscape (raised by the compiled module as well)."""

from __future__ import annotations

from typing import Any, Optional


class ScenarioError(ValueError):
    """An invalid scenario: ``str(e)`` is the CLI's message; ``key``, ``line`` and ``column``
    locate the problem (None where they do not apply), ``file`` names its source."""

    key: Optional[str]
    line: Optional[int]
    column: Optional[int]
    file: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        key: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
        file: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.line = line
        self.column = column
        self.file = file

    def __reduce__(self) -> Any:
        return (
            _rebuild_scenario_error,
            (str(self), self.key, self.line, self.column, self.file),
        )


def _rebuild_scenario_error(
    message: str,
    key: Optional[str],
    line: Optional[int],
    column: Optional[int],
    file: Optional[str],
) -> ScenarioError:
    return ScenarioError(message, key=key, line=line, column=column, file=file)


class SolverError(RuntimeError):
    """A solver failed at run time (e.g. a singular operator or a non-finite density)."""
