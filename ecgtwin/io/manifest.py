"""Batch requests in, written twins out: the two CSV manifests of ``generate-ecg``.

* :func:`read_request_manifest` reads a batch request CSV (one row per
  reference/condition) and validates every row with line-numbered errors.
* :class:`OutputManifest` appends one row per written twin, flushed and
  fsync'ed, and answers :meth:`OutputManifest.already_written` so an interrupted
  run resumes exactly where it stopped. Record names are deterministic
  (:func:`twin_record_name`), so a rerun asks for the same names.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ecgtwin.constants import AGE_RANGE_YEARS, HR_RANGE_BPM
from ecgtwin.io.wfdb_io import ECGInputError, parse_sex, sanitize_record_name

REQUIRED_COLUMNS: tuple[str, ...] = ("reference", "condition")
OPTIONAL_COLUMNS: tuple[str, ...] = ("hr", "age", "sex", "num", "seed", "offset", "rhythm")
DEFAULT_SEED: int = 0
NO_LABELS: str = "none"
"""The condition with no diagnosis label (also an empty condition), in the API, on the command line and in manifests."""


@dataclass(frozen=True)
class TwinRequest:
    """Twins to generate from one reference.

    ``conditions`` are target label names (vocabulary checked by the caller; empty:
    no diagnosis label); ``hr`` (bpm), ``age`` (years), ``sex`` (``"M"``/``"F"``)
    are the target's (None: unknown); ``num`` twins with seeds derived from
    ``seed``; ``offset`` (s) starts the window of the reference that is used;
    ``rhythm`` is the target rhythm (``TwinSpec.rhythm``). ``line`` is the CSV
    line (0 for command-line requests).
    """

    reference: Path
    conditions: tuple[str, ...]
    hr: float | None = None
    age: float | None = None
    sex: str | None = None
    num: int = 1
    seed: int = DEFAULT_SEED
    line: int = 0
    offset: float = 0.0
    rhythm: str | None = None

    @property
    def reference_name(self) -> str:
        """Record name of the reference (file name without ``.hea``)."""
        ref = self.reference
        return ref.stem if ref.suffix.lower() in (".hea", ".dat") else ref.name

    def record_names(self) -> list[str]:
        """The ``num`` output record names of this request, in twin-index order."""
        return [
            twin_record_name(self.reference_name, self.conditions, self.seed, i, self.hr, self.age, self.sex,
                             self.offset, self.rhythm)
            for i in range(self.num)
        ]


def split_conditions(text: str) -> tuple[str, ...]:
    """``"IMI;AFIB"`` or ``"IMI, AFIB"`` -> ``("IMI", "AFIB")``: stripped, duplicates dropped, order kept;
    ``""`` and ``"none"`` (:data:`NO_LABELS`) -> ``()``, the condition with no diagnosis label."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    labels = tuple(dict.fromkeys(p for p in parts if p))
    return () if len(labels) == 1 and labels[0].lower() == NO_LABELS else labels


def name_number(text: str) -> str:
    """Compact text of a number for record names: ``72.0`` -> ``72``, ``72.5`` -> ``72p5``."""
    return f"{float(text):g}".replace(".", "p").replace("-", "m")


def twin_record_name(
    reference_name: str,
    conditions: Iterable[str],
    seed: int,
    index: int,
    hr: float | None = None,
    age: float | None = None,
    sex: str | None = None,
    offset: float | None = None,
    rhythm: str | None = None,
) -> str:
    """Deterministic WFDB name of one twin, e.g. ``00004_lr__AFIB-IMI__hr80__s0__003``.

    Conditions are sorted (a condition is a label *set*; no label: ``none``); demographic
    overrides, a window offset (``off12p5``) and a rhythm (``rhythmAFIB``) are part of the
    name so two requests differing only in them do not collide.
    """
    parts = [reference_name, "-".join(sorted(conditions)) or NO_LABELS]
    parts += [f"{key}{name_number(str(val))}" for key, val in (("hr", hr), ("age", age)) if val is not None]
    if sex is not None:
        parts.append(sex)
    if offset:
        parts.append(f"off{name_number(str(offset))}")
    if rhythm is not None:
        parts.append(f"rhythm{rhythm}")
    parts += [f"s{seed}", f"{index:03d}"]
    return "__".join(sanitize_record_name(p) for p in parts)


def _optional_float(text: str, column: str, bounds: tuple[float, float], where: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} {text!r} is not a number") from None
    if not bounds[0] <= value <= bounds[1]:
        if math.isinf(bounds[1]):
            raise ValueError(f"{where}: {column} must be >= {bounds[0]:g}, got {value:g}")
        raise ValueError(f"{where}: {column} {value:g} outside the plausible range {bounds[0]:g}-{bounds[1]:g}")
    return value


def _integer(text: str, column: str, default: int, minimum: int, where: str) -> int:
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} {text!r} is not an integer") from None
    if value != int(value) or value < minimum:
        raise ValueError(f"{where}: {column} must be an integer >= {minimum}, got {text!r}")
    return int(value)


