"""Known-answer tests of ecgtwin.eval.metrics (FID, rFID, precision/recall, MMD, AUROC, bootstrap, features)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgtwin.constants import lead_index
from ecgtwin.eval.metrics import (
    SPECTRAL_BANDS_HZ,
    bootstrap_ci,
    frechet_distance,
    knn_precision_recall,
    macro_auroc,
    median_bandwidth,
    mmd_rbf,
    rfid,
    simple_ecg_features,
    standardize_features,
)


def exact_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """n samples whose sample mean and (ddof=1) covariance equal ``mean`` and ``cov`` exactly."""
    z = np.random.default_rng(seed).normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T  # sample covariance = I
    return z @ np.linalg.cholesky(cov).T + mean


def fid_closed_form(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Fréchet distance via the symmetric form Tr((S1^1/2 S2 S1^1/2)^1/2) (eigen-decompositions, no sqrtm)."""
    w, v = np.linalg.eigh(s1)
    s1_half = v @ np.diag(np.sqrt(w)) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(s1_half @ s2 @ s1_half), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


# ---- FID -------------------------------------------------------------------------------------
def test_fid_one_dimensional_known_value() -> None:
    # N(0, 1) vs N(2, 3^2): d^2 = (0 - 2)^2 + (1 - 3)^2 = 8
    a = exact_moments(400, np.zeros(1), np.eye(1), seed=0)
    b = exact_moments(400, np.full(1, 2.0), 9.0 * np.eye(1), seed=1)
    assert frechet_distance(a, b) == pytest.approx(8.0, rel=1e-9)


def test_fid_matches_closed_form_full_covariances() -> None:
    rng = np.random.default_rng(3)
    d = 6
    m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(d), m2 @ m2.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) + 1.0
    a, b = exact_moments(300, mu1, s1, seed=4), exact_moments(500, mu2, s2, seed=5)
    expected = fid_closed_form(mu1, s1, mu2, s2)
    assert expected > 1.0
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-8)


def test_fid_identical_sets_zero_and_disjoint_large() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + 10.0) == pytest.approx(8 * 100.0, rel=1e-6)  # pure mean shift: ||mu||^2


def test_fid_singular_covariance_is_regularised() -> None:
    a = np.random.default_rng(0).normal(size=(5, 10))  # N < F: rank-4 covariance
    d = frechet_distance(a, a)
    assert math.isfinite(d) and d < 1e-3


def test_fid_bad_input() -> None:
    a = np.zeros((10, 3))
    with pytest.raises(ValueError, match="same feature dimension"):
        frechet_distance(a, np.zeros((10, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(a[:1], a)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 3), np.nan), a)
    with pytest.raises(ValueError, match="2 dimensions"):
        frechet_distance(np.zeros(10), a)


def test_rfid_about_one_for_same_distribution_and_large_for_shift() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    assert 0.6 < rfid(fake, real) < 1.6
    assert rfid(fake + 2.0, real) > 20.0
    assert rfid(fake, real, seed=1) == rfid(fake, real, seed=1)
    with pytest.raises(ValueError, match="at least len\\(real\\) // 2"):
        rfid(fake[:100], real)
    with pytest.raises(ValueError, match="identical statistics"):
        rfid(fake, np.ones((600, 8)))


# ---- precision / recall -------------------------------------------------------------------------
def test_precision_recall_identical_and_disjoint() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 5))
    assert knn_precision_recall(a, a, k=3) == {"precision": 1.0, "recall": 1.0}
    assert knn_precision_recall(a, a + 100.0, k=3) == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_detects_mode_dropping() -> None:
    rng = np.random.default_rng(1)
    modes = np.array([[50.0, 0.0], [-50.0, 0.0]])
    real = np.concatenate([rng.normal(size=(200, 2)) + modes[0], rng.normal(size=(200, 2)) + modes[1]])
    fake = rng.normal(size=(200, 2)) + modes[0]  # the generator covers one of two modes
    pr = knn_precision_recall(real, fake, k=3)
    assert pr["precision"] > 0.85  # every fake sample is realistic ...
    assert 0.35 < pr["recall"] <= 0.5  # ... but half of the real distribution is missed


