"""Lead-completion metrics and the linear-regression baseline (the standard one in lead-reconstruction work).

* :class:`LeadRegression`: each missing lead as a least-squares linear function
  of the recorded leads at the same instant (plus an intercept), fitted on the
  train folds: ``x_missing(t) = W x_given(t) + b``. With the limb leads given it
  recovers the derived limb leads exactly; the precordial leads it can only
  approximate by the population's average heart-axis geometry.
* :func:`personal_regression`: the same map fitted on each person's own earlier
  12-lead ECG (patient-specific reconstruction, Nelwan et al. 2004, J Electrocardiol
  37(1): 11-18): the person's heart-axis geometry, not the population's.
* :func:`lead_scores`: per-lead Pearson r (over time, per record, then the
  median over records) and RMSE (mV) of reconstructed leads against the real
  ones.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgtwin.constants import LEADS


class LeadRegression:
    """Least-squares map from the recorded leads to every other lead (same time sample)."""

    def __init__(self, given: Sequence[str]) -> None:
        unknown = [g for g in given if g not in LEADS]
        if unknown or not given:
            raise ValueError(f"given leads must be names from {LEADS}, got {list(given)}")
        self.given = tuple(given)
        self.given_rows = [LEADS.index(g) for g in self.given]
        self.missing_rows = [i for i in range(len(LEADS)) if i not in self.given_rows]
        self.coef: np.ndarray | None = None  # (k + 1, m)

    def fit(self, signals: np.ndarray) -> LeadRegression:
        """Fit on (N, 12, L) mV records (e.g. the train folds)."""
        x = np.asarray(signals, dtype=np.float64)
        if x.ndim != 3 or x.shape[1] != len(LEADS) or x.shape[0] < 1:
            raise ValueError(f"records must be (N, 12, L), got {x.shape}")
        design = np.concatenate([x[:, self.given_rows].transpose(0, 2, 1).reshape(-1, len(self.given_rows)),
                                 np.ones((x.shape[0] * x.shape[2], 1))], axis=1)  # (N*L, k+1)
        target = x[:, self.missing_rows].transpose(0, 2, 1).reshape(-1, len(self.missing_rows))  # (N*L, m)
        self.coef, *_ = np.linalg.lstsq(design, target, rcond=None)  # (k+1, m)
        return self

    def predict(self, given: np.ndarray) -> np.ndarray:
        """Full 12-lead records (N, 12, L) from the recorded leads (N, k, L): recorded ones kept, others predicted."""
        if self.coef is None:
            raise RuntimeError("LeadRegression: call fit() first")
        g = np.asarray(given, dtype=np.float64)
        if g.ndim != 3 or g.shape[1] != len(self.given_rows):
            raise ValueError(f"recorded leads must be (N, {len(self.given_rows)}, L), got {g.shape}")
        out = np.empty((g.shape[0], len(LEADS), g.shape[2]))
        out[:, self.given_rows] = g
        design = np.concatenate([g.transpose(0, 2, 1), np.ones((*g.shape[::2], 1))], axis=2)  # (N, L, k+1)
        out[:, self.missing_rows] = (design @ self.coef).transpose(0, 2, 1)  # (N, m, L)
        return out.astype(np.float32)


def personal_regression(given: Sequence[str], earlier: np.ndarray, partial: np.ndarray) -> np.ndarray:
    """Full 12-lead records (N, 12, L): record i's missing leads from its recorded leads ``partial[i]`` (k, L)
    through a :class:`LeadRegression` fitted on the same person's earlier 12-lead ECG ``earlier[i]`` (12, L)."""
    earlier, partial = np.asarray(earlier), np.asarray(partial)
    if earlier.ndim != 3 or partial.ndim != 3 or len(earlier) != len(partial):
        raise ValueError(f"need one earlier (12, L) record per partial (k, L) one, got {earlier.shape}, {partial.shape}")
    return np.concatenate([LeadRegression(given).fit(earlier[i:i + 1]).predict(partial[i:i + 1])
                           for i in range(len(partial))])  # (N, 12, L)


def pearson_per_record(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r over the last axis of two (..., L) arrays: (...,); NaN where either is constant."""
    a = np.asarray(a, dtype=np.float64) - np.mean(a, axis=-1, keepdims=True)
    b = np.asarray(b, dtype=np.float64) - np.mean(b, axis=-1, keepdims=True)
    denom = np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, np.sum(a * b, axis=-1) / denom, np.nan)


def lead_scores(reconstructed: np.ndarray, real: np.ndarray, leads: Sequence[str] = LEADS) -> dict[str, dict[str, float]]:
    """``{lead: {"r": median Pearson r, "rmse_mV": RMSE}}`` for the named leads of (N, 12, L) records."""
    x, y = np.asarray(reconstructed, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3 or x.shape[1] != len(LEADS):
        raise ValueError(f"reconstructed and real must both be (N, 12, L), got {x.shape} and {y.shape}")
    out = {}
    for lead in leads:
        i = LEADS.index(lead)
        out[lead] = {"r": float(np.nanmedian(pearson_per_record(x[:, i], y[:, i]))),
                     "rmse_mV": float(np.sqrt(np.mean((x[:, i] - y[:, i]) ** 2)))}
    return out
