"""Sampler benchmark on the VALIDATION fold: seconds per twin and realism, every setting side by side in one run.

Twins of the same seeded fold-7 same-patient pairs (the reference under the target's condition) with the same
seeds for every setting. Per setting: network evaluations per twin, seconds per twin (batch ``--batch-size``,
``--threads`` torch threads), then the realism figures of ``ecgtwin.eval.realism`` against the real targets
(limb-lead residual, amplitude ratio, 35-50 Hz noise ratio, share with a regular RR, spurious beats,
inter-lead correlation error, two-sample classifier AUROC), HR MAE against the target HR and the Frechet
distance of standardised handcrafted features (``real/real``: one patient-disjoint half of the targets against
the other, the noise floor). The test fold 8 is never read.

    python scripts/bench_sampling.py --checkpoint BUNDLE --n 64 \\
        --settings dpmpp_2m:25:1:1 ddpm:100:3:2 dpmpp_2m_sde:50:3:2 dpmpp_2m_sde:50:3:2:0.1-0.9

A setting is ``sampler:steps:guidance_condition:guidance_person[:sigma_lo-sigma_hi][:spacing]`` (``lo-hi`` limits
guidance to that interval of VP noise levels; ``trailing`` samples on a uniform timestep grid); ``default`` is ``ecgtwin.pipeline.DEFAULT_SAMPLING``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ecgtwin.api import TwinModel
from ecgtwin.eval.clinical import heart_rates
from ecgtwin.eval.fidelity import matched_rows
from ecgtwin.eval.harness_data import datamodule_for, select_pairs, twin_specs
from ecgtwin.eval.metrics import frechet_distance, simple_ecg_features, standardize_features
from ecgtwin.eval.realism import realism_section
from ecgtwin.pipeline import DEFAULT_SAMPLING, SamplingOptions, parse_sampling

DEFAULT_SETTINGS = ("default", "dpmpp_2m:25:1:1", "ddpm:100:3:2", "dpmpp_2m_sde:50:3:2", "dpmpp_2m_sde:50:3:2:0.1-0.9")
COLUMNS = (("limb_residual_mV", "limb resid. mV", "{:.1e}"), ("amplitude_ratio", "amp. ratio", "{:.2f}"),
           ("noise_ratio_35_50Hz", "noise ratio", "{:.2f}"), ("rr_regular_share", "RR regular", "{:.2f}"),
           ("spurious_beat_share", "spurious", "{:.2f}"), ("correlation_error", "corr. err", "{:.3f}"),
           ("c2st_auroc", "2-sample AUROC", "{:.2f}"))


def parse_setting(text: str) -> SamplingOptions:
    """``sampler:steps:s_c:s_p[:lo-hi][:spacing]`` (:func:`ecgtwin.pipeline.parse_sampling`) or ``default``."""
    if text == "default":
        return DEFAULT_SAMPLING
    try:
        return parse_sampling(text)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def describe(options: SamplingOptions) -> str:
    interval = "" if options.guidance_interval is None else " [{:g}, {:g}]".format(*options.guidance_interval)
    grid = "" if options.spacing == "quadratic" else f" {options.spacing}"
    return (f"{options.sampler}-{options.num_steps}{grid} {options.guidance_condition:g}/{options.guidance_person:g}"
            f"{interval}")


def evaluations_per_twin(options: SamplingOptions, model: TwinModel) -> int:
    """Network evaluations per twin (guided steps cost 3, or 2 without a person; steps outside the interval 1)."""
    from ecgtwin.diffusion.guidance import guidance_weights

    per_step = len(guidance_weights(options.guidance_person, options.guidance_condition, model.personalised))
    active = options.guidance_active(model.schedule)
    grid = model.schedule.sampling_timesteps(options.num_steps, options.spacing)
    return sum(per_step if active is None or active(t) else 1 for t in grid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="bundle or generator checkpoint (default: the bundled model)")
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--n", type=int, default=64, help="twins per setting (fold-7 pairs)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    settings = [parse_setting(s) for s in args.settings]

    model = TwinModel.load(args.checkpoint)
    dm = datamodule_for(model, args.root, {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [7], "test_folds": [8]},
                        progress=False)
    pairs = select_pairs(dm, args.n, seed=0, split="val")  # fold 7 only
    specs = twin_specs(model, pairs)
    names = list(model.vocabulary.names)
    fs = model.fs
    real_feats = simple_ecg_features(pairs.target, fs)
    half_a, half_b = matched_rows(pairs.patient_id, 0, (pairs.target_record, pairs.reference_record))
    floor = frechet_distance(*standardize_features(real_feats[half_b], real_feats[half_a]))
    target_hr = np.array([s.hr if s.hr is not None else np.nan for s in specs])

    print(f"checkpoint {model.checkpoint_hash}: {len(specs)} fold-7 twins per setting, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads", flush=True)
    rows = []
    for options in settings:
        start = time.perf_counter()
        twins = model.generate(specs, batch_size=args.batch_size, progress=False, options=options)
        seconds = (time.perf_counter() - start) / len(specs)
        realism = realism_section({"twin": twins}, pairs.target, fs, pairs.target_labels, names, pairs.patient_id,
                                  n_boot=50)["twin"]
        hr = heart_rates(twins, fs)
        fd = frechet_distance(*standardize_features(real_feats[half_b], simple_ecg_features(twins, fs)[half_a]))
        rows.append((describe(options), evaluations_per_twin(options, model), seconds, realism,
                     float(np.nanmean(np.abs(hr - target_hr))), fd))
        print(f"  done {describe(options)}: {seconds:.2f} s/twin", flush=True)

    head = ["setting", "evals/twin", "s/twin"] + [c[1] for c in COLUMNS] + ["HR MAE", "FD hand."]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, evals, seconds, realism, mae, fd in rows:
        cells = [name, str(evals), f"{seconds:.2f}"] + [fmt.format(realism.get(key, np.nan)) for key, _, fmt in COLUMNS]
        print("| " + " | ".join(cells + [f"{mae:.1f}", f"{fd:.1f}"]) + " |")
    print(f"| real targets | | | | | | {regular_share_of_targets(pairs.target, fs):.2f} | | | | | {floor:.1f} (real/real) |")


def regular_share_of_targets(targets: np.ndarray, fs: int) -> float:
    from ecgtwin.eval.realism import regular_share, rr_cv

    return regular_share(rr_cv(targets, fs))


if __name__ == "__main__":
    main()
