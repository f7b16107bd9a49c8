"""Python generation API on a tiny real bundle: real modules, real bundled references."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.api import TwinModel, TwinSpec, generate
from ecgtwin.bundle import load_bundle, save_bundle
from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.io.wfdb_io import read_reference

from bundles import tiny_bundle

@pytest.fixture(scope="module")
def tiny_model(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> TwinModel:
    return TwinModel.load(tiny_bundle(sample_root, tmp_path_factory.mktemp("bundle")))


@pytest.fixture(scope="module")
def reference(sample_root: Path) -> np.ndarray:
    return read_reference(sample_root / "records100/01000/01495_lr").signal


def test_bundle_loads_weights_only_and_carries_its_state(tiny_model: TwinModel, sample_root: Path) -> None:
    assert tiny_model.checkpoint_path is not None
    raw = torch.load(tiny_model.checkpoint_path, weights_only=True)  # no pickled classes inside
    assert raw["format"] == "ecgtwin-bundle" and raw["provenance"] == {"note": "test"}
    assert tiny_model.vocabulary == LabelVocabulary.from_root(sample_root, "superclass")
    assert (tiny_model.fs, tiny_model.length) == (100, 1000)
    assert len(tiny_model.checkpoint_hash) == 12 and tiny_model.personalised


def test_generate_shapes_units_and_seed_determinism(tiny_model: TwinModel, reference: np.ndarray) -> None:
    specs = [TwinSpec(reference, ["MI"], hr=80, age=60, sex="F", seed=s) for s in (0, 1, 0)]
    twins = tiny_model.generate(specs, steps=3, progress=False)
    assert twins.shape == (3, 12, 1000) and twins.dtype == np.float32 and np.isfinite(twins).all()
    np.testing.assert_allclose(twins[0], twins[2], atol=1e-5)  # same seed, same twin
    assert np.abs(twins[0] - twins[1]).mean() > 1e-3  # another seed, another twin
    alone = tiny_model.generate(specs[1:2], steps=3, progress=False)  # batch composition does not matter
    np.testing.assert_allclose(alone[0], twins[1], atol=1e-4)


def test_condition_and_person_change_the_twin(tiny_model: TwinModel, reference: np.ndarray, sample_root: Path) -> None:
    other = read_reference(sample_root / "records100/00000/00316_lr").signal
    twins = tiny_model.generate([TwinSpec(reference, ["NORM"], seed=3), TwinSpec(reference, ["MI", "STTC"], seed=3),
                                 TwinSpec(other, ["NORM"], seed=3)], steps=3, progress=False)
    assert np.abs(twins[0] - twins[1]).mean() > 1e-4  # target condition reaches the output
    assert np.abs(twins[0] - twins[2]).mean() > 1e-4  # the person (base vector) reaches the output


def test_base_vectors_unit_norm_and_reference_condition(tiny_model: TwinModel, reference: np.ndarray) -> None:
    z = tiny_model.base_vectors([TwinSpec(reference, [], reference_labels=None), TwinSpec(reference, [], reference_labels=["NORM"])])
    assert z.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(z[0], z[1])  # known vs unknown reference condition are different inputs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(labels=["MIX"]), "target label"),
        (dict(reference_labels=["NROM"]), "reference label"),
        (dict(hr=400.0), "HR"),
        (dict(age=-3.0), "age"),
        (dict(sex="X"), "sex"),
        (dict(reference=np.zeros((11, 1000), np.float32)), "reference must be"),
        (dict(reference=np.full((12, 1000), np.nan, np.float32)), "NaN"),
    ],
)
def test_bad_specs_are_rejected_before_generation(tiny_model: TwinModel, reference: np.ndarray, change: dict, message: str) -> None:
    spec = TwinSpec(**{**dict(reference=reference, labels=["MI"]), **change})
    with pytest.raises(ValueError, match=message):
        tiny_model.generate([spec], steps=2, progress=False)


def test_unknown_label_lists_close_matches(tiny_model: TwinModel, reference: np.ndarray) -> None:
    with pytest.raises(ValueError, match="NORM"):
        tiny_model.validate(TwinSpec(reference, ["NORMAL"]))


def test_population_model_and_bad_checkpoints(sample_root: Path, tmp_path: Path, reference: np.ndarray) -> None:
    population = TwinModel.load(tiny_bundle(sample_root, tmp_path, personalised=False))
    assert not population.personalised
    assert population.generate([TwinSpec(reference, ["MI"])], steps=2, progress=False).shape == (1, 12, 1000)
    with pytest.raises(ValueError, match="population model"):
        population.base_vectors([TwinSpec(reference, [])])
    with pytest.raises(FileNotFoundError, match="not found"):
        TwinModel.load(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights-only"):
        TwinModel.load(garbage)
    bundle = load_bundle(tmp_path / "population.pt")
    bundle["vocabulary"] = LabelVocabulary.from_root(sample_root, "subclass").to_dict()  # 23 labels, net has 5
    save_bundle(bundle, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="5 labels but its vocabulary 23"):
        TwinModel.load(tmp_path / "mismatch.pt")


def test_one_call_generate(tiny_model: TwinModel, reference: np.ndarray) -> None:
    twins = generate(reference, ["HYP"], num=2, seed=5, model=tiny_model, steps=2, progress=False)
    again = generate(reference, ["HYP"], num=1, seed=6, model=tiny_model, steps=2, progress=False)
    assert twins.shape == (2, 12, 1000)
    np.testing.assert_allclose(twins[1], again[0], atol=1e-4)  # twin i uses seed + i


# ---------------------------------------------------------------- issue 12: labels as a string, empty conditions


def test_single_label_string_and_empty_conditions(tiny_model: TwinModel, reference: np.ndarray, tmp_path: Path) -> None:
    assert TwinSpec(reference, "MI").labels == ("MI",) and TwinSpec(reference, "MI, STTC").labels == ("MI", "STTC")
    assert TwinSpec(reference, [], reference_labels="NORM").reference_labels == ("NORM",)
    kw = dict(steps=2, progress=False)
    one = tiny_model.generate([TwinSpec(reference, "MI", seed=4), TwinSpec(reference, ["MI"], seed=4)], **kw)
    np.testing.assert_array_equal(one[0], one[1])  # not 'unknown label M'
    empty = tiny_model.generate([TwinSpec(reference, labels, seed=4) for labels in ([], "", "none", ())], **kw)
    for twin in empty[1:]:
        np.testing.assert_array_equal(twin, empty[0])
    np.testing.assert_allclose(generate(reference, "MI", seed=4, model=tiny_model, **kw)[0], one[0], atol=1e-4)

    from ecgtwin.cli.generate import main as generate_main  # the command line's empty condition is the same one
    record = Path(__file__).resolve().parent.parent / "data/ptbxl_sample/records100/01000/01495_lr"
    out = tmp_path / "cli"
    assert generate_main(["--reference", str(record), "--condition", "none", "--seed", "4", "--steps", "2",
                          "--checkpoint", str(tiny_model.checkpoint_path), "--out", str(out), "--no-progress"]) == 0
    written = read_reference(next(out.glob("*.hea")), target_fs=100).signal
    np.testing.assert_allclose(written, empty[0], atol=1e-3)


def test_estimate_is_positive_and_scales_with_the_number_of_twins(tiny_model: TwinModel,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import ecgtwin.api

    assert tiny_model.estimate_seconds(4, batch_size=4) > 0  # a real timing
    ticks = iter(range(10**6))
    monkeypatch.setattr(ecgtwin.api.time, "perf_counter", lambda: 0.1 * next(ticks))  # every timed step: 0.1 s
    one_batch = tiny_model.estimate_seconds(4, batch_size=4)
    assert tiny_model.estimate_seconds(400, batch_size=4) == pytest.approx(100 * one_batch)
    assert tiny_model.estimate_seconds(401, batch_size=4) == pytest.approx(101 * one_batch)


def test_preprocessed_references_are_not_filtered_twice(tiny_model: TwinModel, sample_root: Path) -> None:
    raw = read_reference(sample_root / "records100" / "01000" / "01495_lr").signal
    filtered = tiny_model._preprocess(raw[None])[0]  # what the model does to a raw reference (0.5 Hz high-pass)
    assert not np.allclose(filtered, raw, atol=1e-3)
    spec = dict(labels=["MI"], reference_labels=["NORM"], reference_hr=70.0)
    from_raw = tiny_model.base_vectors([TwinSpec(raw, **spec)])
    from_cache = tiny_model.base_vectors([TwinSpec(filtered, preprocessed=True, **spec)])
    twice = tiny_model.base_vectors([TwinSpec(filtered, **spec)])
    np.testing.assert_allclose(from_cache, from_raw, atol=1e-5)  # the same filter, applied once
    assert not np.allclose(twice, from_raw, atol=1e-5)  # what the harness used to do
