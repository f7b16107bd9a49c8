"""Generator v2 training data: every record in training, guidance branches at their configured shares."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.data.datamodule import ECGDataModule
from ecgtwin.data.datasets import TwinExamples
from ecgtwin.models.conditioning import GUIDANCE_BRANCHES, branch_counts, branch_shares, training_dropout


@pytest.fixture(scope="module")
def mixed_datamodule(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> ECGDataModule:
    dm = ECGDataModule(root=str(sample_root), cache_dir=str(tmp_path_factory.mktemp("cache") / "s"),
                       train_folds=[1, 2, 3, 4, 5, 6], val_folds=[7], test_folds=[8], batch_size=32, progress=False,
                       label_set="superclass_rhythm", personal_share=0.6)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_examples_hold_every_pair_both_ways_and_every_record(mixed_datamodule: ECGDataModule) -> None:
    ds = mixed_datamodule.train_dataset
    assert isinstance(ds, TwinExamples)
    records = mixed_datamodule.record_dataset("train")
    ordered = {tuple(p) for p in ds.pairs[: ds.num_pairs // 2]}
    assert {tuple(p[::-1]) for p in ordered} == {tuple(p) for p in ds.pairs[ds.num_pairs // 2:]}
    assert len(ds) == ds.num_pairs + len(records)
    record_examples = [int(ds[i]["target"]["record_id"]) for i in range(ds.num_pairs, len(ds))]
    assert sorted(record_examples) == sorted(records.record_ids[records.rows].tolist())  # every train record, once
    pair_item, record_item = ds[0], ds[ds.num_pairs]
    assert bool(pair_item["personal"]) and not bool(record_item["personal"])
    assert int(pair_item["reference"]["patient_id"]) == int(pair_item["target"]["patient_id"])
    assert int(pair_item["reference"]["record_id"]) != int(pair_item["target"]["record_id"])
    # validation stays same-patient pairs in one direction (earlier -> later)
    assert not isinstance(mixed_datamodule.val_dataset, TwinExamples)


def test_each_guidance_branch_appears_at_its_configured_share(mixed_datamodule: ECGDataModule) -> None:
    p_cond, share = 0.25, 0.6
    expected = branch_shares(share, p_cond)
    assert expected == pytest.approx({"u(b,c)": 0.45, "u(b,0)": 0.15, "u(0,c)": 0.30, "u(0,0)": 0.10})
    torch.manual_seed(0)
    counts = dict.fromkeys(GUIDANCE_BRANCHES, 0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(25):  # 25 epochs of the real loader, each drawn afresh by the weighted sampler
        for batch in mixed_datamodule.train_dataloader():
            drop_b, drop_c = training_dropout(batch["personal"], p_cond, generator=generator)
            for k, v in branch_counts(drop_b, drop_c).items():
                counts[k] += v
    n = sum(counts.values())
    assert n > 2000
    for branch in GUIDANCE_BRANCHES:
        observed = counts[branch] / n
        se = np.sqrt(expected[branch] * (1 - expected[branch]) / n)
        assert abs(observed - expected[branch]) < 4 * se + 0.01, (branch, observed, expected[branch])


def test_single_records_never_get_a_base_vector() -> None:
    personal = torch.tensor([True, False] * 500)
    drop_b, _ = training_dropout(personal, p_cond=0.5, p_base=0.0, generator=torch.Generator().manual_seed(1))
    assert bool(drop_b[~personal].all()) and not bool(drop_b[personal].any())
    drop_b, _ = training_dropout(personal, p_cond=0.0, p_base=1.0)
    assert bool(drop_b.all())


def test_single_record_patients_reach_the_generator(shared_root: Path, tmp_path: Path) -> None:
    dm = ECGDataModule(root=str(shared_root), train_folds=[1], val_folds=[7], test_folds=[8], progress=False,
                       personal_share=0.5)
    dm.prepare_data()
    dm.setup("fit")
    ds = dm.train_dataset
    counts = ds.records.metadata.iloc[ds.records.rows]["patient_id"].value_counts()
    single = set(counts.index[counts == 1])
    assert single and not single & set(ds.records.patient_ids[ds.pairs.ravel()])  # in no pair ...
    assert single <= set(ds.records.patient_ids[ds.records.rows])  # ... but every one among the record examples
    weights = ds.sample_weights(0.5)
    assert weights[: ds.num_pairs].sum() == pytest.approx(0.5) and weights.sum() == pytest.approx(1.0)


def test_personal_share_is_validated(sample_root: Path) -> None:
    with pytest.raises(ValueError, match="personal_share"):
        ECGDataModule(root=str(sample_root), personal_share=1.5)
    with pytest.raises(ValueError, match="pairs=True"):
        ECGDataModule(root=str(sample_root), personal_share=0.5, pairs=False)


def test_rhythm_vocabulary(sample_root: Path) -> None:
    v = LabelVocabulary.from_root(sample_root, "superclass_rhythm")
    assert v.diagnosis_names == ("CD", "HYP", "MI", "NORM", "STTC")
    assert {"SR", "AFIB", "STACH", "SBRAD", "SARRH"} <= set(v.rhythm_names)
    assert len(v) == 5 + len(v.rhythm_names)
    encoded = v.encode({"IMI": 15.0, "AFIB": 0.0})  # rhythm statements carry likelihood 0 in PTB-XL
    assert v.decode(encoded) == ["MI", "AFIB"]
    assert LabelVocabulary.from_dict(v.to_dict()) == v and LabelVocabulary.from_dict(v.to_dict()).rhythm_names == v.rhythm_names
    assert LabelVocabulary.from_root(sample_root, "superclass").rhythm_names == ()
