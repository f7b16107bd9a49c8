"""Sampler benchmark on the VALIDATION fold: seconds per twin and realism, every setting side by side in one run.

Twins of the same seeded fold-7 same-patient pairs (the reference under the target's condition) with the same
seeds for every setting. Per setting: network evaluations per twin, seconds per twin (batch ``--batch-size``,
``--threads`` torch threads), then the realism figures of ``ecgtwin.eval.realism`` against the real targets
(limb-lead residual, amplitude ratio, 35-50 Hz noise ratio, share with a regular RR, spurious beats,
inter-lead correlation error, two-sample classifier AUROC), the reference classifier's macro-AUROC for the
target labels, the median QT against the real targets', HR MAE against the target HR and the Frechet
distance of standardised handcrafted features (``real/real``: one patient-disjoint half of the targets against
the other, the noise floor). Shares carry Wilson 95% CIs, AUROCs bootstrap 95% CIs. The test fold 8 is never read.
The measurement is ``ecgtwin.eval.sampling_bench``; ``scripts/bench_steps.py`` takes it over training steps.

    python scripts/bench_sampling.py --checkpoint BUNDLE --n 64 \\
        --settings dpmpp_2m:25:1:1 ddpm:100:3:2 dpmpp_2m_sde:50:3:2 dpmpp_2m_sde:50:3:2:0.1-0.9

A setting is ``sampler:steps:guidance_condition:guidance_person[:sigma_lo-sigma_hi][:spacing]`` (``lo-hi`` limits
guidance to that interval of VP noise levels; ``trailing`` samples on a uniform timestep grid); ``default`` is ``ecgtwin.pipeline.DEFAULT_SAMPLING``.
"""
from __future__ import annotations

import argparse

import torch

from ecgtwin.api import TwinModel
from ecgtwin.eval.sampling_bench import markdown_table, measure, prepare_pairs
from ecgtwin.pipeline import DEFAULT_SAMPLING, SamplingOptions, parse_sampling

DEFAULT_SETTINGS = ("default", "dpmpp_2m:25:1:1", "ddpm:100:3:2", "dpmpp_2m_sde:50:3:2", "dpmpp_2m_sde:50:3:2:0.1-0.9")


def parse_setting(text: str) -> SamplingOptions:
    """``sampler:steps:s_c:s_p[:lo-hi][:spacing]`` (:func:`ecgtwin.pipeline.parse_sampling`) or ``default``."""
    if text == "default":
        return DEFAULT_SAMPLING
    try:
        return parse_sampling(text)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="bundle or generator checkpoint (default: the bundled model)")
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--n", type=int, default=64, help="twins per setting (fold-7 pairs)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt",
                   help="reference classifier for the target-label macro-AUROC ('' to skip)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    settings = [parse_setting(s) for s in args.settings]

    model = TwinModel.load(args.checkpoint, threads=args.threads)
    bench = prepare_pairs(model, args.root, args.n, args.classifier or None)
    print(f"checkpoint {model.checkpoint_hash}: {len(bench.specs)} fold-7 twins per setting, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads", flush=True)
    rows = []
    for options in settings:
        rows.append(measure(model, bench, options, args.batch_size))
        print(f"  done {rows[-1]['setting']}: {rows[-1]['seconds']:.2f} s/twin", flush=True)
    print("\n" + markdown_table(rows, bench.real))
    print(f"\nn = {len(bench.specs)} twins per setting (the same fold-7 pairs and seeds); 95% CIs: Wilson for the "
          f"shares, bootstrap over records for the AUROCs; QT ratio = median QT of the twins / of the real targets.")


if __name__ == "__main__":
    main()
