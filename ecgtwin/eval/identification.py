"""Patient-identification metrics for base vectors (pure functions on numpy arrays or torch tensors).

Identification: each query ECG ranks every candidate ECG of the split by
cosine similarity; a hit at ``k`` means one of its *partners* (other records
of the same patient) is among the ``k`` most similar candidates. Ties are
counted against the query (a collapsed encoder scores 0, not 1). The query
itself is never a candidate.

Also: the chance level of that ranking, same- vs different-patient cosine,
a per-patient silhouette, the linear label probe (disentanglement: how much
diagnosis information a base vector still carries) and the raw-signal
baseline embedding.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

_CHUNK = 1024  # query rows per similarity block (memory: CHUNK x gallery floats)


def _as_numpy(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def _unit_rows(x: Any, name: str) -> np.ndarray:
    arr = _as_numpy(x, name, ndim=2).astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


def _candidates(
    query: np.ndarray, gallery: np.ndarray, query_patient: Any, gallery_patient: Any,
    query_ids: Any | None, gallery_ids: Any | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """Validate shapes; return patients/ids as arrays and whether to exclude the diagonal (same set)."""
    qp, gp = _as_numpy(query_patient, "query_patient", 1), _as_numpy(gallery_patient, "gallery_patient", 1)
    if len(qp) != len(query) or len(gp) != len(gallery):
        raise ValueError(
            f"patient ids must match embeddings: query {len(query)} vs {len(qp)}, gallery {len(gallery)} vs {len(gp)}"
        )
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("give both query_ids and gallery_ids (record ids) or neither")
    qi = gi = None
    if query_ids is not None:
        qi, gi = _as_numpy(query_ids, "query_ids", 1), _as_numpy(gallery_ids, "gallery_ids", 1)
        if len(qi) != len(query) or len(gi) != len(gallery):
            raise ValueError("query_ids/gallery_ids must have one id per embedding row")
    same_set = qi is None and query.shape == gallery.shape and np.array_equal(query, gallery)
    return qp, gp, qi, gi, same_set


def _masks(start: int, stop: int, qp: np.ndarray, gp: np.ndarray, qi: np.ndarray | None,
           gi: np.ndarray | None, same_set: bool) -> tuple[np.ndarray, np.ndarray]:
    """(valid candidate, partner) boolean blocks of shape (stop - start, G) for query rows start:stop."""
    if qi is not None:
        valid = qi[start:stop, None] != gi[None, :]  # (n, G): the query's own record is no candidate
    else:
        valid = np.ones((stop - start, len(gp)), dtype=bool)  # (n, G)
        if same_set:
            valid[np.arange(stop - start), np.arange(start, stop)] = False
    partner = (qp[start:stop, None] == gp[None, :]) & valid  # (n, G)
    return valid, partner


def identification_accuracy(
    query: Any, gallery: Any, query_patient: Any, gallery_patient: Any, ks: Sequence[int] = (1, 5),
    query_ids: Any | None = None, gallery_ids: Any | None = None,
) -> dict[str, float]:
    """Top-k patient identification by cosine similarity.

    ``query`` (Q, D), ``gallery`` (G, D); patients (Q,), (G,). ``query_ids``/``gallery_ids``
    (record ids) exclude a query's own record from its candidates; without them, a gallery
    identical to the query excludes the diagonal. Queries without any partner are skipped.
    Returns ``{"top{k}": ..., "n_queries": ...}`` (``nan`` when no query has a partner).
    """
    q, g = _unit_rows(query, "query"), _unit_rows(gallery, "gallery")
    qp, gp, qi, gi, same_set = _candidates(q, g, query_patient, gallery_patient, query_ids, gallery_ids)
    hits = {k: 0 for k in ks}
    n_queries = 0
    for start in range(0, len(q), _CHUNK):
        stop = min(start + _CHUNK, len(q))
        valid, partner = _masks(start, stop, qp, gp, qi, gi, same_set)
        sims = q[start:stop] @ g.T  # (n, G) cosine
        has = partner.any(axis=1)  # (n,)
        best = np.where(partner, sims, -np.inf).max(axis=1)  # (n,) best partner similarity
        impostors = (valid & ~partner & (sims >= best[:, None])).sum(axis=1)  # (n,) ranked at or above it
        n_queries += int(has.sum())
        for k in ks:
            hits[k] += int((has & (impostors < k)).sum())
    out = {f"top{k}": (hits[k] / n_queries if n_queries else float("nan")) for k in ks}
    out["n_queries"] = float(n_queries)
    return out


def chance_level(
    query_patient: Any, gallery_patient: Any, ks: Sequence[int] = (1, 5),
    query_ids: Any | None = None, gallery_ids: Any | None = None, same_set: bool = False,
) -> dict[str, float]:
    """Expected top-k accuracy of a random ranking under the candidate rules of :func:`identification_accuracy`.

    A query with ``m`` partners among ``n`` candidates hits at ``k`` with probability
    ``1 - C(n - m, k) / C(n, k) = 1 - prod_{i<k} (n - m - i) / (n - i)``.
    ``same_set=True`` means query and gallery are the same records without ids (diagonal excluded).
    """
    qp, gp = _as_numpy(query_patient, "query_patient", 1), _as_numpy(gallery_patient, "gallery_patient", 1)
    if same_set and len(qp) != len(gp):
        raise ValueError("same_set=True needs query and gallery of equal length")
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("give both query_ids and gallery_ids (record ids) or neither")
    qi = gi = None
    if query_ids is not None:
        qi, gi = _as_numpy(query_ids, "query_ids", 1), _as_numpy(gallery_ids, "gallery_ids", 1)
    totals = {k: 0.0 for k in ks}
    n_queries = 0
    for start in range(0, len(qp), _CHUNK):
        stop = min(start + _CHUNK, len(qp))
        valid, partner = _masks(start, stop, qp, gp, qi, gi, same_set and qi is None)
        n, m = valid.sum(axis=1).astype(np.float64), partner.sum(axis=1).astype(np.float64)  # (n,), (n,)
        for k in ks:
            miss = np.ones_like(n)
            for i in range(k):  # probability that none of the first k draws is a partner
                miss *= np.clip((n - m - i) / np.maximum(n - i, 1.0), 0.0, 1.0)
            totals[k] += float((1.0 - miss)[m > 0].sum())
        n_queries += int((m > 0).sum())
    out = {f"top{k}": (totals[k] / n_queries if n_queries else float("nan")) for k in ks}
    out["n_queries"] = float(n_queries)
    return out


def positive_negative_cosine(embeddings: Any, patient_ids: Any) -> dict[str, float]:
    """Mean cosine over same-patient pairs (``positive``) and different-patient pairs (``negative``), i < j."""
    x = _unit_rows(embeddings, "embeddings")
    p = _as_numpy(patient_ids, "patient_ids", 1)
    if len(p) != len(x):
        raise ValueError(f"patient_ids ({len(p)}) must match embeddings ({len(x)})")
    sums = {"positive": 0.0, "negative": 0.0}
    counts = {"positive": 0, "negative": 0}
    for start in range(0, len(x), _CHUNK):
        stop = min(start + _CHUNK, len(x))
        sims = x[start:stop] @ x.T  # (n, N)
        upper = np.arange(start, stop)[:, None] < np.arange(len(x))[None, :]  # (n, N) pairs i < j
        same = p[start:stop, None] == p[None, :]  # (n, N)
        for key, mask in (("positive", upper & same), ("negative", upper & ~same)):
            sums[key] += float(sims[mask].sum())
            counts[key] += int(mask.sum())
    out = {k: (sums[k] / counts[k] if counts[k] else float("nan")) for k in sums}
    out["gap"] = out["positive"] - out["negative"]
    return out


def silhouette_by_patient(embeddings: Any, patient_ids: Any) -> float:
    """Silhouette score (cosine metric, Rousseeuw 1987) with patients as clusters; only patients with >= 2 records.

    ``nan`` when fewer than two such patients exist.
    """
    from sklearn.metrics import silhouette_score

    x = _as_numpy(embeddings, "embeddings", 2)
    p = _as_numpy(patient_ids, "patient_ids", 1)
    if len(p) != len(x):
        raise ValueError(f"patient_ids ({len(p)}) must match embeddings ({len(x)})")
    values, counts = np.unique(p, return_counts=True)
    keep = np.isin(p, values[counts >= 2])
    if len(np.unique(p[keep])) < 2:
        return float("nan")
    return float(silhouette_score(x[keep], p[keep], metric="cosine"))


def linear_probe_auroc(embeddings_train: Any, labels_train: Any, embeddings_test: Any, labels_test: Any,
                       max_iter: int = 1000) -> float:
    """Disentanglement probe: macro-AUROC of per-class logistic regressions on frozen embeddings.

    Labels are multi-hot (N, V). Only classes with both outcomes present in train and in test
    count. Lower = less diagnosis information in the embedding. ``nan`` when no class qualifies.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    xtr, xte = _as_numpy(embeddings_train, "embeddings_train", 2), _as_numpy(embeddings_test, "embeddings_test", 2)
    ytr, yte = _as_numpy(labels_train, "labels_train", 2) > 0.5, _as_numpy(labels_test, "labels_test", 2) > 0.5
    if len(xtr) != len(ytr) or len(xte) != len(yte) or ytr.shape[1] != yte.shape[1]:
        raise ValueError("linear_probe_auroc: embeddings and multi-hot labels must have matching rows and classes")
    scaler = StandardScaler().fit(xtr)
    xtr, xte = scaler.transform(xtr), scaler.transform(xte)
    aucs = []
    for c in range(ytr.shape[1]):
        if len(np.unique(ytr[:, c])) < 2 or len(np.unique(yte[:, c])) < 2:
            continue
        clf = LogisticRegression(max_iter=max_iter).fit(xtr, ytr[:, c])
        aucs.append(roc_auc_score(yte[:, c], clf.decision_function(xte)))
    return float(np.mean(aucs)) if aucs else float("nan")


