"""Batch request manifests and the resumable output manifest (ecgtwin.io.manifest)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgtwin.io.manifest import (
    MANIFEST_COLUMNS,
    OutputManifest,
    TwinRequest,
    TwinRow,
    check_unique_record_names,
    read_request_manifest,
    split_conditions,
    twin_record_name,
)
from ecgtwin.io.wfdb_io import ECGInputError, write_twin


def _reference(folder: Path, name: str = "ref1") -> Path:
    """A header file is all the request reader checks for."""
    (folder / f"{name}.hea").write_text(f"{name} 12 100 1000\n")
    return folder / name


def _manifest(folder: Path, text: str) -> Path:
    path = folder / "requests.csv"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- request manifest


def test_read_request_manifest_parses_rows(tmp_path: Path) -> None:
    _reference(tmp_path, "ref1")
    _reference(tmp_path, "ref2")
    path = _manifest(
        tmp_path,
        "reference,condition,hr,age,sex,num,seed\n"
        "ref1.hea,IMI;AFIB,80,65,F,2,7\n"
        "\n"
        'ref2,"NORM, LVH",,,,,\n',
    )
    first, second = read_request_manifest(path)
    assert first == TwinRequest(tmp_path / "ref1.hea", ("IMI", "AFIB"), 80.0, 65.0, "F", 2, 7, line=2)
    assert first.reference_name == "ref1"
    assert second.reference == tmp_path / "ref2"  # relative to the manifest's folder
    assert (second.conditions, second.hr, second.sex, second.num, second.seed, second.line) == (("NORM", "LVH"), None, None, 1, 0, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reference,hr\nref1,80\n", "missing column.* condition"),
        ("reference,condition,sexx\nref1,IMI,M\n", "unknown column.* sexx"),
        ("reference,condition,sex\nref1,IMI,M\nref1,AFIB,X\n", "line 3: sex 'X'"),
        ("reference,condition,hr\nref1,IMI,fast\n", "line 2: hr 'fast' is not a number"),
        ("reference,condition,hr\nref1,IMI,900\n", "line 2: hr 900 outside"),
        ("reference,condition,age\nref1,IMI,-3\n", "line 2: age -3 outside"),
        ("reference,condition,num\nref1,IMI,2.5\n", "line 2: num must be an integer >= 1"),
        ("reference,condition,num\nref1,IMI,0\n", "line 2: num must be an integer >= 1"),
        ("reference,condition,seed\nref1,IMI,abc\n", "line 2: seed 'abc' is not an integer"),
        ("reference,condition\nnope,IMI\n", "line 2: reference record .*nope not found"),
        ("reference,condition\nref1,IMI,extra\n", "line 2: more fields than columns"),
        ("reference,condition\n", "no rows"),
    ],
)
def test_read_request_manifest_errors(tmp_path: Path, text: str, message: str) -> None:
    _reference(tmp_path, "ref1")
    path = _manifest(tmp_path, text)
    with pytest.raises(ECGInputError, match=message) as info:
        read_request_manifest(path)
    assert info.value.path == str(path)


def test_missing_request_manifest(tmp_path: Path) -> None:
    with pytest.raises(ECGInputError, match="request manifest not found"):
        read_request_manifest(tmp_path / "absent.csv")


def test_duplicate_requests_are_refused(tmp_path: Path) -> None:
    _reference(tmp_path, "ref1")
    path = _manifest(tmp_path, "reference,condition\nref1,IMI;AFIB\nref1,AFIB;IMI\n")  # same label set
    with pytest.raises(ValueError, match=r"requested twice \(line 2.*line 3"):
        read_request_manifest(path)
    different_seed = [TwinRequest(Path("a/r"), ("IMI",), seed=0), TwinRequest(Path("b/r"), ("IMI",), seed=1)]
    check_unique_record_names(different_seed)  # no error


def test_split_conditions() -> None:
    assert split_conditions(" IMI ; AFIB,IMI ,, ") == ("IMI", "AFIB")
    assert split_conditions("") == () == split_conditions("none") == split_conditions(" None ") == split_conditions(" ; ")


def test_record_names_are_deterministic_and_valid() -> None:
    name = twin_record_name("00004_lr", ["IMI", "AFIB"], seed=3, index=1, hr=72.5, age=60, sex="F")
    assert name == "00004_lr__AFIB-IMI__hr72p5__age60__F__s3__001"
    assert name == twin_record_name("00004_lr", ["AFIB", "IMI"], 3, 1, 72.5, 60.0, "F")
    assert twin_record_name("my rec.v2", ["1AVB"], 0, 0) == "my_rec_v2__1AVB__s0__000"
    request = TwinRequest(Path("x/00004_lr.hea"), ("NORM",), num=3, seed=9)
    assert request.record_names() == [f"00004_lr__NORM__s9__{i:03d}" for i in range(3)]


# ---------------------------------------------------------------- output manifest


def _row(name: str, out: Path) -> TwinRow:
    return TwinRow(name, str(out / f"{name}.hea"), "ref1", "IMI;AFIB", 72.0, None, "F", "ddim", 50, 2.5, 1.0, 0, "abcdef123456")


def _generate(out: Path, manifest: OutputManifest, names: list[str]) -> list[str]:
    """What generate-ecg does per twin: skip done ones, write the record, then the manifest row."""
    done = []
    for i, name in enumerate(names):
        if manifest.already_written(name):
            continue
        write_twin(out, name, np.full((12, 50), 0.1 * i) + np.sin(np.arange(50))[None], 100, ["x"])
        manifest.append(_row(name, out))
        done.append(name)
    return done


def test_resume_skips_exactly_the_written_twins(tmp_path: Path) -> None:
    names = TwinRequest(tmp_path / "ref1", ("IMI", "AFIB"), num=5).record_names()
    first = OutputManifest(tmp_path)
    assert _generate(tmp_path, first, names[:3]) == names[:3]  # "crash" after 3 of 5
    resumed = OutputManifest(tmp_path)  # a new run reads the file back
    assert [resumed.already_written(n) for n in names] == [True, True, True, False, False]
    (tmp_path / f"{names[1]}.hea").unlink()  # the user deleted one twin: it is redone
    assert _generate(tmp_path, OutputManifest(tmp_path), names) == [names[1], names[3], names[4]]
    final = OutputManifest(tmp_path)
    assert all(final.already_written(n) for n in names)
    assert sorted(r["record_name"] for r in final.rows()) == sorted(names)
    lines = (tmp_path / "manifest.csv").read_text().splitlines()
    assert lines[0] == ",".join(MANIFEST_COLUMNS) and len(lines) == 1 + 6  # header once, 3 + 3 rows


def test_files_without_row_are_not_done(tmp_path: Path) -> None:
    write_twin(tmp_path, "orphan", np.ones((12, 20)) * np.arange(20), 100)  # crash between write and append
    assert not OutputManifest(tmp_path).already_written("orphan")


def test_row_cut_by_a_crash_is_ignored_and_next_row_is_clean(tmp_path: Path) -> None:
    manifest = OutputManifest(tmp_path)
    _generate(tmp_path, manifest, ["t0", "t1"])
    path = tmp_path / "manifest.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex("ref1")])  # the last row loses its tail (no newline at the end)
    resumed = OutputManifest(tmp_path)
    assert resumed.already_written("t0") and not resumed.already_written("t1")
    resumed.append(_row("t1", tmp_path))
    again = OutputManifest(tmp_path)
    assert again.already_written("t1")
    assert again.rows()[-1]["checkpoint"] == "abcdef123456" and again.rows()[-1]["age"] == ""


def test_foreign_csv_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ECGInputError, match="not an ecgtwin output manifest"):
        OutputManifest(tmp_path)
