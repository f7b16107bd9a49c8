"""``ecgtwin evaluate`` on any root and folds: a PTB-XL root holding only folds 9 and 10 (the bundled sample renumbered)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.eval.classifier import ECGClassifier

from bundles import tiny_bundle

SECTION_HEADINGS = ("## Settings", "## Fidelity", "## Personal consistency", "## IBE identification", "macro-AUROC",
                    "## Controllability: HR MAE", "extreme HR", "## Realism", "## Clinical validity")


def renumbered_root(sample_root: Path, folder: Path, mapping: dict[int, int]) -> Path:
    """A PTB-XL root holding only the sample's folds in ``mapping``, renumbered (records and statements linked)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.read_csv(sample_root / "ptbxl_database.csv")
    table = table[table["strat_fold"].isin(list(mapping))].copy()
    table["strat_fold"] = table["strat_fold"].map(mapping)
    table.to_csv(folder / "ptbxl_database.csv", index=False)
    for name in ("records100", "scp_statements.csv"):
        (folder / name).symlink_to(sample_root / name)
    return folder


def tiny_classifier(sample_root: Path, path: Path) -> Path:
    """A random tiny ClassifierModule-style checkpoint over the 5 superclasses, with its vocabulary."""
    torch.manual_seed(0)
    vocab = LabelVocabulary.from_root(sample_root, "superclass")
    net = ECGClassifier(len(vocab), widths=(8, 16), head_dim=16)
    hparams = {k: net.config[k] for k in ("num_labels", "widths", "blocks", "kernel", "head_dim", "dropout")}
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "hyper_parameters": hparams,
                "ECGDataModule": {"vocabulary": vocab.to_dict()}}, path)
    return path


@pytest.fixture(scope="module")
def files(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("any_folds")
    return {"root": renumbered_root(sample_root, folder / "ptbxl_9_10", {7: 9, 8: 10}),
            "bundle": tiny_bundle(sample_root, folder), "classifier": tiny_classifier(sample_root, folder / "clf.ckpt"),
            "cache": folder / "cache", "out": folder / "report"}


def test_evaluate_runs_on_a_root_with_only_folds_9_and_10(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import ecgtwin.runtime as runtime
    from ecgtwin.cli.evaluate import main

    monkeypatch.setattr(runtime, "_override", None)  # restored afterwards: --threads fixes the process's count

    argv = ["--checkpoint", str(files["bundle"]), "--data-root", str(files["root"]), "--test-folds", "9", "10",
            "--max-pairs", "8", "--steps", "2", "--n-extreme", "2", "--max-clinical", "4", "--n-boot", "10",
            "--classifier", str(files["classifier"]), "--cache-dir", str(files["cache"]), "--out", str(files["out"]),
            "--quiet", "--threads", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ecgtwin evaluate: 1 CPU thread(s)" in printed and runtime.default_threads() == 1
    for heading in SECTION_HEADINGS:
        assert heading in printed, heading
    assert "privacy: skipped, the train split holds no records" in printed  # no train folds here: nothing needs them
    report = json.loads((files["out"] / "report.json").read_text())
    assert report["settings"]["folds"] == {"train": [], "val": [], "test": [9, 10]}
    assert report["settings"]["n_pairs"] == 8 and report["settings"]["n_extreme"] == 2
    assert report["ibe"]["bundle_ibe"]["n_queries"] > 0


def test_overlapping_folds_are_refused_before_loading(sample_root: Path, capsys: pytest.CaptureFixture) -> None:
    from ecgtwin.cli.evaluate import main

    code = main(["--data-root", str(sample_root), "--train-folds", "1-7", "--test-folds", "7", "--out", "/tmp/unused"])
    assert code == 2 and "share folds [7]" in capsys.readouterr().err
