"""Errors that name the offending file, shared by the data layer and ``ecgtwin.io``.

This module imports nothing heavy, so ``ecgtwin.io`` can subclass :class:`ECGFileError`
without pulling in the data layer's pandas/torch modules.
"""
from __future__ import annotations

from os import PathLike


class ECGFileError(ValueError):
    """A file (record, table, manifest) cannot be used; the message names the file.

    ``path`` is the file (or record path without extension) and ``problem`` a
    short human reason, e.g. ``"missing signal file (.dat)"``. The string form
    is ``"<path>: <problem>"``. Catch this class to handle both
    :class:`ECGDataError` (training data) and ``ecgtwin.io.wfdb_io.ECGInputError``
    (user references and manifests).
    """

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # keep (path, problem) when pickled across worker processes
        return (type(self), (self.path, self.problem))


class ECGDataError(ECGFileError):
    """A training-data record or table cannot be used; the message names the offending file."""
