"""Read WFDB records as float32/float64 ``(12, L)`` arrays in mV, :data:`~ecgtwin.constants.LEADS` order.

Two layers:

* the low-level reader, shared with ``ecgtwin.io.wfdb_io.read_reference``:
  :func:`read_header` (path/``.hea`` handling, case-insensitive lead mapping,
  missing/duplicate leads, units, sampling rate) and :func:`read_leads` (``.dat``
  checks, samples in mV). Each takes the error class to raise, so the data layer
  raises :class:`~ecgtwin.data.errors.ECGDataError` and ``generate-ecg``
  ``ECGInputError``, both naming the file.
* :func:`read_wfdb`, the data layer's strict reader: exactly the 12 standard
  leads, the expected sampling rate, not all NaN, not a flat line.

This module imports only numpy and (inside functions) wfdb, so ``ecgtwin.io`` may
import it without loading the rest of the data layer.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgtwin.constants import LEADS, N_LEADS, UNITS, canonical_lead
from ecgtwin.data.errors import ECGDataError, ECGFileError

FLAT_LINE_MV: float = 0.01
"""A record whose peak-to-peak amplitude is below this in every lead is a flat line."""

UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "v": 1e3}
"""Scale from a header's units (lower case) to mV; an absent unit is WFDB's default, mV."""

_BYTES_PER_SAMPLE: dict[str, float] = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}


@dataclass(frozen=True)
class WFDBHeader:
    """A WFDB header checked for the 12 standard leads (see :func:`read_header`).

    ``columns[k]`` is the file column of ``LEADS[k]`` (-1: not recorded, partial records
    read with ``allow_missing``); ``units[k]`` its unit as
    written (``"mV"`` where the header gives none) and ``scales_to_mv[k]`` the
    factor to mV. ``signal_files`` pairs each column's ``.dat`` file with its format.
    """

    base: Path
    path: Path
    fs: float
    n_samples: int
    channel_names: tuple[str, ...]
    columns: tuple[int, ...]
    units: tuple[str, ...]
    scales_to_mv: tuple[float, ...]
    signal_files: tuple[tuple[str, str], ...]
    comments: tuple[str, ...] = ()


def record_base(path: str | os.PathLike[str]) -> Path:
    """``path`` without a ``.hea``/``.dat`` extension (any case), ``~`` expanded."""
    p = Path(path).expanduser()
    return p.with_suffix("") if p.suffix.lower() in (".hea", ".dat") else p


def header_path(path: str | os.PathLike[str]) -> Path:
    """The ``.hea`` file of a record given with or without extension."""
    base = record_base(path)
    return base.with_name(base.name + ".hea")


def lead_columns(
    names: Sequence[str], where: str | os.PathLike[str], error: type[ECGFileError] = ECGDataError, *, only_standard: bool = True,
    allow_missing: bool = False,
) -> tuple[int, ...]:
    """File column of each lead of ``LEADS``, names mapped by :func:`~ecgtwin.constants.canonical_lead`
    (any case, ``DII`` is II, ``AVR`` is aVR, ``"V1 "`` is V1).

    With ``only_standard`` the file must hold exactly the 12 standard leads; otherwise
    extra channels (e.g. Frank leads X, Y, Z) are ignored. Repeated leads raise; missing ones
    too, unless ``allow_missing`` (a partial record: their column is -1; at least one lead needed).
    """
    keys = [canonical_lead(name) for name in names]
    if only_standard and len(names) != N_LEADS:
        raise error(where, f"expected {N_LEADS} leads, found {len(names)} ({', '.join(names)})")
    unknown = [name for name, key in zip(names, keys) if key is None]
    if only_standard and unknown:
        raise error(where, f"unknown lead names {unknown}; expected {', '.join(LEADS)} (any order, any case)")
    columns: list[int] = []
    for lead in LEADS:
        hits = [i for i, key in enumerate(keys) if key == lead]
        if len(hits) > 1:
            raise error(where, f"lead {lead} appears {len(hits)} times ({[names[i] for i in hits]})")
        columns.append(hits[0] if hits else -1)
    missing = [lead for lead, column in zip(LEADS, columns) if column < 0]
    if missing and not allow_missing:
        raise error(where, f"missing leads {', '.join(missing)} (found {', '.join(names)})")
    if len(missing) == N_LEADS:
        raise error(where, f"no standard lead among the channels {', '.join(names)}; expected names from {', '.join(LEADS)}")
    return tuple(columns)


def read_header(
    path: str | os.PathLike[str],
    error: type[ECGFileError] = ECGDataError,
    *,
    only_standard: bool = True,
    expected_fs: float | None = None,
    allow_missing: bool = False,
) -> WFDBHeader:
    """Read and check a record's ``.hea``: leads (see :func:`lead_columns`), sampling rate, units.

    Args:
        path: record path, with or without ``.hea``/``.dat``.
        error: exception class raised (with the ``.hea`` path) for every problem.
        only_standard: require exactly the 12 standard leads (else extra channels are ignored).
        expected_fs: if given, a record at another sampling rate raises.
        allow_missing: a partial record (some of the 12 leads); their columns are -1.
    """
    import wfdb

    base = record_base(path)
    hea = header_path(base)
    if not hea.is_file():
        raise error(hea, "missing header file (.hea)")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types on a damaged header
        raise error(hea, f"unreadable WFDB record header: {exc}") from exc
    if not header.sig_name or not header.sig_len:
        raise error(hea, "header lists no signals or no samples")
    names = tuple(header.sig_name)
    columns = lead_columns(names, hea, error, only_standard=only_standard, allow_missing=allow_missing)
    fs = float(header.fs)
    if expected_fs is not None and abs(fs - float(expected_fs)) > 1e-6:
        raise error(hea, f"sampling rate {fs:g} Hz, expected {float(expected_fs):g} Hz")
    written = list(header.units or [])
    units = tuple((written[c] if 0 <= c < len(written) else "").strip() or UNITS for c in columns)
    unsupported = sorted({u for u in units if u.lower() not in UNIT_TO_MV})
    if unsupported:
        raise error(hea, f"unsupported signal units {unsupported} (expected mV, uV or V)")
    return WFDBHeader(
        base=base,
        path=hea,
        fs=fs,
        n_samples=int(header.sig_len),
        channel_names=names,
        columns=columns,
        units=units,
        scales_to_mv=tuple(UNIT_TO_MV[u.lower()] for u in units),
        signal_files=tuple((str(f), str(fmt)) for f, fmt in zip(header.file_name, header.fmt)),
        comments=tuple(header.comments or ()),
    )


def check_signal_files(header: WFDBHeader, error: type[ECGFileError]) -> None:
    """Raise if a ``.dat`` file the header names is missing or shorter than the header says."""
    needed: dict[str, float] = {}
    for file_name, fmt in header.signal_files:
        needed[file_name] = needed.get(file_name, 0.0) + _BYTES_PER_SAMPLE.get(fmt, 0.0) * header.n_samples
    for file_name, n_bytes in needed.items():
        dat = header.base.parent / file_name
        if not dat.is_file():
            raise error(dat, "missing signal file (.dat)")
        size = dat.stat().st_size
        if size < int(n_bytes):
            raise error(dat, f"truncated signal file: {size} bytes, header needs {int(n_bytes)}")


def read_leads(header: WFDBHeader, error: type[ECGFileError] = ECGDataError) -> np.ndarray:
    """The 12 standard leads of a record as float64 ``(12, L)`` in mV, ``LEADS`` order; NaN kept
    (unrecorded leads of a partial record are all NaN).

    A missing, short or corrupt ``.dat`` raises ``error`` naming the ``.dat`` file.
    """
    import wfdb

    check_signal_files(header, error)
    try:
        record = wfdb.rdrecord(str(header.base))
    except Exception as exc:
        raise error(header.base.with_name(header.base.name + ".dat"), f"truncated or corrupt signal file: {exc}") from exc
    samples = record.p_signal  # (L, C) in the file's units and channel order
    expected = (header.n_samples, len(header.channel_names))
    if samples is None or samples.shape != expected:
        raise error(header.path, f"read {None if samples is None else samples.shape} samples, header says {expected}")
    scales = np.array(header.scales_to_mv)[:, None]  # (12, 1)
    columns = np.array(header.columns)
    out = samples[:, np.maximum(columns, 0)].T * scales  # (12, L) mV, LEADS order
    out[columns < 0] = np.nan  # leads a partial record does not hold
    return out


def read_wfdb(path: str | os.PathLike[str], expected_fs: float | None = None) -> tuple[np.ndarray, float]:
    """Read a 12-lead WFDB record of a training data set (strict).

    Args:
        path: record path without extension (``.../00001_lr``); a ``.hea``/``.dat`` suffix is dropped.
        expected_fs: if given, a record at another sampling rate raises.

    Returns:
        ``(signal, fs)``: float32 ``(12, L)`` in mV with leads in ``LEADS`` order
        (the file may use any lead order and name case, e.g. ``AVR``), and the
        sampling rate in Hz. Missing samples stay NaN (see ``preprocess``).

    Raises:
        ECGDataError: naming the file, for a missing/truncated ``.hea``/``.dat``, lead
            names other than the 12 standard leads, another sampling rate than
            ``expected_fs``, unsupported units, all-NaN samples or a flat line.
    """
    header = read_header(path, ECGDataError, only_standard=True, expected_fs=expected_fs)
    signal = read_leads(header, ECGDataError).astype(np.float32)  # (12, L) mV, LEADS order
    if np.isnan(signal).all():
        raise ECGDataError(header.path, "all samples are NaN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN leads give NaN, ignored below
        ptp = np.nanmax(signal, axis=1) - np.nanmin(signal, axis=1)  # (12,)
    if not np.nanmax(ptp) >= FLAT_LINE_MV:
        raise ECGDataError(header.path, f"flat line: peak-to-peak amplitude below {FLAT_LINE_MV} mV in every lead")
    return signal, header.fs
