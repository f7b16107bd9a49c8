"""Evaluation harness end to end on the bundled sample with tiny real models, plus known-answer checks of its helpers."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.api import TwinModel
from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.eval.harness import base_vectors_of, evaluate
from ecgtwin.eval.harness_data import select_pairs, twin_specs
from ecgtwin.eval.harness_metrics import consistency_section, fidelity_metrics
from ecgtwin.eval.identification import identification_accuracy
from ecgtwin.eval.report import to_jsonable

from bundles import tiny_bundle

N_PAIRS = 6


@pytest.fixture(scope="module")
def models(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TwinModel, TwinModel]:
    folder = tmp_path_factory.mktemp("bundles")
    return TwinModel.load(tiny_bundle(sample_root, folder, True)), TwinModel.load(tiny_bundle(sample_root, folder, False))


@pytest.fixture(scope="module")
def run(models, sample_datamodule, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    classifier = ECGClassifier(len(sample_datamodule.vocabulary), widths=(8, 16), head_dim=16).eval()
    out = tmp_path_factory.mktemp("report")
    report = evaluate(models[0], sample_datamodule, classifier, out, max_pairs=N_PAIRS, steps=2, population_model=models[1],
                      n_extreme=3, n_boot=20, downstream=True, downstream_max_pairs=8, downstream_epochs=1, personalized=True,
                      personal_max_patients=3, personal_per_condition=1, personal_steps=2, progress=False,
                      settings={"classifier": "random tiny"})
    return report, out


def test_report_files_written_and_json_matches(run) -> None:  # type: ignore[no-untyped-def]
    report, out = run
    assert json.loads((out / "report.json").read_text()) == report
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["downstream.png", "example_0.png", "example_1.png", "example_2.png", "hr_target_vs_measured.png",
                    "intervals_hist.png", "privacy_closest.png"]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    for heading in ("Settings", "Fidelity", "Personal consistency", "macro-AUROC", "HR MAE", "extreme HR", "Realism", "Clinical validity", "Privacy",
                    "Personalised diagnosis", "TSTR", "TRTS"):
        assert heading in md
    header = next(line for line in md.splitlines() if line.startswith("| metric | twin"))
    assert "copy-the-reference" in header and "population model" in header and "real" in header


def test_settings_record_the_run(run, models, sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    s = run[0]["settings"]
    assert s["checkpoint_hash"] == models[0].checkpoint_hash and s["population_checkpoint_hash"] == models[1].checkpoint_hash
    from ecgtwin.pipeline import DEFAULT_SAMPLING as D  # only the steps are given: the rest is the default

    assert (s["sampler"], s["steps"], s["guidance_condition"], s["guidance_person"], s["spacing"]) == (
        D.sampler, 2, D.guidance_condition, D.guidance_person, D.spacing)
    assert s["n_pairs"] == N_PAIRS and s["folds"]["test"] == [8] and s["classifier"] == "random tiny"
    assert s["feature_space"] == "classifier penultimate" and s["n_extreme"] == 3


def test_every_section_has_its_baselines_and_finite_numbers(run, sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    report = run[0]
    for name in ("twin", "copy", "population", "real"):
        assert name in report["fidelity"] and name in report["clinical"] and name in report["controllability"]["hr"]
        assert name in report["controllability"]["auroc"]
    n_fidelity = report["settings"]["n_fidelity"]
    assert 1 <= n_fidelity <= N_PAIRS // 2
    for name in ("twin", "copy", "population", "real"):  # every arm at the same matched n
        fid = report["fidelity"][name]
        assert fid["n"] == n_fidelity and fid["fd"] >= 0 and fid["fd_low"] <= fid["fd_high"] and math.isfinite(fid["kid"])
    for name in ("twin", "copy", "population"):
        assert -1 <= report["consistency"][name]["cosine_mean"] <= 1 + 1e-9
        assert 0 <= report["consistency"][name]["id_top1"] <= report["consistency"][name]["id_top5"] <= 1
        assert 0 <= report["controllability"]["auroc"][name]["macro_auroc"] <= 1
    realism = report["realism"]
    assert set(realism) == {"twin", "copy", "population", "real"}
    for name in ("twin", "copy", "population"):
        row = realism[name]
        assert row["amplitude_ratio"] > 0 and row["correlation_error"] >= 0 and row["noise_ratio_35_50Hz"] > 0
        assert row["c2st_n"] == 2 * N_PAIRS and (row["c2st_auroc"] is None or 0 <= row["c2st_auroc"] <= 1)
    assert realism["real"]["limb_residual_mV"] < 0.01  # real limb leads obey the laws
    assert {"limb_residual_mV", "amplitude_ratio_V1", "rr_regular_share", "spurious_beat_share", "sr_regular_share",
            "afib_irregular_share"} <= set(realism["twin"])
    privacy = report["privacy"]
    assert set(privacy) == {"twin", "copy", "population", "real"}
    for space in ("signal", "spectrum", "features"):
        assert privacy["real"][f"{space}_threshold"] > 0
        for name in ("twin", "copy", "population"):
            row = privacy[name]
            assert row[f"{space}_nn_train_median"] > 0 and 0 <= row[f"{space}_memorized_share"] <= 1
    assert privacy["copy"]["signal_target_median"] > 0
    assert {"real", "other_patients", "chance"} <= set(report["consistency"])
    assert 0 < report["consistency"]["chance"]["id_top1"] < 1
    assert report["controllability"]["hr"]["twin"]["mae"] >= 0
    assert report["controllability"]["hr"]["real"]["mae"] < 5  # targets' metadata HR is measured on the same signals
    for name in ("twin", "population"):
        row = report["controllability"]["extreme_hr"][name]
        assert row["n_45"] + row["n_140"] > 0 and {"mae_45", "mean_140"} <= set(row)
    assert report["clinical"]["real"]["einthoven_mV"] < 0.01 and report["clinical"]["real"]["goldberger_mV"] < 0.01  # real limb leads obey the laws
    arms = report["downstream"]["metrics"]
    assert set(arms) == {"real", "real_matched", "twin", "population", "real+twin", "real+population"}
    assert arms["twin"]["n_train"] == arms["real_matched"]["n_train"] == 8
    assert arms["real+twin"]["n_train"] == arms["real"]["n_train"] + 8
    for row in arms.values():
        assert row["ci_low"] <= row["macro_auroc"] <= row["ci_high"] and row["best_epoch"] == 0
    assert set(report["downstream"]["trts"]) == {"real", "twin", "population"}
    personal = report["personalized"]
    assert set(personal["metrics"]) == {"none", "first_ecg", "twin", "population"}
    assert personal["settings"]["patients"] == 3 and personal["settings"]["twins"] == 3 * len(sample_datamodule.vocabulary)
    for arm in ("first_ecg", "twin", "population"):
        row = personal["metrics"][arm]
        assert row["delta_accuracy_low"] <= row["delta_accuracy"] <= row["delta_accuracy_high"]
        assert row["n"] == personal["metrics"]["none"]["n"] == personal["settings"]["later_ecgs"]
    assert report["clinical"]["real"]["qrs_ms_detected"] > 0.5 and 40 < report["clinical"]["real"]["qrs_ms_median"] < 200


def test_copy_baseline_has_ibe_cosine_exactly_one(run, models, sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    assert run[0]["consistency"]["copy"]["cosine_mean"] == pytest.approx(1.0, abs=1e-6)
    pairs = select_pairs(sample_datamodule, 4, seed=1)
    z = base_vectors_of(models[0], pairs.reference, pairs.reference_labels, pairs.reference_meta)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    section = consistency_section({"twin": z}, z, z[::-1], pairs.patient_id, pairs.reference_record, pairs.target_record)
    assert section["twin"]["cosine_mean"] == pytest.approx(1.0, abs=1e-6) == section["copy"]["cosine_mean"]


def test_sections_reach_the_report_as_they_finish_and_a_rerun_skips_them(models, sample_datamodule, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import ecgtwin.eval.harness as harness

    kwargs = dict(max_pairs=4, steps=2, n_extreme=1, max_clinical=2, n_boot=5, privacy_max_train=20, progress=False)

    def killed(*args, **kw):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("killed during the realism section")

    monkeypatch.setattr(harness, "realism_section", killed)
    with pytest.raises(KeyboardInterrupt):
        evaluate(models[0], sample_datamodule, None, tmp_path, **kwargs)
    md = (tmp_path / "report.md").read_text()  # the finished sections are already in the report
    assert "Fidelity" in md and "Personal consistency" in md and "HR MAE" in md and "Realism" not in md
    assert sorted(p.stem for p in (tmp_path / "sections").glob("*.json")) == ["consistency", "controllability", "fidelity"]
    with np.load(tmp_path / "twins.npz") as saved:
        twins, real = saved["twin"], saved["real"]
        assert twins.shape == real.shape == (4, 12, 1000) and {"copy", "patient_id", "target_labels"} <= set(saved.files)
    monkeypatch.undo()

    def no_generation(*args, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("the twins were saved: nothing is generated again")

    monkeypatch.setattr(TwinModel, "generate", no_generation)
    report = evaluate(models[0], sample_datamodule, None, tmp_path, **{**kwargs, "n_extreme": 1})
    assert "reused from an earlier run of the same command: twins, fidelity, consistency, controllability" in " ".join(report["notes"])
    assert "realism" in report and "privacy" in report and "Realism" in (tmp_path / "report.md").read_text()
    with np.load(tmp_path / "twins.npz") as saved:
        np.testing.assert_array_equal(saved["twin"], twins)


def test_identification_known_answer() -> None:
    rng = np.random.default_rng(0)
    z_target = rng.normal(size=(8, 16))  # 8 patients, well separated directions
    patients, records = np.arange(8), np.arange(100, 108)
    twins = {"twin": z_target + 1e-3 * rng.normal(size=(8, 16)), "population": rng.normal(size=(8, 16))}
    section = consistency_section(twins, z_target + 0.01, z_target, patients, records - 50, records)
    assert section["twin"]["id_top1"] == 1.0
    assert section["chance"]["id_top1"] == pytest.approx(1 / 8) and section["chance"]["id_top5"] == pytest.approx(5 / 8)
    assert section["other_patients"]["cosine_mean"] < 0.5 < section["real"]["cosine_mean"]


def test_twins_that_copy_their_reference_score_exactly_the_copy_baseline() -> None:
    """Chained pairs (record 1 -> 2 -> 3 of a patient): a reference is also another pair's target. A twin that
    merely copies its reference must not find that very record in the gallery, exactly as the copy baseline."""
    rng = np.random.default_rng(1)
    patients = np.array([0, 0, 1, 1, 2, 3, 4, 5])
    reference_record = np.array([10, 11, 20, 21, 30, 40, 50, 60])
    target_record = np.array([11, 12, 21, 22, 31, 41, 51, 61])  # records 11 and 21 are a reference AND a target
    z_target = rng.normal(size=(8, 16))
    z_reference = rng.normal(size=(8, 16))
    z_reference[1], z_reference[3] = z_target[0], z_target[2]  # the same record encodes to the same base vector
    section = consistency_section({"twin": z_reference.copy()}, z_reference, z_target, patients, reference_record,
                                  target_record)
    for key in ("cosine_mean", "id_top1", "id_top5"):
        assert section["twin"][key] == section["copy"][key]
    # without the exclusion, twins 1 and 3 would hit their own source record (cosine 1) in the gallery
    assert section["twin"]["id_top1"] < 1.0
    leaky = identification_accuracy(z_reference, z_target, patients, patients, (1,), -1 - np.arange(8), target_record)
    assert leaky["top1"] > section["twin"]["id_top1"]


def test_real_vs_real_identical_sets_score_perfectly() -> None:
    x = np.random.default_rng(0).normal(size=(40, 6))
    same = fidelity_metrics(x, x, k=3)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and abs(same["mmd"]) < 0.05  # unbiased: O(1/N) around 0
    shifted = fidelity_metrics(x + 3.0, x, k=3)
    assert shifted["fid"] == pytest.approx(9.0 * 6, rel=1e-6) and shifted["precision"] < 0.2 and shifted["mmd"] > 0.5
    tiny = fidelity_metrics(x[:3], x[:3], k=3)  # too few rows for k-NN: NaN, not a crash
    assert math.isnan(tiny["precision"]) and math.isfinite(tiny["fid"])


def test_twin_specs_ask_for_the_target_condition(models, sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    model = models[0]
    pairs = select_pairs(sample_datamodule, 3, seed=0)
    specs = twin_specs(model, pairs, seed=5, hr_override=140.0)
    for i, spec in enumerate(specs):
        assert spec.hr == 140.0 and spec.seed == 5 + i
        assert list(spec.labels) == model.vocabulary.decode(pairs.target_labels[i])
        assert list(spec.reference_labels) == model.vocabulary.decode(pairs.reference_labels[i])
        np.testing.assert_array_equal(spec.reference, pairs.reference[i])
        assert pairs.patient_id[i] == sample_datamodule.cache.metadata.set_index("record_id").loc[pairs.reference_record[i], "patient_id"]


def test_bad_input_is_refused(models, sample_datamodule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="max_pairs"):
        evaluate(models[0], sample_datamodule, None, tmp_path, max_pairs=0, progress=False)
    with pytest.raises(ValueError, match="personalised"):
        evaluate(models[1], sample_datamodule, None, tmp_path, max_pairs=2, progress=False)
    assert to_jsonable({"a": np.float32("nan"), "b": [np.int64(2), float("inf")]}) == {"a": None, "b": [2, None]}


def test_cli_help_is_fast_and_missing_files_are_named(tmp_path: Path) -> None:
    code = ("import sys; from ecgtwin.cli.evaluate import build_parser; build_parser().format_help(); "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    from ecgtwin.cli.evaluate import default_split, detect_source, main, present_folds

    assert main(["--data-root", str(tmp_path)]) == 2
    assert main(["--classifier", str(tmp_path / "nope.ckpt")]) == 2
    assert main(["--personalized"]) == 2  # fine-tunes a classifier: --classifier is required
    assert main(["--downstream", "--downstream-epochs", "0"]) == 2
    assert main(["--threads", "0"]) == 2
    with pytest.raises(SystemExit):  # one population baseline at a time
        main(["--population-null-base", "--population-checkpoint", str(tmp_path / "p.pt")])
    assert main(["--data-root", "data/ptbxl_sample", "--source", "mimic"]) == 2  # no record_list.csv there
    assert detect_source(Path("data/ptbxl_sample")) == "ptbxl"
    (tmp_path / "record_list.csv").write_text("subject_id,study_id,file_name,ecg_time,path\n")
    assert detect_source(tmp_path) == "mimic" and detect_source(tmp_path, "mimic") == "mimic"
    with pytest.raises(FileNotFoundError, match="ptbxl_database.csv"):
        detect_source(tmp_path, "ptbxl")
    assert present_folds(Path("data/ptbxl_sample")) == list(range(1, 9))
    assert default_split(range(1, 9)) == {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [7], "test_folds": [8]}
    assert default_split(range(1, 11))["test_folds"] == [10]  # from the folds held, never from the folder's name
    assert default_split([9, 10], [9, 10]) == {"train_folds": [], "val_folds": [], "test_folds": [9, 10]}
    assert default_split(range(1, 11), [9, 10])["val_folds"] == []