def test_precision_recall_bad_input() -> None:
    a = np.zeros((10, 2))
    with pytest.raises(ValueError, match="k must be"):
        knn_precision_recall(a, a, k=0)
    with pytest.raises(ValueError, match="at least 4 rows"):
        knn_precision_recall(a[:3], a, k=3)


# ---- MMD --------------------------------------------------------------------------------------
def test_mmd_known_value_by_hand() -> None:
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [3.0]])
    k = lambda d2: math.exp(-d2 / 2.0)  # noqa: E731  bandwidth 1
    expected = k(1) + k(9) - 2.0 / 4.0 * (k(0) + k(9) + k(1) + k(4))
    assert mmd_rbf(x, y, bandwidth=1.0) == pytest.approx(expected, rel=1e-12)


def test_mmd_unbiased_near_zero_for_same_distribution_large_for_shift() -> None:
    rng = np.random.default_rng(0)
    same = [mmd_rbf(rng.normal(size=(60, 4)), rng.normal(size=(60, 4))) for _ in range(10)]
    assert abs(np.mean(same)) < 0.01
    assert min(same) < 0.0  # the unbiased estimator goes negative (a biased one never does)
    x = rng.normal(size=(200, 4))
    assert mmd_rbf(x, x + 3.0) > 0.5
    y = rng.normal(size=(150, 4)) + 0.5
    assert mmd_rbf(x, y) == pytest.approx(mmd_rbf(y, x), rel=1e-12)


def test_median_bandwidth_and_bad_bandwidth() -> None:
    x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [3.0]])  # pairwise distances 1, 3, 3, 2, 2 (0 dropped)
    assert median_bandwidth(x, y) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        mmd_rbf(x, y, bandwidth=0.0)
    with pytest.raises(ValueError, match="all samples are identical"):
        mmd_rbf(np.ones((3, 2)), np.ones((3, 2)))


def test_standardize_features_uses_reference_statistics() -> None:
    rng = np.random.default_rng(0)
    ref, other = rng.normal(5.0, 2.0, size=(100, 3)), rng.normal(5.0, 2.0, size=(20, 3))
    ref[:, 2] = 1.0  # constant feature: centred only
    z_ref, z_other = standardize_features(ref, other)
    np.testing.assert_allclose(z_ref[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z_ref[:, :2].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(z_other, (other - ref.mean(axis=0)) / np.where(ref.std(axis=0) > 0, ref.std(axis=0), 1.0))


# ---- AUROC and bootstrap ----------------------------------------------------------------------
def test_macro_auroc_perfect_reversed_and_sklearn() -> None:
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert macro_auroc(y, y * 2.0 - 1.0) == 1.0
    assert macro_auroc(y, -y.astype(float)) == 0.0
    rng = np.random.default_rng(0)
    yt, ys = rng.integers(0, 2, size=(200, 5)), rng.integers(0, 4, size=(200, 5)).astype(float)  # many ties
    expected = np.mean([roc_auc_score(yt[:, v], ys[:, v]) for v in range(5)])
    assert macro_auroc(yt, ys) == pytest.approx(expected, abs=1e-12)


def test_macro_auroc_skips_single_outcome_classes() -> None:
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])  # class 1 never, class 2 always positive
    scores = np.array([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9], [0.8, 0.5, 0.2], [0.2, 0.5, 0.8]])
    assert macro_auroc(y, scores) == 1.0
    assert math.isnan(macro_auroc(y[:, 1:], scores[:, 1:]))
    assert macro_auroc(y[:, 0], scores[:, 0]) == 1.0  # 1-D is one class


def test_macro_auroc_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        macro_auroc(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="binary"):
        macro_auroc(np.full((4, 2), 0.5), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        macro_auroc(np.zeros((4, 2)), np.full((4, 2), np.nan))


def noisy_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(n, 3))
    return y, y + rng.normal(scale=1.0, size=y.shape)


