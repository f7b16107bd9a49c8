"""Preprocessing (resampling, high-pass, crop/pad, NaN gaps) and heart-rate estimation."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from ecgtwin.constants import LEADS
from ecgtwin.data.errors import ECGDataError
from ecgtwin.data.heartrate import estimate_heart_rate
from ecgtwin.data.preprocess import PreprocessConfig, crop_or_pad, fill_nan_gaps, highpass, preprocess, resample
from ecgtwin.data.ptbxl import read_wfdb

RECORD = "records100/00000/00316_lr"


def test_config_length_and_validation() -> None:
    assert PreprocessConfig().length == 1000 and PreprocessConfig(fs=500).length == 5000
    assert PreprocessConfig(fs=250, seconds=2.5).length == 625
    with pytest.raises(ValueError, match="highpass_hz"):
        PreprocessConfig(fs=100, highpass_hz=60.0)
    with pytest.raises(ValueError, match="positive"):
        PreprocessConfig(fs=0)


def test_resample_keeps_a_sine() -> None:
    t = np.arange(1000) / 100.0
    x = np.stack([np.sin(2 * np.pi * 5 * t)] * 12)  # (12, 1000) 5 Hz
    up = resample(x, 100, 500)
    assert up.shape == (12, 5000)
    t5 = np.arange(5000) / 500.0
    np.testing.assert_allclose(up[:, 200:-200], np.sin(2 * np.pi * 5 * t5)[200:-200] * np.ones((12, 1)), atol=0.02)
    np.testing.assert_allclose(resample(up, 500, 100)[:, 50:-50], x[:, 50:-50], atol=0.02)
    assert resample(x, 100, 100) is x


def test_crop_or_pad() -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(crop_or_pad(x, 5), x[:, :5])
    padded = crop_or_pad(x, 15)
    assert padded.shape == (2, 15) and (padded[:, 12:] == 0).all() and (padded[:, :12] == x).all()


def test_highpass_removes_baseline_wander_keeps_qrs_band() -> None:
    fs = 100.0
    t = np.arange(1000) / fs
    wander, ecg_band = 1.0 * np.sin(2 * np.pi * 0.1 * t), 0.5 * np.sin(2 * np.pi * 10 * t)
    out = highpass(np.stack([wander + ecg_band] * 12), fs, 0.5)
    core = slice(100, 900)
    assert np.abs(out[0, core] - ecg_band[core]).max() < 0.03  # 1 mV drift (97%) gone, 10 Hz kept
    assert np.abs(out[0] - ecg_band).max() < 0.4  # edges included
    assert np.corrcoef(out[0], ecg_band)[0, 1] > 0.99


def test_fill_nan_gaps() -> None:
    x = np.tile(np.linspace(0.0, 1.0, 1000), (12, 1))  # (12, 1000) ramps: interpolation is exact
    x[0, 100:110] = np.nan  # 0.1 s gap -> interpolated
    x[1, 200:400] = np.nan  # 2 s gap -> lead zeroed
    x[5] = np.nan  # all-NaN lead -> zeroed
    out, zeroed = fill_nan_gaps(x, fs=100, max_gap_seconds=0.2)
    np.testing.assert_allclose(out[0], np.linspace(0.0, 1.0, 1000), atol=1e-12)
    assert zeroed == ("II", "aVF") and (out[1] == 0).all() and (out[5] == 0).all()
    assert np.isfinite(out).all() and np.isnan(x[0, 100])  # input untouched
    with pytest.raises(ECGDataError, match="rec7: all samples are NaN"):
        fill_nan_gaps(np.full((12, 100), np.nan), 100, where="rec7")


def test_preprocess_real_record_100_and_500_hz(sample_root: Path) -> None:
    raw, fs = read_wfdb(sample_root / RECORD)
    x100, zeroed = preprocess(raw, fs, PreprocessConfig())
    x500, _ = preprocess(raw, fs, PreprocessConfig(fs=500))
    assert x100.shape == (12, 1000) and x100.dtype == np.float32 and zeroed == ()
    assert x500.shape == (12, 5000) and x500.dtype == np.float32
    assert np.abs(x100.mean(axis=1)).max() < 0.05  # baseline removed (mV)
    assert np.abs(raw.mean(axis=1) - x100.mean(axis=1)).max() > 0  # it did something
    np.testing.assert_allclose(resample(x500, 500, 100)[:, 20:-20], x100[:, 20:-20], atol=0.05)
    no_filter, _ = preprocess(raw, fs, PreprocessConfig(highpass_hz=None))
    np.testing.assert_allclose(no_filter, raw, atol=1e-6)
    with pytest.raises(ECGDataError, match="expected a \\(12, L\\) signal"):
        preprocess(raw[:8], fs, PreprocessConfig(), where="eight-lead")


@pytest.mark.parametrize("fs", [100, 500])
@pytest.mark.parametrize("bpm", [50, 75, 120, 160])
def test_heart_rate_of_simulated_ecg(fs: int, bpm: int) -> None:
    import neurokit2 as nk

    # neurokit2's ecg_simulate hangs at sampling_rate=100: simulate at 500 Hz and resample
    lead = nk.ecg_simulate(duration=10, sampling_rate=500, heart_rate=bpm, random_state=1)
    lead = resample(lead[None], 500, fs)[0] if fs != 500 else lead
    assert estimate_heart_rate(lead, fs) == pytest.approx(bpm, abs=3)
    record = np.tile(lead, (12, 1))
    record[LEADS.index("II")] = 0.0  # flat lead II -> falls back to another lead
    assert estimate_heart_rate(record, fs) == pytest.approx(bpm, abs=3)


def test_heart_rate_of_real_records_is_plausible_and_fast(sample_root: Path) -> None:
    records = (sample_root / "RECORDS").read_text().split()[::4]
    signals = [read_wfdb(sample_root / r)[0] for r in records]
    estimate_heart_rate(signals[0], 100)  # import neurokit2 outside the timing
    start = time.perf_counter()
    hrs = np.array([estimate_heart_rate(s, 100) for s in signals])
    per_record = (time.perf_counter() - start) / len(signals)
    assert np.isfinite(hrs).mean() >= 0.95
    assert ((hrs[np.isfinite(hrs)] >= 30) & (hrs[np.isfinite(hrs)] <= 200)).all()
    assert per_record < 0.05, f"{per_record * 1000:.1f} ms per record"
    # the same record at 500 Hz gives the same rate
    assert estimate_heart_rate(resample(signals[0], 100, 500), 500) == pytest.approx(hrs[0], abs=3)


def test_heart_rate_undetectable_and_bad_shape() -> None:
    assert np.isnan(estimate_heart_rate(np.zeros((12, 1000)), 100))
    assert np.isnan(estimate_heart_rate(np.full(1000, np.nan), 100))
    assert np.isnan(estimate_heart_rate(np.ones(100), 100))  # 1 s is too short
    with pytest.raises(ValueError, match="must be \\(12, L\\) or \\(L,\\)"):
        estimate_heart_rate(np.zeros((8, 1000)), 100)
