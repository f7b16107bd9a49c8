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
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ecgtwin.constants import AGE_RANGE_YEARS, HR_RANGE_BPM
from ecgtwin.io.wfdb_io import ECGInputError, parse_sex, sanitize_record_name

REQUIRED_COLUMNS: tuple[str, ...] = ("reference", "condition")
OPTIONAL_COLUMNS: tuple[str, ...] = ("hr", "age", "sex", "num", "seed")
DEFAULT_SEED: int = 0


@dataclass(frozen=True)
class TwinRequest:
    """Twins to generate from one reference.

    ``conditions`` are target label names (vocabulary checked by the caller);
    ``hr`` (bpm), ``age`` (years), ``sex`` (``"M"``/``"F"``) override the
    reference's demographics when not None; ``num`` twins with seeds derived
    from ``seed``. ``line`` is the CSV line (0 for command-line requests).
    """

    reference: Path
    conditions: tuple[str, ...]
    hr: float | None = None
    age: float | None = None
    sex: str | None = None
    num: int = 1
    seed: int = DEFAULT_SEED
    line: int = 0

    @property
    def reference_name(self) -> str:
        """Record name of the reference (file name without ``.hea``)."""
        ref = self.reference
        return ref.stem if ref.suffix.lower() in (".hea", ".dat") else ref.name

    def record_names(self) -> list[str]:
        """The ``num`` output record names of this request, in twin-index order."""
        return [
            twin_record_name(self.reference_name, self.conditions, self.seed, i, self.hr, self.age, self.sex)
            for i in range(self.num)
        ]


def split_conditions(text: str) -> tuple[str, ...]:
    """``"IMI;AFIB"`` or ``"IMI, AFIB"`` -> ``("IMI", "AFIB")``: stripped, duplicates dropped, order kept."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    return tuple(dict.fromkeys(p for p in parts if p))


def _number(text: str) -> str:
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
) -> str:
    """Deterministic WFDB name of one twin, e.g. ``00004_lr__AFIB-IMI__hr80__s0__003``.

    Conditions are sorted (a condition is a label *set*); demographic overrides
    are part of the name so two requests differing only in them do not collide.
    """
    parts = [reference_name, "-".join(sorted(conditions)) or "uncond"]
    parts += [f"{key}{_number(str(val))}" for key, val in (("hr", hr), ("age", age)) if val is not None]
    if sex is not None:
        parts.append(sex)
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
    if not conditions:
        raise ValueError(f"{where}: empty condition (give labels like 'IMI;AFIB')")
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
    )


def read_request_manifest(path: str | os.PathLike[str]) -> list[TwinRequest]:
    """Read a batch request CSV.

    Columns: ``reference`` (record path, relative paths resolve against the
    manifest's folder), ``condition`` (``"IMI;AFIB"`` or quoted ``"IMI,AFIB"``),
    optional ``hr``, ``age``, ``sex`` (M/F/male/female/0/1), ``num`` (default 1),
    ``seed`` (default 0). Blank lines are skipped.

    Raises:
        ECGInputError: naming the file and the line for a missing file or
            column, an unknown column, a bad value, or a manifest with no rows.
    """
    manifest = Path(path).expanduser()
    if not manifest.is_file():
        raise ECGInputError(manifest, "request manifest not found")
    requests: list[TwinRequest] = []
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
        reader.fieldnames = columns
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            if None in row:
                raise ECGInputError(manifest, f"line {reader.line_num}: more fields than columns")
            try:
                requests.append(_parse_row(row, reader.line_num, manifest))
            except ValueError as exc:
                raise ECGInputError(manifest, str(exc)) from None
    if not requests:
        raise ECGInputError(manifest, "request manifest has no rows")
    check_unique_record_names(requests)
    return requests


def check_unique_record_names(requests: Iterable[TwinRequest]) -> None:
    """Raise ``ValueError`` if two requested twins would get the same record name (e.g. a row given twice,
    or two references with the same file name in different folders and the same condition and seed)."""
    owner: dict[str, TwinRequest] = {}
    for request in requests:
        for name in request.record_names():
            if name in owner:
                first = owner[name]
                raise ValueError(
                    f"twin {name} requested twice (line {first.line}: {first.reference}; "
                    f"line {request.line}: {request.reference}); change the seed of one of them"
                )
            owner[name] = request


@dataclass(frozen=True)
class TwinRow:
    """One written twin in the output manifest (provenance mirrored in the record's header comments)."""

    record_name: str
    path: str
    reference: str
    labels: str
    hr: float | None
    age: float | None
    sex: str | None
    sampler: str
    steps: int
    guidance_base: float
    guidance_condition: float
    seed: int
    checkpoint: str


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TwinRow))


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
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                raise ECGInputError(self.path, f"not an ecgtwin output manifest (header {reader.fieldnames})")
            for row in reader:
                if None not in row and all(row.get(c) is not None for c in MANIFEST_COLUMNS):
                    self._rows[row["record_name"]] = row  # a later row for the same twin wins
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            complete = handle.read(1) == b"\n"
        if not complete:  # a crash cut the last row: end it so the next row starts on its own line
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write("\n")

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