def test_bootstrap_ci_contains_point_and_narrows() -> None:
    y, s = noisy_scores(100, 0)
    point, low, high = bootstrap_ci(macro_auroc, y, s, n_boot=300)
    assert point == pytest.approx(macro_auroc(y, s))
    assert low < point < high
    y_big, s_big = noisy_scores(2000, 1)
    _, low_big, high_big = bootstrap_ci(macro_auroc, y_big, s_big, n_boot=300)
    assert (high_big - low_big) < 0.5 * (high - low)  # width ~ 1/sqrt(n)
    assert bootstrap_ci(macro_auroc, y, s, n_boot=50, seed=3) == bootstrap_ci(macro_auroc, y, s, n_boot=50, seed=3)
    assert bootstrap_ci(macro_auroc, y, s, n_boot=50, seed=3) != bootstrap_ci(macro_auroc, y, s, n_boot=50, seed=4)


def test_bootstrap_ci_keeps_rare_classes_in_resamples() -> None:
    y = np.zeros((40, 2), dtype=int)
    y[:20, 0] = 1
    y[0, 1] = 1  # a single positive: most plain resamples would lose it
    seen: list[int] = []

    def positives_of_rare_class(t: np.ndarray, s: np.ndarray) -> float:
        seen.append(int(t[:, 1].sum()))
        return float(t[:, 1].sum())

    bootstrap_ci(positives_of_rare_class, y, y.astype(float), n_boot=100)
    assert min(seen) >= 1


def test_bootstrap_ci_bad_arguments() -> None:
    y, s = noisy_scores(20, 0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(macro_auroc, y, s, alpha=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(macro_auroc, y, s, n_boot=0)


# ---- handcrafted features ---------------------------------------------------------------------
def test_simple_ecg_features_shape_and_spectral_bands() -> None:
    fs, length = 100, 1000
    t = np.arange(length) / fs
    signals = np.random.default_rng(0).normal(scale=0.01, size=(3, 12, length))
    signals[0, lead_index("I")] += np.sin(2 * np.pi * 10.0 * t)  # 10 Hz: the 5-15 Hz band
    signals[1, lead_index("I")] += np.sin(2 * np.pi * 2.0 * t)  # 2 Hz: the 0.5-5 Hz band
    signals[2] += 0.7  # DC offset in every lead
    feats = simple_ecg_features(signals, fs)
    n_per_lead = 8 + len(SPECTRAL_BANDS_HZ)
    assert feats.shape == (3, 12 * n_per_lead) and np.isfinite(feats).all()
    lead_i = feats[:, lead_index("I") * n_per_lead : (lead_index("I") + 1) * n_per_lead]  # (3, 11)
    bands = lead_i[:, 8:]
    assert np.argmax(bands[0]) == 1 and np.argmax(bands[1]) == 0
    assert lead_i[2, 0] == pytest.approx(0.7, abs=0.01)  # mean
    assert lead_i[0, 1] == pytest.approx(1 / math.sqrt(2), abs=0.01)  # std of a unit sine
    np.testing.assert_allclose(simple_ecg_features(signals[:1], fs), feats[:1])  # per record, batch-independent


def test_simple_ecg_features_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(N, 12, L\)"):
        simple_ecg_features(np.zeros((2, 11, 1000)), 100)
    with pytest.raises(ValueError, match="at least 2 s"):
        simple_ecg_features(np.zeros((2, 12, 100)), 100)
    with pytest.raises(ValueError, match="3 dimensions"):
        simple_ecg_features(np.zeros((12, 1000)), 100)
    with pytest.raises(ValueError, match="no frequency bin"):
        simple_ecg_features(np.zeros((1, 12, 1000)), 20)


def test_wilson_interval_known_values_and_bad_input() -> None:
    from ecgtwin.eval.metrics import wilson_interval

    np.testing.assert_allclose(wilson_interval(5, 10), (0.2366, 0.7634), atol=1e-4)  # p = 0.5, n = 10
    np.testing.assert_allclose(wilson_interval(0, 10), (0.0, 0.2775), atol=1e-4)  # not collapsed to [0, 0]
    np.testing.assert_allclose(wilson_interval(10, 10), (0.7225, 1.0), atol=1e-4)
    low, high = wilson_interval(34, 120)
    assert low < 34 / 120 < high and high - low < 0.17
    assert all(np.isnan(wilson_interval(0, 0)))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
