"""scripts/eval_editing.py end to end on the shipped sample: tables written, stages stored and reused."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from bundles import tiny_bundle

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "eval_editing.py"


def run_script(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    return capsys.readouterr().out


def test_eval_editing_stores_each_stage_and_reuses_it(sample_root: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "editing"
    args = ["--checkpoint", str(tiny_bundle(sample_root, tmp_path)), "--root", str(sample_root), "--fold", "7",
            "--max-pairs", "3", "--steps", "2", "--train-records", "40", "--given", "I", "I+II", "--out", str(out)]
    first = run_script(args, monkeypatch, capsys)
    report = json.loads((out / "editing_completion.json").read_text())
    assert report["n_pairs"] == 3 and set(report["completion"]) == {"I", "I+II"}
    assert [float(s) for s in report["editing"]] == [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
    # the recorded leads are kept (16-bit-scale rounding at most) and the distance to the recording grows with S
    assert report["completion"]["I+II"]["kept_max_abs_mV"] < 1e-3
    rmse = [row["rmse_to_recording_mV"] for row in report["editing"].values()]
    assert rmse[0] == 0.0 and 0.0 < rmse[1] < rmse[-1]  # strength 0: the recording itself
    stored = sorted(p.name for p in (out / "sections").glob("*.json"))
    arms = ("personal", "population", "regression", "personal_regression", "copy")  # one stage per given-lead set and arm
    assert stored == sorted([f"completion_{given}_{arm}.json" for given in ("I", "I_II") for arm in arms]
                            + [f"edit_{s:g}.json" for s in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)])
    assert "(stored" not in first
    text = (out / "report.md").read_text()
    assert "### Given: I+II" in text and "| 0.5 |" in text
    for png in ("completion_r.png", "completion_example_I_II.png", "edit_curve.png", "edit_strengths.png"):
        assert (out / png).stat().st_size > 0

    # the same command again: every stage comes from sections/, same numbers
    second = run_script(args, monkeypatch, capsys)
    assert second.count("(stored: personal, population, regression, personal_regression, copy)") == 2 and second.count("(stored)") == 7
    assert json.loads((out / "editing_completion.json").read_text()) == report

    # a run stopped part-way: only the stages without a stored result are computed again
    (out / "sections" / "completion_I_population.json").unlink()
    (out / "sections" / "edit_0.5.json").unlink()
    partial = run_script(args, monkeypatch, capsys)
    assert "completion from I (stored: personal, regression, personal_regression, copy)" in partial
    assert "edit strength 0.5:" in partial and partial.count("(stored)") == 6
    assert json.loads((out / "editing_completion.json").read_text()) == report  # same seeds, same numbers

    # another completion setting keeps the edits (and the baselines' arms), recomputes the learned completions
    other = run_script([*args, "--reconstruction", "4"], monkeypatch, capsys)
    assert other.count("(stored)") == 7 and other.count("(stored: regression, personal_regression, copy)") == 2

    # more steps change both parts: nothing is reused
    # (but the regression and copy arms, which do not depend on it)
    third = run_script([*args[:args.index("--steps") + 1], "3", *args[args.index("--steps") + 2:]], monkeypatch, capsys)
    assert third.count("(stored: regression, personal_regression, copy)") == 2 and "(stored)" not in third


def test_stored_nulls_read_back_as_nan() -> None:
    from ecgtwin.eval.report import from_jsonable, to_jsonable

    back = from_jsonable(to_jsonable({"row": {"hr_mae_bpm": float("nan"), "id_top1": 0.5}, "r": [0.1, np.nan]}))
    assert back["row"]["id_top1"] == 0.5 and f"{back['row']['hr_mae_bpm']:.3f}" == "nan"
    assert back["r"][0] == 0.1 and back["r"][1] != back["r"][1]  # NaN
