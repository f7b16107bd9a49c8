"""Realism over training steps on the VALIDATION fold: the snapshots of one run side by side, one setting.

Says whether a figure is still improving or flat at the end of a run: each checkpoint generates twins of the
same seeded fold-7 pairs with the same seeds and one sampling setting (default: the bundle's default), and is
measured as in ``scripts/bench_sampling.py`` (``ecgtwin.eval.sampling_bench``). The test fold 8 is never read.

    python scripts/bench_steps.py --n 120 --out docs/generator/steps_v2 \\
        --checkpoints runs/gen_v2/step01870.ckpt runs/gen_v2/step03300.ckpt ... runs/gen_v2/step12000_final.ckpt

Each finished checkpoint is stored in OUT/steps.json at once (keyed by its hash, the setting, n and the
classifier), so an interrupted run picks up where it stopped; OUT/steps.md holds the table, OUT/steps.png the
curves with their 95% CIs, the real targets' values and the release targets (issue 10) as lines.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgtwin.api import TwinModel
from ecgtwin.eval.report import from_jsonable, to_jsonable
from ecgtwin.eval.sampling_bench import BenchPairs, markdown_table, measure, prepare_pairs, share
from ecgtwin.io.wfdb_io import file_sha256
from ecgtwin.pipeline import DEFAULT_SAMPLING, format_sampling, parse_sampling
from ecgtwin.viz.figures import save_figure

PANELS = (  # (key, title, release target band (lo, hi) or None, real targets' key or None)
    ("amplitude_ratio", "amplitude ratio (median lead)", (0.9, 1.1), None),
    ("noise_ratio_35_50Hz", "35-50 Hz noise ratio", (0.0, 1.2), None),
    ("rr_regular", "share with regular RR", None, "rr_regular"),
    ("spurious", "spurious-beat share", (0.0, 0.05), None),
    ("c2st_auroc", "two-sample AUROC", (0.5, 0.75), None),
    ("target_auroc", "target-label macro-AUROC", (0.80, 1.0), "target_auroc"),
    ("qt_ratio", "QT median twin / real", (0.9, 1.1), None),
    ("hr_mae_bpm", "HR MAE (bpm)", (0.0, 3.0), None),
    ("fd_handcrafted", "Frechet distance, handcrafted", None, "fd_handcrafted"),
)


def training_step(model: TwinModel, path: Path) -> int | None:
    """The optimisation step a checkpoint was saved at: its provenance, else ``step<N>`` in the file name."""
    step = model.provenance.get("global_step")
    if step is not None:
        return int(step)
    match = re.search(r"step0*(\d+)", path.name)
    return int(match.group(1)) if match else None


def plot_steps(rows: list[dict[str, Any]], real: dict[str, Any], path: Path) -> None:
    """One panel per figure of :data:`PANELS` against the training step (95% CIs as bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((r for r in rows if r.get("step") is not None), key=lambda r: r["step"])
    steps = np.array([r["step"] for r in rows], dtype=float)
    fig, axes = plt.subplots(3, 3, figsize=(12, 9), sharex=True)
    for ax, (key, title, band, real_key) in zip(axes.flat, PANELS):
        values = np.array([share(r, key) for r in rows], dtype=float).reshape(-1, 3)  # (S, 3): value, low, high
        ax.errorbar(steps, values[:, 0], yerr=[values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]],
                    marker="o", capsize=3, label="twins")
        if band is not None:
            ax.axhspan(*band, color="tab:green", alpha=0.12, label="release target")
        if real_key is not None and real_key in real:
            ax.axhline(share(real, real_key)[0], color="k", ls="--", lw=1, label="real targets")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training step (batches of 32)")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"fold 7, n = {rows[0]['n'] if rows else 0} twins per checkpoint, {rows[0]['setting'] if rows else ''}")
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, help="bundles or generator checkpoints of one run")
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--n", type=int, default=120, help="twins per checkpoint (fold-7 pairs)")
    p.add_argument("--setting", default="default", help="sampler:steps:s_c:s_p[:lo-hi][:spacing] or 'default'")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    paths = [Path(c) for c in args.checkpoints]
    missing = [str(c) for c in paths if not c.is_file()]
    if missing:
        raise SystemExit(f"bench_steps: no such checkpoint: {', '.join(missing)}")
    options = DEFAULT_SAMPLING if args.setting == "default" else parse_sampling(args.setting)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "steps.json"
    done: dict[str, Any] = from_jsonable(json.loads(store.read_text())) if store.is_file() else {}

    bench: BenchPairs | None = None
    rows = []
    for path in paths:
        key = f"{file_sha256(path)[:12]}|{format_sampling(options)}|n{args.n}|{args.classifier}"
        if key in done.get("rows", {}):
            row = done["rows"][key]  # shares come back as [count, n] lists, which the cells read alike
            print(f"  {path.name}: stored", flush=True)
        else:
            model = TwinModel.load(path, threads=args.threads)
            if bench is None:
                bench = prepare_pairs(model, args.root, args.n, args.classifier or None)
                done["real"] = bench.real
            row = {"checkpoint": path.name, "step": training_step(model, path), "n": len(bench.specs),
                   **measure(model, bench, options, args.batch_size)}
            done.setdefault("rows", {})[key] = row
            tmp = store.with_suffix(".tmp")
            tmp.write_text(json.dumps(to_jsonable(done), indent=1))
            tmp.replace(store)  # nothing half-written
            print(f"  {path.name} (step {row['step']}): {row['seconds']:.2f} s/twin", flush=True)
        rows.append(row)
    real = done["real"]
    rows.sort(key=lambda r: (r.get("step") is None, r.get("step") or 0))  # in training order
    table = markdown_table(rows, real, first="checkpoint")
    table += (f"\n\nn = {rows[0]['n']} fold-7 twins per checkpoint (the same pairs and seeds), setting "
              f"`{rows[0]['setting']}`; 95% CIs: Wilson for the shares, bootstrap over records for the AUROCs; "
              f"s/twin at {args.threads} thread(s), batch {args.batch_size}, as loaded as the machine was.\n")
    (args.out / "steps.md").write_text(table)
    plot_steps(rows, real, args.out / "steps.png")
    print("\n" + table)
    print(f"wrote {args.out / 'steps.md'}, {args.out / 'steps.png'}")


if __name__ == "__main__":
    main()
