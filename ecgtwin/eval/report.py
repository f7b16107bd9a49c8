"""Writing the evaluation report: ``report.json``, ``report.md`` (tables, baselines beside every number) and PNGs."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgtwin.viz.figures import save_figure

METHOD_ORDER: tuple[str, ...] = ("twin", "copy", "population", "real", "other_patients", "chance")
SECTION_ORDER: dict[str, tuple[str, ...]] = {
    "personalized": ("none", "first_ecg", "twin", "population"),
    "downstream": ("real", "real_matched", "twin", "population", "real+twin", "real+population"),
}
"""Column order of the sections whose reference column is not the twin."""
METHOD_TITLES = {"twin": "twin", "copy": "copy-the-reference", "population": "population model", "real": "real",
                 "other_patients": "other patients' targets", "chance": "chance", "none": "no fine-tuning (without twins)",
                 "first_ecg": "first ECG only", "real_matched": "real targets (size-matched)", "real+twin": "real + twins",
                 "real+population": "real + population twins",
                 "bundle_ibe": "IBE of the bundle"}
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("fidelity", "", "Fidelity and diversity at matched n (vs held-out real targets; FD and KID with 95% bootstrap CIs)"),
    ("consistency", "", "Personal consistency (IBE cosine to the reference; identification among real targets)"),
    ("ibe", "", "IBE identification from the bundle (each reference ranks every record of the test pairs; chance beside)"),
    ("controllability", "auroc", "Controllability: classifier macro-AUROC for the target labels (95% bootstrap CI)"),
    ("controllability", "hr", "Controllability: HR MAE (bpm), target vs measured"),
    ("controllability", "extreme_hr", "Controllability: extreme HR targets (bpm)"),
    ("realism", "", "Realism vs the real targets: limb-lead residual RMS (mV), amplitude and 35-50 Hz noise RMS ratios, "
     "regular RR share (CV < 0.15), spurious beats (RR < 0.3 s where the target has none), inter-lead correlation "
     "error, classifier two-sample AUROC (0.5 = indistinguishable), rhythm control (SR targets regular, AFIB irregular)"),
    ("clinical", "", "Clinical validity (intervals in ms, lead-law residuals in mV)"),
    ("privacy", "", "Privacy: distance to the nearest TRAINING record of another patient (signal and spectrum: RMS mV; "
     "features: Euclidean) vs to the own real target; memorized = nearer a training record than 95% of real targets"),
    ("personalized", "metrics", "Personalised diagnosis: the population classifier fine-tuned per patient on twins of the "
     "patient's first ECG, scored on the patient's later ECGs (column = what it was fine-tuned on; delta vs no "
     "fine-tuning with a 95% patient-level paired bootstrap CI)"),
    ("downstream", "metrics", "Downstream, benchmark protocol: macro-AUROC on every real test-fold record (95% bootstrap "
     "CI) of classifiers trained on real (TRTR), synthetic only (TSTR) or real + synthetic records"),
    ("downstream", "trts", "Downstream: TRTS, the real-trained classifier on the test pairs' twins vs their real targets"),
)
PNG_NAMES = {"hr": "hr_target_vs_measured.png", "intervals": "intervals_hist.png", "example": "example_{}.png",
             "downstream": "downstream.png"}


def to_jsonable(value: Any) -> Any:
    """Nested dicts/lists of plain Python values: numpy scalars/arrays converted, NaN/inf -> ``None``."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def from_jsonable(value: Any) -> Any:
    """The inverse of :func:`to_jsonable` for numbers: the JSON nulls that stood for NaN become NaN again."""
    if isinstance(value, Mapping):
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return float("nan") if value is None else value


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(values: Mapping[str, Any], key: str, interval: bool) -> str:
    """``values[key]``, as ``"value [low, high]"`` when ``interval`` (from ``key_low`` / ``key_high``)."""
    if interval and values.get(key) is not None:
        return f"{_fmt(values.get(key))} [{_fmt(values.get(f'{key}_low'))}, {_fmt(values.get(f'{key}_high'))}]"
    return _fmt(values.get(key))


