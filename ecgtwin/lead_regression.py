"""Linear lead reconstruction: each missing lead a least-squares linear function of the recorded leads.

* :class:`LeadRegression`: ``x_missing(t) = W x_given(t) + b`` at the same instant, fitted on a set of 12-lead
  records (the train folds: the standard baseline of lead-reconstruction work). With the limb leads given it
  recovers the derived limb leads exactly; the precordial leads it can only approximate by the average heart-axis
  geometry of the records it was fitted on.
* :func:`personal_regression`: the same map fitted on each person's own earlier 12-lead ECG (patient-specific
  reconstruction, Nelwan et al. 2004, J Electrocardiol 37(1): 11-18): that person's geometry. Lead completion
  can start from it (:func:`ecgtwin.editing.complete_leads`, ``regression_start``).

Pure numpy; used by generation and by the evaluation alike.
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
