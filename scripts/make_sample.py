#!/usr/bin/env python3
"""Write the bundled PTB-XL sample (data/ptbxl_sample/) from the shared folds 1-8 pack.

Reproducible selection (numpy ``default_rng(seed)``): about ``--patients``
patients that have >= 2 records, spread evenly over folds 1-8 (so a 1-6 / 7 / 8
split has patients in every split), with all their records. Files are copied
unmodified: the ``ptbxl_database.csv`` lines of those records (byte-for-byte,
header kept), the full ``scp_statements.csv``, the WFDB files, plus a
``RECORDS`` list.

    python scripts/make_sample.py            # --source ../shared/data/ptbxl100 --out data/ptbxl_sample
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent


def select_patients(database: pd.DataFrame, listed: set[str], n_patients: int, folds: list[int], seed: int) -> list[int]:
    """``n_patients`` patient ids with >= 2 available records, as even as possible over ``folds``."""
    available = database[database["filename_lr"].isin(listed) & database["strat_fold"].isin(folds)]
    counts = available.groupby("patient_id").size()
    fold_of = available.groupby("patient_id")["strat_fold"].first()
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for i, fold in enumerate(folds):
        quota = n_patients // len(folds) + (1 if i < n_patients % len(folds) else 0)
        candidates = np.sort(counts.index[(counts >= 2).to_numpy() & (fold_of.reindex(counts.index) == fold).to_numpy()].to_numpy())
        chosen += rng.choice(candidates, size=min(quota, candidates.size), replace=False).tolist()
    return sorted(int(p) for p in chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl100")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "ptbxl_sample")
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    database_csv = args.source / "ptbxl_database.csv"
    if not database_csv.is_file():
        print(f"make_sample: {database_csv} not found", file=sys.stderr)
        return 1
    listed = {line.strip() for line in (args.source / "RECORDS").read_text().splitlines() if line.strip()}
    database = pd.read_csv(database_csv, usecols=["ecg_id", "patient_id", "strat_fold", "filename_lr"])
    patients = select_patients(database, listed, args.patients, list(range(1, 9)), args.seed)
    rows = database[database["patient_id"].isin(patients) & database["filename_lr"].isin(listed)].sort_values("ecg_id")

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    wanted = {str(i) for i in rows["ecg_id"]}
    lines = database_csv.read_text().splitlines(keepends=True)
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0] in wanted]
    assert len(kept) == len(rows) + 1, "a database row spans several lines; copy it another way"
    (args.out / "ptbxl_database.csv").write_text("".join(kept))
    shutil.copyfile(args.source / "scp_statements.csv", args.out / "scp_statements.csv")
    for record in rows["filename_lr"]:
        (args.out / record).parent.mkdir(parents=True, exist_ok=True)
        for ext in (".hea", ".dat"):
            shutil.copyfile(args.source / f"{record}{ext}", args.out / f"{record}{ext}")
    (args.out / "RECORDS").write_text("".join(f"{r}\n" for r in rows["filename_lr"]))
    per_fold = rows.groupby("strat_fold")["patient_id"].nunique().to_dict()
    print(f"wrote {args.out}: {len(rows)} records of {len(patients)} patients (patients per fold {per_fold})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
