"""The exceptions of flatscape (raised by the compiled module as well).

No runtime imports here: `import flatscape` stays a few milliseconds.
"""

from __future__ import annotations


class ScenarioError(ValueError):
    """An invalid scenario: ``str(e)`` is the CLI's message; ``key``, ``line`` and ``column``
    locate the problem (None where they do not apply), ``file`` names its source."""

    key: str | None
    line: int | None
    column: int | None
    file: str | None

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
        file: str | None = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.line = line
        self.column = column
        self.file = file

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (
            _rebuild_scenario_error,
            (str(self), self.key, self.line, self.column, self.file),
        )


def _rebuild_scenario_error(
    message: str,
    key: str | None,
    line: int | None,
    column: int | None,
    file: str | None,
) -> ScenarioError:
    return ScenarioError(message, key=key, line=line, column=column, file=file)


class SolverError(RuntimeError):
    """A solver failed at run time (e.g. a singular operator or a non-finite density)."""


class SweepFolderError(ValueError):
    """A sweep folder (``out=``) that cannot be used, e.g. one whose manifest.json belongs to
    another scenario: the CLI's exit-2 case of ``flatscape sweep run``. ``path`` names it."""

    path: str | None

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_rebuild_sweep_folder_error, (str(self), self.path))


def _rebuild_sweep_folder_error(message: str, path: str | None) -> SweepFolderError:
    return SweepFolderError(message, path=path)
