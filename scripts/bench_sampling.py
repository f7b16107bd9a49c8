"""Sampler benchmark on the VALIDATION fold: seconds per twin and realism, every setting side by side in one run.

Twins of the same seeded fold-7 same-patient pairs (the reference under the target's condition) with the same
seeds for every setting. Per setting: network evaluations per twin, seconds per twin (batch ``--batch-size``,
``--threads`` torch threads), then the realism figures of ``ecgtwin.eval.realism`` against the real targets
(limb-lead residual, amplitude ratio, 35-50 Hz noise ratio, share with a regular RR, spurious beats,
inter-lead correlation error, two-sample classifier AUROC), the reference classifier's macro-AUROC for the
target labels, HR MAE against the target HR and the Frechet
distance of standardised handcrafted features (``real/real``: one patient-disjoint half of the targets against
the other, the noise floor). Shares carry Wilson 95% CIs, AUROCs bootstrap 95% CIs. The test fold 8 is never read.

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
from ecgtwin.eval.metrics import frechet_distance, simple_ecg_features, standardize_features, wilson_interval
from ecgtwin.eval.realism import REGULAR_CV, has_short_rr, realism_section, rr_cv
from ecgtwin.pipeline import DEFAULT_SAMPLING, SamplingOptions, format_sampling, parse_sampling

DEFAULT_SETTINGS = ("default", "dpmpp_2m:25:1:1", "ddpm:100:3:2", "dpmpp_2m_sde:50:3:2", "dpmpp_2m_sde:50:3:2:0.1-0.9")
COLUMNS = (("limb_residual_mV", "limb resid. mV", "{:.1e}"), ("amplitude_ratio", "amp. ratio", "{:.2f}"),
           ("noise_ratio_35_50Hz", "noise ratio", "{:.2f}"), ("rr_regular", "RR regular [95% CI]", None),
           ("spurious", "spurious [95% CI]", None), ("correlation_error", "corr. err", "{:.3f}"),
           ("c2st_auroc", "2-sample AUROC [95% CI]", None), ("target_auroc", "target AUROC [95% CI]", None))


def parse_setting(text: str) -> SamplingOptions:
    """``sampler:steps:s_c:s_p[:lo-hi][:spacing]`` (:func:`ecgtwin.pipeline.parse_sampling`) or ``default``."""
    if text == "default":
        return DEFAULT_SAMPLING
    try:
        return parse_sampling(text)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


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
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt",
                   help="reference classifier for the target-label macro-AUROC ('' to skip)")
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
    target_short = has_short_rr(pairs.target, fs)
    label_auroc = target_label_auroc(args.classifier, model, pairs.target_labels) if args.classifier else None

    print(f"checkpoint {model.checkpoint_hash}: {len(specs)} fold-7 twins per setting, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads", flush=True)
    rows = []
    for options in settings:
        start = time.perf_counter()
        twins = model.generate(specs, batch_size=args.batch_size, progress=False, options=options)
        seconds = (time.perf_counter() - start) / len(specs)
        realism = realism_section({"twin": twins}, pairs.target, fs, pairs.target_labels, names, pairs.patient_id,
                                  n_boot=500)["twin"]
        realism.update(rhythm_shares(twins, target_short, fs))
        if label_auroc is not None:
            realism["target_auroc"] = label_auroc(twins)
        hr = heart_rates(twins, fs)
        fd = frechet_distance(*standardize_features(real_feats[half_b], simple_ecg_features(twins, fs)[half_a]))
        rows.append((format_sampling(options), evaluations_per_twin(options, model), seconds, realism,
                     float(np.nanmean(np.abs(hr - target_hr))), fd))
        print(f"  done {format_sampling(options)}: {seconds:.2f} s/twin", flush=True)

    head = ["setting", "evals/twin", "s/twin"] + [c[1] for c in COLUMNS] + ["HR MAE", "FD hand."]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, evals, seconds, realism, mae, fd in rows:
        cells = [name, str(evals), f"{seconds:.2f}"] + [cell(realism, key, fmt) for key, _, fmt in COLUMNS]
        print("| " + " | ".join(cells + [f"{mae:.1f}", f"{fd:.1f}"]) + " |")
    real = rhythm_shares(pairs.target, None, fs)
    if label_auroc is not None:
        real["target_auroc"] = label_auroc(pairs.target)
    cells = ["real targets", "", ""] + [cell(real, key, None) if key in real else "" for key, _, _ in COLUMNS]
    print("| " + " | ".join(cells + ["", f"{floor:.1f} (real/real)"]) + " |")
    print(f"\nn = {len(specs)} twins per setting (the same fold-7 pairs and seeds); 95% CIs: Wilson for the shares, "
          f"bootstrap over records for the AUROCs.")


def target_label_auroc(path: str, model: TwinModel, target_labels: np.ndarray):  # type: ignore[no-untyped-def]
    """``twins -> (macro-AUROC, low, high)`` of the reference classifier for the targets' labels it knows."""
    from ecgtwin.eval.classifier_fit import predict_logits
    from ecgtwin.eval.harness_data import classifier_columns
    from ecgtwin.eval.metrics import bootstrap_ci, macro_auroc
    from ecgtwin.training.classifier_module import load_classifier

    classifier = load_classifier(path)  # with its label names
    columns = classifier_columns(model.vocabulary, classifier)  # the classifier's labels in the model's vocabulary
    return lambda twins: bootstrap_ci(macro_auroc, target_labels[:, columns], predict_logits(classifier, twins),
                                      n_boot=500)


def rhythm_shares(signals: np.ndarray, target_short: np.ndarray | None, fs: int) -> dict[str, tuple[int, int]]:
    """``(count, n)`` of records with a regular RR (CV < 0.15) among those measured, and (with the targets'
    short-RR flags) of records with a spurious beat among the pairs whose target has none."""
    cv = rr_cv(signals, fs)
    out = {"rr_regular": (int((cv[np.isfinite(cv)] < REGULAR_CV).sum()), int(np.isfinite(cv).sum()))}
    if target_short is not None:
        short = has_short_rr(signals, fs)
        usable = np.isfinite(short) & (target_short == 0.0)
        out["spurious"] = (int(short[usable].sum()), int(usable.sum()))
    return out


def cell(row: dict, key: str, fmt: str | None) -> str:
    """A table cell: ``fmt`` of a number, or a share / AUROC with its 95% CI."""
    if fmt is not None:
        return fmt.format(row.get(key, np.nan))
    if key == "c2st_auroc":
        return f"{row['c2st_auroc']:.2f} [{row['c2st_auroc_low']:.2f}, {row['c2st_auroc_high']:.2f}]"
    if key == "target_auroc":
        return "" if key not in row else "{:.3f} [{:.3f}, {:.3f}]".format(*row[key])
    count, n = row[key]
    if n == 0:
        return "-"  # nothing measured
    low, high = wilson_interval(count, n)
    return f"{count / n:.2f} [{low:.2f}, {high:.2f}]"


if __name__ == "__main__":
    main()
