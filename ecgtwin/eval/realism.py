"""Realism: what a reader sees first (noise, rhythm, amplitude, extra beats, lead coherence), as pure functions.

Every function takes ``(N, 12, L)`` mV signals in LEADS order (numpy) and
returns numbers or per-record arrays; :func:`realism_section` puts them side by
side for each method (twin, population, copy) against the real targets.

* limb-lead residual: RMS of the deviation from Einthoven's and Goldberger's laws
  (:func:`ecgtwin.leads.lead_law_residual`), 0 for an exact 12-lead ECG;
* amplitude: per-lead RMS of the method over that of the real targets (1 = same);
* noise: RMS in the 35-50 Hz band (35-49 Hz at 100 Hz: the band stops short of
  Nyquist), method over real;
* rhythm: RR intervals from the heart-rate R-peak detector
  (:func:`ecgtwin.data.heartrate.lead_r_peaks`, lead II first); the share of records
  with a regular rhythm (RR coefficient of variation < 0.15), and rhythm control: of
  the targets labelled SR, the share of records that are regular; of those labelled
  AFIB, the share that are irregular;
* spurious beats: the share of records with an RR < 0.3 s among the pairs whose
  target has none (peaks found with a 0.15 s refractory period, so that such beats
  can show at all);
* inter-lead correlation error: mean |difference| of the off-diagonal entries of the
  average 12 x 12 lead-correlation matrices of the method and of the real targets;
* classifier two-sample test (Lopez-Paz & Oquab 2017): a logistic regression on
  standardized features tells the method's records from the real targets;
  cross-validated AUROC with a bootstrap CI; 0.5 = indistinguishable.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ecgtwin.constants import LEADS, N_LEADS, lead_index
from ecgtwin.eval.metrics import as_numpy, bootstrap_ci, macro_auroc

NAN = float("nan")
NOISE_BAND_HZ: tuple[float, float] = (35.0, 50.0)
"""High-frequency noise band; the upper edge is clipped to 0.98 x Nyquist (49 Hz at 100 Hz)."""
REGULAR_CV = 0.15
"""RR coefficient of variation below which a rhythm counts as regular."""
SPURIOUS_RR_S = 0.3
"""An RR interval shorter than this (s) is a spurious (or premature) beat."""
SPURIOUS_MIN_DELAY_S = 0.15
"""Refractory period (s) of the R-peak detector when looking for spurious beats."""
RHYTHM_LEADS: tuple[str, ...] = ("II", "V5", "I", "V2", "aVF", "V6")
"""Leads tried in order for R peaks (the heart-rate estimator's order)."""


def _signals(x: object, name: str = "signals") -> np.ndarray:
    arr = as_numpy(x, name, ndim=3)
    if arr.shape[1] != N_LEADS:
        raise ValueError(f"{name} must be (N, {N_LEADS}, L) in LEADS order, got shape {arr.shape}")
    return arr


# ---------------------------------------------------------------- amplitude, noise, lead laws
def limb_residual_rms(signals: object) -> np.ndarray:
    """Limb-lead law residual RMS (mV) per record -> (N,) (:func:`ecgtwin.leads.lead_law_residual`)."""
    from ecgtwin.leads import lead_law_residual

    return np.asarray(lead_law_residual(_signals(signals)), dtype=np.float64)


def lead_rms(signals: object) -> np.ndarray:
    """RMS over time per record and lead (mV) -> (N, 12)."""
    return np.sqrt(np.mean(_signals(signals) ** 2, axis=2))


def amplitude_ratio(signals: object, real: object) -> np.ndarray:
    """Per-lead mean RMS of ``signals`` over that of ``real`` -> (12,); 1 = same amplitude."""
    return lead_rms(signals).mean(axis=0) / np.maximum(lead_rms(real).mean(axis=0), 1e-12)


def band_rms(signals: object, fs: float, band: tuple[float, float] = NOISE_BAND_HZ, order: int = 4) -> np.ndarray:
    """RMS (mV, over leads and time) of the zero-phase Butterworth band-passed signal per record -> (N,)."""
    from scipy import signal as sps

    x = _signals(signals)
    low, high = band[0], min(band[1], 0.98 * fs / 2.0)
    if not 0 < low < high:
        raise ValueError(f"fs = {fs} Hz leaves no {band[0]}-{band[1]} Hz band")
    sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    filtered = sps.sosfiltfilt(sos, x, axis=2)  # (N, 12, L)
    return np.sqrt(np.mean(filtered**2, axis=(1, 2)))


def noise_ratio(signals: object, real: object, fs: float, band: tuple[float, float] = NOISE_BAND_HZ) -> float:
    """Mean 35-50 Hz RMS of ``signals`` over that of ``real`` (1 = as noisy as real ECGs)."""
    return float(band_rms(signals, fs, band).mean() / max(band_rms(real, fs, band).mean(), 1e-12))


# ---------------------------------------------------------------- rhythm
def rr_intervals(record: np.ndarray, fs: float, min_delay: float = 0.3, min_peaks: int = 3) -> np.ndarray:
    """RR intervals (s) of one ``(12, L)`` record: R peaks of the first of :data:`RHYTHM_LEADS` with
    ``min_peaks`` or more (:func:`~ecgtwin.data.heartrate.lead_r_peaks`); empty when none has."""
    from ecgtwin.data.heartrate import lead_r_peaks

    for name in RHYTHM_LEADS:
        peaks = lead_r_peaks(record[lead_index(name)], fs, min_delay=min_delay)
        if len(peaks) >= min_peaks:
            return np.diff(peaks) / fs  # (n_peaks - 1,)
    return np.zeros(0)


def rr_cv(signals: object, fs: float) -> np.ndarray:
    """Coefficient of variation (std / mean) of the RR intervals per record -> (N,); NaN with < 2 intervals."""
    out = []
    for record in _signals(signals):
        rr = rr_intervals(record, fs)
        out.append(float(rr.std() / rr.mean()) if len(rr) >= 2 else NAN)
    return np.asarray(out, dtype=np.float64)


def regular_share(cv: np.ndarray, threshold: float = REGULAR_CV) -> float:
    """Share of the records with a measured RR CV that have CV < ``threshold``; NaN when none was measured."""
    cv = np.asarray(cv, dtype=np.float64)
    finite = cv[np.isfinite(cv)]
    return float((finite < threshold).mean()) if len(finite) else NAN


def has_short_rr(signals: object, fs: float, min_rr: float = SPURIOUS_RR_S) -> np.ndarray:
    """Per record: 1.0 when some RR interval is shorter than ``min_rr`` s, 0.0 when none, NaN without beats -> (N,)."""
    out = []
    for record in _signals(signals):
        rr = rr_intervals(record, fs, min_delay=SPURIOUS_MIN_DELAY_S, min_peaks=2)
        out.append(float((rr < min_rr).any()) if len(rr) else NAN)
    return np.asarray(out, dtype=np.float64)


def spurious_beat_share(short: np.ndarray, target_short: np.ndarray) -> float:
    """Share of records with a short RR among the pairs whose target has none (both measured); NaN if no such pair."""
    short, target_short = np.asarray(short, dtype=np.float64), np.asarray(target_short, dtype=np.float64)
    usable = np.isfinite(short) & (target_short == 0.0)
    return float(short[usable].mean()) if usable.any() else NAN


def rhythm_control(cv: np.ndarray, target_labels: np.ndarray, names: Sequence[str],
                   threshold: float = REGULAR_CV) -> dict[str, float]:
    """Of the records whose TARGET is labelled SR, the share regular; of those labelled AFIB, the share irregular.

    ``cv`` (N,) RR CVs of the method's records, ``target_labels`` (N, V) multi-hot over ``names``. Labels the
    vocabulary lacks give NaN shares and n = 0.
    """
    cv = np.asarray(cv, dtype=np.float64)
    labels = np.asarray(target_labels) > 0.5
    out: dict[str, float] = {}
    for label, key, regular in (("SR", "sr_regular", True), ("AFIB", "afib_irregular", False)):
        rows = labels[:, list(names).index(label)] & np.isfinite(cv) if label in names else np.zeros(len(cv), bool)
        hit = cv[rows] < threshold if regular else cv[rows] >= threshold
        out[f"{key}_share"] = float(hit.mean()) if rows.any() else NAN
        out[f"{key}_n"] = float(rows.sum())
    return out


# ---------------------------------------------------------------- lead coherence
def mean_lead_correlation(signals: object) -> np.ndarray:
    """Average over records of the 12 x 12 Pearson correlation matrix of the leads -> (12, 12).

    A constant lead has no correlation; its entries are left out of the average (NaN if never defined).
    """
    x = _signals(signals)
    centred = x - x.mean(axis=2, keepdims=True)  # (N, 12, L)
    norm = np.sqrt((centred**2).sum(axis=2))  # (N, 12)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.einsum("nil,njl->nij", centred, centred) / (norm[:, :, None] * norm[:, None, :])  # (N, 12, 12)
    corr[~np.isfinite(corr)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(corr, axis=0)


def correlation_error(signals: object, real: object) -> float:
    """Mean |difference| over the off-diagonal entries of the average lead-correlation matrices."""
    diff = np.abs(mean_lead_correlation(signals) - mean_lead_correlation(real))  # (12, 12)
    off = ~np.eye(N_LEADS, dtype=bool)
    return float(np.nanmean(diff[off]))


# ---------------------------------------------------------------- classifier two-sample test
def classifier_two_sample_auroc(fake: object, real: object, groups: np.ndarray | None = None, folds: int = 5,
                                n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Cross-validated AUROC of a logistic regression telling ``fake`` (N, F) from ``real`` (M, F) features.

    Features are z-scored inside each training fold. ``groups`` (N + M,) keep rows of one patient in one fold
    (fake rows first); folds = min(``folds``, groups per class). The AUROC of the out-of-fold scores gets a
    percentile bootstrap CI. 0.5 = indistinguishable, 1 = always told apart. Returns ``auroc, auroc_low,
    auroc_high, n`` (NaN when the sets are too small to cross-validate).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = as_numpy(fake, "fake", ndim=2), as_numpy(real, "real", ndim=2)
    x = np.concatenate([a, b])  # (N + M, F)
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])  # (N + M,) 1 = fake
    failed = {"auroc": NAN, "auroc_low": NAN, "auroc_high": NAN, "n": float(len(x))}
    if not np.isfinite(x).all() or min(len(a), len(b)) < 2:
        return failed
    if groups is None:
        k = min(folds, len(a), len(b))
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y)
    else:
        groups = np.asarray(groups)
        k = min(folds, len(np.unique(groups)))
        if k < 2:
            return failed
        splits = GroupKFold(n_splits=k).split(x, y, groups)
    scores = np.full(len(x), np.nan)
    for train, test in splits:
        if len(np.unique(y[train])) < 2:
            return failed
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x[train], y[train])
        scores[test] = model.decision_function(x[test])
    point, low, high = bootstrap_ci(macro_auroc, y[:, None], scores[:, None], n_boot=n_boot, seed=seed)
    return {"auroc": point, "auroc_low": low, "auroc_high": high, "n": float(len(x))}


