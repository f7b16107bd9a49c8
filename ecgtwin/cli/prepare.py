"""``ecgtwin prepare``: build (or re-use) the data cache and print a dataset summary."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from ecgtwin.paths import BUNDLED_SAMPLE, SAMPLE_SPLIT


def build_parser() -> argparse.ArgumentParser:
    from ecgtwin.data.conditions import LEVELS

    p = argparse.ArgumentParser(prog="ecgtwin prepare", description=__doc__)
    p.add_argument("--root", default=str(BUNDLED_SAMPLE), help="PTB-XL or MIMIC-IV-ECG root (default: the bundled sample)")
    p.add_argument("--source", choices=("ptbxl", "mimic"), default="ptbxl")
    p.add_argument("--cache-dir", default=None, help="where the cache goes (default: a per-user cache dir)")
    p.add_argument("--fs", type=int, default=100, help="target sampling rate in Hz (default 100)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--label-set", choices=LEVELS, default="superclass")
    p.add_argument("--train-folds", type=int, nargs="+", default=None, help="default: 1-6 on the bundled sample, else 1-8")
    p.add_argument("--val-folds", type=int, nargs="+", default=None)
    p.add_argument("--test-folds", type=int, nargs="+", default=None)
    p.add_argument("--max-records", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ecgtwin.data.datamodule import ECGDataModule

    is_sample = args.root == str(BUNDLED_SAMPLE)
    default_split = SAMPLE_SPLIT if is_sample else {"train_folds": list(range(1, 9)), "val_folds": [9], "test_folds": [10]}
    dm = ECGDataModule(
        root=args.root,
        source=args.source,
        cache_dir=args.cache_dir,
        fs=args.fs,
        seconds=args.seconds,
        label_set=args.label_set,
        train_folds=args.train_folds or default_split["train_folds"],
        val_folds=args.val_folds or default_split["val_folds"],
        test_folds=args.test_folds or default_split["test_folds"],
        max_records=args.max_records,
    )
    dm.prepare_data()
    dm.setup("fit")
    print(dm.describe())
    return 0
