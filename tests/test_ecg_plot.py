"""12-lead paper-layout plots (ecgtwin.viz.ecg_plot)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from ecgtwin.constants import LEADS
from ecgtwin.viz.ecg_plot import (
    PAPER_GAIN_MM_PER_MV,
    PAPER_SPEED_MM_PER_S,
    plot_12lead,
    plot_overlay,
    plot_twin_comparison,
)

LAYOUT_ROWS = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]


def _ecg(fs: int = 100, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """(12, L) mV with a distinct offset + amplitude per lead so misplaced leads are detectable."""
    t = np.arange(int(fs * seconds)) / fs
    rng = np.random.default_rng(seed)
    return (np.arange(12)[:, None] * 0.1 + 0.3) * np.sin(2 * np.pi * 1.1 * t)[None] + rng.normal(0, 0.01, (12, t.size)) + 5.0


def _traces(ax) -> dict[str, list]:  # type: ignore[no-untyped-def]
    lines: dict[str, list] = {}
    for line in ax.get_lines():
        gid = line.get_gid() or ""
        if gid.startswith(("lead:", "rhythm:")):
            lines.setdefault(gid, []).append(line)
    return lines


def test_plot_12lead_layout_and_paper_scale() -> None:
    signal = _ecg()
    ax = plot_12lead(signal, 100, title="patient 1")
    traces = _traces(ax)
    assert sorted(traces) == sorted([f"lead:{lead}" for lead in LEADS] + ["rhythm:II"])  # 12 segments + rhythm
    assert all(len(v) == 1 for v in traces.values())
    baselines = {}
    for row, leads in enumerate(LAYOUT_ROWS):
        for col, lead in enumerate(leads):
            x, y = traces[f"lead:{lead}"][0].get_data()
            assert x[0] == pytest.approx(col * 2.5 * PAPER_SPEED_MM_PER_S)  # 2.5 s per column at 25 mm/s
            assert x[-1] == pytest.approx((col * 250 + 249) / 100 * PAPER_SPEED_MM_PER_S)
            own = signal[LEADS.index(lead), col * 250 : (col + 1) * 250]
            centred = own - np.median(signal[LEADS.index(lead)])
            offset = np.asarray(y) - centred * PAPER_GAIN_MM_PER_MV  # 10 mm/mV on a constant baseline
            assert np.ptp(offset) < 1e-9
            baselines.setdefault(row, set()).add(round(float(offset[0]), 6))
    assert all(len(b) == 1 for b in baselines.values())  # one baseline per row
    assert baselines[0].pop() > baselines[1].pop() > baselines[2].pop()  # rows top to bottom
    x, _ = traces["rhythm:II"][0].get_data()
    assert x[-1] == pytest.approx(9.99 * PAPER_SPEED_MM_PER_S)  # full-length rhythm strip
    assert {t.get_text() for t in ax.texts} >= set(LEADS)  # lead labels
    assert sum(line.get_gid() == "calibration" for line in ax.get_lines()) == 4  # one pulse per row
    assert ax.get_title(loc="left") == "patient 1"
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    assert width_in * 25.4 == pytest.approx(x1 - x0, rel=0.05)  # printed at about 1:1 paper scale
    assert ax.get_aspect() == 1.0


def test_plot_12lead_draws_into_given_axes_and_short_records() -> None:
    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    assert plot_12lead(_ecg(fs=500, seconds=4.0), 500, ax) is ax
    x, _ = _traces(ax)["lead:aVR"][0].get_data()
    assert x[0] == pytest.approx(1.0 * PAPER_SPEED_MM_PER_S)  # a 4 s record gets 1 s columns
    assert plot_12lead(_ecg(), 100, Figure()).figure is not fig


def test_plot_12lead_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(12, L\)"):
        plot_12lead(np.zeros((8, 100)), 100)
    with pytest.raises(ValueError, match="fs must be positive"):
        plot_12lead(_ecg(), 0)
    with pytest.raises(TypeError, match="ax_or_fig"):
        plot_12lead(_ecg(), 100, "axes")  # type: ignore[arg-type]


def test_plot_twin_comparison_writes_png(tmp_path: Path) -> None:
    reference = _ecg()
    twins = [_ecg(seed=1), _ecg(seed=2)]
    path = plot_twin_comparison(reference, twins, 100, ["ref", "twin A", "twin B"], tmp_path / "sub" / "cmp.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[0] > 2.0 * image.shape[1]  # three printouts stacked vertically (one is ~0.8 as tall as wide)
    assert image[..., :3].std() > 0.05  # not a blank page


def test_plot_twin_comparison_validates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="twins is empty"):
        plot_twin_comparison(_ecg(), [], 100, path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="need 2 titles"):
        plot_twin_comparison(_ecg(), [_ecg()], 100, ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="share one shape"):
        plot_twin_comparison(_ecg(), [_ecg(seconds=5)], 100, path=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_overlay_draws_both_signals() -> None:
    ax = plot_overlay(_ecg(), _ecg(seed=3), 100)
    traces = _traces(ax)
    assert all(len(traces[f"lead:{lead}"]) == 2 for lead in LEADS) and len(traces["rhythm:II"]) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["reference", "twin"]
