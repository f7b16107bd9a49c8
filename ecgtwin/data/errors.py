"""Errors of the data layer."""
from __future__ import annotations

from os import PathLike


class ECGDataError(ValueError):
    """A record or table cannot be used; the message names the offending file.

    ``path`` is the file (or record path without extension) and ``problem`` a
    short human reason, e.g. ``"missing signal file (.dat)"``. The string form
    is ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # keep (path, problem) when pickled across worker processes
        return (type(self), (self.path, self.problem))
