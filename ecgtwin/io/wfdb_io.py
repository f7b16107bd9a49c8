"""WFDB input/output for ``generate-ecg``: user reference records in, twin records out.

* :func:`read_reference` reads any 12-lead WFDB record a user points at (any lead
  order, any case of the standard names, mV/uV/V, any sampling rate) and returns
  a float32 ``(12, L)`` array in mV, :data:`~ecgtwin.constants.LEADS` order, at
  ``target_fs``, cropped to the first ``seconds``. Every problem raises
  :class:`ECGInputError` naming the file. Header and sample reading (units,
  lead mapping, ``.dat`` checks) is the data layer's low-level reader,
  :mod:`ecgtwin.data.wfdb_reader` (numpy only, no pandas/torch); this module adds
  the user-facing policy: extra channels ignored, NaN gaps interpolated,
  resampling, cropping, age/sex from header comments.
* :func:`write_twin` writes one generated twin atomically (``.dat`` first, ``.hea``
  last, both via ``os.replace`` from a temporary directory), so a record exists
  only when it is complete.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

from ecgtwin.constants import AGE_RANGE_YEARS, DEFAULT_FS, DEFAULT_SECONDS, LEADS, N_LEADS, PTBXL_AGE_UNKNOWN, UNITS
from ecgtwin.data.errors import ECGFileError
from ecgtwin.data.wfdb_reader import WFDBHeader, check_signal_files, header_path, read_header, read_leads, record_base

FLAT_LEAD_MV: float = 0.01
"""A lead whose peak-to-peak amplitude over the used segment is below this (mV) is a flat line."""

ADC_GAINS: tuple[float, ...] = (1000.0, 200.0)
"""Candidate ADC gains (adu/mV) for written twins, finest first: 1 uV resolution for
|x| <= 32.767 mV (PTB-XL's choice), else 5 uV for |x| <= 163.8 mV."""

DIGITAL_MAX: int = 32767
"""Largest 16-bit sample; -32768 is WFDB's missing-sample code, so the range is symmetric."""

_SEX_WORDS: dict[str, str] = {"m": "M", "male": "M", "0": "M", "f": "F", "female": "F", "1": "F"}
_VALID_NAME = re.compile(r"[A-Za-z0-9_-]+")
_COMMENT_FIELD = re.compile(r"^\s*<?\s*([A-Za-z_ ]+?)\s*>?\s*[:=]\s*(.+?)\s*$")


class ECGInputError(ECGFileError):
    """A user-supplied reference record, manifest or argument cannot be used; the message names the file."""


@dataclass(frozen=True)
class Reference:
    """A reference ECG ready for the model, with every change made to the recorded signal.

    ``signal`` is float32 ``(12, L)`` in mV, LEADS order, ``L = round(seconds * fs)``.
    ``age`` (years) and ``sex`` (``"M"``/``"F"``) come from header comments when
    present (PhysioNet-challenge ``Age: 56`` / MIMIC-style ``<age>: 56``), else None.
    What was changed: resampling (``original_fs`` -> ``fs``), the window
    (``offset_s`` .. ``offset_s + seconds`` of ``original_seconds``), ``nan_filled``
    interpolated samples, ``dropped_channels`` (e.g. Frank X, Y, Z) and
    ``mapped_leads`` (file name -> standard name, e.g. ``("DII", "II")``); see
    :meth:`transformations`. ``notes`` lists the same in words.
    """

    signal: np.ndarray
    fs: int
    record_name: str
    path: Path
    original_fs: float
    original_units: tuple[str, ...]
    comments: tuple[str, ...] = ()
    age: float | None = None
    sex: str | None = None
    notes: tuple[str, ...] = ()
    offset_s: float = 0.0
    original_seconds: float = 0.0
    nan_filled: int = 0
    dropped_channels: tuple[str, ...] = ()
    mapped_leads: tuple[tuple[str, str], ...] = ()
    leads: tuple[str, ...] = LEADS
    """The leads ``signal`` holds, in LEADS order: all 12, or those of a partial record (``read_reference(partial=True)``)."""

    @property
    def seconds(self) -> float:
        return self.signal.shape[-1] / self.fs

    def transformations(self) -> dict[str, str]:
        """What was done to the recorded signal, as ``{key: text}`` for twin headers and manifest rows."""
        resampled = abs(self.original_fs - self.fs) > 1e-9
        return {
            "reference_fs": f"{self.original_fs:g} Hz -> {self.fs} Hz (resampled)" if resampled else f"{self.fs} Hz (as recorded)",
            "reference_window": f"{self.offset_s:g}-{self.offset_s + self.seconds:g} s of {self.original_seconds:g} s",
            "reference_nan_filled": str(self.nan_filled),
            "reference_dropped_channels": ";".join(self.dropped_channels) or "none",
            "reference_lead_names": ";".join(f"{a}->{b}" for a, b in self.mapped_leads) or "standard",
        }


def parse_sex(value: object) -> str | None:
    """``"M"``/``"F"`` from ``M, male, F, female`` (any case) or PTB-XL's ``0`` = male, ``1`` = female.

    Empty/None gives None; anything else raises ``ValueError``.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", "nan", "none", "unknown", "u"):
        return None
    if text.endswith(".0"):  # pandas reads 0/1 as floats
        text = text[:-2]
    if text not in _SEX_WORDS:
        raise ValueError(f"sex {value!r} is not one of M, F, male, female, 0 (male), 1 (female)")
    return _SEX_WORDS[text]


def _demographics_from_comments(comments: Sequence[str]) -> tuple[float | None, str | None]:
    """Age and sex from ``key: value`` header comments; unparseable or implausible values are None."""
    age: float | None = None
    sex: str | None = None
    for line in comments:
        match = _COMMENT_FIELD.match(line)
        if not match:
            continue
        key, value = match.group(1).strip().lower(), match.group(2)
        if key == "age":
            try:
                years = float(value)
            except ValueError:
                continue
            if years != PTBXL_AGE_UNKNOWN and AGE_RANGE_YEARS[0] <= years <= AGE_RANGE_YEARS[1]:
                age = years
        elif key in ("sex", "gender"):
            try:
                sex = parse_sex(value)
            except ValueError:
                continue
    return age, sex


def _interpolate_nans(lead: np.ndarray) -> np.ndarray:
    """Fill NaN samples of one lead by linear interpolation between valid neighbours."""
    valid = ~np.isnan(lead)
    t = np.arange(lead.size)
    return np.interp(t, t[valid], lead[valid])


def read_reference(
    path: str | os.PathLike[str], target_fs: int = DEFAULT_FS, seconds: float = DEFAULT_SECONDS, offset: float = 0.0,
    partial: bool = False,
) -> Reference:
    """Read a user's 12-lead WFDB record as the reference of a twin (or, ``partial``, the leads a record holds).

    Args:
        path: record path, with or without ``.hea`` (``.dat`` is also accepted).
        target_fs: sampling rate of the returned signal (Hz); other rates are
            resampled with a polyphase filter (``scipy.signal.resample_poly``).
        seconds: duration used: the window ``offset .. offset + seconds`` of the
            record (no padding: a padded reference would teach the model a flat tail).
        offset: start of the window in seconds (default 0: the first ``seconds``).
        partial: accept a record with only some of the 12 leads (lead completion); ``signal`` is then
            ``(k, L)`` for the ``k`` leads in ``Reference.leads``.

    Channels other than the 12 standard leads (e.g. Frank leads X, Y, Z) are
    dropped; names are mapped by :func:`~ecgtwin.constants.canonical_lead` (``AVR``,
    ``DII``). Partially missing samples (NaN) are linearly interpolated with a
    warning. Every change is recorded in the returned :class:`Reference`.

    Raises:
        ECGInputError: missing/empty/unreadable record, missing or duplicated leads,
            unsupported units, all-NaN or flat leads, a window past the record's end.
    """
    if target_fs <= 0 or seconds <= 0:
        raise ValueError(f"target_fs and seconds must be positive, got {target_fs} Hz, {seconds} s")
    if not (math.isfinite(offset) and offset >= 0):
        raise ECGInputError(header_path(path), f"offset must be a number of seconds >= 0, got {offset}")
    header = check_reference(path, allow_missing=partial)
    hea, original_fs = header.path, header.fs
    present = [k for k, c in enumerate(header.columns) if c >= 0]  # rows of LEADS the record holds
    names = tuple(LEADS[k] for k in present)
    start = int(round(offset * original_fs))
    needed = int(np.ceil(seconds * original_fs - 1e-9))
    duration = header.n_samples / original_fs
    if start + needed > header.n_samples:
        window = f"the window {offset:g}-{offset + seconds:g} s" if offset else f"the {seconds:g} s needed"
        raise ECGInputError(hea, f"record is {duration:.2f} s long, shorter than {window}")
    try:
        leads = read_leads(header, ECGInputError)  # (12, n_samples) mV, LEADS order
    except ECGInputError as exc:  # names the .dat; the user pointed at the .hea
        raise ECGInputError(hea, f"unreadable WFDB record: {exc}") from exc
    # Keep up to 1 s of margin on each side of the window so the resampling filter has no edge effect in it.
    margin = int(np.ceil(original_fs))
    first, last = max(0, start - margin), min(header.n_samples, start + needed + margin)
    signal = leads[present, first:last]  # (k, last - first) mV, LEADS order (k = 12 unless partial)
    window = slice(start - first, start - first + needed)

    notes: list[str] = []
    nan_counts = np.isnan(signal[:, window]).sum(axis=1)  # (k,)
    all_nan = [lead for lead, n in zip(names, nan_counts) if n == needed]
    if all_nan:
        raise ECGInputError(hea, f"leads {', '.join(all_nan)} have no valid samples (all NaN)")
    if np.isnan(signal).any():
        signal = np.stack([_interpolate_nans(lead) for lead in signal])  # (k, last - first)
    if nan_counts.any():
        notes.append(f"interpolated {int(nan_counts.sum())} missing (NaN) samples")
        warnings.warn(f"{hea}: {notes[-1]}", stacklevel=2)

    ptp = np.ptp(signal[:, window], axis=1)  # (k,)
    flat = [lead for lead, amp in zip(names, ptp) if amp < FLAT_LEAD_MV]
    if flat:
        raise ECGInputError(hea, f"flat line in leads {', '.join(flat)} (peak-to-peak < {FLAT_LEAD_MV} mV)")

    skip = 0
    if abs(original_fs - target_fs) > 1e-9:
        ratio = Fraction(target_fs) / Fraction(original_fs).limit_denominator(1000)
        signal = resample_poly(signal, ratio.numerator, ratio.denominator, axis=1)  # (k, (last - first) * ratio)
        skip = int(round((start - first) * target_fs / original_fs))
        notes.append(f"resampled {original_fs:g} Hz -> {target_fs} Hz")
    elif start > first:
        skip = start - first
    length = int(round(seconds * target_fs))
    if start > 0 or needed < header.n_samples:
        notes.append(f"used {offset:g}-{offset + seconds:g} s of {duration:g} s")
    used = set(header.columns)
    dropped = tuple(name for i, name in enumerate(header.channel_names) if i not in used)
    mapped = tuple((header.channel_names[c], lead) for lead, c in zip(LEADS, header.columns)
                   if c >= 0 and header.channel_names[c] != lead)
    notes += [f"dropped channels {', '.join(dropped)}"] if dropped else []
    notes += [f"lead names {', '.join(f'{a}->{b}' for a, b in mapped)}"] if mapped else []
    age, sex = _demographics_from_comments(header.comments)
    return Reference(
        signal=np.ascontiguousarray(signal[:, skip:skip + length], dtype=np.float32),  # (k, length)
        fs=int(target_fs),
        record_name=header.base.name,
        path=header.base,
        original_fs=original_fs,
        original_units=header.units,
        comments=header.comments,
        age=age,
        sex=sex,
        notes=tuple(notes),
        offset_s=float(offset),
        original_seconds=duration,
        nan_filled=int(nan_counts.sum()),
        dropped_channels=dropped,
        mapped_leads=mapped,
        leads=names,
    )


def check_reference(path: str | os.PathLike[str], allow_missing: bool = False) -> WFDBHeader:
    """The checks of a reference that need no model: the header (present, not empty, readable, the 12 leads,
    units) and its signal files (present, long enough). Returns the header; raises :class:`ECGInputError`."""
    hea = header_path(path)
    if record_base(path).is_dir() or hea.is_dir():
        raise ECGInputError(record_base(path), "is a folder; give a WFDB record (path with or without .hea)")
    if not hea.is_file():
        raise ECGInputError(hea, "reference record not found (no .hea header file)")
    if not any(line.strip() and not line.lstrip().startswith("#") for line in _header_lines(hea)):
        raise ECGInputError(hea, "empty header file (no record line; is this a WFDB record?)")
    header = read_header(hea, ECGInputError, only_standard=False, allow_missing=allow_missing)
    try:
        check_signal_files(header, ECGInputError)
    except ECGInputError as exc:
        raise ECGInputError(hea, f"unreadable WFDB record: {exc}") from exc
    return header


def _header_lines(hea: Path) -> list[str]:
    try:
        return hea.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise ECGInputError(hea, f"cannot read the header file ({exc.strerror})") from exc


def sanitize_record_name(name: str) -> str:
    """A valid WFDB record name: ASCII letters, digits, ``_`` and ``-`` only.

    Accents are folded (``"Müller"`` -> ``"Muller"``), every other run of
    characters becomes one ``_`` (``"a.b c"`` -> ``"a_b_c"``), leading/trailing
    ``_`` are stripped; an empty result becomes ``"record"``.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_name)
    cleaned = re.sub(r"_+", "_", cleaned).strip("_")
    return cleaned or "record"


