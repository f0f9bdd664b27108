"""Errors the tool reports to its user. Each says which file, what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class ForensicsError(Exception):
    """Base class for errors shown to the user as a clear message (no traceback)."""


class InputImageError(ForensicsError):
    """An input file cannot be used: unreadable, corrupt, too large, no face, ..."""

    def __init__(self, path: Path | str, problem: str, advice: str = ""):
        self.path = Path(path)
        self.problem = problem
        self.advice = advice
        msg = f"{self.path}: {problem}"
        if advice:
            msg += f" — {advice}"
        super().__init__(msg)

    def __reduce__(self):  # picklable (results come back from worker processes)
        return type(self), (self.path, self.problem, self.advice)


class NoFaceError(InputImageError):
    pass


def check_at_least(option: str, value: int, minimum: int) -> int:
    """`value` of the whole-number option `option`, or a ForensicsError when it is below `minimum`."""
    if value < minimum:
        raise ForensicsError(f"{option} must be at least {minimum}, not {value}")
    return value


class ModelWeightsError(ForensicsError):
    """A weights file is missing, of the wrong format, or fails its checksum."""
