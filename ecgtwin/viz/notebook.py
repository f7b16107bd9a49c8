"""Small helpers for ``notebooks/explore_twins.ipynb``: a patient's records, clinical tables, base-vector similarity.

Pure functions (tables in, tables/figures out); the notebook only wires them to
:class:`ecgtwin.api.TwinModel`. Figures use the object-oriented matplotlib API,
so they show inline with ``display(fig)`` and never touch pyplot's global state.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ecgtwin.constants import lead_index
from ecgtwin.data.conditions import LabelVocabulary

CLINICAL_COLUMNS: tuple[str, ...] = ("target_hr", "measured_hr", "hr_error", "pr_ms", "qrs_ms", "qt_ms")
"""Columns of :func:`clinical_table` (bpm and ms)."""


def patient_records(database: pd.DataFrame, patient_id: int, vocabulary: LabelVocabulary) -> pd.DataFrame:
    """The records of one patient from :func:`~ecgtwin.data.ptbxl.load_ptbxl_database`, oldest first.

    Columns: ``recording_date``, ``age``, ``sex``, ``scp_codes`` (dict), ``labels``
    (the vocabulary's names for the codes, e.g. ``["MI"]``), ``filename_lr``; index ``ecg_id``.
    """
    if "patient_id" not in database.columns:
        raise ValueError("database has no patient_id column: pass load_ptbxl_database(root)")
    rows = database[database["patient_id"] == int(patient_id)].sort_values("recording_date")
    if rows.empty:
        raise ValueError(f"patient_id {patient_id} has no records in the database")
    table = rows[["recording_date", "age", "sex", "scp_codes", "filename_lr"]].copy()
    table.insert(4, "labels", [vocabulary.decode(vocabulary.encode(codes)) for codes in rows["scp_codes"]])
    return table


def patients_with_records(database: pd.DataFrame, count: int, min_records: int = 2,
                          include: Sequence[int] = ()) -> list[int]:
    """``count`` patient ids: ``include`` first, then those with the most records (at least ``min_records``).

    Ties are broken by the smaller patient id, so the choice is deterministic.
    """
    if count < 1 or min_records < 1:
        raise ValueError(f"count and min_records must be >= 1, got {count}, {min_records}")
    sizes = database["patient_id"].value_counts()
    missing = [p for p in include if int(p) not in sizes.index]
    if missing:
        raise ValueError(f"patients {missing} have no records in the database")
    ranked = sorted((int(p) for p, n in sizes.items() if n >= min_records), key=lambda p: (-sizes[p], p))
    chosen = [int(p) for p in include] + [p for p in ranked if p not in set(map(int, include))]
    return chosen[:count]


def clinical_table(signals: Mapping[str, np.ndarray], fs: float,
                   target_hr: Mapping[str, float | None] | None = None) -> pd.DataFrame:
    """Heart rate and PR/QRS/QT (ms, lead II) of named ``(12, L)`` mV records, one row per name.

    ``target_hr[name]`` is the requested HR of a twin (None/absent = not set);
    ``hr_error = measured_hr - target_hr``. NaN wherever detection fails.
    """
    from ecgtwin.eval.clinical import heart_rates, intervals

    if not signals:
        raise ValueError("signals is empty: nothing to measure")
    names = list(signals)
    stacked = np.stack([np.asarray(signals[n], dtype=np.float64) for n in names])  # (N, 12, L)
    measured = heart_rates(stacked, fs)  # (N,)
    wanted = dict(target_hr or {})
    targets = np.array([np.nan if wanted.get(n) is None else float(wanted[n]) for n in names])  # (N,)
    rows = [intervals(record, fs) for record in stacked]
    table = pd.DataFrame(rows, index=pd.Index(names, name="ecg"))
    table.insert(0, "target_hr", targets)
    table.insert(1, "measured_hr", measured)
    table.insert(2, "hr_error", measured - targets)
    return table[list(CLINICAL_COLUMNS)]


def cosine_similarity(vectors: Any, others: Any | None = None) -> np.ndarray:
    """Cosine similarity ``(N, M)`` between rows of ``vectors`` (N, D) and ``others`` (M, D) (default: themselves)."""
    a = np.asarray(vectors, dtype=np.float64)
    b = a if others is None else np.asarray(others, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"cosine_similarity needs (N, D) and (M, D) arrays, got {a.shape} and {b.shape}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # (N, D) unit rows
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)  # (M, D) unit rows
    return a @ b.T


def _group_edges(groups: Sequence[Any]) -> list[float]:
    """Positions between consecutive items whose group changes (for block outlines)."""
    return [i - 0.5 for i in range(1, len(groups)) if groups[i] != groups[i - 1]]


def plot_similarity(similarity: np.ndarray, row_names: Sequence[str], col_names: Sequence[str] | None = None,
                    row_groups: Sequence[Any] | None = None, col_groups: Sequence[Any] | None = None,
                    title: str = "cosine similarity of base vectors", ax: Axes | None = None) -> Axes:
    """Heatmap of a similarity matrix with lines between groups (e.g. patients); returns the Axes.

    Sort rows/columns by group beforehand so each group is one block.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    col_names = row_names if col_names is None else col_names
    col_groups = row_groups if col_groups is None and sim.shape[0] == sim.shape[1] else col_groups
    if sim.ndim != 2 or sim.shape != (len(row_names), len(col_names)):
        raise ValueError(f"similarity {sim.shape} does not match {len(row_names)} row and {len(col_names)} column names")
    if ax is None:
        fig = Figure(figsize=(1.5 + 0.32 * sim.shape[1], 1.2 + 0.3 * sim.shape[0]), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(sim, cmap="viridis", aspect="auto")  # colour range = data range: trained IBEs use a narrow band
    ax.figure.colorbar(image, ax=ax, fraction=0.04, label="cosine")
    ax.set_xticks(range(len(col_names)), labels=list(col_names), rotation=90, fontsize=7)
    ax.set_yticks(range(len(row_names)), labels=list(row_names), fontsize=7)
    for edge in _group_edges(row_groups or []):
        ax.axhline(edge, color="white", linewidth=1.5)
    for edge in _group_edges(col_groups or []):
        ax.axvline(edge, color="white", linewidth=1.5)
    ax.set_title(title, fontsize=10)
    return ax


def plot_leads(signals: Mapping[str, np.ndarray], fs: float, leads: Sequence[str] = ("II", "V2"),
               title: str | None = None) -> Figure:
    """One panel per lead with every named ``(12, L)`` mV record overlaid on a time axis (s)."""
    if not signals:
        raise ValueError("signals is empty: nothing to plot")
    fig = Figure(figsize=(11, 2.4 * len(leads)), dpi=100)
    axes = fig.subplots(len(leads), 1, sharex=True, squeeze=False)[:, 0]
    for ax, lead in zip(axes, leads):
        row = lead_index(lead)
        for name, signal in signals.items():
            trace = np.asarray(signal)[row]  # (L,)
            ax.plot(np.arange(trace.shape[0]) / fs, trace, linewidth=0.9, label=name)
        ax.set_ylabel(f"{lead} (mV)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=min(4, len(signals)))
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
