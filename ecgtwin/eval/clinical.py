"""Clinical plausibility of generated ECGs: heart rate, PR/QRS/QT intervals, limb-lead physics.

* Heart rate: :func:`ecgtwin.data.heartrate.estimate_heart_rate` per record
  (the same estimator that labels the training data), compared to the
  requested HR with :func:`hr_mae`.
* Intervals: NeuroKit2 wavelet delineation (Makowski et al. 2021; DWT method of
  Martínez et al. 2004) of lead II, median over beats. At 100 Hz a sample is
  10 ms and the DWT onsets are coarse (PR tends to read short on real PTB-XL
  records), so compare *distributions* of twins and real records measured the
  same way, not absolute values.
* Limb-lead physics: the six limb leads are linear combinations of two
  potentials, so a real ECG satisfies Einthoven's law ``III = II - I`` and
  Goldberger's ``aVR + aVL + aVF = 0`` up to noise; a generator that treats the
  leads independently does not.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ecgtwin.constants import N_LEADS, lead_index
from ecgtwin.eval.metrics import as_numpy

INTERVALS: tuple[str, ...] = ("pr_ms", "qrs_ms", "qt_ms")
"""Keys of :func:`intervals` and columns of :func:`interval_distributions`."""
DELINEATION_LEAD = "II"
_HIGHPASS_HZ = 0.5  # baseline-wander removal before delineation (same as the data preprocessing)


def _records(signals: Any, name: str = "signals") -> np.ndarray:
    """``(N, 12, L)`` float64 array, or a clear error."""
    x = as_numpy(signals, name, ndim=3)
    if x.shape[1] != N_LEADS:
        raise ValueError(f"{name} must be (N, {N_LEADS}, L) in LEADS order, got shape {x.shape}")
    return x


def heart_rates(signals: Any, fs: float) -> np.ndarray:
    """Measured heart rate (bpm) of every record ``(N, 12, L)`` -> ``(N,)``; NaN where undetectable."""
    from ecgtwin.data.heartrate import estimate_heart_rate

    x = _records(signals)
    return np.array([estimate_heart_rate(record, fs) for record in x], dtype=np.float64)


def hr_mae(target_hr: Any, measured_hr: Any) -> dict[str, float]:
    """Mean absolute error (bpm) between requested and measured HR, ignoring NaN.

    Returns ``{"mae", "n" (pairs used), "n_undetectable" (measured NaN where a target
    exists)}``; ``mae`` is NaN when no pair is usable.
    """
    target, measured = as_numpy(target_hr, "target_hr", ndim=1), as_numpy(measured_hr, "measured_hr", ndim=1)
    if target.shape != measured.shape:
        raise ValueError(f"target_hr {target.shape} and measured_hr {measured.shape} must have the same shape")
    has_target, detected = np.isfinite(target), np.isfinite(measured)
    both = has_target & detected
    mae = float(np.abs(target[both] - measured[both]).mean()) if both.any() else float("nan")
    return {"mae": mae, "n": float(both.sum()), "n_undetectable": float((has_target & ~detected).sum())}


def _beat_median(later: np.ndarray, earlier: np.ndarray, fs: float, min_beats: int) -> float:
    """Median over beats of ``later - earlier`` (sample indices) in ms; NaN with fewer than ``min_beats``."""
    ms = (later - earlier) * 1000.0 / fs  # (n_beats,)
    ms = ms[np.isfinite(ms) & (ms > 0)]  # a non-positive interval is a delineation error
    return float(np.median(ms)) if len(ms) >= min_beats else float("nan")


def intervals(signal: Any, fs: float, min_beats: int = 2) -> dict[str, float]:
    """PR, QRS and QT intervals (ms) of one ``(12, L)`` record from lead II; NaN where delineation fails.

    PR = QRS onset - P onset, QRS = QRS offset - QRS onset, QT = T offset - QRS onset,
    each the median over beats (at least ``min_beats``). R peaks come from
    ``nk.ecg_peaks`` on the NeuroKit-cleaned lead; the waves from ``nk.ecg_delineate``
    (``method="dwt"``) on the lead high-passed at 0.5 Hz only (NeuroKit's cleaning also
    smooths, which widens the QRS at 100 Hz). Never raises on a bad ECG (flat, noise, NaN).
    """
    x = as_numpy(signal, "signal", ndim=2)
    if x.shape[0] != N_LEADS:
        raise ValueError(f"signal must be ({N_LEADS}, L) in LEADS order, got shape {x.shape}")
    if not fs > 0:
        raise ValueError(f"fs must be > 0 Hz, got {fs}")
    failed = {key: float("nan") for key in INTERVALS}
    lead = x[lead_index(DELINEATION_LEAD)]
    if not np.isfinite(lead).all() or np.ptp(lead) < 1e-3 or len(lead) < 2 * fs:
        return failed
    import neurokit2 as nk

    from ecgtwin.data.preprocess import highpass

    rate = int(round(fs))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, info = nk.ecg_peaks(nk.ecg_clean(lead, sampling_rate=rate), sampling_rate=rate)
            rpeaks = np.asarray(info["ECG_R_Peaks"])
            if len(rpeaks) < min_beats:
                return failed
            _, waves = nk.ecg_delineate(highpass(lead, fs, _HIGHPASS_HZ), rpeaks, sampling_rate=rate, method="dwt")
    except Exception:  # NeuroKit2 raises assorted errors on degenerate signals; a bad twin is a NaN, not a crash
        return failed
    wave = {k: np.asarray(waves.get(k, []), dtype=np.float64) for k in ("ECG_P_Onsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Offsets")}
    return {
        "pr_ms": _beat_median(wave["ECG_R_Onsets"], wave["ECG_P_Onsets"], fs, min_beats),
        "qrs_ms": _beat_median(wave["ECG_R_Offsets"], wave["ECG_R_Onsets"], fs, min_beats),
        "qt_ms": _beat_median(wave["ECG_T_Offsets"], wave["ECG_R_Onsets"], fs, min_beats),
    }


def interval_distributions(signals: Any, fs: float) -> pd.DataFrame:
    """:func:`intervals` of every record ``(N, 12, L)`` -> DataFrame with columns :data:`INTERVALS`, one row per record."""
    x = _records(signals)
    return pd.DataFrame([intervals(record, fs) for record in x], columns=list(INTERVALS), index=pd.RangeIndex(len(x)))


def _limb_leads(signals: Any, names: tuple[str, ...]) -> list[np.ndarray]:
    """The named leads of ``(N, 12, L)`` or ``(12, L)`` signals, each ``(N, L)`` or ``(L,)``."""
    x = as_numpy(signals, "signals", ndim=(2, 3))
    if x.shape[-2] != N_LEADS:
        raise ValueError(f"signals must be (N, {N_LEADS}, L) or ({N_LEADS}, L) in LEADS order, got shape {x.shape}")
    return [x[..., lead_index(name), :] for name in names]  # each (..., L)


def einthoven_residual(signals: Any) -> np.ndarray:
    """Mean over time of ``|III - (II - I)|`` (mV) per record: ``(N, 12, L)`` -> ``(N,)`` (``(12, L)`` -> scalar)."""
    lead_i, lead_ii, lead_iii = _limb_leads(signals, ("I", "II", "III"))
    return np.abs(lead_iii - (lead_ii - lead_i)).mean(axis=-1)


def goldberger_residual(signals: Any) -> np.ndarray:
    """Mean over time of ``|aVR + aVL + aVF|`` (mV) per record: ``(N, 12, L)`` -> ``(N,)`` (``(12, L)`` -> scalar)."""
    avr, avl, avf = _limb_leads(signals, ("aVR", "aVL", "aVF"))
    return np.abs(avr + avl + avf).mean(axis=-1)
