"""``ecgtwin evaluate``: the evaluation harness on a dataset's test split.

Every same-patient pair (reference, later target) of the test folds gets a
twin: the reference's person under the target's condition. The report compares
twins with copy-the-reference, an optional population model and real ECGs on
fidelity, personal consistency, controllability and clinical validity, and
writes report.md, report.json and PNGs into --out.

Example (the shared PTB-XL pack, test fold 8):
  ecgtwin evaluate --data-root ../shared/data/ptbxl100 \\
      --classifier ecgtwin/assets/classifier_ptbxl100.ckpt --out docs/eval_ptbxl100
Any root and folds: the split comes from the folds the data holds and the flags,
never from the folder's name; the bundle's own normaliser is used, so a root with
only the test folds works (e.g. --test-folds 9 10); only the privacy and downstream
sections read the train split.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ecgtwin.constants import TIMESTEP_SPACINGS
from ecgtwin.paths import BUNDLED_SAMPLE, FULL_PTBXL_SPLIT, SAMPLE_SPLIT
from ecgtwin.runtime import prepare_process


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


def present_folds(data_root: Path, source: str = "ptbxl") -> list[int]:
    """The folds the data holds: PTB-XL's ``strat_fold`` values; all ten for MIMIC-IV-ECG (hashed subject ids)."""
    if source == "mimic":
        return list(range(1, 11))
    import pandas as pd

    table = pd.read_csv(data_root.expanduser() / SOURCE_FILES["ptbxl"], usecols=["strat_fold"])
    return sorted(int(f) for f in table["strat_fold"].dropna().unique())