# ---------------------------------------------------------------- section
def realism_section(signals: Mapping[str, np.ndarray], real: np.ndarray, fs: float, target_labels: np.ndarray,
                    label_names: Sequence[str], patient_id: np.ndarray, features: Mapping[str, np.ndarray] | None = None,
                    real_features: np.ndarray | None = None, real_rows: tuple[np.ndarray, np.ndarray] | None = None,
                    n_boot: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """``{method: {metric: value}}``: every realism metric of each method against the real targets.

    ``signals``: ``{method: (P, 12, L)}`` (row i = pair i); ``real``: (P, 12, L) the targets; ``target_labels``
    (P, V) over ``label_names``; ``features``/``real_features``: per-record features of the two-sample test
    (default :func:`~ecgtwin.eval.metrics.simple_ecg_features`). The ``real`` column: the targets' own values,
    and for the comparative metrics (amplitude, noise, correlation, two-sample test) one patient-disjoint half of
    the targets against the other (``real_rows``, e.g. :func:`~ecgtwin.eval.fidelity.matched_rows`).
    """
    from ecgtwin.eval.metrics import simple_ecg_features, standardize_features

    real = _signals(real, "real")
    if features is None or real_features is None:
        names = list(signals)
        real_features, *rest = standardize_features(simple_ecg_features(real, fs),
                                                    *(simple_ecg_features(signals[k], fs) for k in names))
        features = dict(zip(names, rest))
    target_short = has_short_rr(real, fs)
    real_cv = rr_cv(real, fs)
    patient_id = np.asarray(patient_id)

    def row(x: np.ndarray, ref: np.ndarray, feats: np.ndarray, ref_feats: np.ndarray, groups: np.ndarray,
            cv: np.ndarray) -> dict[str, float]:
        ratio = amplitude_ratio(x, ref)
        return {"limb_residual_mV": float(limb_residual_rms(x).mean()),
                "amplitude_ratio": float(np.median(ratio)),
                **{f"amplitude_ratio_{lead}": float(r) for lead, r in zip(LEADS, ratio)},
                "noise_ratio_35_50Hz": noise_ratio(x, ref, fs),
                "rr_regular_share": regular_share(cv),
                "correlation_error": correlation_error(x, ref),
                **{f"c2st_{k}": v for k, v in classifier_two_sample_auroc(feats, ref_feats, groups, n_boot=n_boot,
                                                                           seed=seed).items()}}

    out: dict[str, dict[str, float]] = {}
    both = np.concatenate([patient_id, patient_id])  # (2P,) a record and its target share a group
    for name, x in signals.items():
        x = _signals(x, name)
        cv = rr_cv(x, fs)
        out[name] = {**row(x, real, features[name], real_features, both, cv),
                     "spurious_beat_share": spurious_beat_share(has_short_rr(x, fs), target_short),
                     **rhythm_control(cv, target_labels, label_names)}
    if real_rows is not None:
        a, b = real_rows
        real_row = row(real[a], real[b], real_features[a], real_features[b],
                       np.concatenate([patient_id[a], patient_id[b]]), real_cv[a])
    else:
        real_row = {}
    out["real"] = {**real_row, "limb_residual_mV": float(limb_residual_rms(real).mean()),
                   "rr_regular_share": regular_share(real_cv), "spurious_beat_share": NAN,
                   **rhythm_control(real_cv, target_labels, label_names)}
    return out
