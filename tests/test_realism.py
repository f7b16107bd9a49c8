"""Known-answer tests of the realism metrics (ecgtwin.eval.realism) on synthetic 12-lead signals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ecgtwin.constants import LEADS, N_INDEPENDENT_LEADS
from ecgtwin.eval.realism import (amplitude_ratio, band_rms, classifier_two_sample_auroc, correlation_error,
                                  has_short_rr, limb_residual_rms, mean_lead_correlation, noise_ratio, realism_section,
                                  regular_share, rhythm_control, rr_cv, rr_intervals, spurious_beat_share)
from ecgtwin.leads import derive_leads

FS, L = 100, 1000
T = np.arange(L) / FS


def beats(times: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 12-lead record (12, L) obeying the limb-lead laws: Gaussian R waves at ``times`` (s), per-lead gains."""
    pulse = sum(np.exp(-0.5 * ((T - c) / 0.02) ** 2) for c in times)  # (L,)
    gains = np.random.default_rng(seed).uniform(0.5, 1.5, N_INDEPENDENT_LEADS)  # (8,) positive: R up in I and II
    return derive_leads(gains[:, None] * pulse[None, :])  # (8, L) -> (12, L)


REGULAR = np.arange(0.5, 10.0, 0.8)  # RR 0.8 s
IRREGULAR = np.cumsum([0.4] + [0.5, 1.1] * 8)[:-1]  # RR alternating 0.5 / 1.1 s: CV = 0.375


def test_limb_residual_zero_for_exact_leads_and_known_for_a_broken_lead() -> None:
    x = np.stack([beats(REGULAR, s) for s in range(3)])  # (3, 12, L)
    np.testing.assert_allclose(limb_residual_rms(x), 0.0, atol=1e-12)
    broken = x.copy()
    broken[:, LEADS.index("III")] += 0.4  # only lead III off by 0.4 mV: RMS over the 4 derived leads = 0.4 / 2
    np.testing.assert_allclose(limb_residual_rms(broken), 0.2, rtol=1e-9)


def test_amplitude_ratio_per_lead() -> None:
    real = np.stack([beats(REGULAR, s) for s in range(4)])
    np.testing.assert_allclose(amplitude_ratio(2.0 * real, real), 2.0)
    half = real.copy()
    half[:, LEADS.index("V1")] *= 0.5
    ratio = amplitude_ratio(half, real)
    assert ratio[LEADS.index("V1")] == pytest.approx(0.5) and ratio[LEADS.index("V2")] == pytest.approx(1.0)


def test_noise_ratio_in_the_35_50_hz_band() -> None:
    clean = np.tile(np.sin(2 * np.pi * 5 * T), (2, 12, 1))  # (2, 12, L) 5 Hz: outside the band
    hiss = np.sin(2 * np.pi * 42 * T)
    real, noisy = clean + 0.01 * hiss, clean + 0.03 * hiss
    assert band_rms(clean, FS).max() < 1e-3
    assert band_rms(real, FS)[0] == pytest.approx(0.01 / math.sqrt(2), rel=0.05)  # a sine of amplitude a has RMS a/sqrt(2)
    assert noise_ratio(noisy, real, FS) == pytest.approx(3.0, rel=0.02)


def test_rr_regularity_and_rhythm_control() -> None:
    assert np.allclose(rr_intervals(beats(REGULAR), FS), 0.8)
    x = np.stack([beats(REGULAR), beats(IRREGULAR), beats(REGULAR, 1), np.zeros((12, L))])
    cv = rr_cv(x, FS)
    assert cv[0] == pytest.approx(0.0, abs=1e-9) and cv[1] == pytest.approx(0.3 / 0.8, rel=0.05) and math.isnan(cv[3])
    assert regular_share(cv) == pytest.approx(2 / 3)  # the flat record has no rhythm and does not count
    names = ["NORM", "SR", "AFIB"]
    labels = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]])  # SR: rows 0, 3; AFIB: rows 1, 2
    control = rhythm_control(cv, labels, names)
    assert control["sr_regular_share"] == 1.0 and control["sr_regular_n"] == 1  # row 3 unmeasured
    assert control["afib_irregular_share"] == 0.5 and control["afib_irregular_n"] == 2
    assert math.isnan(rhythm_control(cv, labels[:, :1], ["NORM"])["afib_irregular_share"])


