"""Downstream protocols: classifier training glue, the personalised protocol and TSTR/TRTS, with known answers."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.eval.classifier_fit import binary_metrics, fine_tune, fit_classifier, paired_bootstrap, predict_logits
from ecgtwin.eval.downstream import downstream_section
from ecgtwin.eval.harness_data import PairArrays
from ecgtwin.eval.personalized import personal_specs, select_patients
from ecgtwin.eval.report import section_table

from bundles import tiny_bundle

ARCH = {"widths": (8, 16), "head_dim": 16, "dropout": 0.0}


def separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12, 1000) noise; label 1 (every other record) adds a 1.5 Hz wave on all leads."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2 == 0).astype(np.float32)[:, None]  # (n, 1)
    wave = np.sin(2 * np.pi * 1.5 * np.arange(1000) / 100.0)  # (L,)
    return (0.1 * rng.normal(size=(n, 12, 1000)) + labels[:, :, None] * wave).astype(np.float32), labels


def test_binary_metrics_known_answers() -> None:
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32)
    perfect = np.where(labels > 0, 5.0, -5.0)
    assert binary_metrics(labels, perfect) == {"accuracy": 1.0, "exact_match": 1.0, "macro_f1": 1.0, "macro_auroc": 1.0, "n": 4}
    inverted = binary_metrics(labels, -perfect)
    assert inverted["accuracy"] == 0.0 and inverted["macro_f1"] == 0.0 and inverted["macro_auroc"] == 0.0
    all_positive = binary_metrics(labels, np.ones_like(perfect))  # every label predicted: F1 = 2*2/(2*2+2) per label
    assert all_positive["macro_f1"] == pytest.approx(2 / 3) and all_positive["accuracy"] == 0.5
    assert all_positive["exact_match"] == 0.25 and all_positive["macro_auroc"] == 0.5  # constant scores: ties
    with pytest.raises(ValueError, match=r"both be \(N, V\)"):
        binary_metrics(labels, perfect[:, :1])


def test_paired_bootstrap_resamples_patients_and_is_zero_for_identical_arms() -> None:
    labels = np.tile(np.array([[1.0], [0.0]]), (10, 1))  # (20, 1)
    groups = np.repeat(np.arange(10), 2)  # 10 patients x 2 records
    weak = np.random.default_rng(0).normal(size=(20, 1))
    same = paired_bootstrap(groups, labels, weak, weak.copy(), n_boot=50)
    assert all(v == (0.0, 0.0, 0.0) for v in same.values())
    better = paired_bootstrap(groups, labels, weak, np.where(labels > 0, 3.0, -3.0), n_boot=50)
    delta, low, high = better["macro_auroc"]
    assert delta > 0 and low <= delta <= high and low >= 0


def test_fit_classifier_learns_and_keeps_the_best_validation_epoch() -> None:
    x, y = separable(64, 0)
    vx, vy = separable(32, 1)
    net, info = fit_classifier(x, y, vx, vy, ARCH, epochs=3, batch_size=16, warmup_steps=2, seed=0)
    assert not net.training and info["n_train"] == 64 and len(info["val_curve"]) == 3
    assert info["val_macro_auroc"] == max(info["val_curve"]) == info["val_curve"][info["best_epoch"]]
    tx, ty = separable(32, 2)
    assert binary_metrics(ty, predict_logits(net, tx))["macro_auroc"] > 0.9
    again, _ = fit_classifier(x, y, vx, vy, ARCH, epochs=3, batch_size=16, warmup_steps=2, seed=0)
    np.testing.assert_allclose(predict_logits(again, tx), predict_logits(net, tx), atol=1e-5)  # seeded
    with pytest.raises(ValueError, match="same N"):
        fit_classifier(x, y[:10], vx, vy, ARCH)
    with pytest.raises(ValueError, match="at least 2"):
        fit_classifier(x[:1], y[:1], vx, vy, ARCH)


def test_fine_tune_moves_a_copy_towards_its_labels_with_batchnorm_frozen() -> None:
    torch.manual_seed(0)
    net = ECGClassifier(1, **ARCH).eval().requires_grad_(False)  # as load_classifier returns it
    x, _ = separable(8, 3)
    before = predict_logits(net, x)
    stats = [m.running_mean.clone() for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    tuned = fine_tune(net, x, np.ones((8, 1), np.float32), steps=20, lr=1e-2, batch_size=4)
    after = predict_logits(tuned, x)
    assert (after > before).all()  # pushed towards label 1
    np.testing.assert_array_equal(predict_logits(net, x), before)  # the original is untouched
    tuned_stats = [m.running_mean for m in tuned.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for a, b in zip(stats, tuned_stats):
        torch.testing.assert_close(a, b)  # frozen running statistics
    np.testing.assert_array_equal(predict_logits(fine_tune(net, x, np.ones((8, 1), np.float32), steps=0), x), before)
    with pytest.raises(ValueError, match="fine_tune"):
        fine_tune(net, x[:0], np.ones((0, 1), np.float32))


def test_select_patients_splits_first_and_later_ecgs(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    series = select_patients(sample_datamodule)
    meta = sample_datamodule.cache.metadata.set_index("record_id")
    test_rows = sample_datamodule.record_dataset("test").rows
    test_patients = sample_datamodule.cache.metadata.iloc[test_rows]["patient_id"]
    assert len(series) == int((test_patients.value_counts() >= 2).sum())
    assert len(series.later) == int(sum(n - 1 for n in test_patients.value_counts() if n >= 2))
    for i, record in enumerate(series.first_record):
        first_date = meta.loc[record, "recording_date"]
        later = series.owner == i
        assert later.any() and meta.loc[record, "patient_id"] == series.patient_id[i]
        dates = meta[meta["patient_id"] == series.patient_id[i]]["recording_date"]
        assert first_date == dates.min()  # the earliest ECG is the reference
    assert series.first_meta["hr"].shape == (len(series),)
    assert len(select_patients(sample_datamodule, max_patients=2)) == 2
    with pytest.raises(ValueError, match="max_patients"):
        select_patients(sample_datamodule, max_patients=0)


@pytest.fixture(scope="module")
def personal_model(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> TwinModel:
    return TwinModel.load(tiny_bundle(sample_root, tmp_path_factory.mktemp("personal"), True))


def test_personal_specs_ask_every_condition_of_the_first_ecg(personal_model, sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    series = select_patients(sample_datamodule, max_patients=2)
    conditions = [["NORM"], ["MI"], ["MI", "STTC"]]
    specs, labels, owner = personal_specs(personal_model, series, conditions, per_condition=2, seed=7)
    assert len(specs) == labels.shape[0] == 2 * 3 * 2 and labels.shape[1] == len(personal_model.vocabulary)
    assert owner.tolist() == [0] * 6 + [1] * 6
    assert sorted(s.seed for s in specs) == list(range(7, 19))  # every twin its own seed
    for spec, row, i in zip(specs, labels, owner):
        np.testing.assert_array_equal(spec.reference, series.first[i])
        assert sorted(personal_model.vocabulary.decode(row)) == sorted(spec.labels)
    assert [list(s.labels) for s in specs[:6:2]] == conditions
    with pytest.raises(ValueError, match="per_condition"):
        personal_specs(personal_model, series, conditions, per_condition=0)


def test_without_person_ignores_the_reference(personal_model) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    refs = [(0.1 * rng.normal(size=(12, personal_model.length))).astype(np.float32) for _ in range(2)]
    specs = [TwinSpec(reference=r, labels=["MI"], hr=70.0, seed=3, reference_labels=["NORM"]) for r in refs]
    population = personal_model.without_person()
    pop = population.generate(specs, steps=2, progress=False)
    np.testing.assert_allclose(pop[0], pop[1], atol=1e-5)  # same seed, different persons: same twin
    own = personal_model.generate(specs, steps=2, progress=False)
    assert np.abs(own[0] - own[1]).max() > 1e-4  # the personalised model does use the person
    assert personal_model.personalised and not population.personalised and "null base" in population.description
    with pytest.raises(ValueError, match="population"):
        population.base_vectors(specs)


class _Oracle:
    """A stand-in generator whose 'twins' are given arrays (the real targets = a perfect generator)."""

    def __init__(self, vocabulary: object, signals: np.ndarray) -> None:
        self.vocabulary, self.signals = vocabulary, signals

    def generate(self, specs: list, **kwargs: object) -> np.ndarray:
        return self.signals[:len(specs)]


def test_tstr_of_a_perfect_generator_equals_training_on_the_real_targets(personal_model) -> None:  # type: ignore[no-untyped-def]
    x, y = separable(48, 4)
    y5 = np.repeat(y, len(personal_model.vocabulary), axis=1)  # (48, V): every label = the wave
    meta = {k: np.full(24, np.nan) for k in ("hr", "age", "sex")}
    pairs = PairArrays(reference=x[24:], target=x[:24], reference_labels=y5[24:], target_labels=y5[:24],
                       patient_id=np.arange(24), reference_record=np.arange(24), target_record=np.arange(24) + 100,
                       reference_meta=meta, target_meta=meta)
    inverted = pairs.target[np.r_[1:24, 0]]  # every 'twin' shows the opposite condition of its label
    models = {"twin": _Oracle(personal_model.vocabulary, pairs.target), "inverted": _Oracle(personal_model.vocabulary, inverted)}
    val, test = separable(24, 6), separable(32, 7)
    val = (val[0], np.repeat(val[1], len(personal_model.vocabulary), axis=1))
    test = (test[0], np.repeat(test[1], len(personal_model.vocabulary), axis=1))
    out = downstream_section(models, pairs, (x, y5), val, test, test_twins={"twin": test[0][:8]}, architecture=ARCH,
                             epochs=4, n_boot=20, fit_options={"batch_size": 8, "warmup_steps": 1, "lr": 1e-2}, test_pairs=PairArrays(test[0][:8], test[0][:8], test[1][:8], test[1][:8],
                                                                         np.arange(8), np.arange(8), np.arange(8)))
    m = out["metrics"]
    assert m["twin"]["macro_auroc"] == pytest.approx(m["real_matched"]["macro_auroc"])  # same data, same seed
    assert m["twin"]["macro_auroc"] > 0.9 and m["inverted"]["macro_auroc"] < 0.5
    assert m["real+inverted"]["n_train"] == 48 + 24 and m["real"]["macro_auroc"] > 0.9
    assert out["trts"]["twin"]["macro_auroc"] == pytest.approx(out["trts"]["real"]["macro_auroc"])  # twins = targets


def test_interval_metrics_render_as_one_cell() -> None:
    table = section_table({"twin": {"delta_f1": 0.1, "delta_f1_low": -0.05, "delta_f1_high": 0.2, "n": 3}})
    assert "| delta_f1 | 0.1 [-0.05, 0.2] |" in table and "delta_f1_low" not in table and "| n | 3 |" in table