def _ordered(section: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    """The section's methods: those named in ``order`` first, in that order, then the rest as they come."""
    return [m for m in order if m in section] + [m for m in section if m not in order]


def section_table(section: Mapping[str, Mapping[str, Any]], order: Sequence[str] = METHOD_ORDER) -> str:
    """Markdown table: one row per metric, one column per method (baselines beside the model), ``order`` first."""
    methods = _ordered(section, order)
    metrics: list[str] = []
    for m in methods:
        metrics += [k for k in section[m] if k not in metrics]
    intervals = {k for k in metrics if f"{k}_low" in metrics and f"{k}_high" in metrics}
    lines = ["| metric | " + " | ".join(METHOD_TITLES.get(m, m) for m in methods) + " |",
             "|---|" + "---:|" * len(methods)]
    for key in metrics:
        if key.endswith(("_low", "_high")) and key.rsplit("_", 1)[0] in intervals:
            continue  # shown as "value [low, high]" in its metric's row
        lines.append(f"| {key} | " + " | ".join(_cell(section[m], key, key in intervals) for m in methods) + " |")
    return "\n".join(lines)


def render_markdown(report: Mapping[str, Any], images: Sequence[str] = ()) -> str:
    """The Markdown report: settings, one table per section, notes and links to the PNGs."""
    s = report["settings"]
    lines = ["# ecgtwin evaluation report", "",
             f"Twins of the test split's same-patient pairs: each twin is the REFERENCE's person under the TARGET's "
             f"condition. {s['n_pairs']} pairs, {s['n_patients']} patients.", "", "## Settings", "",
             "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in s.items()]
    for key, sub, title in SECTIONS:
        section = report.get(key, {})
        section = section.get(sub) if sub else section
        if not section:
            continue
        lines += ["", f"## {title}", "", section_table(section, SECTION_ORDER.get(key, METHOD_ORDER))]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in report.get("notes", [])]
    if images:
        lines += ["", "## Figures", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in images]
    return "\n".join(lines) + "\n"


def _plot_hr(target_hr: np.ndarray, measured: Mapping[str, np.ndarray], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, hr in measured.items():
        ax.scatter(target_hr, hr, s=14, alpha=0.7, label=METHOD_TITLES.get(name, name))
    finite = np.concatenate([v[np.isfinite(v)] for v in (target_hr, *measured.values())] + [np.array([40.0, 150.0])])
    lo, hi = float(finite.min()), float(finite.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
    ax.set(xlabel="target HR (bpm)", ylabel="measured HR (bpm)", title="HR control")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return path


def _plot_intervals(tables: Mapping[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    from ecgtwin.eval.clinical import INTERVALS

    fig, axes = plt.subplots(1, len(INTERVALS), figsize=(4 * len(INTERVALS), 3.2))
    for ax, key in zip(np.atleast_1d(axes), INTERVALS):
        values = {name: tables[name][key].to_numpy(dtype=np.float64) for name in ("real", "twin", "population") if name in tables}
        values = {name: v[np.isfinite(v)] for name, v in values.items()}
        pooled = np.concatenate([v for v in values.values()] + [np.zeros(0)])
        if len(pooled) == 0:
            continue
        edges = np.histogram_bin_edges(pooled, bins=20)  # shared bins: the methods are comparable bar by bar
        for name, v in values.items():
            if len(v):
                ax.hist(v, bins=edges, alpha=0.5, label=f"{METHOD_TITLES[name]} (n={len(v)})")
        ax.set(xlabel=f"{key.replace('_ms', '').upper()} (ms)", ylabel="records")
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return path


def _interval_panel(ax: Any, rows: Sequence[tuple[str, float | None, float | None, float | None]], xlabel: str,
                    reference: float | None = None) -> None:
    """Horizontal point-and-interval chart of ``(label, value, low, high)`` rows (missing values skipped)."""
    rows = [r for r in rows if r[1] is not None]
    for y, (label, value, low, high) in enumerate(rows):
        err = [[value - low], [high - value]] if low is not None and high is not None else None
        ax.errorbar(value, y, xerr=err, fmt="o", capsize=4, color="C0")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    if reference is not None:
        ax.axvline(reference, color="k", ls="--", lw=1)
    ax.set(xlabel=xlabel)
    ax.invert_yaxis()


def _plot_downstream(report: Mapping[str, Any], path: Path) -> Path | None:
    """Benchmark-protocol AUROCs with CIs (left) and personalised deltas with CIs (right), for the sections present."""
    import matplotlib.pyplot as plt

    panels = []
    bench = report.get("downstream", {}).get("metrics", {})
    if bench:
        rows = [(METHOD_TITLES.get(m, m), bench[m].get("macro_auroc"), bench[m].get("ci_low"), bench[m].get("ci_high"))
                for m in _ordered(bench, SECTION_ORDER["downstream"])]
        ref = bench.get("real", {}).get("macro_auroc")
        panels.append((rows, "test macro-AUROC (95% CI); dashed = real", ref, "Benchmark protocol (TRTR / TSTR / real + synthetic)"))
    personal = report.get("personalized", {}).get("metrics", {})
    if personal:
        rows = [(f"{METHOD_TITLES.get(arm, arm)}: {metric}", row.get(f"delta_{metric}"), row.get(f"delta_{metric}_low"),
                 row.get(f"delta_{metric}_high"))
                for arm, row in personal.items() if arm != "none" for metric in ("accuracy", "macro_f1", "macro_auroc")]
        panels.append((rows, "change vs no fine-tuning (95% patient bootstrap CI)", 0.0, "Personalised diagnosis"))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (rows, xlabel, ref, title) in zip(axes[0], panels):
        _interval_panel(ax, rows, xlabel, ref)
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)
    return path


def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike[str], pairs: Any = None,
                 signals: Mapping[str, np.ndarray] | None = None, fs: float = 100.0,
                 target_hr: np.ndarray | None = None, measured_hr: Mapping[str, np.ndarray] | None = None,
                 interval_tables: Mapping[str, Any] | None = None, n_examples: int = 3,
                 images: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Path]:
    """Write ``report.json``, the PNGs (when their data is given) and ``report.md`` into ``out_dir``.

    ``images``: PNGs already written into ``out_dir`` by the sections (linked from the Markdown).

    Returns ``{name: path}`` of the files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecgtwin.viz.ecg_plot import plot_twin_comparison

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if pairs is not None and signals is not None:
        for i in range(min(n_examples, len(pairs))):
            labels = report["settings"]["labels"]
            target = ", ".join(n for n, v in zip(labels, pairs.target_labels[i]) if v > 0.5) or "no label"
            written[f"example_{i}"] = plot_twin_comparison(
                pairs.reference[i], [pairs.target[i], signals["twin"][i]], fs,
                titles=[f"reference (record {pairs.reference_record[i]})",
                        f"real target (record {pairs.target_record[i]}: {target})", f"twin (target: {target})"],
                path=out / PNG_NAMES["example"].format(i))
            plt.close("all")
    if target_hr is not None and measured_hr is not None:
        written["hr"] = _plot_hr(np.asarray(target_hr, dtype=np.float64), measured_hr, out / PNG_NAMES["hr"])
    if interval_tables:
        written["intervals"] = _plot_intervals(interval_tables, out / PNG_NAMES["intervals"])
    downstream_png = _plot_downstream(report, out / PNG_NAMES["downstream"])
    if downstream_png is not None:
        written["downstream"] = downstream_png
    for image in images:
        written[Path(image).stem] = Path(image)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(to_jsonable(report), indent=2))
    md_path = out / "report.md"
    md_path.write_text(render_markdown(report, [str(p) for p in written.values()]))
    return {"json": json_path, "markdown": md_path, **written}
