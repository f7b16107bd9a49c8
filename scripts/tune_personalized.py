"""Choose the personalised protocol's fine-tuning steps and learning rate on the VALIDATION folds.

The twins of each validation patient's first ECG are generated once; every
(steps, lr) of the grid fine-tunes per-patient copies of the classifier on
them (and, as the control, on the first ECG alone) and scores the later ECGs.
The test folds are never touched: pass the chosen values to
``ecgtwin evaluate --personalized --personal-steps S --personal-lr LR``.

  python scripts/tune_personalized.py --data-root ../shared/data/ptbxl100 --max-patients 80
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="../shared/data/ptbxl100")
    p.add_argument("--checkpoint", default=None, help="model bundle (default: the bundled model)")
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt")
    p.add_argument("--train-folds", default="1-6")
    p.add_argument("--val-folds", default="7", help="the folds the patients come from (validation, never test)")
    p.add_argument("--test-folds", default="8", help="held out: split off by the data module, never read here")
    p.add_argument("--max-patients", type=int, default=80)
    p.add_argument("--per-condition", type=int, default=2)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 30, 100])
    p.add_argument("--lr", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from ecgtwin.api import TwinModel
    from ecgtwin.cli.evaluate import _folds
    from ecgtwin.eval.classifier_fit import binary_metrics
    from ecgtwin.eval.harness_data import datamodule_for
    from ecgtwin.eval.personalized import default_conditions, personal_specs, personalized_logits, select_patients
    from ecgtwin.training.classifier_module import load_classifier

    model = TwinModel.load(args.checkpoint)
    classifier = load_classifier(args.classifier)
    val = _folds(args.val_folds)
    dm = datamodule_for(model, args.data_root, {"train_folds": _folds(args.train_folds), "val_folds": val,
                                                "test_folds": _folds(args.test_folds)}, progress=False)
    series = select_patients(dm, args.max_patients, args.seed, split="val")
    conditions = default_conditions(model.vocabulary.names)
    specs, labels, owner = personal_specs(model, series, conditions, args.per_condition, args.seed)
    start = time.perf_counter()
    twins = model.generate(specs)  # (T, 12, L)
    print(f"validation folds {val}: {len(series)} patients, {len(series.later)} later ECGs, {len(twins)} twins "
          f"in {time.perf_counter() - start:.0f} s")
    sets = {"first_ecg": (series.first, series.first_labels.astype(np.float32), np.arange(len(series))),
            "twin": (twins, labels, owner)}
    print("| steps | lr | arm | accuracy | macro_f1 | macro_auroc |\n|---:|---:|---|---:|---:|---:|")
    baseline_printed = False
    for steps, lr in itertools.product(args.steps, args.lr):
        logits = personalized_logits(classifier, series, sets, steps=steps, lr=lr, seed=args.seed)
        for arm, arm_logits in logits.items():
            if arm == "none" and baseline_printed:
                continue
            baseline_printed = True
            m = binary_metrics(series.later_labels, arm_logits)
            shown = ("–", "–") if arm == "none" else (steps, f"{lr:g}")
            print(f"| {shown[0]} | {shown[1]} | {arm} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['macro_auroc']:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
