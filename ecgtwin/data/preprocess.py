"""Signal preprocessing: NaN gaps, resampling, baseline-wander high-pass, fixed length.

Order (:func:`preprocess`): fill NaN gaps at the native rate -> resample to the
target rate -> zero-phase high-pass -> crop/pad to ``fs * seconds`` samples.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from ecgtwin.constants import DEFAULT_FS, DEFAULT_SECONDS, LEADS, N_LEADS
from ecgtwin.data.errors import ECGDataError


@dataclass(frozen=True)
class PreprocessConfig:
    """What every cached record goes through (part of the cache fingerprint).

    Attributes:
        fs: target sampling rate in Hz (100 default, 500 for high-resolution models).
        seconds: target duration; records are cropped (first ``length`` samples) or zero-padded at the end.
        highpass_hz: Butterworth high-pass cut-off against baseline wander, ``None`` = off.
        highpass_order: Butterworth order (applied forward and backward: zero phase, twice the order).
        max_gap_seconds: NaN gaps up to this long are linearly interpolated; a lead with a longer gap is zeroed.
    """

    fs: float = DEFAULT_FS
    seconds: float = DEFAULT_SECONDS
    highpass_hz: float | None = 0.5
    highpass_order: int = 2
    max_gap_seconds: float = 0.2

    def __post_init__(self) -> None:
        if self.fs <= 0 or self.seconds <= 0:
            raise ValueError(f"fs and seconds must be positive, got fs={self.fs}, seconds={self.seconds}")
        if self.highpass_hz is not None and not 0 < self.highpass_hz < self.fs / 2:
            raise ValueError(f"highpass_hz must be in (0, fs/2 = {self.fs / 2}) or None, got {self.highpass_hz}")

    @property
    def length(self) -> int:
        """Samples per record, ``round(fs * seconds)``."""
        return int(round(self.fs * self.seconds))

    def to_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis (``scipy.signal.resample_poly``, anti-aliasing FIR).

    The edges are extended by a fitted line (``padtype="line"``) rather than
    zeros, so a baseline offset does not ring at the record ends.
    """
    if abs(fs_in - fs_out) < 1e-9:
        return signal
    ratio = Fraction(float(fs_out) / float(fs_in)).limit_denominator(1000)
    return sps.resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1, padtype="line")


def crop_or_pad(signal: np.ndarray, length: int) -> np.ndarray:
    """First ``length`` samples along the last axis, zero-padded at the end when shorter."""
    n = signal.shape[-1]
    if n >= length:
        return signal[..., :length]
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, length - n)]
    return np.pad(signal, pad)


def highpass(signal: np.ndarray, fs: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth high-pass along the last axis (second-order sections, forward-backward).

    The edges are extended (odd reflection) by one cut-off period, ``fs / cutoff_hz``
    samples, so the start-up transient of the slow filter stays small at the record ends.
    """
    sos = sps.butter(order, cutoff_hz, btype="highpass", fs=fs, output="sos")
    padlen = min(signal.shape[-1] - 1, int(round(fs / cutoff_hz)))
    return sps.sosfiltfilt(sos, signal, axis=-1, padlen=padlen)


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if starts.size else 0


def fill_nan_gaps(signal: np.ndarray, fs: float, max_gap_seconds: float = 0.2, where: str = "signal") -> tuple[np.ndarray, tuple[str, ...]]:
    """Interpolate short NaN gaps linearly; zero leads that are all NaN or have a longer gap.

    Returns the filled ``(12, L)`` copy and the names of the zeroed leads. An
    all-NaN record raises :class:`ECGDataError` (``where`` names it).
    """
    nan = np.isnan(signal)  # (12, L)
    if not nan.any():
        return signal, ()
    if nan.all():
        raise ECGDataError(where, "all samples are NaN")
    out = signal.copy()
    positions = np.arange(signal.shape[-1])
    max_gap = max_gap_seconds * fs
    zeroed: list[str] = []
    for lead in np.flatnonzero(nan.any(axis=-1)):
        gaps = nan[lead]
        if gaps.all() or _longest_run(gaps) > max_gap:
            out[lead] = 0.0
            zeroed.append(LEADS[lead])
        else:
            out[lead, gaps] = np.interp(positions[gaps], positions[~gaps], signal[lead, ~gaps])
    return out, tuple(zeroed)


def preprocess(signal: np.ndarray, fs: float, config: PreprocessConfig, where: str = "signal") -> tuple[np.ndarray, tuple[str, ...]]:
    """Bring a ``(12, L)`` mV record to ``(12, config.length)`` float32 at ``config.fs``.

    Returns ``(signal, zeroed_leads)`` where ``zeroed_leads`` names the leads that
    were missing (all NaN / long gap) and are now zero.
    """
    if signal.ndim != 2 or signal.shape[0] != N_LEADS:
        raise ECGDataError(where, f"expected a ({N_LEADS}, L) signal, got shape {signal.shape}")
    x, zeroed = fill_nan_gaps(signal.astype(np.float64), fs, config.max_gap_seconds, where)
    x = resample(x, fs, config.fs)
    if config.highpass_hz is not None:
        x = highpass(x, config.fs, config.highpass_hz, config.highpass_order)
    return np.ascontiguousarray(crop_or_pad(x, config.length), dtype=np.float32), zeroed
