"""Twins of several evaluation reports beside the real targets, for pairs drawn at random (not picked by eye).

    python scripts/plot_report_twins.py --report v2=docs/eval_ptbxl100_v2 --report v1=docs/eval_ptbxl100 \
        --pairs 4 --out docs/figures/twins_v1_v2_fold8.png

Reads each report's ``twins.npz`` (written by ``ecgtwin evaluate``), keeps the pairs every report holds (matched
by reference and target record), draws ``--pairs`` of them with ``--seed`` and plots, per pair and lead, the
reference, the real target and each report's twin of it, stacked on one time axis (1 mV between traces).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ecgtwin.constants import lead_index
from ecgtwin.viz.figures import save_figure

OFFSET_MV = 1.6
"""Vertical distance between stacked traces."""


def load_twins(folder: Path) -> dict[str, np.ndarray]:
    path = folder / "twins.npz"
    if not path.is_file():
        raise SystemExit(f"no twins.npz in {folder} (run `ecgtwin evaluate --out {folder}` first)")
    with np.load(path, allow_pickle=False) as data:
        twins = {k: data[k] for k in data.files}
    twins["fs"] = np.array(json.loads((folder / "report.json").read_text())["settings"]["fs"])
    return twins


def common_pairs(reports: dict[str, dict[str, np.ndarray]]) -> list[tuple[int, int]]:
    """(reference_record, target_record) pairs held by every report, in the first report's order."""
    keys = [set(zip(r["reference_record"].tolist(), r["target_record"].tolist())) for r in reports.values()]
    first = next(iter(reports.values()))
    shared = set.intersection(*keys)
    return [p for p in zip(first["reference_record"].tolist(), first["target_record"].tolist()) if p in shared]


def row_of(report: dict[str, np.ndarray], pair: tuple[int, int]) -> int:
    hits = np.flatnonzero((report["reference_record"] == pair[0]) & (report["target_record"] == pair[1]))
    return int(hits[0])


def labels_of(report: dict[str, np.ndarray], row: int) -> str:
    names = report["label_names"].tolist()
    active = [n for n, on in zip(names, report["target_labels"][row]) if on > 0.5]
    return ", ".join(active) or "no label"


def plot(reports: dict[str, dict[str, np.ndarray]], pairs: list[tuple[int, int]], leads: list[str], fs: float) -> Figure:
    first = next(iter(reports.values()))
    traces = 2 + len(reports)  # reference, real target, one twin per report
    fig = Figure(figsize=(7.5 * len(leads), 0.55 * traces * len(pairs) + 1.0))
    axes = fig.subplots(len(pairs), len(leads), sharex=True, squeeze=False)  # (pairs, leads)
    for i, pair in enumerate(pairs):
        row = row_of(first, pair)
        named = [("reference", first["copy"][row], "0.6"), ("real target", first["real"][row], "k")]
        colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
        named += [(f"{name} twin", r["twin"][row_of(r, pair)], colours[j % 4]) for j, (name, r) in enumerate(reports.items())]
        for j, lead in enumerate(leads):
            ax = axes[i, j]
            for k, (name, signal, colour) in enumerate(named):
                trace = signal[lead_index(lead)]  # (L,) mV
                ax.plot(np.arange(trace.shape[0]) / fs, trace - k * OFFSET_MV, color=colour, lw=0.8,
                        label=name if (i, j) == (0, 0) else None)
            ax.set_yticks([-k * OFFSET_MV for k in range(len(named))], [n for n, _, _ in named], fontsize=7)
            ax.set_title(f"records {pair[0]} -> {pair[1]} ({labels_of(first, row)}), lead {lead}", fontsize=9)
            ax.grid(alpha=0.25)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle("twins beside the real target (reference person under the target's condition); 1.6 mV between traces",
                 fontsize=10)
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", action="append", required=True, metavar="NAME=FOLDER", help="a report folder (repeat)")
    p.add_argument("--pairs", type=int, default=4, help="pairs drawn at random (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--leads", nargs="+", default=["II", "V2"])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for lead in args.leads:
        try:
            lead_index(lead)
        except KeyError as err:
            p.error(f"--leads: {err.args[0]}")
    reports = {}
    for item in args.report:
        name, sep, folder = item.partition("=")
        if not sep or not name:
            p.error(f"--report wants NAME=FOLDER, got {item!r}")
        reports[name] = load_twins(Path(folder))
    shared = common_pairs(reports)
    if len(shared) < args.pairs or args.pairs < 1:
        p.error(f"--pairs {args.pairs}: the reports share {len(shared)} pairs")
    chosen = [shared[i] for i in sorted(np.random.default_rng(args.seed).choice(len(shared), args.pairs, replace=False))]
    rates = {float(r["fs"]) for r in reports.values()}
    if len(rates) != 1:
        p.error(f"the reports have different sampling rates: {sorted(rates)}")
    save_figure(plot(reports, chosen, args.leads, rates.pop()), args.out)
    print(f"wrote {args.out}: pairs {chosen} of {len(shared)} shared")


if __name__ == "__main__":
    main()
