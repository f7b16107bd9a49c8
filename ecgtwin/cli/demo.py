"""``ecgtwin demo``: the main job on the bundled default.

Generates twins of one bundled PTB-XL patient under two target conditions with
the bundled model, writes them as WFDB records + PNG comparisons and prints
where they are. It is ``generate-ecg`` run twice with fixed arguments.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ecgtwin.paths import DEMO_REFERENCE

DEMO_RECORD = DEMO_REFERENCE
"""Reference of the demo patient (PTB-XL ecg_id 1495, patient 11568: NORM, later inferior MI), package data."""
DEMO_CONDITIONS: tuple[str, ...] = ("NORM", "MI")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecgtwin demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p.add_argument("--reference", default=str(DEMO_RECORD), help="reference WFDB record (default: the bundled demo patient)")
    p.add_argument("--conditions", nargs="+", default=list(DEMO_CONDITIONS), help="target conditions, one twin set each")
    p.add_argument("--num", type=int, default=2, help="twins per condition (default 2)")
    p.add_argument("--sampler", help="sampler (default: ecgtwin.pipeline.DEFAULT_SAMPLING, as generate-ecg)")
    p.add_argument("--steps", type=int, help="sampler steps (default: as generate-ecg)")
    p.add_argument("--checkpoint", default=None, help="model bundle (default: the bundled model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads (default: as generate-ecg)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ecgtwin.cli.generate import main as generate_main

    out = Path(args.out)
    for condition in args.conditions:
        gen_args = ["--reference", args.reference, "--condition", condition, "--num", str(args.num),
                    "--seed", str(args.seed), "--out", str(out), "--plot"]
        gen_args += ["--sampler", args.sampler] if args.sampler else []
        gen_args += ["--steps", str(args.steps)] if args.steps else []
        gen_args += ["--threads", str(args.threads)] if args.threads else []
        if args.checkpoint:
            gen_args += ["--checkpoint", args.checkpoint]
        rc = generate_main(gen_args)
        if rc != 0:
            return rc
    overview = _overview(Path(args.reference), out, args.conditions)
    print(f"\necgtwin demo: overview (reference, then one twin per condition): {overview}")
    print(f"ecgtwin demo: twins of {Path(args.reference).name} under {', '.join(args.conditions)} "
          f"are in {out.resolve()} (WFDB .hea/.dat, PNG plots, manifest.csv)")
    return 0


def _overview(reference: Path, out: Path, conditions: Sequence[str]) -> Path:
    """One PNG: the reference above the first twin of each condition (read back from the written WFDB records)."""
    from ecgtwin.io.manifest import OutputManifest
    from ecgtwin.io.wfdb_io import read_reference
    from ecgtwin.viz.ecg_plot import plot_twin_comparison

    ref = read_reference(reference)
    rows = OutputManifest(out).rows()
    twins, titles = [], [f"reference {ref.record_name}"]
    for condition in conditions:
        row = next((r for r in rows if Path(r["reference"]).name == ref.record_name and r["target_labels"] == condition), None)
        if row is not None:
            twins.append(read_reference(out / row["record_name"], target_fs=ref.fs).signal)
            titles.append(f"twin under {condition} (seed {row['seed']})")
    return plot_twin_comparison(ref.signal, twins, ref.fs, titles, out / "overview.png")