def raw_signal_embedding(signals: Any, max_samples: int = 250) -> np.ndarray:
    """Baseline embedding: per-lead z-normalised signal, average-pooled to ``max_samples`` per lead, flattened.

    Rows are L2-normalised, so cosine similarity of two rows is the correlation of the
    normalised (downsampled) 12-lead signals. ``signals`` (B, leads, L) -> (B, leads * S) float32.
    """
    x = torch.as_tensor(_as_numpy(signals, "signals", 3), dtype=torch.float32)  # (B, C, L)
    if not torch.isfinite(x).all():
        raise ValueError("raw_signal_embedding: signals contain NaN or inf")
    x = (x - x.mean(dim=2, keepdim=True)) / (x.std(dim=2, keepdim=True) + 1e-6)  # (B, C, L) per-lead z-score
    if x.shape[2] > max_samples:
        x = F.adaptive_avg_pool1d(x, max_samples)  # (B, C, S)
    flat = x.reshape(x.shape[0], -1)  # (B, C * S)
    return F.normalize(flat, dim=1).numpy()


def pair_split_records(
    z_ref: Any, z_tgt: Any, patient_ref: Any, patient_tgt: Any,
    record_ref: Any | None = None, record_tgt: Any | None = None,
) -> dict[str, np.ndarray]:
    """Turn a split's pairs into identification sets: queries = distinct references, gallery = distinct records.

    Records appearing in several pairs are counted once (by record id); without record ids
    every pair member is a distinct record. Returns arrays ``query``, ``query_patient``,
    ``query_ids``, ``gallery``, ``gallery_patient``, ``gallery_ids``.
    """
    zr, zt = _as_numpy(z_ref, "z_ref", 2), _as_numpy(z_tgt, "z_tgt", 2)
    pr, pt = _as_numpy(patient_ref, "patient_ref", 1), _as_numpy(patient_tgt, "patient_tgt", 1)
    n = len(zr)
    if record_ref is None or record_tgt is None:
        rr, rt = np.arange(n), np.arange(n, 2 * n)
    else:
        rr, rt = _as_numpy(record_ref, "record_ref", 1), _as_numpy(record_tgt, "record_tgt", 1)
    _, q_first = np.unique(rr, return_index=True)
    records = np.concatenate([rr, rt])  # (2N,)
    _, g_first = np.unique(records, return_index=True)
    all_z, all_p = np.concatenate([zr, zt]), np.concatenate([pr, pt])  # (2N, D), (2N,)
    return {
        "query": zr[q_first], "query_patient": pr[q_first], "query_ids": rr[q_first],
        "gallery": all_z[g_first], "gallery_patient": all_p[g_first], "gallery_ids": records[g_first],
    }


