"""12-lead ECG plots in the standard paper-printout layout.

Everything is drawn in millimetres of ECG paper: 25 mm/s horizontally and
10 mm/mV vertically, on a 1 mm (minor) / 5 mm (major) grid. The layout is the
usual 3 x 4 one (columns of 2.5 s: I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF,
V3, V6, each column showing its own 2.5 s of the simultaneous recording) plus a
full-length lead II rhythm strip, with a 1 mV x 0.2 s calibration pulse at the
start of every row.

Only the object-oriented matplotlib API is used (``matplotlib.figure.Figure``,
saved through the Agg canvas), so nothing here touches pyplot's global state
and it runs headless.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ecgtwin.constants import LEADS, N_LEADS

PAPER_SPEED_MM_PER_S: float = 25.0
PAPER_GAIN_MM_PER_MV: float = 10.0
COLUMN_SECONDS: float = 2.5
LAYOUT: tuple[tuple[str, ...], ...] = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD: str = "II"
ROW_PITCH_MM: float = 40.0
TOP_MARGIN_MM: float = 10.0
"""Extra paper above the first row so tall R waves of I/aVR/V1/V4 stay on the grid."""
CAL_WIDTH_MM: float = 10.0
"""Left margin holding the calibration pulse (0.2 s = 5 mm wide, centred)."""
GRID_MINOR_COLOR, GRID_MAJOR_COLOR, PAPER_COLOR = "#f6c9c9", "#e28b8b", "#fffafa"
_INCH_MM = 25.4


def _check_signal(signal: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(signal, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != N_LEADS or array.shape[1] < 2:
        raise ValueError(f"{name} must be shaped (12, L) with L >= 2, got {array.shape}")
    return array


def _paper_size_mm(column_seconds: float) -> tuple[float, float]:
    """Width and height (mm) of the gridded area, calibration margin included."""
    width = CAL_WIDTH_MM + 4 * column_seconds * PAPER_SPEED_MM_PER_S
    return width, (len(LAYOUT) + 1) * ROW_PITCH_MM + TOP_MARGIN_MM


def _baseline_mm(row: int, height: float) -> float:
    """Zero-mV line of layout row ``row`` (0 = top, ``len(LAYOUT)`` = rhythm strip); a bit below the row centre."""
    return height - TOP_MARGIN_MM - ROW_PITCH_MM * (row + 0.6)


def _draw_grid(ax: Axes, width: float, height: float) -> None:
    """ECG paper: 1 mm minor and 5 mm major lines over ``[-CAL_WIDTH_MM, width - CAL_WIDTH_MM] x [0, height]``."""
    left, right = -CAL_WIDTH_MM, width - CAL_WIDTH_MM
    for step, color, lw in ((1.0, GRID_MINOR_COLOR, 0.3), (5.0, GRID_MAJOR_COLOR, 0.6)):
        xs = np.arange(left, right + 1e-9, step)
        ys = np.arange(0.0, height + 1e-9, step)
        segments = [((x, 0.0), (x, height)) for x in xs] + [((left, y), (right, y)) for y in ys]
        ax.add_collection(LineCollection(segments, colors=color, linewidths=lw, zorder=0 if step == 1 else 1))
    ax.set_facecolor(PAPER_COLOR)
    ax.set_xlim(left, right)
    ax.set_ylim(0.0, height)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(GRID_MAJOR_COLOR)


def _draw_calibration(ax: Axes, baseline: float, color: str) -> None:
    """Standard 1 mV (10 mm) x 0.2 s (5 mm) rectangular pulse in the left margin."""
    x0, x1 = -CAL_WIDTH_MM + 2.5, -2.5
    top = baseline + PAPER_GAIN_MM_PER_MV
    xs = [-CAL_WIDTH_MM + 0.5, x0, x0, x1, x1, -0.5]
    ys = [baseline, baseline, top, top, baseline, baseline]
    ax.plot(xs, ys, color=color, linewidth=0.9, zorder=3, gid="calibration")


def _draw_traces(
    ax: Axes, signal: np.ndarray, fs: float, column_seconds: float, height: float, color: str, alpha: float, label_leads: bool
) -> None:
    """The 12 lead segments and the rhythm strip; every trace gets ``gid`` ``lead:NAME`` or ``rhythm:NAME``."""
    centred = signal - np.median(signal, axis=1, keepdims=True)  # (12, L): baseline on the printed zero line
    span = int(round(column_seconds * fs))
    for row, leads in enumerate(LAYOUT):
        base = _baseline_mm(row, height)
        for col, lead in enumerate(leads):
            start = col * span
            segment = centred[LEADS.index(lead), start : start + span]
            t = (start + np.arange(segment.size)) / fs
            ax.plot(t * PAPER_SPEED_MM_PER_S, base + segment * PAPER_GAIN_MM_PER_MV, color=color,
                    linewidth=0.7, alpha=alpha, zorder=4, gid=f"lead:{lead}")
            if label_leads:
                x = col * column_seconds * PAPER_SPEED_MM_PER_S
                ax.text(x + 1.5, base + 0.3 * ROW_PITCH_MM, lead, fontsize=9, fontweight="bold", zorder=5)
                if col:  # lead-change marker, as printed by electrocardiographs
                    ax.plot([x, x], [base - 4, base + 4], color="black", linewidth=0.9, zorder=4)
    base = _baseline_mm(len(LAYOUT), height)
    rhythm = centred[LEADS.index(RHYTHM_LEAD), : 4 * span]
    t = np.arange(rhythm.size) / fs
    ax.plot(t * PAPER_SPEED_MM_PER_S, base + rhythm * PAPER_GAIN_MM_PER_MV, color=color,
            linewidth=0.7, alpha=alpha, zorder=4, gid=f"rhythm:{RHYTHM_LEAD}")
    if label_leads:
        ax.text(1.5, base + 0.3 * ROW_PITCH_MM, RHYTHM_LEAD, fontsize=9, fontweight="bold", zorder=5)
        for row in range(len(LAYOUT) + 1):
            _draw_calibration(ax, _baseline_mm(row, height), "black")


def _new_axes(fig: Figure | None, column_seconds: float, panels: int = 1) -> list[Axes]:
    """Axes for ``panels`` stacked paper panels, in a new figure sized at 1:1 paper scale when ``fig`` is None."""
    width, height = _paper_size_mm(column_seconds)
    if fig is None:
        fig = Figure(figsize=((width + 8) / _INCH_MM, panels * (height + 14) / _INCH_MM))
    grid = fig.add_gridspec(panels, 1, left=0.015, right=0.985, bottom=0.02, top=0.97, hspace=0.12)
    return [fig.add_subplot(grid[i, 0]) for i in range(panels)]


def _resolve_axes(ax_or_fig: Axes | Figure | None, column_seconds: float) -> Axes:
    if isinstance(ax_or_fig, Axes):
        return ax_or_fig
    if ax_or_fig is None or isinstance(ax_or_fig, Figure):
        return _new_axes(ax_or_fig, column_seconds)[0]
    raise TypeError(f"ax_or_fig must be a matplotlib Axes, Figure or None, got {type(ax_or_fig).__name__}")


def _column_seconds(length: int, fs: float) -> float:
    """2.5 s per column, or a quarter of a record shorter than 10 s."""
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs}")
    return min(COLUMN_SECONDS, length / fs / 4)


def _footer(ax: Axes, fs: float) -> None:
    ax.text(1.0, -0.012, f"{PAPER_SPEED_MM_PER_S:g} mm/s   {PAPER_GAIN_MM_PER_MV:g} mm/mV   {fs:g} Hz",
            transform=ax.transAxes, ha="right", va="top", fontsize=8)


def plot_12lead(
    signal: np.ndarray, fs: float, ax_or_fig: Axes | Figure | None = None, title: str | None = None, color: str = "black"
) -> Axes:
    """Draw a 12-lead ECG ``(12, L)`` in mV (LEADS order) as a paper printout; returns the Axes.

    ``ax_or_fig``: an Axes to draw into, a Figure to add one to, or None for a
    new 1:1-scale Figure (``ax.figure.savefig(...)`` to save). Each lead is
    centred on its median so baseline offsets do not move it off its row.
    """
    array = _check_signal(signal, "signal")
    column_seconds = _column_seconds(array.shape[1], fs)
    ax = _resolve_axes(ax_or_fig, column_seconds)
    width, height = _paper_size_mm(column_seconds)
    _draw_grid(ax, width, height)
    _draw_traces(ax, array, fs, column_seconds, height, color, 1.0, label_leads=True)
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    _footer(ax, fs)
    return ax


def plot_overlay(
    reference: np.ndarray,
    twin: np.ndarray,
    fs: float,
    ax_or_fig: Axes | Figure | None = None,
    title: str | None = None,
    labels: tuple[str, str] = ("reference", "twin"),
) -> Axes:
    """Reference (black) and twin (red, translucent) on one printout; both ``(12, L)`` mV."""
    ref, tw = _check_signal(reference, "reference"), _check_signal(twin, "twin")
    if ref.shape != tw.shape:
        raise ValueError(f"reference {ref.shape} and twin {tw.shape} must have the same shape")
    ax = plot_12lead(ref, fs, ax_or_fig, title)
    column_seconds = _column_seconds(ref.shape[1], fs)
    _draw_traces(ax, tw, fs, column_seconds, _paper_size_mm(column_seconds)[1], "#d62728", 0.75, label_leads=False)
    ax.plot([], [], color="black", label=labels[0])
    ax.plot([], [], color="#d62728", label=labels[1])
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)  # above the grid
    return ax


def plot_twin_comparison(
    reference: np.ndarray,
    twins: Sequence[np.ndarray],
    fs: float,
    titles: Sequence[str] | None = None,
    path: str | os.PathLike[str] = "twins.png",
    dpi: int = 110,
) -> Path:
    """Write a PNG with the reference printout on top and one printout per twin below it.

    ``titles``: one per panel (reference first), default ``"reference"``, ``"twin 1"``, ...
    Returns the PNG path (parent folders are created).
    """
    panels = [_check_signal(reference, "reference")] + [_check_signal(t, f"twins[{i}]") for i, t in enumerate(twins)]
    if len(panels) < 2:
        raise ValueError("twins is empty: nothing to compare")
    if any(p.shape != panels[0].shape for p in panels):
        raise ValueError(f"reference and twins must share one shape, got {[p.shape for p in panels]}")
    names = list(titles) if titles is not None else ["reference"] + [f"twin {i + 1}" for i in range(len(twins))]
    if len(names) != len(panels):
        raise ValueError(f"need {len(panels)} titles (reference first), got {len(names)}")
    axes = _new_axes(None, _column_seconds(panels[0].shape[1], fs), panels=len(panels))
    for ax, signal, name in zip(axes, panels, names):
        plot_12lead(signal, fs, ax, title=name)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    axes[0].figure.savefig(out, dpi=dpi, format="png")
    return out
