"""Fidelity at matched sizes: every arm compared with the same real set on the same number of samples.

FD (Fréchet distance of Gaussian fits, as FID) is biased upwards by about
``Tr(S) / n``-order terms that depend on the sample size n, so two FDs are only
comparable at the same n (Chong & Forsyth 2020). KID, the unbiased squared MMD
with the cubic polynomial kernel (Bińkowski et al. 2018), has no such bias.

Protocol of :func:`matched_fidelity_section`: the real targets are split into
two patient-disjoint halves A and B and ``n = min(|A|, |B|)`` rows are drawn
(seeded) from each. The REFERENCE set is the n real targets of half B; every
arm contributes its n rows of half A: the real targets of A (real-vs-real, the
floor), their twins, the population twins, the copied references. So each arm
replaces the same n real records by its own and is measured against the same
n held-out, patient-disjoint real records. k-NN precision/recall use the same
k and n for every arm.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ecgtwin.eval.metrics import as_numpy, frechet_distance, knn_precision_recall

NAN = float("nan")


def polynomial_kernel(a: np.ndarray, b: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """``k(x, y) = (x . y / F + coef0) ** degree`` -> (len(a), len(b)) (KID's kernel, Bińkowski et al. 2018)."""
    return (a @ b.T / a.shape[1] + coef0) ** degree  # (n, m)


def _mmd_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> float:
    """Unbiased MMD^2 from precomputed kernel matrices, with rows ``ix`` of X and ``iy`` of Y drawn.

    Pairs of draws of the SAME original row are left out of the within-set sums (not only the diagonal), so a
    bootstrap resample with repeated rows stays unbiased.
    """
    sub_xx = kxx[np.ix_(ix, ix)]  # (m, m)
    sub_yy = kyy[np.ix_(iy, iy)]  # (n, n)
    keep_x = ix[:, None] != ix[None, :]  # (m, m) distinct original rows
    keep_y = iy[:, None] != iy[None, :]  # (n, n)
    if not keep_x.any() or not keep_y.any():
        return NAN
    return float(sub_xx[keep_x].mean() + sub_yy[keep_y].mean() - 2.0 * kxy[np.ix_(ix, iy)].mean())


def kernel_inception_distance(x: object, y: object, degree: int = 3, coef0: float = 1.0) -> float:
    """KID: unbiased squared MMD of ``x`` (m, F) and ``y`` (n, F) with :func:`polynomial_kernel`.

    ``sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (n(n-1)) - 2 sum_ij k(x_i,y_j) / (mn)``;
    0 in expectation for equal distributions (can be slightly negative).
    """
    a, b = as_numpy(x, "x", ndim=2), as_numpy(y, "y", ndim=2)
    if a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"KID needs two sets of >= 2 rows of equal width, got {a.shape} and {b.shape}")
    kxx, kyy, kxy = (polynomial_kernel(p, q, degree, coef0) for p, q in ((a, a), (b, b), (a, b)))
    return _mmd_from_kernels(kxx, kyy, kxy, np.arange(len(a)), np.arange(len(b)))


def _quantiles(values: list[float], alpha: float) -> tuple[float, float]:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return NAN, NAN
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def two_sample_bootstrap(x: np.ndarray, y: np.ndarray, n_boot: int = 200, seed: int = 0, alpha: float = 0.05,
                         degree: int = 3) -> dict[str, float]:
    """FD and KID of ``x`` (m, F) vs ``y`` (n, F) with bootstrap ``1 - alpha`` intervals.

    Each resample draws the rows of both sets with replacement (independently). KID resamples reuse the
    kernel matrices and skip same-row pairs (:func:`_mmd_from_kernels`), so they stay unbiased: percentile
    intervals. FD is not: repeated rows shrink a resample's effective size, and FD grows as n shrinks, so the
    resampled FDs sit above the estimate (at F = 128 features and n = 129 the whole percentile interval can lie
    above it). Its interval is the percentile interval shifted by the bootstrap estimate of that bias,
    ``[q_lo - b, q_hi - b]`` with ``b = mean(FD*) - FD`` (Efron & Tibshirani 1993, ch. 10), so it keeps the
    resamples' spread around the estimate. Returns ``fd, fd_low, fd_high, kid, kid_low, kid_high``.
    """
    a, b = as_numpy(x, "x", ndim=2), as_numpy(y, "y", ndim=2)
    kxx, kyy, kxy = (polynomial_kernel(p, q, degree) for p, q in ((a, a), (b, b), (a, b)))
    fd = _safe(lambda: frechet_distance(a, b))
    kid = _mmd_from_kernels(kxx, kyy, kxy, np.arange(len(a)), np.arange(len(b)))
    rng = np.random.default_rng(seed)
    fds, kids = [], []
    for _ in range(n_boot):
        ix, iy = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))  # (m,), (n,)
        fds.append(_safe(lambda: frechet_distance(a[ix], b[iy])))
        kids.append(_mmd_from_kernels(kxx, kyy, kxy, ix, iy))
    fd_low, fd_high = _quantiles(fds, alpha)
    finite = np.asarray(fds, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    bias = float(finite.mean()) - fd if len(finite) and np.isfinite(fd) else NAN  # resampling's own FD inflation
    fd_low, fd_high = fd_low - bias, fd_high - bias
    kid_low, kid_high = _quantiles(kids, alpha)
    return {"fd": fd, "fd_low": fd_low, "fd_high": fd_high, "kid": kid, "kid_low": kid_low, "kid_high": kid_high}


def _safe(fn: Callable[[], float]) -> float:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn())
    except (ValueError, np.linalg.LinAlgError):
        return NAN


