"""Label vocabulary, demographics normaliser, patient-disjoint splits, pair datasets and the DataModule."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
from ecgtwin.data.datasets import PairDataset, same_patient_pairs
from ecgtwin.data.ptbxl import load_scp_statements
from ecgtwin.data.splits import split_by_folds

ITEM_KEYS = {"signal", "labels", "demographics", "demographics_mask", "patient_id", "record_id", "index"}


# ---- vocabulary -----------------------------------------------------------------------------
@pytest.mark.parametrize(("level", "size"), [("superclass", 5), ("subclass", 23), ("all", 71)])
def test_vocabulary_sizes(sample_root: Path, level: str, size: int) -> None:
    vocabulary = LabelVocabulary.from_root(sample_root, level)
    assert len(vocabulary) == size == len(vocabulary.names) == len(set(vocabulary.names))
    assert LabelVocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict()))) == vocabulary


def test_superclass_encoding_and_threshold(sample_root: Path) -> None:
    statements = load_scp_statements(sample_root)
    vocabulary = LabelVocabulary.from_statements(statements, "superclass")
    assert vocabulary.names == ("CD", "HYP", "MI", "NORM", "STTC")
    codes = {"IMI": 35.0, "LVH": 100.0, "SR": 0.0, "NOT_A_CODE": 100.0}
    np.testing.assert_array_equal(vocabulary.encode(codes), [0, 1, 1, 0, 0])  # SR is rhythm (not diagnostic), unknown ignored
    strict = LabelVocabulary.from_statements(statements, "superclass", threshold=50.0)
    np.testing.assert_array_equal(strict.encode(codes), [0, 1, 0, 0, 0])  # IMI at 35 % dropped
    everything = LabelVocabulary.from_statements(statements, "all")
    assert everything.decode(everything.encode(codes)) == ["IMI", "LVH", "SR"]
    assert vocabulary.decode(vocabulary.encode_names(["mi", "NORM"])) == ["MI", "NORM"]


def test_unknown_label_lists_close_matches(sample_root: Path) -> None:
    vocabulary = LabelVocabulary.from_root(sample_root, "subclass")
    assert vocabulary.index("IMI") == vocabulary.names.index("IMI") and vocabulary.index("imi") == vocabulary.index("IMI")
    with pytest.raises(KeyError, match="unknown label 'IMII'.*did you mean.*IMI"):
        vocabulary.index("IMII")
    with pytest.raises(ValueError, match="label level 'rhythm' unknown"):
        LabelVocabulary.from_root(sample_root, "rhythm")


# ---- demographics ---------------------------------------------------------------------------------
def test_normalizer_fit_transform_inverse_and_json(tmp_path: Path) -> None:
    normalizer = DemographicsNormalizer.fit(np.array([60.0, 80.0, np.nan]), np.array([40.0, 60.0, 80.0]))
    assert (normalizer.hr_mean, normalizer.hr_std) == (70.0, 10.0) and normalizer.age_mean == 60.0
    values, mask = normalizer.transform(90.0, np.nan, 1.0)
    np.testing.assert_allclose(values, [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(mask, [True, False, True])
    batch_values, batch_mask = normalizer.transform(np.array([70.0, np.nan]), np.array([60.0, 60.0]), np.array([0.0, np.nan]))
    assert batch_values.shape == (2, 3) and batch_mask.tolist() == [[True, True, True], [False, True, False]]
    assert normalizer.inverse_hr(2.0) == pytest.approx(90.0)
    normalizer.save(tmp_path / "n.json")
    assert DemographicsNormalizer.load(tmp_path / "n.json").to_dict() == normalizer.to_dict()
    with pytest.raises(ValueError, match="needs >= 2 known values"):
        DemographicsNormalizer.fit(np.array([np.nan, 70.0]), np.array([50.0, 60.0]))


# ---- splits and pairs --------------------------------------------------------------------------------
def test_splits_are_patient_disjoint_and_checked() -> None:
    meta = pd.DataFrame({"patient_id": [1, 1, 2, 3, 4], "fold": [1, 1, 7, 8, 3]})
    rows = split_by_folds(meta, [1, 2, 3], [7], [8])
    assert rows["train"].tolist() == [0, 1, 4] and rows["val"].tolist() == [2] and rows["test"].tolist() == [3]
    leaky = pd.DataFrame({"patient_id": [1, 1, 2], "fold": [1, 7, 8]})
    with pytest.raises(ValueError, match="'train' and 'val' share 1 patient"):
        split_by_folds(leaky, [1], [7], [8])
    with pytest.raises(ValueError, match="train_folds and test_folds overlap in folds \\[8\\]"):
        split_by_folds(meta, [1, 8], [7], [8])


def test_pairs_are_all_ordered_same_patient_pairs() -> None:
    meta = pd.DataFrame({
        "patient_id": [5, 5, 5, 9, 9, 7],
        "recording_date": pd.to_datetime(["2001-03-01", "1999-01-01", "2000-06-01", "1990-01-01", "1980-01-01", "1995-01-01"]),
        "record_id": [10, 11, 12, 13, 14, 15],
    })
    pairs = same_patient_pairs(meta, np.arange(6))
    assert pairs.tolist() == [[1, 2], [1, 0], [2, 0], [4, 3]]  # 3*2/2 + 2*1/2 + 0; earlier -> later
    assert same_patient_pairs(meta, np.array([0, 3, 5])).shape == (0, 2)


def test_sample_pair_counts_and_order(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    meta = sample_datamodule.cache.metadata
    total = 0
    for name in ("train", "val", "test"):
        dataset = getattr(sample_datamodule, f"{name}_dataset")
        assert isinstance(dataset, PairDataset)
        part = meta.iloc[dataset.records.rows]
        counts = part.groupby("patient_id").size()
        assert len(dataset) == int((counts * (counts - 1) // 2).sum()) > 0
        reference, target = dataset.pairs[:, 0], dataset.pairs[:, 1]
        assert (meta["patient_id"].to_numpy()[reference] == meta["patient_id"].to_numpy()[target]).all()
        assert (meta["recording_date"].to_numpy()[reference] <= meta["recording_date"].to_numpy()[target]).all()
        total += len(dataset)
    assert total == 187  # the bundled sample's documented pair count
    patients = {n: set(meta["patient_id"].iloc[getattr(sample_datamodule, f"{n}_dataset").records.rows]) for n in ("train", "val", "test")}
    assert not (patients["train"] & patients["val"] or patients["train"] & patients["test"] or patients["val"] & patients["test"])
    assert len(patients["train"]) == 76 and len(patients["val"]) == 12 and len(patients["test"]) == 12


# ---- batch format and DataModule ---------------------------------------------------------------------
def test_items_and_batches_follow_the_design_contract(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    item = sample_datamodule.train_dataset[0]
    assert set(item) == {"reference", "target"}
    for record in item.values():
        assert set(record) == ITEM_KEYS
        assert record["signal"].shape == (12, 1000) and record["signal"].dtype == torch.float32
        assert record["labels"].shape == (5,) and record["labels"].dtype == torch.float32
        assert record["demographics"].shape == (3,) and record["demographics_mask"].dtype == torch.bool
        assert record["patient_id"].dtype == torch.int64 and record["patient_id"].shape == ()
    assert item["reference"]["patient_id"] == item["target"]["patient_id"]
    row = int(item["target"]["index"])
    meta = sample_datamodule.cache.metadata.iloc[row]
    assert int(item["target"]["record_id"]) == meta["record_id"]
    np.testing.assert_array_equal(item["target"]["signal"].numpy(), sample_datamodule.cache.signals[row])
    np.testing.assert_array_equal(item["target"]["labels"].numpy(), sample_datamodule.vocabulary.encode(meta["labels"]))
    batch = next(iter(sample_datamodule.train_dataloader()))
    assert batch["reference"]["signal"].shape == (8, 12, 1000) and batch["target"]["demographics"].shape == (8, 3)


def test_demographics_use_train_statistics(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    meta = sample_datamodule.cache.metadata
    train = meta.iloc[sample_datamodule.record_dataset("train").rows]
    assert sample_datamodule.normalizer.hr_mean == pytest.approx(train["hr"].mean())
    assert sample_datamodule.normalizer.age_mean == pytest.approx(train["age"].mean())
    assert sample_datamodule.normalizer.age_mean != pytest.approx(meta["age"].mean(), abs=1e-6)
    records = sample_datamodule.record_dataset("all")
    unknown_age = np.flatnonzero(meta["age"].isna().to_numpy())
    assert unknown_age.size == 3 and not records.demographics_mask[unknown_age, 1].any()
    item = records[int(unknown_age[0])]
    assert not item["demographics_mask"][1] and item["demographics"][1] == 0
    saved = list(sample_datamodule.cache.path.glob("normalizer-train1-2-3-4-5-6.json"))
    assert len(saved) == 1 and DemographicsNormalizer.load(saved[0]).to_dict() == sample_datamodule.normalizer.to_dict()


def test_record_dataset_pickles_without_the_signals(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    dataset = sample_datamodule.record_dataset("val")
    _ = dataset[0]
    blob = pickle.dumps(dataset)
    assert len(blob) < dataset.signals.nbytes / 10  # workers re-open the memmap
    clone = pickle.loads(blob)
    torch.testing.assert_close(clone[3]["signal"], dataset[3]["signal"])


def test_describe_and_num_labels(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    text = sample_datamodule.describe()
    assert sample_datamodule.num_labels == 5
    for expected in ("235 records x 12 leads x 1000 samples", "skipped: none", "superclass (5)", "HR:", "age:", "sex:"):
        assert expected in text, text
    assert "train 1,2,3,4,5,6" in text and "val   7" in text and "test  8" in text


def test_datamodule_at_500_hz_single_records(sample_root: Path, tmp_path: Path) -> None:
    from ecgtwin.data.datamodule import ECGDataModule

    dm = ECGDataModule(root=str(sample_root), cache_dir=str(tmp_path / "c500"), fs=500, label_set="subclass", pairs=False,
                       train_folds=[1, 2, 3, 4, 5, 6], val_folds=[7], test_folds=[8], max_records=30, batch_size=4, progress=False)
    assert dm.num_labels == 23  # known before setup (linked into the model by the CLI)
    with pytest.raises(RuntimeError, match="call prepare_data\\(\\) and setup\\(\\) first"):
        _ = dm.train_dataset
    dm.prepare_data()
    dm.setup("fit")
    item = dm.train_dataset[0]
    assert set(item) == ITEM_KEYS and item["signal"].shape == (12, 5000) and item["labels"].shape == (23,)
    assert len(dm.cache.metadata) <= 30


def test_datamodule_bad_arguments(sample_root: Path, tmp_path: Path) -> None:
    from ecgtwin.data.datamodule import ECGDataModule

    with pytest.raises(FileNotFoundError, match="is not a directory"):
        ECGDataModule(root=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="source must be"):
        ECGDataModule(root=str(sample_root), source="ptb")  # type: ignore[arg-type]
    dm = ECGDataModule(root=str(sample_root), cache_dir=str(tmp_path / "c"), max_records=10, train_folds=[9], val_folds=[1, 2, 3, 4, 5, 6, 7, 8], test_folds=[10], progress=False)
    with pytest.warns(UserWarning, match="has no records"), pytest.raises(ValueError, match="train folds \\[9\\] hold no records"):
        dm.setup("fit")
