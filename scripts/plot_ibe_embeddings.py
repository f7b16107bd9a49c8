"""t-SNE of IBE base vectors of the test split, coloured by patient (issue: IBE).

    python scripts/plot_ibe_embeddings.py --ckpt runs/ibe_ptbxl100/best.ckpt \
        --root ../shared/data/ptbxl100 --out docs/ibe_ptbxl100/tsne_test.png
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ecgtwin.data.datamodule import ECGDataModule
from ecgtwin.paths import SAMPLE_SPLIT
from ecgtwin.training.ibe_module import load_ibe
from ecgtwin.viz.embeddings import plot_embeddings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--max-patients", type=int, default=20)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    dm = ECGDataModule(root=args.root, **SAMPLE_SPLIT, progress=False)
    dm.prepare_data()
    dm.setup("test")
    records = dm.record_dataset(args.split)
    # patients with the most records make the most readable plot
    pids = records.patient_ids[records.rows]
    values, counts = np.unique(pids, return_counts=True)
    keep = values[np.argsort(-counts, kind="stable")][: args.max_patients]
    positions = np.flatnonzero(np.isin(pids, keep))
    batch = records.batch(positions)
    net = load_ibe(args.ckpt)
    with torch.no_grad():
        z = net(batch["signal"], batch["labels"], batch["demographics"], batch["demographics_mask"]).numpy()  # (N, D)
    path = plot_embeddings(z, batch["patient_id"].numpy(), args.out, max_patients=args.max_patients)
    print(f"{len(positions)} records of {len(keep)} patients -> {path}")


if __name__ == "__main__":
    main()
