"""Torch datasets over the memory-mapped cache, in the batch format of docs/DESIGN.md.

:class:`RecordDataset` yields single records (population-level training,
classifiers); :class:`PairDataset` yields every ordered same-patient pair
``(reference earlier, target later)`` of a split: a patient with n records gives
n(n-1)/2 pairs. :class:`TwinExamples` is the generator's training set: every
same-patient pair (personal examples) and every single record (person-dropped
examples), so records of patients with one ECG teach realism too.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ecgtwin.constants import N_LEADS
from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary


class RecordDataset(Dataset):
    """Single records ``rows`` of a cache.

    Args:
        signals: path of the cache's ``signals.npy`` (opened memory-mapped, lazily in
            each worker process) or an in-memory ``(N, 12, L)`` array.
        metadata: the cache's record table (``N`` rows; row i <-> ``signals[i]``).
        rows: cache rows in this dataset (e.g. one split), default all.
        vocabulary: label encoder; normalizer: demographics encoder.
    """

    def __init__(
        self,
        signals: str | os.PathLike[str] | np.ndarray,
        metadata: pd.DataFrame,
        rows: np.ndarray | None,
        vocabulary: LabelVocabulary,
        normalizer: DemographicsNormalizer,
    ) -> None:
        self._signals_path = None if isinstance(signals, np.ndarray) else str(signals)
        self._signals: np.ndarray | None = signals if isinstance(signals, np.ndarray) else None
        self.metadata = metadata
        self.rows = np.arange(len(metadata), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows.size and (self.rows.min() < 0 or self.rows.max() >= len(metadata)):
            raise IndexError(f"RecordDataset: rows out of range for a cache of {len(metadata)} records")
        self.vocabulary = vocabulary
        self.normalizer = normalizer
        self.labels = np.stack([vocabulary.encode(d) for d in metadata["labels"]]) if len(metadata) else np.zeros((0, len(vocabulary)), np.float32)  # (N, V)
        self.demographics, self.demographics_mask = normalizer.transform(
            metadata["hr"].to_numpy(), metadata["age"].to_numpy(), metadata["sex"].to_numpy()
        )  # (N, 3), (N, 3)
        self.patient_ids = metadata["patient_id"].to_numpy(dtype=np.int64)
        self.record_ids = metadata["record_id"].to_numpy(dtype=np.int64)

    @property
    def signals(self) -> np.ndarray:
        """The cache's ``(N, 12, L)`` float32 array (memory-mapped, read-only)."""
        if self._signals is None:
            self._signals = np.load(self._signals_path, mmap_mode="r")
        return self._signals

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self._signals_path is not None:
            state["_signals"] = None  # re-open the memmap in the worker instead of pickling the data
        return state

    def __len__(self) -> int:
        return int(self.rows.size)

    def item(self, row: int) -> dict[str, torch.Tensor]:
        """The batch-format dict of cache row ``row``."""
        signal = np.array(self.signals[row], dtype=np.float32)  # (12, L) copy out of the read-only memmap
        return {
            "signal": torch.from_numpy(signal),
            "labels": torch.tensor(self.labels[row]),
            "demographics": torch.tensor(self.demographics[row]),
            "demographics_mask": torch.tensor(self.demographics_mask[row]),
            "patient_id": torch.tensor(self.patient_ids[row], dtype=torch.int64),
            "record_id": torch.tensor(self.record_ids[row], dtype=torch.int64),
            "index": torch.tensor(row, dtype=torch.int64),
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.item(int(self.rows[i]))

    def batch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        """A collated batch of dataset positions in one vectorised read (faster than a DataLoader loop)."""
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        order = np.argsort(rows)  # sorted fancy indexing reads the memmap sequentially
        signal = np.empty((rows.size, N_LEADS, self.signals.shape[-1]), dtype=np.float32)  # (B, 12, L)
        signal[order] = self.signals[rows[order]]
        return {
            "signal": torch.from_numpy(signal),
            "labels": torch.from_numpy(self.labels[rows]),
            "demographics": torch.from_numpy(self.demographics[rows]),
            "demographics_mask": torch.from_numpy(self.demographics_mask[rows]),
            "patient_id": torch.from_numpy(self.patient_ids[rows]),
            "record_id": torch.from_numpy(self.record_ids[rows]),
            "index": torch.from_numpy(rows),
        }


def patient_records(metadata: pd.DataFrame, rows: np.ndarray) -> list[np.ndarray]:
    """The cache rows of each patient among ``rows`` in recording order, patients sorted by id.

    A patient's records are ordered by ``recording_date`` (ties by ``record_id``).
    """
    table = metadata.iloc[rows][["patient_id", "recording_date", "record_id"]].assign(row=rows)
    table = table.sort_values(["patient_id", "recording_date", "record_id"], kind="stable")
    return [group["row"].to_numpy() for _, group in table.groupby("patient_id", sort=True)]


def same_patient_pairs(metadata: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """All ``(earlier, later)`` cache-row pairs of one patient among ``rows``: int64 ``(P, 2)``.

    Records in :func:`patient_records` order; n records give n(n-1)/2 pairs.
    """
    pairs = [pair for group in patient_records(metadata, rows) for pair in itertools.combinations(group, 2)]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)  # (P, 2)


class PairDataset(Dataset):
    """Ordered same-patient pairs of a :class:`RecordDataset`: ``{"reference": item, "target": item}``."""

    def __init__(self, records: RecordDataset) -> None:
        self.records = records
        self.pairs = same_patient_pairs(records.metadata, records.rows)  # (P, 2) cache rows

    @property
    def vocabulary(self) -> LabelVocabulary:
        return self.records.vocabulary

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    def __getitem__(self, i: int) -> dict[str, dict[str, torch.Tensor]]:
        reference, target = self.pairs[i]
        return {"reference": self.records.item(int(reference)), "target": self.records.item(int(target))}


class TwinExamples(Dataset):
    """Generator training examples: same-patient pairs (``personal``) and every record alone (person dropped).

    Items are ``{"reference": item, "target": item, "personal": bool}``. A
    single-record example is its own (unused) reference: the generator replaces
    its base vector by the learned null vector, so it trains the
    person-unconditional branches ``u(0, c)`` and ``u(0, 0)`` of the guidance.

    Args:
        records: the split's records.
        both_directions: use each pair in both orders (earlier -> later and back);
            the base vector describes the person, not the time order.
    """

    def __init__(self, records: RecordDataset, both_directions: bool = True) -> None:
        self.records = records
        pairs = same_patient_pairs(records.metadata, records.rows)  # (P, 2) cache rows
        self.pairs = np.concatenate([pairs, pairs[:, ::-1]]) if both_directions else pairs  # (P or 2P, 2)

    @property
    def vocabulary(self) -> LabelVocabulary:
        return self.records.vocabulary

    @property
    def num_pairs(self) -> int:
        return int(self.pairs.shape[0])

    def __len__(self) -> int:
        return self.num_pairs + len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i < self.num_pairs:
            reference, target = self.pairs[i]
            return {"reference": self.records.item(int(reference)), "target": self.records.item(int(target)),
                    "personal": torch.tensor(True)}
        item = self.records[i - self.num_pairs]
        return {"reference": item, "target": item, "personal": torch.tensor(False)}

    def sample_weights(self, personal_share: float) -> np.ndarray:
        """Per-example weights (N,) under which pairs make up ``personal_share`` of the draws (records the rest)."""
        if not 0.0 <= personal_share <= 1.0:
            raise ValueError(f"personal_share must be in [0, 1], got {personal_share}")
        if self.num_pairs == 0 and personal_share > 0:
            raise ValueError("personal_share > 0 but the split has no same-patient pairs")
        weights = np.empty(len(self), dtype=np.float64)
        weights[: self.num_pairs] = personal_share / max(1, self.num_pairs)
        weights[self.num_pairs :] = (1.0 - personal_share) / max(1, len(self.records))
        return weights