def identification_report(
    z_ref: Any, z_tgt: Any, patient_ref: Any, patient_tgt: Any,
    record_ref: Any | None = None, record_tgt: Any | None = None, ks: Sequence[int] = (1, 5),
    silhouette: bool = True,
) -> dict[str, float]:
    """All embedding metrics of a split of pairs (see :func:`pair_split_records`), flat ``{name: value}``.

    Keys: ``top{k}``, ``chance_top{k}``, ``n_queries``, ``cos_positive``, ``cos_negative``,
    ``cos_gap`` and (optionally) ``silhouette``.
    """
    sets = pair_split_records(z_ref, z_tgt, patient_ref, patient_tgt, record_ref, record_tgt)
    ident = identification_accuracy(sets["query"], sets["gallery"], sets["query_patient"], sets["gallery_patient"],
                                    ks, sets["query_ids"], sets["gallery_ids"])
    chance = chance_level(sets["query_patient"], sets["gallery_patient"], ks, sets["query_ids"], sets["gallery_ids"])
    cos = positive_negative_cosine(sets["gallery"], sets["gallery_patient"])
    out = dict(ident)
    out.update({f"chance_top{k}": chance[f"top{k}"] for k in ks})
    out.update({f"cos_{key}": value for key, value in cos.items()})
    if silhouette:
        out["silhouette"] = silhouette_by_patient(sets["gallery"], sets["gallery_patient"])
    return out