def _parse_row(row: Mapping[str, str], line: int, manifest: Path) -> TwinRequest:
    where = f"line {line}"
    ref_text = (row.get("reference") or "").strip()
    if not ref_text:
        raise ValueError(f"{where}: empty reference")
    reference = Path(ref_text).expanduser()
    if not reference.is_absolute():
        reference = manifest.parent / reference  # relative to the manifest file, not the working directory
    base = reference.with_suffix("") if reference.suffix.lower() in (".hea", ".dat") else reference
    if not base.with_name(base.name + ".hea").is_file():
        raise ValueError(f"{where}: reference record {reference} not found (no .hea file)")
    conditions = split_conditions(row.get("condition") or "")
    offset = _optional_float(row.get("offset") or "", "offset", (0.0, math.inf), where)
    rhythm = (row.get("rhythm") or "").strip() or None
    try:
        sex = parse_sex(row.get("sex"))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return TwinRequest(
        reference=reference,
        conditions=conditions,
        hr=_optional_float(row.get("hr") or "", "hr", HR_RANGE_BPM, where),
        age=_optional_float(row.get("age") or "", "age", AGE_RANGE_YEARS, where),
        sex=sex,
        num=_integer(row.get("num") or "", "num", 1, 1, where),
        seed=_integer(row.get("seed") or "", "seed", DEFAULT_SEED, 0, where),
        line=line,
        offset=offset or 0.0,
        rhythm=rhythm,
    )


@dataclass(frozen=True)
class RejectedRow:
    """A request-manifest row that cannot be generated: its line, why, and its values as written."""

    line: int
    reason: str
    values: dict[str, str]


@dataclass
class RequestManifest:
    """A parsed request CSV: the valid ``requests``, the ``rejected`` rows, the ``columns`` and every row's
    values by line (to write rejected rows back out)."""

    path: Path
    requests: list[TwinRequest]
    rejected: list[RejectedRow]
    columns: list[str]
    values: dict[int, dict[str, str]]

    def reject(self, request: TwinRequest, reason: str) -> None:
        """Move ``request`` from :attr:`requests` to :attr:`rejected` (a problem found after parsing)."""
        self.requests = [r for r in self.requests if r is not request]
        self.rejected.append(RejectedRow(request.line, reason, self.values.get(request.line, {})))
        self.rejected.sort(key=lambda r: r.line)


def parse_request_manifest(path: str | os.PathLike[str]) -> RequestManifest:
    """Read a batch request CSV, checking every row; bad rows are collected, not raised (see :func:`read_request_manifest`).

    Raises:
        ECGInputError: for problems of the whole file: missing file, missing or unknown column, no rows.
    """
    manifest = Path(path).expanduser()
    if not manifest.is_file():
        raise ECGInputError(manifest, "request manifest not found")
    parsed = RequestManifest(manifest, [], [], [], {})
    with open(manifest, newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: spreadsheet BOMs
        reader = csv.DictReader(handle)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ECGInputError(manifest, f"missing column(s) {', '.join(missing)} (header: {', '.join(columns)})")
        unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if unknown:
            allowed = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
            raise ECGInputError(manifest, f"unknown column(s) {', '.join(unknown)} (allowed: {allowed})")
        reader.fieldnames = parsed.columns = columns
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            line = reader.line_num
            parsed.values[line] = {c: row.get(c) or "" for c in columns}
            if None in row:
                parsed.rejected.append(RejectedRow(line, f"line {line}: more fields than columns", parsed.values[line]))
                continue
            try:
                parsed.requests.append(_parse_row(row, line, manifest))
            except ValueError as exc:
                parsed.rejected.append(RejectedRow(line, str(exc), parsed.values[line]))
    if not parsed.values:
        raise ECGInputError(manifest, "request manifest has no rows")
    for request, reason in duplicate_record_names(parsed.requests):
        parsed.reject(request, reason)
    return parsed


def read_request_manifest(path: str | os.PathLike[str]) -> list[TwinRequest]:
    """Read a batch request CSV.

    Columns: ``reference`` (record path, relative paths resolve against the
    manifest's folder), ``condition`` (``"IMI;AFIB"`` or quoted ``"IMI,AFIB"``;
    ``none`` or empty: no diagnosis label), optional ``hr``, ``age``, ``sex``
    (M/F/male/female/0/1), ``num`` (default 1), ``seed`` (default 0), ``offset``
    (s, default 0), ``rhythm``. Blank lines are skipped.

    Raises:
        ECGInputError: naming the file and listing **every** bad line with its reason: a missing
            file or column, an unknown column, a bad value, a twin requested twice, no rows.
    """
    parsed = parse_request_manifest(path)
    if parsed.rejected:
        raise ECGInputError(parsed.path, "; ".join(r.reason for r in parsed.rejected))
    return parsed.requests


def write_rejected(path: str | os.PathLike[str], rejected: Iterable[RejectedRow], columns: Iterable[str]) -> Path:
    """Write rejected rows as CSV (``line``, ``reason``, then the manifest's columns as written); atomic."""
    path = Path(path)
    names = ["line", "reason", *columns]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rejected:
            writer.writerow({**row.values, "line": row.line, "reason": row.reason})
    tmp.replace(path)
    return path


def duplicate_record_names(requests: Iterable[TwinRequest]) -> list[tuple[TwinRequest, str]]:
    """Requests that ask for a twin an earlier request already asks for, with the reason (e.g. a row given
    twice, or two references with the same file name in different folders and the same condition and seed)."""
    owner: dict[str, TwinRequest] = {}
    clashes: list[tuple[TwinRequest, str]] = []
    for request in requests:
        names = request.record_names()
        first = next((owner[n] for n in names if n in owner), None)
        if first is not None:
            name = next(n for n in names if n in owner)
            clashes.append((request, f"line {request.line}: twin {name} requested twice (line {first.line}: "
                                     f"{first.reference}; line {request.line}: {request.reference}); "
                                     "change the seed of one of them"))
            continue
        owner.update((n, request) for n in names)
    return clashes


def check_unique_record_names(requests: Iterable[TwinRequest]) -> None:
    """Raise ``ValueError`` naming the first twin that two requests would both write."""
    clashes = duplicate_record_names(requests)
    if clashes:
        raise ValueError(clashes[0][1])


@dataclass(frozen=True)
class TwinRow:
    """One written twin in the output manifest: the record's header comments under the same names, same values."""

    record_name: str
    path: str
    reference: str
    target_labels: str
    hr: str | float | None
    age: str | float | None
    sex: str | None
    sampler: str
    steps: str | int
    guidance_person: str | float
    guidance_condition: str | float
    seed: str | int
    checkpoint: str
    rhythm: str = ""
    reference_fs: str = ""
    reference_window: str = ""
    reference_nan_filled: str = ""
    reference_dropped_channels: str = ""
    reference_lead_names: str = ""
    reference_hr: str = ""
    """What was done to the reference (``Reference.transformations``) and the HR assumed for it."""
    mode: str = "twin"
    """``twin``, or ``edit strength S`` (``generate-ecg --edit``)."""
    spacing: str = ""
    """The sampler's timestep grid (empty in rows written before this column: quadratic)."""


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TwinRow))
LEGACY_COLUMNS: dict[str, str] = {"guidance_base": "guidance_person", "labels": "target_labels"}
"""Columns of older output manifests and their current names; such manifests are upgraded in place on load."""


