#!/usr/bin/env python3
"""Throughput of the data layer: reading WFDB (+ preprocessing) vs loading batches from the cache.

    python scripts/bench_data.py --root ../shared/data/ptbxl100 --records 1000

Prints records/s for (1) wfdb reading, (2) wfdb reading + preprocessing, (3) the
one-time cache build (includes heart-rate estimation), (4) batches from the
memory-mapped cache through a DataLoader and (5) vectorised ``RecordDataset.batch``,
and the speed-up of (4) over (2).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:10.0f} records/s  ({n} records in {seconds:.2f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl100", help="PTB-XL folder")
    parser.add_argument("--records", type=int, default=1000, help="number of records (whole patients)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="passes over the cache")
    args = parser.parse_args(argv)

    from torch.utils.data import DataLoader

    from ecgtwin.data.cache import ensure_cache
    from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
    from ecgtwin.data.datasets import RecordDataset
    from ecgtwin.data.metadata import first_patients
    from ecgtwin.data.preprocess import PreprocessConfig, preprocess
    from ecgtwin.data.ptbxl import DATABASE_CSV, ptbxl_record_table, read_wfdb

    config = PreprocessConfig()
    table = first_patients(ptbxl_record_table(args.root, config.fs), args.records)
    paths = [p for p in table["path"] if Path(p + ".hea").is_file()]
    print(f"{args.root}: {len(paths)} records, target 12 x {config.length} at {config.fs:g} Hz")

    start = time.perf_counter()
    for path in paths:
        read_wfdb(path, expected_fs=100)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    for path in paths:
        preprocess(*read_wfdb(path, expected_fs=100), config)
    wfdb_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cache = ensure_cache(table, Path(tmp) / "cache", config, [args.root / DATABASE_CSV], progress=False)
        build_s = time.perf_counter() - start
        vocabulary = LabelVocabulary.from_root(args.root)
        normalizer = DemographicsNormalizer.fit(cache.metadata["hr"].to_numpy(), cache.metadata["age"].to_numpy())
        dataset = RecordDataset(cache.path / "signals.npy", cache.metadata, None, vocabulary, normalizer)
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
        start = time.perf_counter()
        n_loader = sum(batch["signal"].shape[0] for _ in range(args.epochs) for batch in loader)
        loader_s = time.perf_counter() - start
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        n_vector = 0
        for _ in range(args.epochs):
            for positions in np.array_split(rng.permutation(len(dataset)), max(1, len(dataset) // args.batch_size)):
                n_vector += dataset.batch(positions)["signal"].shape[0]
        vector_s = time.perf_counter() - start

    print(f"  wfdb read                    {rate(len(paths), read_s)}")
    print(f"  wfdb read + preprocess       {rate(len(paths), wfdb_s)}")
    print(f"  cache build (once, with HR)  {rate(len(paths), build_s)}")
    print(f"  cache -> DataLoader batches  {rate(n_loader, loader_s)}")
    print(f"  cache -> dataset.batch()     {rate(n_vector, vector_s)}")
    print(f"  speed-up of cached DataLoader batches over wfdb + preprocess: {(n_loader / loader_s) / (len(paths) / wfdb_s):.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
