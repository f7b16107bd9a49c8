"""Read one WFDB record as a float32 ``(12, L)`` array in mV, :data:`~ecgtwin.constants.LEADS` order.

Every way a record can be unusable raises :class:`~ecgtwin.data.errors.ECGDataError`
naming the file: missing or truncated ``.hea``/``.dat``, lead names that are not
the 12 standard leads, a sampling rate other than the expected one, a record
that is all NaN or a flat line.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ecgtwin.constants import LEADS, N_LEADS, lead_index
from ecgtwin.data.errors import ECGDataError

FLAT_LINE_MV: float = 0.01
"""A record whose peak-to-peak amplitude is below this in every lead is a flat line."""

_UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "v": 1e3, "": 1.0}
"""Scale from a header's units (lower case) to mV; WFDB's default unit (absent) is mV."""

_BYTES_PER_SAMPLE: dict[str, float] = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}


def record_base(path: str | os.PathLike[str]) -> Path:
    """``path`` without a ``.hea``/``.dat`` extension."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".hea", ".dat") else p


def unit_scale_to_mv(units: str | None, where: str | os.PathLike[str]) -> float:
    """Factor turning values in ``units`` into mV (``"uV"`` -> 1e-3); unsupported units raise."""
    key = (units or "").strip().lower()
    if key not in _UNIT_TO_MV:
        raise ECGDataError(where, f"unsupported signal units {units!r} (expected mV, uV or V)")
    return _UNIT_TO_MV[key]


def _lead_order(names: list[str], hea: Path) -> np.ndarray:
    """Permutation ``perm`` with ``signal[perm]`` in LEADS order, from the header's lead names."""
    if len(names) != N_LEADS:
        raise ECGDataError(hea, f"expected {N_LEADS} leads, found {len(names)} ({', '.join(names)})")
    try:
        positions = [lead_index(name) for name in names]
    except KeyError:
        unknown = [n for n in names if n.strip().lower() not in {lead.lower() for lead in LEADS}]
        raise ECGDataError(hea, f"unknown lead names {unknown}; expected {', '.join(LEADS)} (any order, any case)") from None
    if len(set(positions)) != N_LEADS:
        raise ECGDataError(hea, f"duplicate lead names {names}")
    perm = np.empty(N_LEADS, dtype=np.int64)
    perm[positions] = np.arange(N_LEADS)  # perm[LEADS position] = column in the file
    return perm


def _check_signal_files(header, base: Path) -> None:  # type: ignore[no-untyped-def]
    """Raise if a ``.dat`` file the header names is missing or shorter than the header says."""
    needed: dict[str, float] = {}
    for file_name, fmt in zip(header.file_name, header.fmt):
        needed[file_name] = needed.get(file_name, 0.0) + _BYTES_PER_SAMPLE.get(str(fmt), 0.0) * header.sig_len
    for file_name, n_bytes in needed.items():
        dat = base.parent / file_name
        if not dat.is_file():
            raise ECGDataError(dat, "missing signal file (.dat)")
        size = dat.stat().st_size
        if size < int(n_bytes):
            raise ECGDataError(dat, f"truncated signal file: {size} bytes, header needs {int(n_bytes)}")


def read_wfdb(path: str | os.PathLike[str], expected_fs: float | None = None) -> tuple[np.ndarray, float]:
    """Read a 12-lead WFDB record.

    Args:
        path: record path without extension (``.../00001_lr``); a ``.hea``/``.dat`` suffix is dropped.
        expected_fs: if given, a record at another sampling rate raises.

    Returns:
        ``(signal, fs)``: float32 ``(12, L)`` in mV with leads in ``LEADS`` order
        (the file may use any lead order and name case, e.g. ``AVR``), and the
        sampling rate in Hz. Missing samples stay NaN (see ``preprocess``).
    """
    import wfdb

    base = record_base(path)
    hea = base.with_name(base.name + ".hea")
    if not hea.is_file():
        raise ECGDataError(hea, "missing header file (.hea)")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types on a damaged header
        raise ECGDataError(hea, f"unreadable header: {exc}") from exc
    if not header.sig_name or not header.sig_len:
        raise ECGDataError(hea, "header lists no signals or no samples")
    perm = _lead_order(list(header.sig_name), hea)
    fs = float(header.fs)
    if expected_fs is not None and abs(fs - float(expected_fs)) > 1e-6:
        raise ECGDataError(hea, f"sampling rate {fs:g} Hz, expected {float(expected_fs):g} Hz")
    scales = np.array([unit_scale_to_mv(u, hea) for u in (header.units or [""] * N_LEADS)], dtype=np.float64)
    _check_signal_files(header, base)
    try:
        record = wfdb.rdrecord(str(base))
    except Exception as exc:
        raise ECGDataError(base.with_name(base.name + ".dat"), f"truncated or corrupt signal file: {exc}") from exc
    samples = record.p_signal  # (L, 12) in the file's units and lead order
    if samples is None or samples.shape != (header.sig_len, N_LEADS):
        raise ECGDataError(hea, f"read {None if samples is None else samples.shape} samples, header says ({header.sig_len}, 12)")
    signal = (samples * scales).T[perm].astype(np.float32)  # (12, L) in LEADS order, mV
    if np.isnan(signal).all():
        raise ECGDataError(hea, "all samples are NaN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN leads give NaN, ignored below
        ptp = np.nanmax(signal, axis=1) - np.nanmin(signal, axis=1)  # (12,)
    if not np.nanmax(ptp) >= FLAT_LINE_MV:
        raise ECGDataError(hea, f"flat line: peak-to-peak amplitude below {FLAT_LINE_MV} mV in every lead")
    return signal, fs

