"""Lead-completion metrics and the linear-regression baseline (the standard one in lead-reconstruction work).

* :class:`~ecgtwin.lead_regression.LeadRegression`: each missing lead as a least-squares linear function of
  the recorded leads, fitted on the train folds; :func:`~ecgtwin.lead_regression.personal_regression`: fitted
  on each person's own earlier ECG (both live in :mod:`ecgtwin.lead_regression`, which generation uses too).
* :func:`lead_scores`: per-lead Pearson r (over time, per record, then the
  median over records) and RMSE (mV) of reconstructed leads against the real
  ones.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgtwin.constants import LEADS
from ecgtwin.lead_regression import LeadRegression, personal_regression

__all__ = ["LeadRegression", "lead_scores", "pearson_per_record", "personal_regression"]


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
