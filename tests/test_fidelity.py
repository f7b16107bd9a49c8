"""Known-answer tests of matched-size fidelity (ecgtwin.eval.fidelity): KID, FD bootstrap, matched rows and arms."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ecgtwin.eval.fidelity import (_mmd_from_kernels, kernel_inception_distance, matched_fidelity_section, matched_rows,
                                   polynomial_kernel, two_sample_bootstrap)
from ecgtwin.eval.metrics import frechet_distance


def exact_moments(n: int, mean: np.ndarray, seed: int) -> np.ndarray:
    """n samples with sample mean ``mean`` and sample covariance exactly I."""
    z = np.random.default_rng(seed).normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # (n, F) sample covariance = I
    return z + mean


def test_kid_known_value_by_hand() -> None:
    # k(a, b) = (a b + 1)^3 in 1-D: k(0,1) = 1, k(2,3) = 343; cross terms 1, 1, 27, 64 -> mean 23.25
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    assert kernel_inception_distance(x, y) == pytest.approx(1.0 + 343.0 - 2 * 23.25)
    assert polynomial_kernel(x, y)[1, 1] == pytest.approx(64.0)


def test_kid_resample_skips_pairs_of_the_same_row() -> None:
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    k = [polynomial_kernel(p, q) for p, q in ((x, x), (y, y), (x, y))]
    # rows [0, 0, 1] of x: the distinct-row pairs are all k(0, 1) = 1, never k(0, 0) of the repeated row
    value = _mmd_from_kernels(*k, np.array([0, 0, 1]), np.array([0, 1]))
    cross = np.mean([1, 1, 1, 1, 27, 64])  # rows 0, 0, 1 of x against rows 0, 1 of y
    assert value == pytest.approx(1.0 + 343.0 - 2 * cross)
    assert math.isnan(_mmd_from_kernels(*k, np.array([0, 0]), np.array([0, 1])))  # no distinct pair left


def test_identical_sets_fd_and_kid_about_zero() -> None:
    x = np.random.default_rng(0).normal(size=(120, 5))
    out = two_sample_bootstrap(x, x, n_boot=50)
    assert out["fd"] == pytest.approx(0.0, abs=1e-6)
    k = polynomial_kernel(x, x)  # identical sets: KID = 2 (mean off-diagonal - mean diagonal) / n exactly, -> 0 as 1/n
    off = (k.sum() - np.trace(k)) / (120 * 119)
    assert out["kid"] == pytest.approx(2 * (off - np.trace(k) / 120) / 120)
    assert out["fd_low"] <= out["fd_high"] and out["kid_low"] <= out["kid_high"]
    y = np.random.default_rng(1).normal(size=(2000, 5))  # an independent sample of the same distribution
    assert abs(kernel_inception_distance(x, y)) < 0.05 < kernel_inception_distance(x + 1.0, y)


def test_shifted_gaussians_have_the_known_fd_and_a_ci_around_it() -> None:
    f = 4
    a = exact_moments(400, np.zeros(f), seed=1)
    b = exact_moments(400, np.full(f, 1.5), seed=2)
    out = two_sample_bootstrap(a, b, n_boot=100, seed=0)
    assert out["fd"] == pytest.approx(f * 1.5**2, rel=1e-6)  # same covariance: FD = ||mu_a - mu_b||^2 = 9
    assert out["fd_low"] < 9.0 < out["fd_high"]
    assert out["kid"] > 0.5 and out["kid_low"] > 0  # clearly separated


def test_fd_interval_is_corrected_for_the_inflation_of_resampled_fds() -> None:
    # many features, few rows (the harness: 128 classifier features, n = 129): a resample with repeated rows has
    # a larger FD, so the plain percentile interval of the resampled FDs lies wholly above the estimate
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 30)), rng.normal(size=(60, 30))
    out = two_sample_bootstrap(a, b, n_boot=100, seed=0)
    rng = np.random.default_rng(0)
    plain = []
    for _ in range(100):  # the same resamples, uncorrected
        ix, iy = rng.integers(0, 60, 60), rng.integers(0, 60, 60)
        plain.append(frechet_distance(a[ix], b[iy]))
    assert np.quantile(plain, 0.025) > out["fd"]  # the defect the correction removes
    assert out["fd_low"] < out["fd"] < out["fd_high"]
    width = np.quantile(plain, 0.975) - np.quantile(plain, 0.025)
    assert out["fd_high"] - out["fd_low"] == pytest.approx(width)  # same spread, moved by the bias
    assert out["fd_high"] - out["fd"] == pytest.approx(np.quantile(plain, 0.975) - np.mean(plain))


def test_matched_rows_are_patient_disjoint_and_equal_sized() -> None:
    patients = np.repeat(np.arange(10), [1, 2, 3, 1, 1, 2, 1, 4, 1, 2])
    arm, ref = matched_rows(patients, seed=3)
    assert len(arm) == len(ref) > 0 and not set(patients[arm]) & set(patients[ref])
    assert np.array_equal(arm, matched_rows(patients, seed=3)[0])  # seeded
    with pytest.raises(ValueError, match="2 patients"):
        matched_rows(np.zeros(5, dtype=int))


def test_every_arm_is_compared_on_the_same_n_and_reference() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 3))
    patients = np.arange(60) // 2
    feats = {"twin": real.copy(), "shifted": real + 2.0}
    section = matched_fidelity_section(feats, real, patients, k=3, n_boot=20, seed=0)
    assert {row["n"] for row in section.values()} == {30.0}
    for key in ("fd", "kid", "precision", "recall"):  # a twin that equals its target scores exactly the real floor
        assert section["twin"][key] == section["real"][key]
    assert section["shifted"]["fd"] > section["real"]["fd"] + 5 and section["shifted"]["precision"] < 0.5
    assert section["shifted"]["kid"] > section["real"]["kid"]


def test_matched_rows_use_each_record_once() -> None:
    from ecgtwin.eval.fidelity import distinct_rows, matched_rows

    # patients with 3 ECGs: pairs (a,b), (a,c), (b,c): each record is a target or a reference twice
    patient, reference, target = [], [], []
    for p in range(30):
        a, b, c = 10 * p, 10 * p + 1, 10 * p + 2
        for r, t in ((a, b), (a, c), (b, c)):
            patient.append(p), reference.append(r), target.append(t)
    patient, reference, target = map(np.asarray, (patient, reference, target))
    rows = distinct_rows((target, reference))
    assert len(set(target[rows])) == len(rows) and len(set(reference[rows])) == len(rows)
    assert 30 <= len(rows) <= 60  # 1 or 2 of the 3 pairs of each patient, depending on the greedy order
    arm, ref = matched_rows(patient, 0, (target, reference))
    assert len(arm) == len(ref) > 0 and not set(patient[arm]) & set(patient[ref])
    for rows_ in (arm, ref):
        assert len(set(target[rows_])) == len(rows_) and len(set(reference[rows_])) == len(rows_)
