"""``ECGDataModule``: PTB-XL / MIMIC-IV-ECG -> cache -> patient-disjoint splits -> (pair) datasets."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Dataset

from ecgtwin.data.cache import ECGCache, ensure_cache
from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
from ecgtwin.data.datasets import PairDataset, RecordDataset, TwinExamples
from ecgtwin.data.describe import describe_data
from ecgtwin.data.metadata import first_patients
from ecgtwin.data.preprocess import PreprocessConfig
from ecgtwin.data.splits import SPLITS, split_by_folds


def user_cache_base() -> Path:
    """``$ECGTWIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/ecgtwin``, else ``~/.cache/ecgtwin`` (temp dir if unwritable)."""
    if os.environ.get("ECGTWIN_CACHE_DIR"):
        return Path(os.environ["ECGTWIN_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecgtwin"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "ecgtwin-cache"


class ECGDataModule(L.LightningDataModule):
    """Cached, patient-disjoint 12-lead ECG data for the IBE, the generator and the classifier.

    Args:
        root: dataset folder (PTB-XL layout, or MIMIC-IV-ECG layout with ``source="mimic"``).
        source: ``"ptbxl"`` or ``"mimic"``.
        cache_dir: cache folder; default ``<user cache>/ecgtwin/<source>-<root name>-<hash of root+config>``
            (never inside ``root``, which may be read-only).
        fs, seconds: target sampling rate (Hz) and duration; 500 Hz uses ``records500`` when present.
        label_set: ``"superclass"`` (5), ``"subclass"`` (23), ``"all"`` (71 statements) or
            ``"superclass_rhythm"`` (5 superclasses + 12 rhythm statements).
        label_threshold: minimum SCP likelihood for a statement to count (0 = any listed).
        highpass_hz: baseline-wander high-pass cut-off, ``None`` = off.
        train_folds, val_folds, test_folds: folds of each split (patient-disjoint).
        pairs: split datasets yield same-patient pairs (True) or single records (False).
        personal_share: generator training (with ``pairs``): the TRAIN split becomes
            :class:`~ecgtwin.data.datasets.TwinExamples` (every pair in both orders and every
            single record), drawn with replacement so that pairs make up this share of the
            examples; ``None`` (default) = pairs only. Validation and test stay pairs.
        batch_size, num_workers: DataLoader settings.
        max_records: cache only the first whole patients up to this many records (quick runs).
        seed: seed of the training-set shuffle.
        patients_csv: MIMIC-IV ``patients.csv`` for age/sex (default ``<root>/patients.csv`` if present).
        progress: show a progress bar while building the cache.
        build_workers: processes for the one-time cache build (1 = in this process; 2 halves
            the build of a full PTB-XL on two cores, but each worker pays ~3 s of imports).
    """

    def __init__(
        self,
        root: str,
        source: Literal["ptbxl", "mimic"] = "ptbxl",
        cache_dir: str | None = None,
        fs: int = 100,
        seconds: float = 10.0,
        label_set: Literal["superclass", "subclass", "all", "superclass_rhythm"] = "superclass",
        label_threshold: float = 0.0,
        highpass_hz: float | None = 0.5,
        train_folds: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8),
        val_folds: Sequence[int] = (9,),
        test_folds: Sequence[int] = (10,),
        pairs: bool = True,
        personal_share: float | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        max_records: int | None = None,
        seed: int = 0,
        patients_csv: str | None = None,
        progress: bool = True,
        build_workers: int = 1,
    ) -> None:
        super().__init__()
        if source not in ("ptbxl", "mimic"):
            raise ValueError(f"source must be 'ptbxl' or 'mimic', got {source!r}")
        if not Path(root).is_dir():
            raise FileNotFoundError(f"ECGDataModule: root {root!r} is not a directory")
        self.save_hyperparameters()
        self.root, self.source = str(root), source
        self.config = PreprocessConfig(fs=fs, seconds=seconds, highpass_hz=highpass_hz)
        self.label_set, self.label_threshold = label_set, float(label_threshold)
        self.folds = {"train": list(train_folds), "val": list(val_folds), "test": list(test_folds)}
        self.pairs, self.batch_size, self.num_workers = pairs, batch_size, num_workers
        if personal_share is not None and not (pairs and 0.0 <= personal_share <= 1.0):
            raise ValueError(f"personal_share must be in [0, 1] and needs pairs=True, got {personal_share} (pairs={pairs})")
        self.personal_share = personal_share
        self.max_records, self.seed, self.patients_csv, self.progress = max_records, seed, patients_csv, progress
        self.build_workers = build_workers
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self._default_cache_dir()
        self._vocabulary: LabelVocabulary | None = None
        self._normalizer: DemographicsNormalizer | None = None
        self._cache: ECGCache | None = None
        self._rows: dict[str, np.ndarray] = {}
        self._datasets: dict[str, Dataset] = {}

    # ---- source -----------------------------------------------------------------
    def _default_cache_dir(self) -> Path:
        key = json.dumps([str(Path(self.root).resolve()), self.source, self.config.to_dict(), self.max_records, self.patients_csv])
        return user_cache_base() / f"{self.source}-{Path(self.root).resolve().name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"

    def _source_table(self) -> tuple[pd.DataFrame, list[Path]]:
        root = Path(self.root)
        if self.source == "ptbxl":
            from ecgtwin.data.ptbxl import DATABASE_CSV, ptbxl_record_table

            table, files = ptbxl_record_table(root, self.config.fs), [root / DATABASE_CSV]
        else:
            from ecgtwin.data.mimic import MEASUREMENTS_CSV, PATIENTS_CSV, RECORD_LIST_CSV, load_mimic_record_table

            table = load_mimic_record_table(root, self.patients_csv)
            patients = Path(self.patients_csv) if self.patients_csv else root / PATIENTS_CSV
            files = [f for f in (root / RECORD_LIST_CSV, root / MEASUREMENTS_CSV, patients) if f.is_file()]
        return first_patients(table, self.max_records), files

    @property
    def vocabulary(self) -> LabelVocabulary:
        """Label vocabulary (available before ``setup``: ``num_labels`` is linked into models)."""
        if self._vocabulary is None:
            statements_root = Path(self.root)
            if self.source == "mimic" and not (statements_root / "scp_statements.csv").is_file():
                from ecgtwin.paths import BUNDLED_SAMPLE  # MIMIC has no SCP statements: keep PTB-XL's label slots

                statements_root = BUNDLED_SAMPLE
            self._vocabulary = LabelVocabulary.from_root(statements_root, self.label_set, self.label_threshold)
        return self._vocabulary

    @property
    def num_labels(self) -> int:
        return len(self.vocabulary)

    # ---- Lightning hooks ----------------------------------------------------------
    def _open_cache(self) -> ECGCache:
        if self._cache is None:
            table, files = self._source_table()
            self._cache = ensure_cache(table, self.cache_dir, self.config, files, progress=self.progress, workers=self.build_workers)
        return self._cache

    def prepare_data(self) -> None:
        """Build the cache once (re-used while the source and config are unchanged)."""
        self._open_cache()

    def setup(self, stage: str | None = None) -> None:
        cache = self._open_cache()
        if self._rows:
            return
        self._rows = split_by_folds(cache.metadata, **{f"{k}_folds": v for k, v in self.folds.items()})
        for name, rows in self._rows.items():
            if rows.size == 0:
                warnings.warn(f"split {name!r} (folds {self.folds[name]}) has no records in {self.root}", stacklevel=2)
        train = cache.metadata.iloc[self._rows["train"]]
        if self._normalizer is None:
            if train.empty:
                raise ValueError(f"train folds {self.folds['train']} hold no records in {self.root}: cannot fit the demographics normaliser")
            self._normalizer = DemographicsNormalizer.fit(train["hr"].to_numpy(), train["age"].to_numpy())
        self._normalizer.save(cache.path / f"normalizer-train{'-'.join(map(str, self.folds['train']))}.json")
        for name in SPLITS:
            records = self.record_dataset(name)
            if name == "train" and self.personal_share is not None:
                self._datasets[name] = TwinExamples(records)
            else:
                self._datasets[name] = PairDataset(records) if self.pairs else records

    def state_dict(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary.to_dict(), "normalizer": None if self._normalizer is None else self._normalizer.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._vocabulary = LabelVocabulary.from_dict(state_dict["vocabulary"])
        if state_dict.get("normalizer") is not None:
            self._normalizer = DemographicsNormalizer.from_dict(state_dict["normalizer"])

    # ---- after setup ----------------------------------------------------------------
    def _require_setup(self) -> ECGCache:
        if self._cache is None or not self._rows:
            raise RuntimeError("ECGDataModule: call prepare_data() and setup() first")
        return self._cache

    @property
    def cache(self) -> ECGCache:
        return self._require_setup()

    @property
    def normalizer(self) -> DemographicsNormalizer:
        self._require_setup()
        assert self._normalizer is not None
        return self._normalizer

    def record_dataset(self, split: Literal["train", "val", "test", "all"]) -> RecordDataset:
        """Single-record dataset of a split (or every cached record with ``"all"``)."""
        cache = self._require_setup()
        if split != "all" and split not in self._rows:
            raise KeyError(f"unknown split {split!r}; expected one of {SPLITS + ('all',)}")
        rows = None if split == "all" else self._rows[split]
        return RecordDataset(cache.path / "signals.npy", cache.metadata, rows, self.vocabulary, self.normalizer)

    @property
    def train_dataset(self) -> Dataset:
        self._require_setup()
        return self._datasets["train"]

    @property
    def val_dataset(self) -> Dataset:
        self._require_setup()
        return self._datasets["val"]

    @property
    def test_dataset(self) -> Dataset:
        self._require_setup()
        return self._datasets["test"]

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        import torch

        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        sampler = None
        if isinstance(dataset, TwinExamples) and shuffle:
            from torch.utils.data import WeightedRandomSampler

            weights = torch.from_numpy(dataset.sample_weights(float(self.personal_share)))  # (N,)
            sampler, shuffle = WeightedRandomSampler(weights, len(dataset), replacement=True, generator=generator), False
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, sampler=sampler,
                          num_workers=self.num_workers, generator=generator, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, shuffle=False)

    def describe(self) -> str:
        """Human summary: records, patients, pairs per split, label counts, HR/age/sex, skipped records."""
        cache = self._require_setup()
        return describe_data(self.source, self.root, cache, self._rows, self.folds, self.vocabulary, self.normalizer, self.config)
