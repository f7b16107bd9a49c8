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
from ecgtwin.data.wfdb_reader import header_path, read_header, read_leads

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
    """A reference ECG ready for the model.

    ``signal`` is float32 ``(12, L)`` in mV, LEADS order, ``L = round(seconds * fs)``.
    ``age`` (years) and ``sex`` (``"M"``/``"F"``) come from header comments when
    present (PhysioNet-challenge ``Age: 56`` / MIMIC-style ``<age>: 56``), else None.
    ``notes`` lists what was repaired (e.g. interpolated NaN samples).
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
    path: str | os.PathLike[str], target_fs: int = DEFAULT_FS, seconds: float = DEFAULT_SECONDS
) -> Reference:
    """Read a user's 12-lead WFDB record as the reference of a twin.

    Args:
        path: record path, with or without ``.hea`` (``.dat`` is also accepted).
        target_fs: sampling rate of the returned signal (Hz); other rates are
            resampled with a polyphase filter (``scipy.signal.resample_poly``).
        seconds: duration used. Longer records are cropped to their **first**
            ``seconds``; shorter ones raise (no padding: a padded reference would
            teach the model a flat tail).

    Channels other than the 12 standard leads (e.g. Frank leads X, Y, Z) are
    ignored; names match case-insensitively (``AVR``, ``avr``). Partially
    missing samples (NaN) are linearly interpolated with a warning.

    Raises:
        ECGInputError: missing/unreadable record, missing or duplicated leads,
            unsupported units, all-NaN or flat leads, record shorter than ``seconds``.
    """
    if target_fs <= 0 or seconds <= 0:
        raise ValueError(f"target_fs and seconds must be positive, got {target_fs} Hz, {seconds} s")
    hea = header_path(path)
    if not hea.is_file():
        raise ECGInputError(hea, "reference record not found (no .hea header file)")
    header = read_header(hea, ECGInputError, only_standard=False)
    original_fs = header.fs
    needed = int(np.ceil(seconds * original_fs - 1e-9))
    if header.n_samples < needed:
        raise ECGInputError(
            hea, f"record is {header.n_samples / original_fs:.2f} s long, shorter than the {seconds:g} s needed"
        )
    try:
        leads = read_leads(header, ECGInputError)  # (12, n_samples) mV, LEADS order
    except ECGInputError as exc:  # names the .dat; the user pointed at the .hea
        raise ECGInputError(hea, f"unreadable WFDB record: {exc}") from exc
    # Keep a 1 s margin past the crop so the resampling filter has no edge effect at the end.
    keep = min(header.n_samples, needed + int(np.ceil(original_fs)))
    signal = leads[:, :keep]  # (12, keep) mV, LEADS order

    notes: list[str] = []
    nan_counts = np.isnan(signal[:, :needed]).sum(axis=1)  # (12,)
    all_nan = [lead for lead, n in zip(LEADS, nan_counts) if n == needed]
    if all_nan:
        raise ECGInputError(hea, f"leads {', '.join(all_nan)} have no valid samples (all NaN)")
    if nan_counts.any():
        signal = np.stack([_interpolate_nans(lead) for lead in signal])  # (12, keep)
        notes.append(f"interpolated {int(nan_counts.sum())} missing (NaN) samples")
        warnings.warn(f"{hea}: {notes[-1]}", stacklevel=2)

    ptp = np.ptp(signal[:, :needed], axis=1)  # (12,)
    flat = [lead for lead, amp in zip(LEADS, ptp) if amp < FLAT_LEAD_MV]
    if flat:
        raise ECGInputError(hea, f"flat line in leads {', '.join(flat)} (peak-to-peak < {FLAT_LEAD_MV} mV)")

    if abs(original_fs - target_fs) > 1e-9:
        ratio = Fraction(target_fs) / Fraction(original_fs).limit_denominator(1000)
        signal = resample_poly(signal, ratio.numerator, ratio.denominator, axis=1)  # (12, keep * ratio)
    length = int(round(seconds * target_fs))
    age, sex = _demographics_from_comments(header.comments)
    return Reference(
        signal=np.ascontiguousarray(signal[:, :length], dtype=np.float32),  # (12, length)
        fs=int(target_fs),
        record_name=header.base.name,
        path=header.base,
        original_fs=original_fs,
        original_units=header.units,
        comments=header.comments,
        age=age,
        sex=sex,
        notes=tuple(notes),
    )


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
