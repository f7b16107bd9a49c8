"""Distribution and classification metrics for generated ECGs (pure functions on numpy arrays).

Feature-space metrics take ``(N, F)`` arrays: penultimate features of the
reference classifier (:meth:`ecgtwin.eval.classifier.ECGClassifier.features`)
or the cheap handcrafted :func:`simple_ecg_features`.

* :func:`frechet_distance` / :func:`rfid`: Fréchet distance between Gaussian
  fits (FID, Heusel et al. 2017) and its ratio to the real-vs-real baseline.
* :func:`knn_precision_recall`: improved precision/recall (Kynkäänniemi et al. 2019).
* :func:`mmd_rbf`: unbiased squared MMD with a Gaussian kernel (Gretton et al. 2012).
* :func:`macro_auroc`, :func:`bootstrap_ci`: the PTB-XL benchmark protocol
  (Strodthoff et al. 2021).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import linalg, signal, stats

_CHUNK = 1024  # rows per pairwise-distance block (memory: CHUNK x N floats)
SPECTRAL_BANDS_HZ: tuple[tuple[float, float], ...] = ((0.5, 5.0), (5.0, 15.0), (15.0, 40.0))
"""Frequency bands of :func:`simple_ecg_features` (T/P waves, QRS, high-frequency content)."""
_PERCENTILES: tuple[float, ...] = (5.0, 25.0, 50.0, 75.0, 95.0)


def as_numpy(x: Any, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested sequence) as float64 numpy; check dimensions and finiteness."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and arr.ndim not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}")
    return arr


def _features(x: Any, name: str, min_rows: int = 2) -> np.ndarray:
    arr = as_numpy(x, name, ndim=2)
    if len(arr) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples), got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _same_width(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names} must have the same feature dimension, got {a.shape[1]} and {b.shape[1]}")


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray, eps: float) -> float:
    """``Tr(sqrt(s1 @ s2))`` via ``scipy.linalg.sqrtm``; retries with ``eps * I`` added when singular."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(s1 @ s2)
            ok = bool(np.isfinite(covmean).all())
        except (linalg.LinAlgWarning, np.linalg.LinAlgError, ValueError):
            ok = False
    if not ok:
        offset = eps * np.eye(len(s1))  # (F, F)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    return float(np.trace(np.real(covmean)))


