"""generate-ecg --edit --strength: the real CLI path on a tiny v2 bundle (names, provenance, 16-bit round trip)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgtwin.cli.generate import main
from ecgtwin.io.wfdb_io import read_reference
from tests.test_generator_v2 import v2_bundle, vocab  # noqa: F401  (fixtures)

RECORD = Path("records100") / "01000" / "01495_lr"


def _comments(hea_base: Path) -> dict[str, str]:
    header = wfdb.rdheader(str(hea_base))
    return dict(c.split(": ", 1) for c in header.comments if ": " in c)


def test_edit_writes_named_records_with_provenance(sample_root: Path, v2_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "edits"
    argv = ["--reference", str(sample_root / RECORD), "--condition", "MI", "--edit", "--strength", "0.3",
            "--checkpoint", str(v2_bundle), "--sampler", "ddpm", "--steps", "6", "--num", "2", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 2 and all("__edit0p3__" in r["record_name"] for r in rows)
    assert {r["mode"] for r in rows} == {"edit strength 0.3"}
    assert _comments(out / rows[0]["record_name"])["mode"] == "edit strength 0.3"
    assert main(argv) == 0  # a rerun resumes: nothing new
    assert len(list(csv.DictReader((out / "manifest.csv").open()))) == 2
    # twins and edits of the same request live side by side
    assert main([a for a in argv if a not in ("--edit", "--strength", "0.3")]) == 0
    modes = [r["mode"] for r in csv.DictReader((out / "manifest.csv").open())]
    assert modes.count("twin") == 2 and modes.count("edit strength 0.3") == 2


def test_edit_near_zero_strength_returns_the_recording(sample_root: Path, v2_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "still"
    assert main(["--reference", str(sample_root / RECORD), "--condition", "MI", "--edit", "--strength", "0.0001",
                 "--checkpoint", str(v2_bundle), "--out", str(out), "--no-progress"]) == 0
    name = next(csv.DictReader((out / "manifest.csv").open()))["record_name"]
    edited = wfdb.rdrecord(str(out / name)).p_signal.T  # (12, L) mV from 16-bit storage
    original = read_reference(sample_root / RECORD).signal
    assert float(np.abs(edited - original).max()) <= 1e-3  # within one 16-bit step of the writer's gain


@pytest.mark.parametrize(("extra", "message"), [(["--strength", "0.3"], "applies to --edit"),
                                                (["--edit"], "needs --strength"),
                                                (["--edit", "--strength", "1.5"], "in (0, 1]"),
                                                (["--edit", "--strength", "0"], "in (0, 1]")])
def test_bad_edit_options_exit_2_before_loading(sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 extra: list[str], message: str) -> None:
    def no_model(*_: object) -> None:
        raise AssertionError("the model must not be loaded for bad options")

    code = main(["--reference", str(sample_root / RECORD), "--condition", "MI", "--out", str(tmp_path / "o"), *extra],
                model_loader=no_model)
    assert code == 2 and message in capsys.readouterr().err
