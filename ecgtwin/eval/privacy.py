"""Privacy: does a twin reproduce a TRAINING record of another patient?

For each generated record (query) and each space, the distance to its nearest
training record of another patient (``d_train``) is compared with

* the distance to its own real target (``d_target``): a twin should resemble its
  person's later ECG more than any stranger's training ECG;
* a threshold from real data: the distance of every real test target to its
  nearest training record (of another patient) is how close a real ECG of an
  unseen person naturally comes to the training set; its 5th percentile is the
  threshold. A query closer than that to a training record is flagged
  (``memorized_share``); ``memorized_same_class_share`` does the same within
  the target's class (training records with exactly the target's labels, for the
  query and for the real targets alike). The real targets themselves are flagged
  at about 5% by construction: the reference column.

Spaces: ``signal`` (RMS difference in mV over leads and time, aligned),
``spectrum`` (RMS difference of per-lead magnitude spectra: blind to a circular
time shift, so a shifted copy is still caught) and ``features`` (Euclidean in
standardized handcrafted features, plus classifier features when given).
A "generator" that returns training records is flagged at 100%.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ecgtwin.constants import lead_index

NAN = float("nan")
THRESHOLD_PERCENTILE = 5.0
_CHUNK = 512  # gallery rows per distance block


def spectrum_embedding(signals: np.ndarray) -> np.ndarray:
    """Per-lead magnitude spectra ``|rfft| / sqrt(L)`` flattened: (N, 12, L) -> (N, 12 * (L // 2 + 1)).

    Invariant to circular time shifts; Parseval makes its Euclidean norm comparable to the signal's.
    """
    x = np.asarray(signals, dtype=np.float32)
    spec = np.abs(np.fft.rfft(x, axis=2)) / np.sqrt(x.shape[2])  # (N, 12, K)
    return spec.reshape(len(x), -1).astype(np.float32)  # (N, 12 * K)


def nearest_distances(queries: np.ndarray, gallery: np.ndarray, exclude: np.ndarray | None = None,
                      rms: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every query to its nearest gallery row and that row's index: ``(d (Q,), index (Q,))``.

    ``queries`` (Q, ...) and ``gallery`` (G, ...) are flattened per row. ``exclude`` (Q, G) bool masks candidates
    out (e.g. the query's own patient); a query without candidates gets NaN and index -1. ``rms=True`` divides the
    Euclidean distance by sqrt(dimension): the RMS difference (mV for signals).
    """
    q = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)  # (Q, D)
    g = np.asarray(gallery, dtype=np.float32).reshape(len(gallery), -1)  # (G, D)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries and gallery differ in size per row: {q.shape[1]} vs {g.shape[1]}")
    best = np.full(len(q), np.inf)
    index = np.full(len(q), -1, dtype=np.int64)
    q_sq = (q.astype(np.float64) ** 2).sum(axis=1)  # (Q,)
    for start in range(0, len(g), _CHUNK):
        block = g[start:start + _CHUNK]
        sq = q_sq[:, None] + (block.astype(np.float64) ** 2).sum(axis=1)[None, :] - 2.0 * (q @ block.T)  # (Q, b)
        if exclude is not None:
            sq = np.where(exclude[:, start:start + _CHUNK], np.inf, sq)
        arg = sq.argmin(axis=1)  # (Q,)
        value = sq[np.arange(len(q)), arg]
        better = value < best
        best[better], index[better] = value[better], start + arg[better]
    found = index >= 0
    d = np.full(len(q), NAN)
    # the block search ranks by a float32 dot product; the winner's distance is recomputed exactly in float64
    d[found] = paired_distances(q[found], g[index[found]], rms=False)
    return d / (np.sqrt(q.shape[1]) if rms else 1.0), index


def paired_distances(a: np.ndarray, b: np.ndarray, rms: bool = True) -> np.ndarray:
    """Distance between row i of ``a`` and row i of ``b`` -> (N,) (RMS difference when ``rms``)."""
    x = np.asarray(a, dtype=np.float64).reshape(len(a), -1)  # (N, D)
    y = np.asarray(b, dtype=np.float64).reshape(len(b), -1)  # (N, D)
    d = np.sqrt(((x - y) ** 2).sum(axis=1))
    return d / np.sqrt(x.shape[1]) if rms else d


def label_codes(labels: np.ndarray) -> np.ndarray:
    """One integer per multi-hot row (N, V) -> (N,): equal codes = identical label sets."""
    bits = np.asarray(labels) > 0.5  # (N, V)
    _, codes = np.unique(bits, axis=0, return_inverse=True)
    return codes.reshape(-1)


def same_class_mask(labels: np.ndarray, train_labels: np.ndarray) -> np.ndarray:
    """(N, G) True where training record g has exactly the labels of row n; rows whose label set no training record
    has get every training record (nothing to compare within the class)."""
    codes = label_codes(np.concatenate([np.asarray(labels), np.asarray(train_labels)]))  # (N + G,) one numbering
    same = codes[:len(labels), None] == codes[None, len(labels):]  # (N, G)
    same[~same.any(axis=1)] = True
    return same


def _share_below(d: np.ndarray, threshold: float) -> float:
    finite = d[np.isfinite(d)]
    return float(np.mean(finite < threshold)) if len(finite) and np.isfinite(threshold) else NAN


def _percentile(d: np.ndarray, q: float) -> float:
    finite = d[np.isfinite(d)]
    return float(np.percentile(finite, q)) if len(finite) else NAN


def _nearest_summary(d_train: np.ndarray, threshold: float, d_class: np.ndarray, threshold_class: float) -> dict[str, float]:
    some = np.isfinite(d_train).any()
    return {"nn_train_median": float(np.nanmedian(d_train)) if some else NAN,
            "nn_train_min": float(np.nanmin(d_train)) if some else NAN,
            "memorized_share": _share_below(d_train, threshold),
            "memorized_same_class_share": _share_below(d_class, threshold_class)}


def privacy_section(spaces: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray, np.ndarray, bool]],
                    target_labels: np.ndarray, patient_id: np.ndarray, train_labels: np.ndarray,
                    train_patient: np.ndarray, percentile: float = THRESHOLD_PERCENTILE,
                    ) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """``({method: {<space>_<metric>: value}}, {"<space>_<method>_distance" / "_index": nearest train record})``.

    ``spaces``: ``{space: ({method: (P, ...)}, real targets (P, ...), train (G, ...), rms)}``: every method's
    records (row i made for pair i), the real targets and the training records in that space's representation.
    ``patient_id`` (P,) of the pairs, ``target_labels`` (P, V); ``train_patient`` (G,), ``train_labels`` (G, V).
    Metrics: ``nn_train_median``/``nn_train_min`` (distance to the nearest training record of another patient),
    ``target_median`` (to the own real target), ``closer_to_train_share`` (nearer a training record than the own
    target), ``memorized_share`` (nearer a training record than ``percentile`` % of the real targets are) and
    ``memorized_same_class_share`` (the same within the target's class: training records with the target's labels,
    for the method and for the real targets). The ``real`` column scores the targets themselves and gives the
    thresholds.
    """
    out: dict[str, dict[str, float]] = {}
    nearest: dict[str, np.ndarray] = {}
    patient_id, train_patient = np.asarray(patient_id), np.asarray(train_patient)
    own = patient_id[:, None] == train_patient[None, :]  # (P, G) the query's own patient: no candidate
    other_class = own | ~same_class_mask(target_labels, train_labels)  # (P, G)
    for space, (methods, real, train, rms) in spaces.items():
        d_real, _ = nearest_distances(real, train, exclude=own, rms=rms)
        d_real_class, _ = nearest_distances(real, train, exclude=other_class, rms=rms)
        threshold, threshold_class = _percentile(d_real, percentile), _percentile(d_real_class, percentile)
        for name, x in methods.items():
            d_train, index = nearest_distances(x, train, exclude=own, rms=rms)
            d_class, _ = nearest_distances(x, train, exclude=other_class, rms=rms)
            d_target = paired_distances(x, real, rms)
            usable = np.isfinite(d_train) & np.isfinite(d_target)
            row = {**_nearest_summary(d_train, threshold, d_class, threshold_class),
                   "target_median": float(np.median(d_target[usable])) if usable.any() else NAN,
                   "closer_to_train_share": float(np.mean(d_train[usable] < d_target[usable])) if usable.any() else NAN}
            out.setdefault(name, {}).update({f"{space}_{k}": v for k, v in row.items()})
            nearest[f"{space}_{name}_distance"], nearest[f"{space}_{name}_index"] = d_train, index
        real_row = {**_nearest_summary(d_real, threshold, d_real_class, threshold_class),
                    "threshold": threshold, "threshold_same_class": threshold_class}
        out.setdefault("real", {}).update({f"{space}_{k}": v for k, v in real_row.items()})
    return out, nearest


def plot_closest_pairs(records: np.ndarray, train: np.ndarray, distance: np.ndarray, index: np.ndarray, fs: float,
                       path: str | Path, n: int = 4, leads: tuple[str, ...] = ("II", "V2"), title: str = "twin") -> Path:
    """The ``n`` records closest to a training record, each overlaid on that record (the given leads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [i for i in np.argsort(np.where(np.isfinite(distance), distance, np.inf)) if index[i] >= 0][:n]
    fig, axes = plt.subplots(max(len(order), 1), len(leads), figsize=(5 * len(leads), 1.9 * max(len(order), 1)),
                             squeeze=False)
    t = np.arange(records.shape[-1]) / fs
    for r, i in enumerate(order):
        for c, lead in enumerate(leads):
            ax = axes[r, c]
            ax.plot(t, train[index[i], lead_index(lead)], color="0.5", lw=1.2, label=f"training record (row {index[i]})")
            ax.plot(t, records[i, lead_index(lead)], color="C3", lw=0.8, label=f"{title} {i}")
            ax.set_title(f"{title} {i} vs nearest training record, lead {lead}: RMS {distance[i]:.3f} mV", fontsize=8)
            ax.tick_params(labelsize=7)
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