def frechet_distance(feats_a: Any, feats_b: Any, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (FID, Heusel et al. 2017, Eq. 6).

    ``d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` with sample means and
    covariances of ``feats_a`` (N, F) and ``feats_b`` (M, F). The matrix square root is
    ``scipy.linalg.sqrtm``; a singular product is regularised with ``eps`` on the diagonal
    and the real part is kept. Returns a float >= 0.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    _same_width(a, b, "feats_a and feats_b")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)  # (F,), (F,)
    s_a = np.atleast_2d(np.cov(a, rowvar=False))  # (F, F)
    s_b = np.atleast_2d(np.cov(b, rowvar=False))  # (F, F)
    dist = float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * _trace_sqrt_product(s_a, s_b, eps))
    return max(dist, 0.0)


def rfid(fake: Any, real: Any, seed: int = 0) -> float:
    """Relative FID: ``FID(fake, real_B) / FID(real_A, real_B)``; about 1 for a perfect generator.

    ``real`` (N, F) is split at random (``seed``) into halves A and B. FID is biased upwards
    for small sets (the bias shrinks like 1/N), so both numerator and denominator compare
    ``n = N // 2`` samples with the same held-out half B: ``fake`` is subsampled to ``n`` rows
    when larger (it must have at least ``n``). Then a generator that samples the real
    distribution scores about 1 whatever N is, instead of the ~0.5 a full-set numerator gives.
    """
    x_fake, x_real = _features(fake, "fake"), _features(real, "real", min_rows=4)
    _same_width(x_fake, x_real, "fake and real")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_real))
    n = len(x_real) // 2
    half_a, half_b = x_real[order[:n]], x_real[order[n : 2 * n]]
    if len(x_fake) < n:
        raise ValueError(f"rfid needs at least len(real) // 2 = {n} fake samples, got {len(x_fake)}")
    x_fake = x_fake[rng.permutation(len(x_fake))[:n]]
    baseline = frechet_distance(half_a, half_b)
    if baseline <= 0.0:
        raise ValueError("rfid: the two halves of `real` have identical statistics (duplicated rows?)")
    return frechet_distance(x_fake, half_b) / baseline


def _pairwise_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``||a_i - b_j||^2`` -> (len(a), len(b)), clipped at 0."""
    sq = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * a @ b.T  # (n, m)
    return np.maximum(sq, 0.0)


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row of ``x`` to its k-th nearest other row -> (N,)."""
    radii = np.empty(len(x))
    for start in range(0, len(x), _CHUNK):
        d = _pairwise_sq_dists(x[start : start + _CHUNK], x)  # (n, N), self at distance 0
        radii[start : start + _CHUNK] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # index 0 is self
    return radii


def _coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray) -> float:
    """Fraction of ``queries`` inside at least one ball ``B(manifold_i, radii_i)``."""
    inside = 0
    for start in range(0, len(queries), _CHUNK):
        d = np.sqrt(_pairwise_sq_dists(queries[start : start + _CHUNK], manifold))  # (n, M)
        inside += int((d <= radii[None, :]).any(axis=1).sum())
    return inside / len(queries)


def knn_precision_recall(real: Any, fake: Any, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, Eq. 1-2).

    Each set's manifold is the union of balls around its samples with radius the distance
    to the sample's k-th nearest neighbour in the same set. Precision: fraction of ``fake``
    inside the real manifold (fidelity); recall: fraction of ``real`` inside the fake
    manifold (coverage). ``real`` (N, F), ``fake`` (M, F); both need more than ``k`` rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x_real, x_fake = _features(real, "real", min_rows=k + 1), _features(fake, "fake", min_rows=k + 1)
    _same_width(x_real, x_fake, "real and fake")
    precision = _coverage(x_real, _knn_radii(x_real, k), x_fake)
    recall = _coverage(x_fake, _knn_radii(x_fake, k), x_real)
    return {"precision": precision, "recall": recall}


def median_bandwidth(x: Any, y: Any, max_rows: int = 2000, seed: int = 0) -> float:
    """Median heuristic (Gretton et al. 2012, Sec. 8): median pairwise distance of the pooled sample.

    Pools at most ``max_rows`` rows (random, ``seed``); zero distances (duplicates) are ignored.
    """
    pooled = np.concatenate([_features(x, "x"), _features(y, "y")])  # (N + M, F)
    if len(pooled) > max_rows:
        pooled = pooled[np.random.default_rng(seed).choice(len(pooled), max_rows, replace=False)]
    d = np.sqrt(_pairwise_sq_dists(pooled, pooled)[np.triu_indices(len(pooled), k=1)])  # (P,) i < j
    d = d[d > 0]
    if len(d) == 0:
        raise ValueError("median_bandwidth: all samples are identical; give an explicit bandwidth")
    return float(np.median(d))


def _kernel_sum(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """``sum_ij exp(-gamma ||a_i - b_j||^2)`` in row blocks."""
    return float(sum(np.exp(-gamma * _pairwise_sq_dists(a[s : s + _CHUNK], b)).sum() for s in range(0, len(a), _CHUNK)))


def mmd_rbf(x: Any, y: Any, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with ``k(a, b) = exp(-||a - b||^2 / (2 bandwidth^2))`` (Gretton et al. 2012, Eq. 3).

    ``MMD_u^2 = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (n(n-1)) - 2 sum_ij k(x_i,y_j) / (mn)``.
    Near 0 (and possibly slightly negative) for equal distributions. ``bandwidth=None`` uses
    :func:`median_bandwidth`. Features should share a scale (see :func:`standardize_features`).
    """
    a, b = _features(x, "x"), _features(y, "y")
    _same_width(a, b, "x and y")
    sigma = median_bandwidth(a, b) if bandwidth is None else float(bandwidth)
    if not sigma > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    gamma = 1.0 / (2.0 * sigma**2)
    m, n = len(a), len(b)
    k_xx = (_kernel_sum(a, a, gamma) - m) / (m * (m - 1))  # diagonal k(x_i, x_i) = 1 removed
    k_yy = (_kernel_sum(b, b, gamma) - n) / (n * (n - 1))
    k_xy = _kernel_sum(a, b, gamma) / (m * n)
    return k_xx + k_yy - 2.0 * k_xy


def standardize_features(reference: Any, *others: Any) -> list[np.ndarray]:
    """z-score ``reference`` (N, F) and every array in ``others`` with the reference's mean and std.

    Constant reference features get std 1 (they are only centred). Returns ``[reference, *others]``.
    """
    ref = _features(reference, "reference")
    mean, std = ref.mean(axis=0), ref.std(axis=0)  # (F,), (F,)
    std = np.where(std > 0, std, 1.0)
    out = [(ref - mean) / std]
    for i, other in enumerate(others):
        arr = _features(other, f"others[{i}]", min_rows=1)
        _same_width(ref, arr, f"reference and others[{i}]")
        out.append((arr - mean) / std)
    return out


def _labels_scores(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    t, s = as_numpy(y_true, "y_true", ndim=(1, 2)), as_numpy(y_score, "y_score", ndim=(1, 2))
    if t.shape != s.shape:
        raise ValueError(f"y_true {t.shape} and y_score {s.shape} must have the same shape")
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("y_true must be binary (0/1 multi-hot)")
    if not np.isfinite(s).all():
        raise ValueError("y_score contains NaN or inf")
    return t.reshape(len(t), -1), s.reshape(len(s), -1)  # (N, V), (N, V)


def macro_auroc(y_true: Any, y_score: Any) -> float:
    """Mean ROC AUC over the classes (columns) whose ``y_true`` has both outcomes; ``nan`` if none has.

    ``y_true`` (N, V) multi-hot 0/1, ``y_score`` (N, V) any monotone score (logits or
    probabilities); 1-D inputs are one class. Per class, the Mann-Whitney form
    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the sum of the
    positives' (tie-averaged) score ranks, identical to ``sklearn.metrics.roc_auc_score``
    and fast enough for bootstrapping many labels.
    """
    t, s = _labels_scores(y_true, y_score)
    n_pos = t.sum(axis=0)  # (V,)
    n_neg = len(t) - n_pos  # (V,)
    informative = (n_pos > 0) & (n_neg > 0)
    if not informative.any():
        return float("nan")
    ranks = stats.rankdata(s[:, informative], axis=0)  # (N, V') ranks 1..N, ties averaged
    pos, neg = n_pos[informative], n_neg[informative]
    auc = ((ranks * t[:, informative]).sum(axis=0) - pos * (pos + 1) / 2.0) / (pos * neg)  # (V',)
    return float(auc.mean())


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float], y_true: Any, y_score: Any,
    n_boot: int = 1000, alpha: float = 0.05, seed: int = 0, max_redraws: int = 100,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap ``1 - alpha`` interval (Strodthoff et al. 2021, Sec. 3.2).

    ``y_true`` (N, V) binary, ``y_score`` (N, V); ``metric_fn(y_true, y_score) -> float`` gets
    (N, V) arrays. The point is ``metric_fn`` on the full set; each of ``n_boot`` resamples (rows with
    replacement) is redrawn, up to ``max_redraws`` times, until every class with both outcomes
    in the full set keeps both, as in the PTB-XL benchmark; non-finite resample values are
    dropped. Returns ``(point, low, high)``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    t, s = _labels_scores(y_true, y_score)
    point = float(metric_fn(t, s))
    informative = (t.sum(axis=0) > 0) & (t.sum(axis=0) < len(t))  # (V,) classes with both outcomes
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        for _ in range(max_redraws):
            idx = rng.integers(0, len(t), size=len(t))  # (N,)
            positives = t[idx].sum(axis=0)  # (V,)
            if ((positives > 0) & (positives < len(t)))[informative].all():
                break
        values.append(float(metric_fn(t[idx], s[idx])))
    finite = np.asarray(values)[np.isfinite(values)]
    if len(finite) == 0:
        return point, float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return point, float(low), float(high)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (default 95%); NaN for n = 0.

    ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``: stays inside [0, 1] and keeps its coverage
    near 0 and 1, where the normal interval collapses (Wilson 1927; Brown, Cai & DasGupta 2001).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return float("nan"), float("nan")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def simple_ecg_features(signals: Any, fs: float) -> np.ndarray:
    """Cheap handcrafted per-record features ``(N, 12 * 11)`` for MMD/FID before a classifier exists.

    Per lead (``LEADS`` order), 11 numbers: mean, std, the 5/25/50/75/95th percentiles,
    mean |first difference| (slope, mV/s) and the log10 Welch power in each of
    :data:`SPECTRAL_BANDS_HZ` (band upper edges clipped at Nyquist). ``signals`` (N, 12, L) in mV.
    """
    x = as_numpy(signals, "signals", ndim=3)
    if x.shape[1] != 12:
        raise ValueError(f"signals must be (N, 12, L), got shape {x.shape}")
    if not fs > 0:
        raise ValueError(f"fs must be > 0 Hz, got {fs}")
    if x.shape[2] < 2 * fs:
        raise ValueError(f"signals need at least 2 s ({int(2 * fs)} samples at fs={fs}), got L={x.shape[2]}")
    if not np.isfinite(x).all():
        raise ValueError("signals contain NaN or inf")
    stats = [x.mean(axis=2), x.std(axis=2)]  # each (N, 12)
    stats += list(np.percentile(x, _PERCENTILES, axis=2))  # 5 x (N, 12)
    stats.append(np.abs(np.diff(x, axis=2)).mean(axis=2) * fs)  # (N, 12)
    freqs, psd = signal.welch(x, fs=fs, nperseg=int(min(x.shape[2], 2 * fs)), axis=2)  # (K,), (N, 12, K)
    for low, high in SPECTRAL_BANDS_HZ:
        band = (freqs >= low) & (freqs < min(high, fs / 2.0))
        if not band.any():
            raise ValueError(f"fs={fs} Hz leaves no frequency bin in the {low}-{high} Hz band")
        power = psd[..., band].sum(axis=2) * (freqs[1] - freqs[0])  # (N, 12) rectangle rule on the uniform grid
        stats.append(np.log10(power + 1e-12))  # (N, 12)
    return np.stack(stats, axis=2).reshape(len(x), -1)  # (N, 12, 11) -> (N, 132)
