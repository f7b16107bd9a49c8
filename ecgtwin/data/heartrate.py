"""Heart rate from a 12-lead ECG: R peaks (neurokit2) on lead II, falling back to other leads.

HR = 60 / median(RR) (Makowski et al. 2021, NeuroKit2; the median is robust to a
missed or an extra beat). A lead's estimate is accepted only when it is
physiologically plausible (:data:`~ecgtwin.constants.HR_RANGE_BPM`) and the RR
intervals are consistent; otherwise the next lead is tried.
"""
from __future__ import annotations

import warnings

import numpy as np

from ecgtwin.constants import HR_RANGE_BPM, N_LEADS, lead_index

HR_LEADS: tuple[str, ...] = ("II", "V5", "I", "V2", "aVF", "V6")
"""Leads tried in order: II (the rhythm lead), then leads with usually tall R waves."""
MIN_BEATS = 3
MAX_RR_VARIATION = 0.6
"""Largest accepted coefficient of variation of RR (atrial fibrillation stays well below)."""


def lead_r_peaks(x: np.ndarray, fs: float, min_delay: float = 0.3) -> np.ndarray:
    """R-peak sample indices (int64, ascending) of one lead ``(L,)`` (neurokit2); empty when none can be found.

    NaN gaps (under half the lead) are interpolated; a flat lead (< 0.01 mV peak to peak) or one under 2 s has none.
    ``min_delay`` (s): the detector's refractory period (neurokit2's default 0.3 s; peaks closer than it are
    merged, so looking for beats closer than 0.3 s needs a shorter one).
    """
    x = np.asarray(x, dtype=np.float64)
    none = np.zeros(0, dtype=np.int64)
    valid = ~np.isnan(x)
    if valid.mean() < 0.5 or len(x) < 2 * fs:
        return none
    if not valid.all():
        positions = np.arange(len(x))
        x = np.interp(positions, positions[valid], x[valid])
    if np.ptp(x) < 0.01:  # flat lead (mV)
        return none
    import neurokit2 as nk

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cleaned = nk.ecg_clean(x, sampling_rate=int(round(fs)), method="neurokit")
            peaks = np.asarray(nk.ecg_findpeaks(cleaned, sampling_rate=int(round(fs)), method="neurokit",
                                                mindelay=min_delay)["ECG_R_Peaks"])
    except Exception:  # neurokit2 raises on degenerate input (e.g. no peaks at all)
        return none
    return np.sort(peaks.astype(np.int64))


def _lead_heart_rate(x: np.ndarray, fs: float) -> float:
    """HR of one lead in bpm, NaN when no plausible, consistent R-peak train is found."""
    peaks = lead_r_peaks(x, fs)
    if peaks.size < MIN_BEATS:
        return float("nan")
    rr = np.diff(peaks) / fs  # (n_beats - 1,) seconds
    hr = 60.0 / float(np.median(rr))
    if not HR_RANGE_BPM[0] <= hr <= HR_RANGE_BPM[1] or rr.std() / rr.mean() > MAX_RR_VARIATION:
        return float("nan")
    return hr


def estimate_heart_rate(signal: np.ndarray, fs: float) -> float:
    """Heart rate in bpm of a ``(12, L)`` record (LEADS order) or a single lead ``(L,)``; NaN if undetectable.

    Tries lead II first, then :data:`HR_LEADS`; about 2 ms per lead at 100 Hz.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        return _lead_heart_rate(x, float(fs))
    if x.ndim != 2 or x.shape[0] != N_LEADS:
        raise ValueError(f"estimate_heart_rate: signal must be (12, L) or (L,), got shape {x.shape}")
    for name in HR_LEADS:
        hr = _lead_heart_rate(x[lead_index(name)], float(fs))
        if np.isfinite(hr):
            return hr
    return float("nan")
