"""``ecgtwin evaluate``: the evaluation harness on a dataset's test split.

Every same-patient pair (reference, later target) of the test folds gets a
twin: the reference's person under the target's condition. The report compares
twins with copy-the-reference, an optional population model and real ECGs on
fidelity, personal consistency, controllability and clinical validity, and
writes report.md, report.json and PNGs into --out.

Example (the shared PTB-XL pack, test fold 8):
  ecgtwin evaluate --data-root ../shared/data/ptbxl100 \\
      --classifier runs/classifier_ptbxl100/best.ckpt --out docs/eval_ptbxl100
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ecgtwin.paths import BUNDLED_SAMPLE, FULL_PTBXL_SPLIT, SAMPLE_SPLIT, SHARED_PTBXL


def _folds(text: str) -> list[int]:
    """``"1-6"`` or ``"1,2,3"`` or ``"8"`` -> list of folds."""
    try:
        out: list[int] = []
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"folds must look like '1-6', '7' or '1,2,3', got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError(f"no folds in {text!r}")
    return out


def default_split(data_root: Path) -> dict[str, list[int]]:
    """1-6 / 7 / 8 for the bundled sample and the shared folds 1-8 pack, PTB-XL's 1-8 / 9 / 10 otherwise."""
    resolved = data_root.expanduser().resolve()
    if resolved in (BUNDLED_SAMPLE.resolve(), SHARED_PTBXL.resolve()) or resolved.name == "ptbxl100":
        return SAMPLE_SPLIT
    return FULL_PTBXL_SPLIT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecgtwin evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="model bundle (.pt) or generator .ckpt (default: the bundled model)")
    p.add_argument("--data-root", default=str(BUNDLED_SAMPLE), help=f"PTB-XL folder (default: the bundled sample {BUNDLED_SAMPLE})")
    p.add_argument("--train-folds", type=_folds, default=None, help="default 1-6 for the sample/shared pack, else 1-8 "
                   "(fits the HR/age normaliser of the data module)")
    p.add_argument("--val-folds", type=_folds, default=None, help="default 7 (sample/shared pack), else 9")
    p.add_argument("--test-folds", type=_folds, default=None, help="default 8 (sample/shared pack), else 10")
    p.add_argument("--classifier", default=None, help="ClassifierModule checkpoint (feature space + AUROC); "
                   "without it: handcrafted features, no AUROC")
    p.add_argument("--population-checkpoint", default=None, help="population model bundle (no base vector) as a baseline")
    p.add_argument("--max-pairs", type=int, default=None, help="cap on the test pairs (seeded random subset; default all)")
    p.add_argument("--sampler", default="dpmpp_2m", choices=("ddpm", "ddim", "dpmpp_2m"))
    p.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    p.add_argument("--guidance-condition", type=float, default=1.0, help="guidance scale on the target condition")
    p.add_argument("--guidance-person", type=float, default=1.0, help="guidance scale on the person (base vector)")
    p.add_argument("--max-clinical", type=int, default=64, help="records per method for interval delineation (default 64)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the AUROC CIs (default 200)")
    p.add_argument("--downstream", action="store_true", help="add TSTR/TRTS with a tiny classifier (slower)")
    p.add_argument("--cache-dir", default=None, help="data cache folder (default: the user cache)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/eval", help="report folder (default: outputs/eval)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _check_args(args: argparse.Namespace) -> None:
    root = Path(args.data_root).expanduser()
    if not (root / "ptbxl_database.csv").is_file():
        raise FileNotFoundError(f"--data-root {str(root)!r} is not a PTB-XL folder (no ptbxl_database.csv)")
    for flag in ("checkpoint", "classifier", "population_checkpoint"):
        value = getattr(args, flag)
        if value is not None and not Path(value).expanduser().is_file():
            raise FileNotFoundError(f"--{flag.replace('_', '-')} {value!r}: file not found")
    for flag in ("max_pairs", "steps", "max_clinical", "n_boot"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"ecgtwin evaluate: {err}", file=sys.stderr)
        return 2
    from ecgtwin.api import TwinModel
    from ecgtwin.data.datamodule import ECGDataModule
    from ecgtwin.eval.harness import evaluate
    from ecgtwin.training.classifier_module import load_classifier

    try:
        model = TwinModel.load(args.checkpoint, device=args.device)
        population = TwinModel.load(args.population_checkpoint, device=args.device) if args.population_checkpoint else None
        classifier = load_classifier(args.classifier, map_location=args.device) if args.classifier else None
    except (FileNotFoundError, ValueError) as err:
        print(f"ecgtwin evaluate: {err}", file=sys.stderr)
        return 2
    split = default_split(Path(args.data_root))
    folds = {key: getattr(args, key) or split[key] for key in ("train_folds", "val_folds", "test_folds")}
    datamodule = ECGDataModule(root=str(Path(args.data_root).expanduser()), cache_dir=args.cache_dir, fs=model.fs,
                               seconds=model.length / model.fs, label_set=model.vocabulary.level,
                               label_threshold=model.vocabulary.threshold, highpass_hz=model.highpass_hz,
                               pairs=True, progress=not args.quiet, **folds)
    try:
        report = evaluate(model, datamodule, classifier, args.out, max_pairs=args.max_pairs, sampler=args.sampler,
                          steps=args.steps, guidance_condition=args.guidance_condition,
                          guidance_person=args.guidance_person, seed=args.seed, population_model=population,
                          max_clinical=args.max_clinical, n_boot=args.n_boot, downstream=args.downstream, progress=not args.quiet,
                          settings={"classifier": args.classifier or "none (handcrafted features)"})
    except ValueError as err:
        print(f"ecgtwin evaluate: {err}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    print((out / "report.md").read_text())
    print(f"ecgtwin evaluate: {report['settings']['n_pairs']} pairs; report in {out / 'report.md'} "
          f"(JSON: {out / 'report.json'}, figures: {out}/*.png)")
    return 0
