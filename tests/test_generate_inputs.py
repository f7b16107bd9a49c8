"""generate-ecg with hostile inputs (issue 12): checks before the model loads, every bad manifest row reported,
--skip-invalid, every change to the reference recorded, --offset, consistent names and absolute paths, estimates."""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb

from ecgtwin.cli import _generate_checks
from ecgtwin.cli.generate import main
from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.io.manifest import MANIFEST_COLUMNS
from ecgtwin.io.wfdb_io import read_reference

from test_generate_cli import FakeTwinModel, comments_of, manifest_rows, records, vocabulary, written  # noqa: F401

HOSTILE_NAMES = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6", "X", "Y", "Z"]


@pytest.fixture(scope="module")
def long_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s at 500 Hz, leads named DI/DII/AVR..., Frank X/Y/Z channels, 12 NaN samples in aVR at 0.2 s and 25 s."""
    folder = tmp_path_factory.mktemp("hostile")
    t = np.arange(60 * 500) / 500
    signal = np.stack([(k + 1) * 0.1 * np.sin(2 * np.pi * 1.2 * t + k) + 0.5 * np.sin(np.pi * 1.2 * t) ** 40
                       for k in range(15)]) * (1 + t / 60)  # (15, 30000) mV, 72 bpm spikes, growing
    signal[3, 100:106] = np.nan
    signal[3, 12500:12506] = np.nan
    wfdb.wrsamp("long500", fs=500, units=["mV"] * 15, sig_name=HOSTILE_NAMES, p_signal=signal.T, fmt=["16"] * 15,
                adc_gain=[1000.0] * 15, baseline=[0] * 15, write_dir=str(folder))
    return folder / "long500"


def no_model(checkpoint: str | None, device: str) -> Any:
    raise AssertionError("the model was loaded although the input is bad")


def run(argv: list[str], model: Any) -> int:
    loader = model if callable(model) and not isinstance(model, FakeTwinModel) else (lambda c, d: model)
    return main([*argv, "--no-progress"], model_loader=loader)


# ---------------------------------------------------------------- 3: exit 2 before any model load


@pytest.fixture()
def hostile_references(tmp_path: Path, records: list[Path]) -> dict[str, tuple[Path, str]]:
    """name -> (reference path, expected message) for references that are bad before any model is known."""
    (tmp_path / "empty.hea").write_text("")
    (tmp_path / "comments.hea").write_text("# exported by a device, no record line\n")
    (tmp_path / "a_folder").mkdir()
    source = wfdb.rdrecord(str(records[0]))
    wfdb.wrsamp("frank", fs=100, units=["mV"] * 3, sig_name=["X", "Y", "Z"], p_signal=source.p_signal[:, :3],
                fmt=["16"] * 3, adc_gain=[1000.0] * 3, baseline=[0] * 3, write_dir=str(tmp_path))
    wfdb.wrsamp("nodat", fs=100, units=["mV"] * 12, sig_name=source.sig_name, p_signal=source.p_signal,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    (tmp_path / "nodat.dat").unlink()
    return {
        "missing": (tmp_path / "nope", "nope.hea: reference record not found"),
        "empty": (tmp_path / "empty", "empty.hea: empty header file"),
        "only comments": (tmp_path / "comments.hea", "comments.hea: empty header file"),
        "folder": (tmp_path / "a_folder", "a_folder: is a folder; give a WFDB record"),
        "wrong lead names": (tmp_path / "frank", "missing leads I, II, III, aVR, aVL, aVF, V1"),
        "missing .dat": (tmp_path / "nodat", "nodat.dat: missing signal file"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "only comments", "folder", "wrong lead names", "missing .dat"])
def test_bad_references_exit_2_before_the_model_loads(tmp_path: Path, hostile_references: dict, case: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path, message = hostile_references[case]
    assert run(["--reference", str(path), "--condition", "MI", "--out", str(tmp_path / "out")], no_model) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "list index out of range" not in err
    assert not (tmp_path / "out").exists()


def test_output_folder_problems_exit_2_before_the_model_loads(tmp_path: Path, records: list[Path],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--reference", str(records[0]), "--condition", "MI"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert run([*base, "--out", str(a_file / "twins")], no_model) == 2
    assert f"{a_file} is a file, not a folder" in capsys.readouterr().err
    assert run([*base, "--checkpoint", str(tmp_path), "--out", str(tmp_path / "o")], no_model) == 2
    assert "is a folder; give the model file" in capsys.readouterr().err

    def read_only(*args: Any, **kwargs: Any) -> str:  # what mkdtemp meets on a read-only or foreign folder
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_generate_checks.tempfile, "mkdtemp", read_only)
    assert run([*base, "--out", str(tmp_path / "locked")], no_model) == 2
    assert f"cannot create the output folder in {tmp_path} (permission denied)" in capsys.readouterr().err
    assert run([*base, "--out", str(tmp_path)], no_model) == 2
    assert "cannot write to the output folder (permission denied)" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_for_a_normal_user(tmp_path: Path, records: list[Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert run(["--reference", str(records[0]), "--condition", "MI", "--out", str(locked)], no_model) == 2
        assert "cannot write to the output folder (permission denied)" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------- 4: every bad row, --skip-invalid


def _hostile_manifest(tmp_path: Path, records: list[Path], long_record: Path) -> Path:
    (tmp_path / "empty.hea").write_text("")
    path = tmp_path / "requests.csv"
    path.write_text(
        "reference,condition,hr,num,offset\n"
        f"{records[0]},MI,70,2,\n"                 # line 2: valid
        f"{records[1]},MI,500,,\n"                 # line 3: hr out of range
        f"{tmp_path / 'nope'},NORM,,,\n"           # line 4: no such record
        f"{tmp_path / 'empty'},NORM,,,\n"          # line 5: empty header
        f"{records[2]},AMI,,,\n"                   # line 6: unknown label (needs the model's vocabulary)
        f"{records[0]},mi,70,,\n"                  # line 7: the twin of line 2 again (after canonical spelling)
        f"{long_record},STTC,,,20\n"               # line 8: valid, window 20-30 s
        f"{long_record},STTC,,,58\n"               # line 9: window past the end (needs the model's duration)
        f"{records[1]},NORM,,zero,\n"              # line 10: num not an integer
    )
    return path


EXPECTED_REJECTIONS = {
    3: "hr 500 outside the plausible range", 4: "nope not found (no .hea file)",
    5: "empty.hea: empty header file", 6: "condition: unknown label 'AMI'", 7: "requested twice",
    9: "shorter than the window 58-68 s", 10: "num 'zero' is not an integer",
}


def test_every_bad_row_is_reported_and_nothing_is_generated(tmp_path: Path, records: list[Path], long_record: Path,
                                                            vocabulary: LabelVocabulary,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    model, out = FakeTwinModel(vocabulary), tmp_path / "out"
    manifest = _hostile_manifest(tmp_path, records, long_record)
    assert run(["--manifest", str(manifest), "--out", str(out)], model) == 2
    err = capsys.readouterr().err
    # the rows checkable without the model are reported before it loads, all of them
    assert "4 of 9 row(s) cannot be generated, so nothing was generated" in err
    for line in (3, 4, 5, 10):
        assert re.search(rf"line {line}: .*{re.escape(EXPECTED_REJECTIONS[line])}", err), line
    assert run(["--manifest", str(manifest), "--out", str(out)], no_model) == 2  # no model needed to say so
    capsys.readouterr()

    fixed = tmp_path / "model_checked.csv"  # only rows whose problems need the model
    lines = manifest.read_text().splitlines()
    fixed.write_text("\n".join([lines[0], lines[1], lines[5], lines[6], lines[7], lines[8]]) + "\n")
    assert run(["--manifest", str(fixed), "--out", str(out)], model) == 2
    err = capsys.readouterr().err
    assert "3 of 5 row(s) cannot be generated" in err
    for line, reason in ((3, "condition: unknown label 'AMI'"), (4, "requested twice"), (6, "shorter than the window")):
        assert f"line {line}: " in err and reason in err
    assert model.calls == [] and not written(out)


def test_skip_invalid_generates_the_valid_rows_and_lists_the_rejected(tmp_path: Path, records: list[Path],
                                                                      long_record: Path, vocabulary: LabelVocabulary,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    model, out = FakeTwinModel(vocabulary), tmp_path / "out"
    manifest = _hostile_manifest(tmp_path, records, long_record)
    assert run(["--manifest", str(manifest), "--out", str(out), "--skip-invalid"], model) == 0
    assert len(written(out)) == 3  # 2 twins of line 2, 1 of line 8
    with open(out / "rejected.csv", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in rejected] == sorted(EXPECTED_REJECTIONS)
    for row in rejected:
        assert EXPECTED_REJECTIONS[int(row["line"])] in row["reason"]
    assert rejected[0]["hr"] == "500" and rejected[-1]["num"] == "zero"  # the values as written, to fix and rerun
    assert "skipping 7 of 9 row(s) (--skip-invalid)" in capsys.readouterr().err

    good = tmp_path / "good.csv"  # a clean rerun removes the stale list
    good.write_text("reference,condition,hr,num\n" f"{records[0]},MI,70,2\n")
    assert run(["--manifest", str(good), "--out", str(out), "--skip-invalid"], FakeTwinModel(vocabulary)) == 0
    assert not (out / "rejected.csv").exists()
    only_bad = tmp_path / "bad.csv"
    only_bad.write_text("reference,condition,hr\n" f"{records[0]},MI,500\n")
    assert run(["--manifest", str(only_bad), "--out", str(out), "--skip-invalid"], no_model) == 2
    assert "no valid row" in capsys.readouterr().err


# ---------------------------------------------------------------- 5: every change to the reference written down


def test_every_transformation_is_in_the_header_and_the_manifest(tmp_path: Path, long_record: Path,
                                                                vocabulary: LabelVocabulary) -> None:
    model, out = FakeTwinModel(vocabulary), tmp_path / "out"
    with pytest.warns(UserWarning, match="interpolated 6 missing"):
        assert run(["--reference", str(long_record), "--condition", "MI", "--offset", "20", "--out", str(out)],
                   model) == 0
    (name,) = written(out)
    assert name == "long500__MI__off20__s0__000"
    comments = comments_of(out, name)
    assert comments["reference_fs"] == "500 Hz -> 100 Hz (resampled)"
    assert comments["reference_window"] == "20-30 s of 60 s"
    assert comments["reference_nan_filled"] == "6"  # the other 6 NaN lie outside the window
    assert comments["reference_dropped_channels"] == "X;Y;Z"
    assert comments["reference_lead_names"] == "DI->I;DII->II;DIII->III;AVR->aVR;AVL->aVL;AVF->aVF"
    assert comments["reference_hr"] == "61.5 (estimated)"
    (row,) = manifest_rows(out)
    assert set(MANIFEST_COLUMNS) - {"record_name", "path"} <= set(comments)
    assert all(row[k] == comments[k] for k in MANIFEST_COLUMNS if k not in ("record_name", "path"))
    spec = model.specs[0]
    np.testing.assert_array_equal(spec.reference, read_reference(long_record, offset=20).signal)
    assert np.abs(spec.reference - read_reference(long_record).signal).max() > 0.01  # another window


def test_offset_window_is_exact_and_checked(records: list[Path], long_record: Path) -> None:
    raw = wfdb.rdrecord(str(records[0])).p_signal.T  # (12, 1000) mV at 100 Hz, PTB-XL order = LEADS
    with pytest.raises(Exception, match="shorter than the window 5-15 s"):
        read_reference(records[0], offset=5)
    short = read_reference(records[0], seconds=4, offset=5.5)
    np.testing.assert_allclose(short.signal, raw[:, 550:950], atol=1e-6)
    assert short.transformations()["reference_window"] == "5.5-9.5 s of 10 s"
    ref = read_reference(long_record, offset=20)
    whole = read_reference(long_record, seconds=60)  # resampled in one piece
    np.testing.assert_allclose(ref.signal[:, 50:-50], whole.signal[:, 2050:2950], atol=2e-3)  # no edge effect inside


def test_reference_hr_given_is_recorded_as_given(tmp_path: Path, records: list[Path],
                                                 vocabulary: LabelVocabulary) -> None:
    out = tmp_path / "out"
    assert run(["--reference", str(records[0]), "--condition", "MI", "--reference-hr", "65", "--out", str(out)],
               FakeTwinModel(vocabulary)) == 0
    assert comments_of(out, written(out)[0])["reference_hr"] == "65.0 (given)"


# ---------------------------------------------------------------- 7: paths, names, empty conditions, estimates


def test_manifest_paths_are_absolute_however_out_was_given(tmp_path: Path, records: list[Path],
                                                           vocabulary: LabelVocabulary,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for out in ("rel", "./rel/../rel2", str(tmp_path / "abs")):
        assert run(["--reference", str(records[0]), "--condition", "MI", "--out", out], FakeTwinModel(vocabulary)) == 0
        (row,) = manifest_rows(Path(out))
        assert Path(row["path"]).is_absolute() and Path(row["path"]).is_file()
        assert Path(row["reference"]).is_absolute() and "guidance_person" in row and "guidance_base" not in row


def test_old_manifest_is_upgraded_and_resumes(tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary) -> None:
    out = tmp_path / "out"
    # manifests before the spacing column were all made on the quadratic grid, which their upgrade assumes
    argv = ["--reference", str(records[0]), "--condition", "MI", "--num", "2", "--out", str(out), "--spacing", "quadratic"]
    assert run(argv, FakeTwinModel(vocabulary)) == 0
    rows = manifest_rows(out)
    old = ["record_name", "path", "reference", "labels", "hr", "age", "sex", "sampler", "steps", "guidance_base",
           "guidance_condition", "seed", "checkpoint"]  # the columns before issue 12
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(old)
        for r in rows:
            writer.writerow([r[{"labels": "target_labels", "guidance_base": "guidance_person"}.get(c, c)] for c in old])
    rerun = FakeTwinModel(vocabulary)
    assert run(argv, rerun) == 0 and rerun.calls == []  # both twins recognised as done
    assert list(manifest_rows(out)[0]) == list(MANIFEST_COLUMNS)


def test_empty_condition_means_no_label_on_the_command_line_too(tmp_path: Path, records: list[Path],
                                                                vocabulary: LabelVocabulary) -> None:
    model = FakeTwinModel(vocabulary)
    for text, out in (("none", "a"), ("", "b")):
        assert run(["--reference", str(records[0]), "--condition", text, "--out", str(tmp_path / out)], model) == 0
        assert written(tmp_path / out) == [f"{records[0].name}__none__s0__000"]
        assert comments_of(tmp_path / out, written(tmp_path / out)[0])["target_labels"] == "none"
    assert [list(s.labels) for s in model.specs] == [[], []]


def test_a_large_run_prints_an_estimate_before_starting(tmp_path: Path, records: list[Path],
                                                        vocabulary: LabelVocabulary,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    model = FakeTwinModel(vocabulary, fail_after=0)  # Ctrl-C at the first twin: only the estimate matters
    assert run(["--reference", str(records[0]), "--condition", "MI", "--num", "100000", "--batch-size", "64",
                "--out", str(tmp_path / "out")], model) == 130
    err = capsys.readouterr().err
    assert "100000 twin(s) to generate: about 13 h 53 min (0.50 s per twin" in err
    assert "about 2.60 GB" in err and err.index("to generate") < err.index("interrupted")