def test_spurious_beats_counted_only_where_the_target_has_none() -> None:
    extra = np.sort(np.append(REGULAR, REGULAR[2] + 0.25))  # one beat 0.25 s after another
    twins = np.stack([beats(extra), beats(REGULAR), beats(extra)])
    targets = np.stack([beats(REGULAR), beats(REGULAR), beats(extra)])  # the third target has the short RR itself
    short, target_short = has_short_rr(twins, FS), has_short_rr(targets, FS)
    np.testing.assert_array_equal(short, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(target_short, [0.0, 0.0, 1.0])
    assert spurious_beat_share(short, target_short) == 0.5


def test_correlation_error_known_value() -> None:
    s = np.sin(2 * np.pi * 1.3 * T) + 0.3 * np.sin(2 * np.pi * 7 * T)
    signs = np.array([1.0] * 6 + [-1.0] * 6)
    real = np.tile(signs[:, None] * s, (3, 1, 1))  # (3, 12, L): correlations +1 or -1
    same = np.tile(s, (3, 12, 1))  # every lead the same: correlations all +1
    corr = mean_lead_correlation(real)
    assert corr[0, 1] == pytest.approx(1.0) and corr[0, 11] == pytest.approx(-1.0)
    assert correlation_error(real, real) == pytest.approx(0.0, abs=1e-12)
    # 72 of the 132 off-diagonal entries differ by 2: mean |difference| = 144 / 132
    assert correlation_error(same, real) == pytest.approx(144 / 132)


def test_classifier_two_sample_test_chance_and_separable() -> None:
    rng = np.random.default_rng(0)
    real, same = rng.normal(size=(80, 6)), rng.normal(size=(80, 6))
    chance = classifier_two_sample_auroc(same, real, n_boot=100)
    assert chance["auroc_low"] < 0.5 < chance["auroc_high"] and abs(chance["auroc"] - 0.5) < 0.15
    apart = classifier_two_sample_auroc(same + 3.0, real, n_boot=100)
    assert apart["auroc"] > 0.98 and apart["auroc_low"] > 0.9 and apart["n"] == 160
    groups = np.concatenate([np.arange(80), np.arange(80)])  # each fake row with its real partner
    assert classifier_two_sample_auroc(same + 3.0, real, groups, n_boot=20)["auroc"] > 0.98
    assert math.isnan(classifier_two_sample_auroc(same[:1], real)["auroc"])


def test_realism_section_copies_of_the_targets_look_real() -> None:
    real = np.stack([beats(REGULAR if i % 2 else IRREGULAR, i) for i in range(8)])  # (8, 12, L)
    labels = np.array([[0, 1, 0] if i % 2 else [0, 0, 1] for i in range(8)])
    halves = (np.arange(0, 8, 2), np.arange(1, 8, 2))
    section = realism_section({"twin": real.copy(), "loud": 3.0 * real}, real, FS, labels, ["NORM", "SR", "AFIB"],
                              np.arange(8), real_rows=halves, n_boot=20)
    twin, loud = section["twin"], section["loud"]
    assert twin["amplitude_ratio"] == pytest.approx(1.0) and loud["amplitude_ratio"] == pytest.approx(3.0)
    assert twin["correlation_error"] == pytest.approx(0.0, abs=1e-12) and twin["limb_residual_mV"] < 1e-9
    assert twin["sr_regular_share"] == 1.0 and twin["afib_irregular_share"] == 1.0 and twin["spurious_beat_share"] == 0
    assert twin["rr_regular_share"] == section["real"]["rr_regular_share"] == 0.5
    assert {"c2st_auroc", "noise_ratio_35_50Hz", "amplitude_ratio_V6"} <= set(section["real"])
