"""A generator with a larger vocabulary (5 superclasses + rhythm) judged by the 5-superclass reference classifier:
label columns are selected BY NAME."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.api import TwinModel
from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.eval.harness import evaluate
from ecgtwin.eval.harness_data import classifier_columns, classifier_label_names, datamodule_for
from ecgtwin.paths import ASSETS_DIR, SAMPLE_SPLIT
from ecgtwin.training.classifier_module import load_classifier

from bundles import tiny_bundle

SUPERCLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]


def test_columns_are_selected_by_name(sample_root: Path) -> None:
    rhythm = LabelVocabulary.from_root(sample_root, "superclass_rhythm")
    assert len(rhythm) > 5 and "SR" in rhythm.names
    net = ECGClassifier(5, widths=(8,), head_dim=8)
    net.label_names = ["NORM", "MI", "CD", "HYP", "STTC"]  # any order: the classifier's order is kept
    cols = classifier_columns(rhythm, net)
    assert [rhythm.names[i] for i in cols] == net.label_names
    net.label_names = None  # no names: one output per diagnosis label means the diagnosis labels
    assert [rhythm.names[i] for i in classifier_columns(rhythm, net)] == list(rhythm.diagnosis_names) == SUPERCLASSES
    net.label_names = ["CD", "HYP", "MI", "NORM", "AFIB_X"]
    with pytest.raises(ValueError, match="AFIB_X"):
        classifier_columns(rhythm, net)
    with pytest.raises(ValueError, match="no label names"):
        classifier_columns(rhythm, ECGClassifier(3, widths=(8,), head_dim=8))
    plain = LabelVocabulary.from_root(sample_root, "superclass")
    np.testing.assert_array_equal(classifier_columns(plain, ECGClassifier(5, widths=(8,), head_dim=8)), np.arange(5))


def test_the_shipped_classifier_names_its_labels() -> None:
    path = ASSETS_DIR / "classifier_ptbxl100.ckpt"
    assert classifier_label_names(path) == SUPERCLASSES
    assert load_classifier(path).label_names == SUPERCLASSES  # every loader gets the names with the weights
    assert ECGClassifier(5, widths=(8,), head_dim=8).label_names is None


def test_harness_scores_a_rhythm_vocabulary_with_a_superclass_classifier(sample_root: Path, tmp_path: Path) -> None:
    model = TwinModel.load(tiny_bundle(sample_root, tmp_path, True, "superclass_rhythm"))
    assert len(model.vocabulary) > 5
    datamodule = datamodule_for(model, str(sample_root), dict(SAMPLE_SPLIT), cache_dir=str(tmp_path / "cache"),
                                progress=False)
    torch.manual_seed(0)
    classifier = ECGClassifier(5, widths=(8, 16), head_dim=16).eval()
    classifier.label_names = SUPERCLASSES
    report = evaluate(model, datamodule, classifier, tmp_path / "out", max_pairs=6, steps=2, n_extreme=1, n_boot=10,
                      max_clinical=2, privacy_max_train=20, downstream=True, downstream_max_pairs=6,
                      downstream_epochs=1, personalized=True, personal_max_patients=2, personal_per_condition=1,
                      personal_steps=1, progress=False)
    assert report["settings"]["classifier_labels"] == SUPERCLASSES
    assert 0 <= report["controllability"]["auroc"]["twin"]["macro_auroc"] <= 1
    assert report["personalized"]["settings"]["conditions"] == [[n] for n in SUPERCLASSES]  # the classifier's labels
    assert set(report["personalized"]["positives_later"]) == set(SUPERCLASSES)
    assert set(report["downstream"]["metrics"]) == {"real", "real_matched", "twin", "real+twin"}
    assert {"sr_regular_share", "afib_irregular_share"} <= set(report["realism"]["twin"])