def distinct_rows(ids: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """Sorted rows in which no id of any array in ``ids`` repeats (a seeded greedy pick).

    Pairs of one patient share records (a patient with 3 ECGs gives 3 pairs: each target and each reference
    appears twice); a sample with repeated records has a lower diversity than one of distinct ECGs, which
    would raise KID and lower recall of the real and copy arms. Passing the pairs' target and reference
    record ids keeps every real record at most once.
    """
    order = np.random.default_rng(seed).permutation(len(ids[0])) if len(ids) else np.array([], dtype=int)
    seen: list[set] = [set() for _ in ids]
    keep = []
    for row in order:
        keys = [int(np.asarray(a)[row]) for a in ids]
        if all(k not in s for k, s in zip(keys, seen)):
            keep.append(row)
            for k, s in zip(keys, seen):
                s.add(k)
    return np.sort(np.asarray(keep, dtype=int))


def matched_rows(patient_id: np.ndarray, seed: int = 0,
                 distinct: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(arm_rows, reference_rows)``, each of the same length n, from two patient-disjoint halves.

    Patients are shuffled (``seed``) and cut in two halves; ``n = min(|A|, |B|)`` rows are drawn without
    replacement from each half (sorted). Rows are the pairs (targets) of the evaluation; with ``distinct``
    (e.g. the target and reference record ids) only rows in which no such record repeats are used
    (:func:`distinct_rows`).
    """
    patient_id = np.asarray(patient_id)
    patients = np.unique(patient_id)
    if len(patients) < 2:
        raise ValueError(f"matched fidelity needs targets of >= 2 patients, got {len(patients)}")
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(patients)[: len(patients) // 2]
    eligible = np.zeros(len(patient_id), dtype=bool)
    eligible[distinct_rows(distinct, seed) if len(distinct) else np.arange(len(patient_id))] = True
    first = np.flatnonzero(np.isin(patient_id, chosen) & eligible)
    second = np.flatnonzero(~np.isin(patient_id, chosen) & eligible)
    n = min(len(first), len(second))
    return np.sort(rng.choice(first, n, replace=False)), np.sort(rng.choice(second, n, replace=False))


def matched_fidelity_section(feats: Mapping[str, np.ndarray], real: np.ndarray, patient_id: np.ndarray, k: int = 3,
                             n_boot: int = 200, seed: int = 0,
                             distinct: Sequence[np.ndarray] = ()) -> dict[str, dict[str, float]]:
    """``{arm: {n, fd [CI], kid [CI], precision, recall}}`` at one matched n (see the module docstring).

    ``feats``: ``{arm: (P, F)}`` with row i belonging to pair i (twin of pair i, copied reference of pair i, ...);
    ``real``: (P, F) the real targets; ``patient_id``: (P,). The ``real`` arm is real-vs-real (half A vs half B).
    ``distinct``: record-id arrays (P,) whose records may appear once only (see :func:`matched_rows`).
    """
    arm_rows, ref_rows = matched_rows(np.asarray(patient_id), seed, distinct)
    reference = np.asarray(real, dtype=np.float64)[ref_rows]  # (n, F)
    out: dict[str, dict[str, float]] = {}
    for name, x in {**feats, "real": real}.items():
        sample = np.asarray(x, dtype=np.float64)[arm_rows]  # (n, F)
        row: dict[str, float] = {"n": float(len(sample))}
        row.update(two_sample_bootstrap(sample, reference, n_boot=n_boot, seed=seed))
        try:
            row.update(knn_precision_recall(reference, sample, k=k))
        except ValueError:  # n <= k
            row.update({"precision": NAN, "recall": NAN})
        row["k"] = float(k)
        out[name] = row
    return out
