"""Input checks of ``generate-ecg``, all made before the first twin is generated.

Before the model loads: the output folder (exists or can be created, writable),
the checkpoint path, every manifest row (:func:`~ecgtwin.io.manifest.parse_request_manifest`)
and every reference record (:func:`~ecgtwin.io.wfdb_io.check_reference`: present,
not empty, a readable header with the 12 leads, its signal files). After it loads:
labels and rhythm against the vocabulary, twins requested twice, the reference
window at the model's rate, and ``TwinModel.validate``.

Problems of manifest rows are collected with their line numbers, not raised one
by one; :func:`settle` reports them all. Without ``--skip-invalid`` nothing is
generated when any row is bad; with it the valid rows go on and the rejected
ones are written to ``OUT/rejected.csv``. A problem of a command-line request
raises :class:`UsageError` at once.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecgtwin.cli.generate import UsageError
from ecgtwin.io.manifest import RequestManifest, TwinRequest, duplicate_record_names, write_rejected
from ecgtwin.io.wfdb_io import ECGInputError, check_reference

REJECTED_FILE = "rejected.csv"


def command_line_requests(request: TwinRequest) -> RequestManifest:
    """The one command-line request as a request set (its problems raise at once)."""
    return RequestManifest(Path("command line"), [request], [], [], {})


def where(request: TwinRequest) -> str:
    return f"manifest line {request.line}" if request.line else "command line"


def reject(requests: RequestManifest, request: TwinRequest, reason: str) -> None:
    """Record a problem of one request: a manifest row is set aside, a command-line request raises."""
    if not request.line:
        raise UsageError(f"command line: {reason}")
    requests.reject(request, reason if reason.startswith("line ") else f"line {request.line}: {reason}")


def settle(requests: RequestManifest, skip_invalid: bool, out_dir: Path, final: bool = False) -> None:
    """Report the rejected rows: all of them, with line numbers.

    Without ``skip_invalid`` any rejected row raises :class:`UsageError` (nothing is generated); with it,
    they are written to ``out_dir/rejected.csv`` and the valid rows go on (none left: UsageError).
    ``final``: the last check of a run; a ``rejected.csv`` of an earlier run is then removed if nothing was rejected.
    """
    rejected_path = out_dir / REJECTED_FILE
    if not requests.rejected:
        if final and rejected_path.is_file():
            rejected_path.unlink()
        return
    listing = "\n".join(f"  {row.reason}" for row in requests.rejected)
    count = f"{len(requests.rejected)} of {len(requests.values)} row(s)"
    if not skip_invalid:
        raise UsageError(f"{requests.path}: {count} cannot be generated, so nothing was generated:\n{listing}\n"
                         f"Fix them, or pass --skip-invalid to generate the valid rows and list the rejected ones "
                         f"in {rejected_path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rejected(rejected_path, requests.rejected, requests.columns)
    if not requests.requests:
        raise UsageError(f"{requests.path}: no valid row ({count} rejected, listed in {rejected_path}):\n{listing}")
    print(f"generate-ecg: skipping {count} (--skip-invalid), listed in {rejected_path}:\n{listing}", file=sys.stderr)


def check_output_folder(out: Path) -> None:
    """The output folder exists and is writable, or can be created: checked by writing, so a read-only file
    system or a folder of another user is found before the model loads. Nothing is left behind."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".ecgtwin-write-test-", dir=existing)
        os.rmdir(probe)
    except OSError as exc:
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else (exc.strerror or str(exc))
        what = "write to the output folder" if existing == out else f"create the output folder in {existing}"
        raise UsageError(f"--out {out}: cannot {what} ({reason}); choose another --out") from None


def check_checkpoint_path(checkpoint: str | None) -> None:
    if checkpoint is None:
        return
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        raise UsageError(f"--checkpoint {checkpoint}: is a folder; give the model file (.pt bundle or .ckpt)")
    if not path.exists():
        raise UsageError(f"--checkpoint {checkpoint}: file not found")


def precheck_references(requests: RequestManifest) -> None:
    """:func:`~ecgtwin.io.wfdb_io.check_reference` for every distinct reference; rejects the requests of a bad one."""
    problems: dict[Path, str] = {}
    durations: dict[Path, float] = {}
    for path in dict.fromkeys(r.reference for r in requests.requests):
        try:
            header = check_reference(path)
            durations[path] = header.n_samples / header.fs
        except ECGInputError as exc:
            problems[path] = str(exc)
    for request in list(requests.requests):
        if request.reference in problems:
            reject(requests, request, problems[request.reference])
        elif request.offset >= durations[request.reference]:
            reject(requests, request, f"{request.reference}: offset {request.offset:g} s is past the end of the "
                                      f"{durations[request.reference]:g} s record")


def canonical_labels(labels: Sequence[str], vocabulary: Any, what: str) -> tuple[str, ...]:
    """Vocabulary spelling of ``labels`` (``"mi"`` -> ``"MI"``); an unknown one raises :class:`UsageError`
    with the close matches of ``LabelVocabulary.index``."""
    names: list[str] = []
    for label in labels:
        try:
            names.append(vocabulary.names[vocabulary.index(label)])
        except KeyError as exc:
            raise UsageError(f"{what}: {exc.args[0]}") from None
    return tuple(dict.fromkeys(names))


def canonical_rhythm(rhythm: str | None, model: Any) -> str | None:
    """Vocabulary spelling of a target rhythm (``"afib"`` -> ``"AFIB"``), ``"none"`` kept; checked by
    ``TwinModel.target_labels`` (a model without rhythm tokens refuses any rhythm)."""
    if rhythm is None or rhythm.lower() == "none":
        model.target_labels([], rhythm)
        return None if rhythm is None else "none"
    try:
        model.target_labels([], rhythm)
        return str(model.vocabulary.names[model.vocabulary.index(rhythm)])
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def canonicalize(requests: RequestManifest, model: Any) -> None:
    """Vocabulary spellings of every request's labels and rhythm; bad ones and twins requested twice rejected."""
    kept: list[TwinRequest] = []
    for request in list(requests.requests):
        try:
            conditions = canonical_labels(request.conditions, model.vocabulary, "condition")
            rhythm = canonical_rhythm(request.rhythm, model)
        except (UsageError, ValueError) as exc:
            reject(requests, request, f"rhythm {request.rhythm!r}: {exc}" if isinstance(exc, ValueError) else str(exc))
            continue
        kept.append(dataclasses.replace(request, conditions=conditions, rhythm=rhythm))
    requests.requests = kept
    for request, reason in duplicate_record_names(requests.requests):
        reject(requests, request, reason)
