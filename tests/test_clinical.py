"""Known-answer tests of ecgtwin.eval.clinical: heart rate, intervals, Einthoven/Goldberger residuals."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy.signal import resample_poly

from ecgtwin.constants import LEADS, lead_index
from ecgtwin.eval.clinical import (
    INTERVALS,
    einthoven_residual,
    goldberger_residual,
    heart_rates,
    hr_mae,
    interval_distributions,
    intervals,
)

FS = 100
PRECORDIAL_GAINS = (-0.8, -0.3, 0.5, 1.2, 1.1, 0.9)  # V1..V6 relative to lead II (rS in V1, tall R in V4-V5)


def limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """The six limb leads from I and II (Einthoven: III = II - I; Goldberger's augmented leads)."""
    return {"I": lead_i, "II": lead_ii, "III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2,
            "aVL": lead_i - lead_ii / 2, "aVF": lead_ii - lead_i / 2}


def twelve_leads(lead_i: np.ndarray, lead_ii: np.ndarray, precordial: np.ndarray) -> np.ndarray:
    """(12, L) record in LEADS order from leads I, II and six precordial leads (6, L)."""
    leads = limb_leads(lead_i, lead_ii)
    leads.update({f"V{i + 1}": precordial[i] for i in range(6)})
    out = np.zeros((len(LEADS), len(lead_i)))  # (12, L)
    for name, values in leads.items():
        out[lead_index(name)] = values
    return out


@lru_cache(maxsize=None)
def synthetic_ecg(hr: float, fs: int = FS, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """Physiologically consistent 12-lead ECG (12, L) in mV with a known heart rate.

    McSharry's ECGSYN (``neurokit2.ecg_simulate``) gives a lead-II-like beat train; it is
    simulated at 500 Hz and decimated (NeuroKit2 0.2.x hangs for ``sampling_rate=100``).
    ``method="multileads"`` exists but its lead II has R waves 15x smaller than T waves
    (its gamma matrix), which R-peak detectors lock onto, so leads are derived here instead.
    """
    import neurokit2 as nk

    beat = nk.ecg_simulate(duration=seconds, sampling_rate=500, heart_rate=hr, heart_rate_std=0.5,
                           noise=0.005, random_state=seed)
    lead_ii = resample_poly(beat, fs, 500)  # (L,)
    precordial = np.stack([g * lead_ii for g in PRECORDIAL_GAINS])  # (6, L)
    return twelve_leads(0.6 * lead_ii, lead_ii, precordial)


# ---- heart rate -------------------------------------------------------------------------------
@pytest.mark.parametrize("hr", [60.0, 120.0])
def test_heart_rate_of_simulated_ecg(hr: float) -> None:
    record = synthetic_ecg(hr)
    assert record.shape == (12, 1000)
    measured = heart_rates(record[None], FS)
    assert measured.shape == (1,)
    assert measured[0] == pytest.approx(hr, abs=3.0)


def test_heart_rates_flat_record_is_nan_and_shape_checked() -> None:
    batch = np.stack([synthetic_ecg(60.0), np.zeros((12, 1000))])  # (2, 12, L)
    measured = heart_rates(batch, FS)
    assert measured[0] == pytest.approx(60.0, abs=3.0) and math.isnan(measured[1])
    with pytest.raises(ValueError, match=r"\(N, 12, L\)"):
        heart_rates(np.zeros((2, 8, 1000)), FS)


def test_hr_mae_ignores_nan_and_counts_undetectable() -> None:
    result = hr_mae([60.0, 80.0, 100.0, float("nan")], [62.0, float("nan"), 97.0, 50.0])
    assert result == {"mae": 2.5, "n": 2.0, "n_undetectable": 1.0}
    assert math.isnan(hr_mae([60.0], [float("nan")])["mae"])
    with pytest.raises(ValueError, match="same shape"):
        hr_mae([60.0, 70.0], [60.0])


# ---- intervals --------------------------------------------------------------------------------
def test_intervals_of_simulated_ecg_are_physiological() -> None:
    result = intervals(synthetic_ecg(80.0), FS)
    assert set(result) == set(INTERVALS)
    assert 100 <= result["pr_ms"] <= 250
    assert 50 <= result["qrs_ms"] <= 150
    assert 250 <= result["qt_ms"] <= 500
    # QT shortens with heart rate (Bazett): the same simulator at 120 bpm
    assert intervals(synthetic_ecg(120.0), FS)["qt_ms"] < result["qt_ms"]


@pytest.mark.parametrize("kind", ["flat", "nan", "short"])
def test_intervals_nan_on_unusable_lead(kind: str) -> None:
    record = {"flat": np.zeros((12, 1000)), "short": synthetic_ecg(80.0)[:, :150],
              "nan": np.where(np.arange(1000) < 500, synthetic_ecg(80.0), np.nan)}[kind]
    result = intervals(record, FS)
    assert set(result) == set(INTERVALS) and all(math.isnan(v) for v in result.values())


def test_intervals_never_raise_on_noise() -> None:
    for seed in range(3):
        noise = np.random.default_rng(seed).normal(scale=[[0.05], [2.0], [0.5]][seed % 3], size=(12, 1000))
        result = intervals(noise, FS)
        assert set(result) == set(INTERVALS)
        assert all(isinstance(v, float) and (math.isnan(v) or v > 0) for v in result.values())


def test_intervals_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(12, L\)"):
        intervals(np.zeros((8, 1000)), FS)
    with pytest.raises(ValueError, match="2 dimensions"):
        intervals(np.zeros((1, 12, 1000)), FS)
    with pytest.raises(ValueError, match="fs must be"):
        intervals(np.zeros((12, 1000)), 0)


def test_interval_distributions_frame() -> None:
    frame = interval_distributions(np.stack([synthetic_ecg(80.0), np.zeros((12, 1000))]), FS)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(INTERVALS) and len(frame) == 2
    assert frame.iloc[0].notna().all() and frame.iloc[1].isna().all()
    assert frame.iloc[0].to_dict() == pytest.approx(intervals(synthetic_ecg(80.0), FS))


# ---- Einthoven / Goldberger ---------------------------------------------------------------------
def test_residuals_zero_for_consistent_leads_positive_for_random() -> None:
    rng = np.random.default_rng(0)
    consistent = np.stack([twelve_leads(rng.normal(size=500), rng.normal(size=500), rng.normal(size=(6, 500)))
                           for _ in range(4)])  # (4, 12, L)
    assert einthoven_residual(consistent).shape == (4,)
    np.testing.assert_allclose(einthoven_residual(consistent), 0.0, atol=1e-12)
    np.testing.assert_allclose(goldberger_residual(consistent), 0.0, atol=1e-12)
    random = rng.normal(size=(4, 12, 500))
    assert (einthoven_residual(random) > 0.5).all() and (goldberger_residual(random) > 0.5).all()
    np.testing.assert_allclose(einthoven_residual(synthetic_ecg(60.0)), 0.0, atol=1e-12)  # (12, L) -> scalar


def test_residuals_use_named_leads() -> None:
    record = np.zeros((12, 200))
    record[lead_index("III")] = 0.5  # III = 0.5 mV while II - I = 0
    record[lead_index("V1")] = 5.0  # precordial leads play no part
    assert float(einthoven_residual(record)) == pytest.approx(0.5)
    assert float(goldberger_residual(record)) == 0.0
    record[lead_index("aVF")] = -0.25
    assert float(goldberger_residual(record)) == pytest.approx(0.25)
    swapped = synthetic_ecg(60.0)[[1, 0, *range(2, 12)]]  # leads I and II exchanged
    assert float(einthoven_residual(swapped)) > 0.05


def test_residuals_bad_input() -> None:
    with pytest.raises(ValueError, match="LEADS order"):
        einthoven_residual(np.zeros((3, 11, 100)))
    with pytest.raises(ValueError, match="dimensions"):
        goldberger_residual(np.zeros(100))
