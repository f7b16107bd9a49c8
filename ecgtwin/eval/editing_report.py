"""Tables and figures of the editing and lead-completion measurements (``scripts/eval_editing.py``).

Pure functions of the measured numbers (the JSON the script writes) and of signals in mV; no model here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ecgtwin.constants import LEADS
from ecgtwin.viz.figures import save_figure

PRECORDIAL = ("V1", "V2", "V3", "V4", "V5", "V6")
ARM_NAMES = {"personal": "personal (earlier ECG)", "population": "population (no reference)",
             "regression": "linear regression (train folds)",
             "personal_regression": "linear regression fitted on the earlier ECG", "copy": "copy of the earlier ECG"}
EDIT_COLUMNS = (("rmse_to_recording_mV", "RMSE to the recording (mV)", "{:.3f}"),
                ("target_auroc", "target-label AUROC", "{:.3f}"),
                ("hr_mae_bpm", "HR MAE (bpm)", "{:.1f}"),
                ("id_top1", "identification top-1", "{:.3f}"),
                ("ibe_cosine", "base-vector cosine to the reference", "{:.3f}"))


def completion_markdown(results: Mapping[str, Mapping], n_pairs: int, n_patients: int) -> str:
    """One table per given-lead set: per missing precordial lead, median r and RMSE per arm; then the paired
    difference personal - other arm of the mean precordial r with its 95% patient-bootstrap CI."""
    lines = [f"n = {n_pairs} pairs of {n_patients} patients; r: median Pearson r over records; RMSE in mV.", ""]
    for given, res in results.items():
        arms = list(res["per_lead"])
        lines += [f"### Given: {given}", "",
                  "| arm | " + " | ".join(f"{v} r / RMSE" for v in PRECORDIAL) + " | mean precordial r |",
                  "|---|" + "---|" * (len(PRECORDIAL) + 1)]
        for arm in arms:
            cells = [f"{res['per_lead'][arm][v]['r']:.2f} / {res['per_lead'][arm][v]['rmse_mV']:.3f}"
                     for v in PRECORDIAL]
            lines.append(f"| {ARM_NAMES.get(arm, arm)} | " + " | ".join(cells)
                         + f" | {res['precordial_r_mean'][arm]:.3f} |")
        lines += ["", "| personal minus | mean precordial r difference [95% CI] | personal better? |", "|---|---|---|"]
        for arm, (mean, low, high) in res["personal_minus"].items():
            verdict = "yes" if low > 0 else ("no (worse)" if high < 0 else "not resolved (CI spans 0)")
            lines.append(f"| {ARM_NAMES.get(arm, arm)} | {mean:+.3f} [{low:+.3f}, {high:+.3f}] | {verdict} |")
        lines += ["", f"Recorded leads in the output differ from the recording by at most "
                      f"{res['kept_max_abs_mV']:.2e} mV.", ""]
    return "\n".join(lines)


def editing_markdown(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Strength rows, one column per editing measure (missing measures left blank)."""
    lines = ["| strength | " + " | ".join(title for _, title, _ in EDIT_COLUMNS) + " |",
             "|---|" + "---|" * len(EDIT_COLUMNS)]
    for strength, row in rows.items():
        cells = []
        for key, _, fmt in EDIT_COLUMNS:
            value = row.get(key)
            cell = "" if value is None else fmt.format(value)
            if key == "target_auroc" and value is not None and "target_auroc_low" in row:
                cell += f" [{row['target_auroc_low']:.3f}, {row['target_auroc_high']:.3f}]"
            cells.append(cell)
        lines.append(f"| {float(strength):g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_completion_r(results: Mapping[str, Mapping], path: Path) -> None:
    """Median r per missing precordial lead, one panel per given-lead set, one bar group per arm."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), sharey=True, squeeze=False)
    for ax, (given, res) in zip(axes[0], results.items()):
        arms = list(res["per_lead"])
        width = 0.8 / len(arms)
        x = np.arange(len(PRECORDIAL))
        for k, arm in enumerate(arms):
            ax.bar(x + (k - (len(arms) - 1) / 2) * width, [res["per_lead"][arm][v]["r"] for v in PRECORDIAL],
                   width, label=ARM_NAMES.get(arm, arm))
        ax.set_xticks(x, PRECORDIAL)
        ax.set_title(f"given: {given}", fontsize=10)
        ax.axhline(0, color="k", lw=0.5)
    axes[0, 0].set_ylabel("median Pearson r")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(labels), frameon=False)  # below the bars
    save_figure(fig, path, rect=(0, 0.08, 1, 1))


def plot_completion_example(real: np.ndarray, arms: Mapping[str, np.ndarray], given: Sequence[str], fs: int,
                            path: Path, leads: Sequence[str] = ("II", "V1", "V3", "V5")) -> None:
    """One record: the real leads (black) and each arm's reconstruction, 4 s, one row per lead."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(leads), len(arms), figsize=(3.0 * len(arms), 1.6 * len(leads)), sharex=True,
                             sharey="row", squeeze=False)
    t = np.arange(real.shape[-1]) / fs
    for col, (arm, x) in enumerate(arms.items()):
        for row, lead in enumerate(leads):
            ax = axes[row, col]
            i = LEADS.index(lead)
            ax.plot(t, real[i], lw=0.7, color="k")
            ax.plot(t, x[i], lw=0.7, color="C0" if lead in given else "C3", alpha=0.8)
            ax.set_xlim(0, 4)
            if row == 0:
                ax.set_title(ARM_NAMES.get(arm, arm), fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{lead} (mV)" + (" given" if lead in given else ""), fontsize=8)
    fig.suptitle(f"completion from {', '.join(given)}: real (black), reconstruction (red)", fontsize=9)
    save_figure(fig, path)


def plot_editing_curve(rows: Mapping[str, Mapping[str, float]], path: Path) -> None:
    """Each editing measure against the strength, one small panel per measure."""
    import matplotlib.pyplot as plt

    strengths = [float(s) for s in rows]
    present = [(key, title) for key, title, _ in EDIT_COLUMNS if all(key in r for r in rows.values())]
    fig, axes = plt.subplots(1, len(present), figsize=(2.8 * len(present), 2.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], present):
        ax.plot(strengths, [r[key] for r in rows.values()], "o-")
        if key == "target_auroc" and all("target_auroc_low" in r for r in rows.values()):
            ax.fill_between(strengths, [r["target_auroc_low"] for r in rows.values()],
                            [r["target_auroc_high"] for r in rows.values()], alpha=0.2)
        ax.set_xlabel("strength")
        ax.set_title(title, fontsize=8)
    save_figure(fig, path)


def plot_edits(recording: np.ndarray, edited: Mapping[float, np.ndarray], title: str, fs: int, path: Path,
               shown: Sequence[float] = (0.2, 0.5, 1.0), leads: Sequence[str] = ("II", "V2", "V5")) -> None:
    """One ECG and its edits at a few strengths (4 s of three leads)."""
    import matplotlib.pyplot as plt

    shown = [s for s in shown if s in edited]
    fig, axes = plt.subplots(len(leads), 1 + len(shown), figsize=(3.2 * (1 + len(shown)), 1.8 * len(leads)),
                             sharex=True, sharey="row", squeeze=False)
    t = np.arange(recording.shape[-1]) / fs
    for col, (name, x) in enumerate([("recording", recording)] + [(f"strength {s:g}", edited[s]) for s in shown]):
        for row, lead in enumerate(leads):
            ax = axes[row, col]
            ax.plot(t, x[LEADS.index(lead)], lw=0.7, color="k" if col == 0 else "C3")
            ax.set_xlim(0, 4)
            if row == 0:
                ax.set_title(name, fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{lead} (mV)")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
