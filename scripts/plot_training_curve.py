"""Training curves of resumable runs: train and validation loss over optimisation steps, one figure.

A run resumed over several sittings writes one CSVLogger folder per sitting (``RUN/version_*/metrics.csv``,
each starting where the last checkpoint left off). The sittings are joined on the step: where two overlap
(a sitting stopped between checkpoints and its last steps were trained again), the later sitting's rows win.

    python scripts/plot_training_curve.py --runs generator=runs/gen_v2 population=runs/population_v2 \\
        --out docs/figures/training_curve_v2.png
"""
from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np

from ecgtwin.viz.figures import save_figure


def _version(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def read_run(run: Path) -> dict[str, np.ndarray]:
    """``{"train": (n, 2), "val": (m, 2)}`` arrays of (step, loss), sorted by step, the sittings joined."""
    folders = sorted((p for p in Path(run).glob("version_*") if (p / "metrics.csv").is_file()), key=_version)
    if not folders:
        raise FileNotFoundError(f"no version_*/metrics.csv under {run}")
    series: dict[str, dict[int, float]] = {"train": {}, "val": {}}
    for folder in folders:  # oldest first: a later sitting overwrites the steps it trained again
        with (folder / "metrics.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            continue
        first = min(int(r["step"]) for r in rows)
        for name in series:  # steps this sitting trained again replace the earlier sitting's
            series[name] = {s: v for s, v in series[name].items() if s < first}
        for row in rows:
            for name, column in (("train", "train/loss"), ("val", "val/loss")):
                if row.get(column):
                    series[name][int(row["step"])] = float(row[column])
    return {name: np.array(sorted(points.items()), dtype=float).reshape(-1, 2) for name, points in series.items()}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (edges averaged over what exists); same length as ``values``."""
    width = min(window, len(values))
    kernel = np.ones(max(1, width - (1 - width % 2)))  # odd, at most the run's length: centred
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


def plot_runs(runs: dict[str, dict[str, np.ndarray]], path: Path, window: int = 9) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for k, (name, curves) in enumerate(runs.items()):
        train, val = curves["train"], curves["val"]
        axes[0].plot(train[:, 0], smooth(train[:, 1], window), color=f"C{k}", label=name)
        axes[1].plot(val[:, 0], val[:, 1], "o-", ms=2.5, color=f"C{k}", label=name)
    axes[0].set_title(f"train loss (moving average of {window} logs)", fontsize=9)
    axes[1].set_title("validation loss, EMA weights (fold 7, same noise every epoch)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("optimisation step (batch 32)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Min-SNR-weighted v loss")
    axes[1].legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="NAME=RUN_FOLDER (the folder holding version_*)")
    p.add_argument("--out", required=True)
    p.add_argument("--window", type=int, default=9)
    args = p.parse_args()
    runs = {}
    for item in args.runs:
        name, _, folder = item.partition("=")
        if not folder:
            raise SystemExit(f"--runs takes NAME=RUN_FOLDER, got {item!r}")
        runs[name] = read_run(Path(folder))
        train, val = runs[name]["train"], runs[name]["val"]
        if not len(train):
            raise SystemExit(f"{folder}: no training loss logged yet")
        last_val = f", last val loss {val[-1, 1]:.4f} at step {int(val[-1, 0])}" if len(val) else ", no val loss yet"
        print(f"{name}: steps {int(train[0, 0])}-{int(train[-1, 0])}{last_val}")
    plot_runs(runs, Path(args.out), args.window)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
