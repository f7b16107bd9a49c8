"""Patient-disjoint train/val/test splits by fold (PTB-XL ``strat_fold``, hashed patient id for MIMIC).

PTB-XL places every patient in exactly one ``strat_fold`` (Wagner et al. 2020),
so splitting by fold is patient-disjoint; :func:`split_by_folds` still checks
it and raises otherwise. Recommended: folds 1-8 / 9 / 10 (folds 9 and 10 are
human-validated); on data with folds 1-8 only (bundled sample, shared pack):
1-6 / 7 / 8.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SPLITS: tuple[str, ...] = ("train", "val", "test")


def check_patient_disjoint(patient_ids: Mapping[str, np.ndarray]) -> None:
    """Raise ``ValueError`` naming the patients shared by two splits."""
    names = list(patient_ids)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = np.intersect1d(patient_ids[a], patient_ids[b])
            if shared.size:
                raise ValueError(
                    f"splits {a!r} and {b!r} share {shared.size} patient(s), e.g. {shared[:5].tolist()}: "
                    "a patient's records must all lie in one split (check the fold column)"
                )


def split_by_folds(
    metadata: pd.DataFrame,
    train_folds: Sequence[int],
    val_folds: Sequence[int],
    test_folds: Sequence[int],
) -> dict[str, np.ndarray]:
    """Row positions (int64, ascending) of each split in ``metadata`` (columns ``fold``, ``patient_id``).

    Rows in folds not listed are in no split. Overlapping fold lists or a
    patient in two splits raise ``ValueError``.
    """
    folds = {"train": list(train_folds), "val": list(val_folds), "test": list(test_folds)}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            common = sorted(set(folds[a]) & set(folds[b]))
            if common:
                raise ValueError(f"{a}_folds and {b}_folds overlap in folds {common}")
    fold = metadata["fold"].to_numpy()
    rows = {name: np.flatnonzero(np.isin(fold, folds[name])).astype(np.int64) for name in SPLITS}
    patients = metadata["patient_id"].to_numpy()
    check_patient_disjoint({name: np.unique(patients[r]) for name, r in rows.items()})
    return rows
