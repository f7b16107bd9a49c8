"""Probe: how far twins asked for an extreme heart rate fall short, per sampling setting (validation fold only).

    python scripts/probe_extreme_hr.py --pairs 32 --hr 140 --settings dpmpp_2m_sde:50:3:1:trailing \
        dpmpp_2m_sde:50:3:0:trailing dpmpp_2m_sde:50:5:1:trailing

Twins of ``--pairs`` fold-7 same-patient pairs (seeded), each asked for ``--hr`` bpm; per setting (the
``sampler:steps:s_c:s_p[:spacing]`` strings of bench_sampling.py): the mean measured HR, the MAE to the target
and the correlation of the measured HR with the reference ECG's own (does the person pull the rate back?).
"""
from __future__ import annotations

import argparse

import numpy as np

from ecgtwin.pipeline import parse_sampling


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="model (default: the bundled one)")
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--fold", type=int, default=7, help="the fold the pairs come from (default 7; never the reported one)")
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--hr", type=float, default=140.0)
    p.add_argument("--settings", nargs="+", default=["dpmpp_2m_sde:50:3:1:trailing"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    settings = {text: parse_sampling(text) for text in args.settings}  # refuses a malformed setting before any work

    from ecgtwin.api import TwinModel
    from ecgtwin.eval.clinical import heart_rates
    from ecgtwin.eval.harness_data import datamodule_for, select_pairs, twin_specs

    model = TwinModel.load(args.checkpoint, threads=args.threads)
    other = 8 if args.fold == 7 else 7
    dm = datamodule_for(model, args.root, {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [other],
                                           "test_folds": [args.fold]}, "ptbxl", None, progress=False)
    pairs = select_pairs(dm, args.pairs, 0)
    reference_hr = heart_rates(pairs.reference, model.fs)
    specs = twin_specs(model, pairs, 0, hr_override=args.hr)
    print(f"fold {args.fold}, {len(specs)} pairs, target {args.hr:g} bpm; reference HR mean {np.nanmean(reference_hr):.1f}")
    print("| setting | mean HR | MAE | r with the reference's HR |\n|---|---|---|---|")
    for text, options in settings.items():
        hr = heart_rates(model.generate(specs, options=options, progress=False), model.fs)
        ok = np.isfinite(hr) & np.isfinite(reference_hr)
        r = np.corrcoef(reference_hr[ok], hr[ok])[0, 1] if ok.sum() > 2 else float("nan")
        print(f"| {text} | {np.nanmean(hr):.1f} | {np.nanmean(np.abs(hr - args.hr)):.1f} | {r:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
