"""scripts/plot_training_curve.py: the sittings of a resumed run are joined on the step, later ones winning."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plot_training_curve.py"
spec = importlib.util.spec_from_file_location("plot_training_curve", SCRIPT)
curve = importlib.util.module_from_spec(spec)
spec.loader.exec_module(curve)  # type: ignore[union-attr]


def write(folder: Path, rows: list[str], header: str = "epoch,step,train/loss,val/loss") -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")


def test_sittings_are_joined_and_retrained_steps_replaced(tmp_path: Path) -> None:
    write(tmp_path / "version_0", ["0,24,0.5,", "0,49,0.4,", "0,74,0.3,", "0,99,,0.35"])
    # the second sitting resumed from the step-50 checkpoint: steps 74 and 99 were trained again
    write(tmp_path / "version_1", ["0,74,0.25,", "0,99,,0.2", "1,124,0.2,"], header="epoch,step,train/loss,val/loss")
    write(tmp_path / "version_10", ["1,149,0.1,"], header="epoch,step,train/loss")  # sorted as 10, not "1" < "10"
    (tmp_path / "version_2").mkdir()  # a sitting that died before logging: skipped
    run = curve.read_run(tmp_path)
    np.testing.assert_allclose(run["train"], [[24, 0.5], [49, 0.4], [74, 0.25], [124, 0.2], [149, 0.1]])
    np.testing.assert_allclose(run["val"], [[99, 0.2]])
    out = tmp_path / "fig" / "curve.png"
    curve.plot_runs({"g": run}, out, window=3)
    assert out.stat().st_size > 0


def test_smoothing_and_missing_runs(tmp_path: Path) -> None:
    np.testing.assert_allclose(curve.smooth(np.array([0.0, 3.0, 6.0]), 3), [1.5, 3.0, 4.5])
    np.testing.assert_allclose(curve.smooth(np.array([0.0, 3.0]), 9), [0.0, 3.0])  # shrinks to the run (odd: 1)
    np.testing.assert_allclose(curve.smooth(np.arange(4.0), 9), [0.5, 1.0, 2.0, 2.5])  # 4 logs: window 3
    with pytest.raises(FileNotFoundError, match="no version_"):
        curve.read_run(tmp_path)
