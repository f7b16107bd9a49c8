"""scripts/plot_report_twins.py: pairs matched across reports by record, drawn at random, bad input refused."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plot_report_twins.py"


def fake_report(folder: Path, order: list[int], twin_value: float) -> Path:
    """A report folder whose pairs (10 + i -> 20 + i) come in ``order``; every twin is ``twin_value`` mV."""
    folder.mkdir()
    n = len(order)
    real = np.stack([np.full((12, 200), float(i)) for i in order]).astype(np.float32)  # (n, 12, L): pair i holds i mV
    np.savez(folder / "twins.npz", twin=np.full_like(real, twin_value), copy=real, real=real,
             reference_record=np.array([10 + i for i in order]), target_record=np.array([20 + i for i in order]),
             target_labels=np.eye(n, 2, dtype=np.float32), label_names=np.array(["NORM", "MI"]))
    (folder / "report.json").write_text(json.dumps({"settings": {"fs": 100}}))
    return folder


def run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_pairs_are_matched_by_record_and_plotted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    script = runpy.run_path(str(SCRIPT))
    a = script["load_twins"](fake_report(tmp_path / "a", [0, 1, 2, 3], 5.0))
    b = script["load_twins"](fake_report(tmp_path / "b", [3, 2, 1], 7.0))  # other order, one pair fewer
    reports = {"a": a, "b": b}
    assert script["common_pairs"](reports) == [(11, 21), (12, 22), (13, 23)]  # the first report's order
    assert script["row_of"](b, (11, 21)) == 2 and script["labels_of"](a, 0) == "NORM"
    out = tmp_path / "fig.png"
    run(["--report", f"a={tmp_path / 'a'}", "--report", f"b={tmp_path / 'b'}", "--pairs", "2", "--out", str(out)],
        monkeypatch)
    assert out.stat().st_size > 10_000 and "of 3 shared" in capsys.readouterr().out


def test_bad_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_report(tmp_path / "a", [0, 1], 5.0)
    with pytest.raises(SystemExit):  # more pairs than the reports share
        run(["--report", f"a={tmp_path / 'a'}", "--pairs", "3", "--out", str(tmp_path / "f.png")], monkeypatch)
    with pytest.raises(SystemExit, match="no twins.npz"):
        run(["--report", f"x={tmp_path}", "--out", str(tmp_path / "f.png")], monkeypatch)
    with pytest.raises(SystemExit):
        run(["--report", "nameless", "--out", str(tmp_path / "f.png")], monkeypatch)
    with pytest.raises(SystemExit):  # an unknown lead, named before anything is read
        run(["--report", f"a={tmp_path / 'a'}", "--pairs", "1", "--leads", "V9", "--out", str(tmp_path / "f.png")],
            monkeypatch)
