"""generate-ecg --rhythm and the manifest column ``rhythm`` (issue 12), on a tiny model with rhythm tokens."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgtwin.api import TwinModel
from ecgtwin.cli.generate import main

from bundles import tiny_bundle

RECORD = "records100/01000/01495_lr"


@pytest.fixture(scope="module")
def rhythm_bundle(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle(sample_root, tmp_path_factory.mktemp("rhythm"), level="superclass_rhythm")


def run(argv: list[str]) -> int:
    return main([*argv, "--steps", "2", "--no-progress"])


def header(out: Path, name: str) -> dict[str, str]:
    return dict(c.split(": ", 1) for c in wfdb.rdheader(str(out / name)).comments)


def test_rhythm_option_reaches_the_twin_and_is_recorded(rhythm_bundle: Path, sample_root: Path, tmp_path: Path) -> None:
    ref, out = str(sample_root / RECORD), tmp_path / "out"
    base = ["--reference", ref, "--condition", "NORM", "--checkpoint", str(rhythm_bundle), "--out", str(out)]
    assert run(base) == 0 and run([*base, "--rhythm", "afib"]) == 0 and run([*base, "--rhythm", "none"]) == 0
    names = {"default": "01495_lr__NORM__s0__000", "AFIB": "01495_lr__NORM__rhythmAFIB__s0__000",
             "none": "01495_lr__NORM__rhythmnone__s0__000"}
    assert sorted(p.stem for p in out.glob("*.hea")) == sorted(names.values())
    assert header(out, names["default"])["rhythm"] == "SR (default)"
    assert header(out, names["AFIB"])["rhythm"] == "AFIB" and header(out, names["none"])["rhythm"] == "none"
    with open(out / "manifest.csv", newline="") as handle:
        rows = {r["record_name"]: r["rhythm"] for r in csv.DictReader(handle)}
    assert rows == {names["default"]: "SR (default)", names["AFIB"]: "AFIB", names["none"]: "none"}
    twins = {k: wfdb.rdrecord(str(out / n)).p_signal for k, n in names.items()}
    assert np.abs(twins["AFIB"] - twins["default"]).mean() > 1e-3  # the rhythm token reaches the output

    model = TwinModel.load(rhythm_bundle)  # the API's defaults give the same twin
    assert model.target_labels(["NORM"]) == ["NORM", "SR"] and model.target_labels(["NORM"], "none") == ["NORM"]


def test_rhythm_errors_exit_2(rhythm_bundle: Path, sample_root: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    ref = str(sample_root / RECORD)
    plain = tiny_bundle(sample_root, tmp_path)  # superclass vocabulary: no rhythm tokens (like the bundled model)
    assert run(["--reference", ref, "--condition", "MI", "--rhythm", "AFIB", "--checkpoint", str(plain),
                "--out", str(tmp_path / "a")]) == 2
    assert "this model has no rhythm tokens" in capsys.readouterr().err
    for rhythm, message in (("STTC", "'STTC' is not a rhythm label"), ("AFIBB", "unknown label 'AFIBB'")):
        assert run(["--reference", ref, "--condition", "MI", "--rhythm", rhythm, "--checkpoint", str(rhythm_bundle),
                    "--out", str(tmp_path / "b")]) == 2
        assert message in capsys.readouterr().err
    assert run(["--reference", ref, "--condition", "MI,AFIB", "--rhythm", "SR", "--checkpoint", str(rhythm_bundle),
                "--out", str(tmp_path / "c")]) == 2
    assert "conflicts with the rhythm label" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abc")


def test_manifest_rhythm_column(rhythm_bundle: Path, sample_root: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    ref = sample_root / RECORD
    requests = tmp_path / "requests.csv"
    requests.write_text("reference,condition,rhythm\n" f"{ref},MI,STACH\n" f"{ref},MI,\n" f"{ref},MI,NOPE\n")
    out = tmp_path / "out"
    assert run(["--manifest", str(requests), "--checkpoint", str(rhythm_bundle), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 of 3 row(s)" in err and "line 4: rhythm 'NOPE'" in err and not out.exists()
    assert run(["--manifest", str(requests), "--checkpoint", str(rhythm_bundle), "--out", str(out),
                "--skip-invalid"]) == 0
    assert sorted(p.stem for p in out.glob("*.hea")) == ["01495_lr__MI__rhythmSTACH__s0__000", "01495_lr__MI__s0__000"]