class OutputManifest:
    """Append-only CSV of written twins, ``out_dir/manifest.csv``, for resuming interrupted runs.

    Each :meth:`append` writes one row and flushes + fsyncs it. A twin counts as
    done (:meth:`already_written`) when its record's ``.hea`` exists **and** a
    row names it; rows whose files were deleted, and a row cut short by a crash,
    are ignored, so those twins are generated again.
    """

    def __init__(self, out_dir: str | os.PathLike[str], filename: str = "manifest.csv") -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / filename
        self._rows: dict[str, dict[str, str]] = {}
        if self.path.is_file() and self.path.stat().st_size > 0:
            self._load()

    def _load(self) -> None:
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(LEGACY_COLUMNS.get(c, c) for c in reader.fieldnames or ())
            if "record_name" not in header or not set(header) <= set(MANIFEST_COLUMNS):
                raise ECGInputError(self.path, f"not an ecgtwin output manifest (header {reader.fieldnames})")
            reader.fieldnames = list(header)
            for row in reader:
                if None not in row and all(row.get(c) is not None for c in header):
                    self._rows[row["record_name"]] = {c: row.get(c, "") for c in MANIFEST_COLUMNS}  # a later row wins
        if header != MANIFEST_COLUMNS:  # written by an older ecgtwin: rewrite with today's columns
            self._rewrite()
            return
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            complete = handle.read(1) == b"\n"
        if not complete:  # a crash cut the last row: end it so the next row starts on its own line
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write("\n")

    def _rewrite(self) -> None:
        """Write all loaded rows under the current header (temporary file + rename)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self._rows.values())
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)

    def already_written(self, record_name: str) -> bool:
        """True when the twin's ``.hea`` exists and the manifest lists it."""
        return record_name in self._rows and (self.out_dir / f"{record_name}.hea").is_file()

    def rows(self) -> list[dict[str, str]]:
        """Rows of twins that are still on disk (as strings, manifest column order)."""
        return [row for name, row in self._rows.items() if self.already_written(name)]

    def append(self, row: TwinRow) -> None:
        """Record a twin whose files :func:`~ecgtwin.io.wfdb_io.write_twin` has just written."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        new_file = not self.path.is_file() or self.path.stat().st_size == 0
        values = {k: "" if v is None else str(v) for k, v in asdict(row).items()}
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            if new_file:
                writer.writeheader()
            writer.writerow(values)
            handle.flush()
            os.fsync(handle.fileno())
        self._rows[row.record_name] = values
