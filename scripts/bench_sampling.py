"""Sampler benchmark on one trained checkpoint: NFE, seconds per twin, fidelity, speed-up vs 1000-step DDPM.

Twins are generated for the first ``--n`` same-patient test pairs (reference -> the target's condition) with
the same seeds for every sampler. Fidelity is the unbiased MMD^2 against the real target ECGs in two feature
spaces: standardised handcrafted features, and the reference classifier's penultimate features (if
``--classifier`` is given). ``real/real`` is the MMD between two disjoint sets of real test ECGs of the same
size: the noise floor below which differences mean nothing.

    python scripts/bench_sampling.py --checkpoint ecgtwin/assets/ecgtwin_ptbxl100.pt \
        --root ../shared/data/ptbxl100 --classifier runs/classifier_ptbxl100/best.ckpt --n 32
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ecgtwin.api import TwinModel
from ecgtwin.data.datamodule import ECGDataModule
from ecgtwin.eval.metrics import mmd_rbf, simple_ecg_features, standardize_features
from ecgtwin.eval.harness_data import select_pairs, twin_specs
from ecgtwin.paths import SAMPLE_SPLIT

CONFIGS = (("ddpm", 1000), ("ddim", 50), ("ddim", 25), ("dpmpp_2m", 25), ("dpmpp_2m", 10))


def _features(signals: np.ndarray, fs: int, classifier: torch.nn.Module | None) -> dict[str, np.ndarray]:
    feats = {"handcrafted": simple_ecg_features(signals, fs)}
    if classifier is not None:
        with torch.no_grad():
            feats["classifier"] = classifier.features(torch.from_numpy(signals).float()).numpy()
    return feats


def _mmd(fake: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: mmd_rbf(*standardize_features(real[k], fake[k])) for k in real}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="bundle or generator checkpoint (default: bundled model)")
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--classifier", default=None, help="reference classifier checkpoint for feature-space MMD")
    p.add_argument("--n", type=int, default=32, help="twins per sampler")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--configs", nargs="*", default=None, help="e.g. ddpm:1000 ddim:50 dpmpp_2m:10")
    args = p.parse_args()
    configs = CONFIGS if not args.configs else [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs]

    model = TwinModel.load(args.checkpoint)
    dm = ECGDataModule(root=args.root, **SAMPLE_SPLIT, fs=model.fs, progress=False)
    pairs = select_pairs(dm, args.n, seed=0)  # seeded random subset of the test fold's same-patient pairs
    specs, targets = twin_specs(model, pairs), pairs.target
    classifier = None
    if args.classifier:
        from ecgtwin.training.classifier_module import load_classifier

        classifier = load_classifier(args.classifier)
    real = _features(targets, model.fs, classifier)
    others = dm.record_dataset("test")
    rng = np.random.default_rng(0)
    floor_rows = rng.choice(len(others), size=min(len(others), len(specs)), replace=False)
    floor = _mmd(_features(others.batch(floor_rows)["signal"].numpy(), model.fs, classifier), real)

    print(f"checkpoint {model.checkpoint_hash}  twins per sampler: {len(specs)}  threads: {torch.get_num_threads()}")
    rows = []
    for sampler, steps in configs:
        start = time.perf_counter()
        twins = model.generate(specs, sampler=sampler, steps=steps, batch_size=args.batch_size, progress=False)
        seconds = (time.perf_counter() - start) / len(specs)
        rows.append((sampler, steps, steps, seconds, _mmd(_features(twins, model.fs, classifier), real)))
        print(f"  done {sampler} {steps}: {seconds:.3f} s/twin", flush=True)
    base_seconds = next((r[3] for r in rows if r[0] == "ddpm"), rows[0][3])
    keys = list(real)
    print("\n" + f"{'sampler':<10}{'steps':>6}{'NFE':>6}{'s/twin':>9}{'speed-up':>10}" + "".join(f"{'MMD ' + k:>22}" for k in keys))
    for sampler, steps, nfe, seconds, mmd in rows:
        print(f"{sampler:<10}{steps:>6}{nfe:>6}{seconds:>9.3f}{base_seconds / seconds:>9.1f}x" + "".join(f"{mmd[k]:>22.4f}" for k in keys))
    print(f"{'real/real':<40}" + "".join(f"{floor[k]:>22.4f}" for k in keys) + "   (noise floor)")
    print("NFE counts network calls per twin without guidance; guidance scales != 1 add up to 2 calls per step.")


if __name__ == "__main__":
    main()
