"""scripts/bench_sampling.py and scripts/bench_steps.py (ecgtwin.eval.sampling_bench): the rhythm counts behind
the shares, the cells with their 95% CIs, and the curve over steps end to end on the sample (resumed, plotted)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.eval import sampling_bench as sb
from tests.test_realism import FS, IRREGULAR, REGULAR, L, beats

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_sampling.py"
spec = importlib.util.spec_from_file_location("bench_sampling", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)  # type: ignore[union-attr]


def test_rhythm_counts_and_cells() -> None:
    extra = np.sort(np.append(REGULAR, REGULAR[2] + 0.25))  # a spurious beat 0.25 s after another
    twins = np.stack([beats(REGULAR), beats(IRREGULAR), beats(extra), np.zeros((12, L))])
    targets = np.stack([beats(REGULAR), beats(REGULAR), beats(REGULAR), beats(extra)])
    counts = sb.rhythm_shares(twins, sb.has_short_rr(targets, FS), FS)
    # regular: the first and third (the R-peak detector's refractory period skips the extra beat; the
    # spurious-beat count below looks for it); the flat record is not measured
    assert counts["rr_regular"] == (2, 3)
    # spurious: among the pairs whose target has no short RR and whose twin is measured (rows 0-2), row 2
    assert counts["spurious"] == (1, 3)
    assert "spurious" not in sb.rhythm_shares(targets, None, FS)
    assert sb.cell(counts, "rr_regular", None) == "0.67 [0.21, 0.94]"  # Wilson 2 of 3
    row = {"c2st_auroc": 0.9, "c2st_auroc_low": 0.85, "c2st_auroc_high": 0.94, "target_auroc": (0.8, 0.75, 0.86)}
    assert sb.cell(row, "c2st_auroc", None) == "0.90 [0.85, 0.94]"
    assert sb.cell(row, "target_auroc", None) == "0.800 [0.750, 0.860]"
    assert sb.cell({}, "target_auroc", None) == ""  # no classifier
    assert sb.cell({"spurious": (0, 0)}, "spurious", None) == "-"  # no usable pair
    assert sb.cell({"amplitude_ratio": 0.912}, "amplitude_ratio", "{:.2f}") == "0.91"


def test_rows_are_labelled_in_the_form_the_settings_are_given() -> None:
    from ecgtwin.pipeline import DEFAULT_SAMPLING, format_sampling

    for text in ("dpmpp_2m:25:1:1", "ddpm:100:3:2:0.1-0.9", "dpmpp_2m_sde:50:3:1:trailing"):
        assert format_sampling(bench.parse_setting(text)) == text  # a row's label can be pasted back into --settings
    assert bench.parse_setting(format_sampling(DEFAULT_SAMPLING)) == bench.parse_setting("default")


def test_shares_read_alike_from_tuples_and_stored_lists() -> None:
    assert sb.share({"rr_regular": (3, 4)}, "rr_regular")[0] == 0.75
    assert sb.share({"rr_regular": [3, 4]}, "rr_regular") == sb.share({"rr_regular": (3, 4)}, "rr_regular")
    assert sb.share({"hr_mae_bpm": 2.5}, "hr_mae_bpm") == (2.5, 2.5, 2.5)
    assert all(np.isnan(sb.share({}, "target_auroc")))


def test_bench_steps_end_to_end_resumes_and_plots(sample_root: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import runpy
    import shutil
    import sys

    from bundles import tiny_bundle

    early = tiny_bundle(sample_root, tmp_path, True, "superclass_rhythm")
    late = tmp_path / "run_step00200.pt"
    shutil.copy(early, tmp_path / "run_step00100.pt")
    bundle = torch.load(early, weights_only=True)  # the same bundle, saved at a later "step"
    bundle["provenance"]["global_step"] = 250  # the provenance wins over the file name
    torch.save(bundle, late)
    out = tmp_path / "steps"
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "bench_steps.py")
    argv = [script, "--checkpoints", str(tmp_path / "run_step00100.pt"), str(late), "--root", str(sample_root),
            "--n", "8", "--setting", "dpmpp_2m:2:1:1", "--threads", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(script, run_name="__main__")
    first = capsys.readouterr().out
    assert "(step 100)" in first and "(step 250)" in first
    table = (out / "steps.md").read_text()
    assert "| run_step00100.pt | 2 | " in table  # 2 steps, one network call each (no guidance at 1/1)
    assert "real targets" in table and "n = 8 fold-7 twins" in table
    assert (out / "steps.png").stat().st_size > 10_000
    runpy.run_path(script, run_name="__main__")  # again: both rows come from the store
    again = capsys.readouterr().out
    assert again.count(": stored") == 2 and (out / "steps.md").read_text() == table
    monkeypatch.setattr(sys, "argv", [*argv[:2], str(tmp_path / "missing.pt"), *argv[4:]])
    with pytest.raises(SystemExit, match="no such checkpoint"):
        runpy.run_path(script, run_name="__main__")