def _comment_lines(comments: Sequence[str] | Mapping[str, object]) -> list[str]:
    """Header comment lines: ``key: value`` for a mapping; no newlines/tabs, no leading ``#``."""
    lines = [f"{k}: {v}" for k, v in comments.items()] if isinstance(comments, Mapping) else list(comments)
    return [re.sub(r"[\t\n\r\f\v]+", " ", str(line)).lstrip("#").strip() for line in lines]


def choose_adc_gain(signal: np.ndarray) -> float:
    """Finest gain of :data:`ADC_GAINS` whose 16-bit range holds ``max |signal|`` (the coarsest if none)."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    for gain in ADC_GAINS:
        if peak * gain <= DIGITAL_MAX:
            return gain
    return ADC_GAINS[-1]


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_twin(
    out_dir: str | os.PathLike[str],
    record_name: str,
    signal: np.ndarray,
    fs: float,
    comments: Sequence[str] | Mapping[str, object] = (),
) -> Path:
    """Write one twin as a WFDB record ``out_dir/record_name.{hea,dat}``; returns the ``.hea`` path.

    Format 16 (16-bit), units mV, sig_name = LEADS, gain from
    :func:`choose_adc_gain` (samples beyond the 16-bit range are clipped with a
    warning). ``comments`` (list of lines or ``{key: value}``) carry provenance.

    Atomic: both files are written in a temporary directory inside ``out_dir``
    and moved with ``os.replace``, the ``.dat`` first and the ``.hea`` last; an
    existing ``.hea`` of the same name is removed first. A record therefore
    counts as written exactly when its ``.hea`` exists; on any failure the
    temporary files and a half-moved ``.dat`` are removed.
    """
    out = Path(out_dir)
    if not _VALID_NAME.fullmatch(record_name):
        suggestion = sanitize_record_name(record_name)
        raise ValueError(f"record_name {record_name!r} is not a valid WFDB name; use {suggestion!r} (sanitize_record_name)")
    name = record_name
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 2 or signal.shape[0] != N_LEADS or signal.shape[1] < 1:
        raise ValueError(f"twin {name}: signal must be shaped (12, L), got {signal.shape}")
    if not np.isfinite(signal).all():
        raise ValueError(f"twin {name}: signal has {int((~np.isfinite(signal)).sum())} non-finite samples")
    gain = choose_adc_gain(signal)
    digital = np.round(signal * gain)  # (12, L) adu
    n_clipped = int((np.abs(digital) > DIGITAL_MAX).sum())
    if n_clipped:
        limit = DIGITAL_MAX / gain
        warnings.warn(f"twin {name}: {n_clipped} samples beyond +-{limit:.1f} mV clipped", stacklevel=2)
        digital = np.clip(digital, -DIGITAL_MAX, DIGITAL_MAX)

    out.mkdir(parents=True, exist_ok=True)
    hea, dat = out / f"{name}.hea", out / f"{name}.dat"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=out))
    dat_moved = False
    try:
        wfdb.wrsamp(
            name,
            fs=fs,
            units=[UNITS] * N_LEADS,
            sig_name=list(LEADS),
            d_signal=digital.T.astype(np.int16),  # (L, 12) as WFDB expects
            fmt=["16"] * N_LEADS,
            adc_gain=[gain] * N_LEADS,
            baseline=[0] * N_LEADS,
            comments=_comment_lines(comments),
            write_dir=str(tmp),
        )
        for part in (tmp / dat.name, tmp / hea.name):
            _fsync_file(part)
        hea.unlink(missing_ok=True)  # an old record of this name stops counting as written
        os.replace(tmp / dat.name, dat)
        dat_moved = True
        os.replace(tmp / hea.name, hea)
    except BaseException:
        if dat_moved and not hea.exists():
            dat.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return hea


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (e.g. a checkpoint; header comments use the first 12 characters)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()
