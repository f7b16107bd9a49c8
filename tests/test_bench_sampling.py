"""scripts/bench_sampling.py: the rhythm counts behind its shares and the cells with their 95% CIs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tests.test_realism import FS, IRREGULAR, REGULAR, L, beats

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_sampling.py"
spec = importlib.util.spec_from_file_location("bench_sampling", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)  # type: ignore[union-attr]


def test_rhythm_counts_and_cells() -> None:
    extra = np.sort(np.append(REGULAR, REGULAR[2] + 0.25))  # a spurious beat 0.25 s after another
    twins = np.stack([beats(REGULAR), beats(IRREGULAR), beats(extra), np.zeros((12, L))])
    targets = np.stack([beats(REGULAR), beats(REGULAR), beats(REGULAR), beats(extra)])
    counts = bench.rhythm_shares(twins, bench.has_short_rr(targets, FS), FS)
    # regular: the first and third (the R-peak detector's refractory period skips the extra beat; the
    # spurious-beat count below looks for it); the flat record is not measured
    assert counts["rr_regular"] == (2, 3)
    # spurious: among the pairs whose target has no short RR and whose twin is measured (rows 0-2), row 2
    assert counts["spurious"] == (1, 3)
    assert "spurious" not in bench.rhythm_shares(targets, None, FS)
    assert bench.cell(counts, "rr_regular", None) == "0.67 [0.21, 0.94]"  # Wilson 2 of 3
    row = {"c2st_auroc": 0.9, "c2st_auroc_low": 0.85, "c2st_auroc_high": 0.94, "target_auroc": (0.8, 0.75, 0.86)}
    assert bench.cell(row, "c2st_auroc", None) == "0.90 [0.85, 0.94]"
    assert bench.cell(row, "target_auroc", None) == "0.800 [0.750, 0.860]"
    assert bench.cell({}, "target_auroc", None) == ""  # no classifier
    assert bench.cell({"spurious": (0, 0)}, "spurious", None) == "-"  # no usable pair
    assert bench.cell({"amplitude_ratio": 0.912}, "amplitude_ratio", "{:.2f}") == "0.91"


def test_rows_are_labelled_in_the_form_the_settings_are_given() -> None:
    from ecgtwin.pipeline import DEFAULT_SAMPLING, format_sampling

    for text in ("dpmpp_2m:25:1:1", "ddpm:100:3:2:0.1-0.9", "dpmpp_2m_sde:50:3:1:trailing"):
        assert format_sampling(bench.parse_setting(text)) == text  # a row's label can be pasted back into --settings
    assert bench.parse_setting(format_sampling(DEFAULT_SAMPLING)) == bench.parse_setting("default")
