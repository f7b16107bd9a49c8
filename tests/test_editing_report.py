"""Tables and figures of the editing / completion measurements: known numbers in, known cells out."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgtwin.constants import LEADS
from ecgtwin.eval.editing_report import (PRECORDIAL, completion_markdown, editing_markdown, plot_completion_example,
                                         plot_completion_r, plot_editing_curve, plot_edits)


def _results() -> dict:
    per_lead = {arm: {v: {"r": r, "rmse_mV": 0.1 * (k + 1)} for k, v in enumerate(PRECORDIAL)}
                for arm, r in (("personal", 0.8), ("population", 0.5), ("regression", 0.6), ("copy", 0.7))}
    return {"I": {"per_lead": per_lead,
                  "precordial_r_mean": {"personal": 0.8, "population": 0.5, "regression": 0.6, "copy": 0.7},
                  "personal_minus": {"population": (0.3, 0.2, 0.4), "regression": (-0.1, -0.2, -0.05),
                                     "copy": (0.1, -0.02, 0.2)},
                  "kept_max_abs_mV": 0.0012}}


def test_completion_table_has_every_arm_lead_and_an_honest_verdict() -> None:
    text = completion_markdown(_results(), n_pairs=40, n_patients=31)
    assert "n = 40 pairs of 31 patients" in text
    personal = next(line for line in text.splitlines() if line.startswith("| personal (earlier ECG)"))
    assert personal.count("0.80 / ") == 6 and "0.60 / 0.600" not in personal and "0.80 / 0.600" in personal
    verdicts = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in text.splitlines()
                if line.startswith("| ") and "[" in line}
    assert verdicts["population (no reference)"] == "yes"
    assert verdicts["linear regression (train folds)"] == "no (worse)"
    assert verdicts["copy of the earlier ECG"] == "not resolved (CI spans 0)"
    assert "+0.300 [+0.200, +0.400]" in text and "1.20e-03 mV" in text


def test_editing_table_rows_follow_strengths_and_blank_missing_measures() -> None:
    rows = {"0.1": {"rmse_to_recording_mV": 0.0123, "hr_mae_bpm": 4.26, "id_top1": 0.5, "ibe_cosine": 0.9,
                    "target_auroc": 0.71, "target_auroc_low": 0.65, "target_auroc_high": 0.77},
            "1.0": {"rmse_to_recording_mV": 0.2, "hr_mae_bpm": 2.0, "id_top1": 0.1, "ibe_cosine": 0.4}}
    lines = editing_markdown(rows).splitlines()
    assert lines[2].startswith("| 0.1 | 0.012 | 0.710 [0.650, 0.770] | 4.3 | 0.500 | 0.900 |")
    assert lines[3].startswith("| 1 | 0.200 |  | 2.0 |")


def test_figures_are_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(12, 1000)).astype(np.float32) * 0.1
    plot_completion_r(_results(), tmp_path / "r.png")
    plot_completion_example(real, {"personal": real, "copy": real * 0.5}, ("I",), 100, tmp_path / "ex.png")
    rows = {"0.2": {"rmse_to_recording_mV": 0.05, "hr_mae_bpm": 3.0, "id_top1": 0.4, "ibe_cosine": 0.8},
            "1.0": {"rmse_to_recording_mV": 0.2, "hr_mae_bpm": 2.0, "id_top1": 0.1, "ibe_cosine": 0.4}}
    plot_editing_curve(rows, tmp_path / "curve.png")
    plot_edits(real, {0.2: real, 1.0: real}, "towards MI", 100, tmp_path / "edits.png")
    for name in ("r.png", "ex.png", "curve.png", "edits.png"):
        assert (tmp_path / name).stat().st_size > 5_000, name


def test_completion_example_rejects_unknown_lead(tmp_path: Path) -> None:
    real = np.zeros((len(LEADS), 1000), dtype=np.float32)
    with pytest.raises(ValueError):
        plot_completion_example(real, {"copy": real}, ("I",), 100, tmp_path / "x.png", leads=("V7",))
