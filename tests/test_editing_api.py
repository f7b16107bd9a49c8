"""Editing and completion through a real (tiny) v2 bundle: kept leads, lead laws, strengths, seeds, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.constants import LEADS
from ecgtwin.editing import canonical_leads, complete_leads, edit_ecgs
from ecgtwin.io.wfdb_io import read_reference
from ecgtwin.leads import derive_leads, independent_leads, lead_law_residual
from ecgtwin.pipeline import SamplingOptions
from tests.test_generator_v2 import v2_bundle, vocab  # noqa: F401  (fixtures)

FAST = SamplingOptions("dpmpp_2m_sde", 6, 2.0, 1.5)


@pytest.fixture(scope="module")
def model(v2_bundle: Path) -> TwinModel:  # noqa: F811
    return TwinModel.load(v2_bundle)


@pytest.fixture(scope="module")
def record(sample_root: Path) -> np.ndarray:
    return read_reference(sample_root / "records100" / "01000" / "01495_lr").signal.astype(np.float32)  # (12, 1000)


@pytest.mark.parametrize("given", [["I"], ["I", "II"], ["I", "II", "III", "aVR", "aVL", "aVF"], ["DII", "v2"]])
def test_completion_keeps_the_recorded_leads_personal_and_population(model: TwinModel, record: np.ndarray,
                                                                      given: list[str]) -> None:
    names = canonical_leads(given)
    rows = [LEADS.index(n) for n in names]
    for reference in (record, None):
        out = complete_leads(model, record[rows], names, reference=reference, seeds=[3], options=FAST, progress=False)
        assert out.shape == (1, 12, 1000)
        # kept to 16-bit precision: within one storage step (PTB-XL: 1 uV). Recorded limb leads break the laws by
        # their rounding, so the six of them are kept in the least-squares sense, within that step
        assert float(np.abs(out[0, rows] - record[rows]).max()) <= 1e-3
        if set(names) & {"I", "II", "III", "aVR", "aVL", "aVF"} and len(set(names) & {"I", "II"}) == 2:
            assert float(lead_law_residual(out).max()) < 1e-5
    again = complete_leads(model, record[rows], names, reference=record, seeds=[3], options=FAST, progress=False)
    same = complete_leads(model, record[rows], names, reference=record, seeds=[3], options=FAST, progress=False)
    np.testing.assert_array_equal(again, same)


def test_completion_errors(model: TwinModel, record: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown lead"):
        complete_leads(model, record[:1], ["X1"], progress=False)
    with pytest.raises(ValueError, match="twice"):
        complete_leads(model, record[:2], ["I", "DI"], progress=False)
    with pytest.raises(ValueError, match="nothing to complete"):
        complete_leads(model, record, list(LEADS), progress=False)
    with pytest.raises(ValueError, match="partial record cannot be the reference"):
        complete_leads(model, record[:2], ["I", "II"], reference=record[:2], progress=False)
    with pytest.raises(ValueError, match=r"\(N, 2, 1000\)"):
        complete_leads(model, record[:3], ["I", "II"], progress=False)
    bad = record[:1].copy()
    bad[0, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        complete_leads(model, bad, ["I"], progress=False)


def test_editing_strengths(model: TwinModel, record: np.ndarray) -> None:
    spec = TwinSpec(record, ["MI"], hr=80, seed=1)
    np.testing.assert_array_equal(edit_ecgs(model, [spec], 1e-4, FAST, progress=False)[0], record)
    twin = model.generate([spec], options=FAST, progress=False)
    # through the model, as generate: the same torch thread count, so the same float sums (bitwise)
    np.testing.assert_array_equal(model.edit([spec], 1.0, FAST, progress=False), twin)
    low, high = (edit_ecgs(model, [spec], s, FAST, progress=False)[0] for s in (0.05, 0.7))
    assert np.sqrt(np.mean((low - record) ** 2)) < np.sqrt(np.mean((high - record) ** 2))
    assert float(lead_law_residual(low)) < 1e-5
    for bad in (0.0, 1.2, -1.0):
        with pytest.raises(ValueError, match="strength"):
            edit_ecgs(model, [spec], bad, FAST, progress=False)


def test_completion_keeps_the_baseline_of_the_recorded_leads(model: TwinModel, record: np.ndarray) -> None:
    t = np.arange(record.shape[-1]) / model.fs
    wander = (0.4 * np.sin(2 * np.pi * 0.15 * t) + 0.3).astype(np.float32)  # baseline drift + offset, mV
    rows = [LEADS.index("I"), LEADS.index("II")]
    partial = record[rows] + wander  # (2, L) as a monitor would record them
    out = complete_leads(model, partial, ["I", "II"], reference=record, options=FAST, progress=False)[0]
    assert float(np.abs(out[rows] - partial).max()) < 1e-4  # kept as recorded, drift included
    assert float(lead_law_residual(out)) < 1e-5  # III, aVR, aVL, aVF carry the drift the laws give them
    low = complete_leads(model, record[rows], ["I", "II"], reference=record, options=FAST, progress=False)[0]
    v = [LEADS.index(x) for x in ("V1", "V2", "V3", "V4", "V5", "V6")]
    np.testing.assert_allclose(out[v], low[v], atol=0.05)  # the model saw the filtered leads either way


def test_editing_keeps_the_baseline_of_the_recording(model: TwinModel, record: np.ndarray) -> None:
    t = np.arange(record.shape[-1]) / model.fs
    wander = (0.4 * np.sin(2 * np.pi * 0.15 * t) + 0.3).astype(np.float32)  # drift + offset, mV
    drifted = derive_leads(independent_leads(record) + wander)  # (12, L) lawful, as recorded with drift
    spec = TwinSpec(drifted, ["MI"], hr=80, seed=1)
    low = edit_ecgs(model, [spec], 0.002, FAST, progress=False)[0]  # starts 2 timesteps above the recording
    assert float(np.sqrt(np.mean((low - drifted) ** 2))) < 0.05  # the drift (0.4 mV RMS) is not lost
    assert float(np.abs((low - drifted).mean(axis=-1)).max()) < 0.1  # nor the 0.3 mV offset, on any lead
    assert float(lead_law_residual(low)) < 1e-5
    twin = model.generate([spec], options=FAST, progress=False)[0]
    np.testing.assert_array_equal(model.edit([spec], 1.0, FAST, progress=False)[0], twin)  # no baseline at 1


def test_completion_from_the_personal_lead_map(model: TwinModel, record: np.ndarray) -> None:
    from ecgtwin.lead_regression import personal_regression

    rows = [LEADS.index("I"), LEADS.index("II")]
    earlier = record  # the person's earlier ECG; here the same record, so the map from I, II is the record's own
    filtered = model._preprocess(record[None])  # (1, 12, L) the model's high-pass, as the reference is filtered
    # below the first timestep the sampler returns its start: the linear reconstruction itself (+ the baseline)
    tiny = complete_leads(model, record[rows], ["I", "II"], reference=earlier, options=FAST, progress=False,
                          regression_start=1e-4)[0]
    expected = personal_regression(("I", "II"), filtered, filtered[:, rows])[0]
    v = [LEADS.index(x) for x in ("V1", "V2", "V3", "V4", "V5", "V6")]
    np.testing.assert_allclose(tiny[v], expected[v], atol=1e-4)
    np.testing.assert_allclose(tiny[rows], record[rows], atol=1e-4)
    # a real strength: kept leads as recorded, lead laws exact, same seed same output, and nearer the map than noise
    half = complete_leads(model, record[rows], ["I", "II"], reference=earlier, options=FAST, progress=False,
                          regression_start=0.3)
    assert float(np.abs(half[0, rows] - record[rows]).max()) <= 1e-3 and float(lead_law_residual(half).max()) < 1e-5
    np.testing.assert_array_equal(half, complete_leads(model, record[rows], ["I", "II"], reference=earlier,
                                                       options=FAST, progress=False, regression_start=0.3))
    noise = complete_leads(model, record[rows], ["I", "II"], reference=earlier, options=FAST, progress=False,
                           regression_start=1.0)  # 1: from pure noise
    distance = {name: float(np.sqrt(np.mean((x[0, v] - expected[v]) ** 2))) for name, x in (("map", half), ("noise", noise))}
    assert distance["map"] < distance["noise"]
    with pytest.raises(ValueError, match="needs a reference"):
        complete_leads(model, record[rows], ["I", "II"], options=FAST, progress=False, regression_start=0.5)
    with pytest.raises(ValueError, match="strength"):
        complete_leads(model, record[rows], ["I", "II"], reference=earlier, options=FAST, progress=False,
                       regression_start=1.5)