def default_split(folds: Sequence[int], test_folds: Sequence[int] | None = None) -> dict[str, list[int]]:
    """Default split from the folds the data HOLDS (never from the folder's name).

    PTB-XL's recommendation 1-8 / 9 / 10 when the data has fold 9 or 10, else 1-6 / 7 / 8 (data with folds 1-8
    only, such as the bundled sample and the shared pack). Given ``test_folds`` replace the default test folds
    and are removed from the default train and validation folds. Defaults keep only folds the data holds.
    """
    held = set(int(f) for f in folds)
    base = FULL_PTBXL_SPLIT if held & {9, 10} else SAMPLE_SPLIT
    test = list(test_folds) if test_folds else list(base["test_folds"])
    return {"train_folds": [f for f in base["train_folds"] if f in held and f not in test],
            "val_folds": [f for f in base["val_folds"] if f in held and f not in test],
            "test_folds": test}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecgtwin evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="model bundle (.pt) or generator .ckpt (default: the bundled model)")
    p.add_argument("--data-root", default=str(BUNDLED_SAMPLE), help=f"PTB-XL or MIMIC-IV-ECG folder (default: the bundled "
                   f"sample {BUNDLED_SAMPLE})")
    p.add_argument("--source", choices=("auto", "ptbxl", "mimic"), default="auto", help="dataset layout (default auto: "
                   "ptbxl_database.csv = PTB-XL, record_list.csv = MIMIC-IV-ECG, whose folds hash subject_id)")
    p.add_argument("--train-folds", type=_folds, nargs="+", default=None, help="default 1-8 when the data holds fold 9 or "
                   "10, else 1-6; only the privacy and downstream sections read it (the normaliser is the bundle's)")
    p.add_argument("--val-folds", type=_folds, nargs="+", default=None, help="default 9 when the data holds folds 9/10, "
                   "else 7 (downstream model selection only)")
    p.add_argument("--test-folds", type=_folds, nargs="+", default=None, help="e.g. '9 10' or '8'; default 10 when the "
                   "data holds folds 9/10, else 8. Default train/val folds never overlap them")
    p.add_argument("--classifier", default=None, help="ClassifierModule checkpoint (feature space + AUROC); "
                   "without it: handcrafted features, no AUROC")
    population = p.add_mutually_exclusive_group()
    population.add_argument("--population-checkpoint", default=None, help="population model bundle (no base vector) as a baseline")
    population.add_argument("--population-null-base", action="store_true", help="population baseline = the same model with "
                            "its learned null base vector (the person-unconditional branch of base-vector dropout)")
    p.add_argument("--max-pairs", type=int, default=None, help="cap on the test pairs (seeded random subset; default all)")
    p.add_argument("--sampler", default=None, choices=("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde"),
                   help="default: generate-ecg's default (ecgtwin.pipeline.DEFAULT_SAMPLING)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the sampler's default)")
    p.add_argument("--guidance-condition", type=float, default=None, help="guidance scale on the target condition")
    p.add_argument("--guidance-person", type=float, default=None, help="guidance scale on the person (base vector)")
    p.add_argument("--spacing", default=None, choices=tuple(TIMESTEP_SPACINGS),
                   help="timestep grid (default: that of DEFAULT_SAMPLING)")
    p.add_argument("--guidance-interval", type=float, nargs=2, default=None, metavar=("SIGMA_LO", "SIGMA_HI"),
                   help="apply guidance only at these VP noise levels (0-1); elsewhere the plain conditional model")
    p.add_argument("--n-extreme", type=int, default=16, help="pairs asked for the extreme HR targets 45 and 140 bpm "
                   "(default 16)")
    p.add_argument("--skip-privacy", action="store_true", help="no privacy section (it reads every train-split record)")
    p.add_argument("--privacy-max-train", type=int, default=None, help="cap on the training records the privacy section "
                   "compares with (seeded random subset; default all)")
    p.add_argument("--max-clinical", type=int, default=64, help="records per method for interval delineation (default 64)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the AUROC CIs (default 200)")
    p.add_argument("--personalized", action="store_true", help="add the personalised-diagnosis protocol: fine-tune the "
                   "classifier per test patient on twins of the first ECG, test on the later ECGs (needs --classifier)")
    p.add_argument("--personal-max-patients", type=int, default=None, help="cap on its patients (default all with >= 2 ECGs)")
    p.add_argument("--personal-per-condition", type=int, default=2, help="twins per target condition and patient (default 2)")
    p.add_argument("--personal-steps", type=int, default=10, help="fine-tuning Adam steps per patient (default 10, chosen "
                   "on validation fold 7 of the shared pack: scripts/tune_personalized.py)")
    p.add_argument("--personal-lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4, idem)")
    p.add_argument("--downstream", action="store_true", help="add TSTR / TRTS / real + synthetic on the benchmark protocol "
                   "(generates twins of the train pairs and trains classifiers: slow)")
    p.add_argument("--downstream-max-pairs", type=int, default=None, help="cap on the train pairs turned into twins (default all)")
    p.add_argument("--downstream-epochs", type=int, default=8, help="epochs of every downstream classifier (default 8)")
    p.add_argument("--cache-dir", default=None, help="data cache folder (default: the user cache)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: OMP_NUM_THREADS if set, else the "
                   "CPUs idle at the start, at most 8); give it for a long run started right after another job")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/eval", help="report folder (default: outputs/eval)")
    p.add_argument("--fresh", action="store_true", help="recompute everything (default: reuse the twins.npz and the "
                   "finished sections an earlier run of the same command left in --out)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


SOURCE_FILES = {"ptbxl": "ptbxl_database.csv", "mimic": "record_list.csv"}


def detect_source(root: Path, source: str = "auto") -> str:
    """``"ptbxl"`` or ``"mimic"``: the layout of ``root`` (checked against ``source`` unless ``"auto"``)."""
    found = [name for name, marker in SOURCE_FILES.items() if (root / marker).is_file()]
    wanted = found if source == "auto" else [source]
    if not found or wanted[0] not in found:
        expected = " or ".join(SOURCE_FILES[n] for n in (SOURCE_FILES if source == "auto" else [source]))
        raise FileNotFoundError(f"--data-root {str(root)!r} is not a {'PTB-XL or MIMIC-IV-ECG' if source == 'auto' else source} "
                                f"folder (no {expected})")
    return wanted[0]


def _check_args(args: argparse.Namespace) -> None:
    args.source = detect_source(Path(args.data_root).expanduser(), args.source)
    for flag in ("checkpoint", "classifier", "population_checkpoint"):
        value = getattr(args, flag)
        if value is not None and not Path(value).expanduser().is_file():
            raise FileNotFoundError(f"--{flag.replace('_', '-')} {value!r}: file not found")
    if args.personalized and args.classifier is None:
        raise ValueError("--personalized fine-tunes the population classifier: pass --classifier")
    if not args.personal_lr > 0:
        raise ValueError(f"--personal-lr must be > 0, got {args.personal_lr}")
    for flag in ("max_pairs", "steps", "n_extreme", "privacy_max_train", "max_clinical", "n_boot", "personal_max_patients",
                 "personal_per_condition",
                 "personal_steps", "downstream_max_pairs", "downstream_epochs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")


def _split(args: argparse.Namespace) -> dict[str, list[int]]:
    """The folds of each split: the given ones, else the defaults of the folds the data holds; no overlap."""
    given = {key: None if getattr(args, key) is None else [f for part in getattr(args, key) for f in part]
             for key in ("train_folds", "val_folds", "test_folds")}  # nargs="+" of "1-6"-style parts
    split = default_split(present_folds(Path(args.data_root), args.source), given["test_folds"])
    folds = {key: given[key] if given[key] is not None else split[key] for key in split}
    for a, b in (("train_folds", "test_folds"), ("val_folds", "test_folds"), ("train_folds", "val_folds")):
        shared = sorted(set(folds[a]) & set(folds[b]))
        if shared:
            raise ValueError(f"--{a.replace('_', '-')} and --{b.replace('_', '-')} share folds {shared}: "
                             "splits must not overlap (patients would leak between them)")
    return folds


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        folds = _split(args)
        threads = prepare_process(args.threads)  # before torch is imported
    except (FileNotFoundError, ValueError) as err:
        print(f"ecgtwin evaluate: {err}", file=sys.stderr)
        return 2
    import torch

    from ecgtwin.api import TwinModel
    from ecgtwin.eval.harness import evaluate
    from ecgtwin.eval.harness_data import datamodule_for
    from ecgtwin.training.classifier_module import load_classifier

    torch.set_num_threads(threads)  # the classifiers of the downstream and personalised sections too
    print(f"ecgtwin evaluate: {threads} CPU thread(s)", flush=True)
    try:
        model = TwinModel.load(args.checkpoint, device=args.device, threads=threads)
        population = (TwinModel.load(args.population_checkpoint, device=args.device, threads=threads)
                      if args.population_checkpoint else None)
        if args.population_null_base:
            population = model.without_person()
        # with its label names: the generator's columns are selected by name
        classifier = load_classifier(args.classifier, map_location=args.device) if args.classifier else None
    except (FileNotFoundError, ValueError) as err:
        print(f"ecgtwin evaluate: {err}", file=sys.stderr)
        return 2
    datamodule = datamodule_for(model, str(Path(args.data_root).expanduser()), folds, args.source, args.cache_dir,
                                progress=not args.quiet)
    try:
        report = evaluate(model, datamodule, classifier, args.out, max_pairs=args.max_pairs, sampler=args.sampler,
                          steps=args.steps, guidance_condition=args.guidance_condition,
                          guidance_person=args.guidance_person, guidance_interval=args.guidance_interval,
                          spacing=args.spacing, seed=args.seed, population_model=population,
                          n_extreme=args.n_extreme, privacy=not args.skip_privacy,
                          privacy_max_train=args.privacy_max_train,
                          max_clinical=args.max_clinical, n_boot=args.n_boot, downstream=args.downstream,
                          downstream_max_pairs=args.downstream_max_pairs, downstream_epochs=args.downstream_epochs,
                          personalized=args.personalized, personal_max_patients=args.personal_max_patients,
                          personal_per_condition=args.personal_per_condition, personal_steps=args.personal_steps,
                          personal_lr=args.personal_lr, progress=not args.quiet, resume=not args.fresh,
                          settings={"classifier": args.classifier or "none (handcrafted features)"})
    except ValueError as err:
        print(f"ecgtwin evaluate: {err}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    print((out / "report.md").read_text())
    print(f"ecgtwin evaluate: {report['settings']['n_pairs']} pairs; report in {out / 'report.md'} "
          f"(JSON: {out / 'report.json'}, figures: {out}/*.png, twins and compared arms: {out / 'twins.npz'})")
    return 0
