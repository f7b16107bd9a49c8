"""``generate-ecg`` (ecgtwin.cli.generate) with a fake TwinModel on real PTB-XL references.

The fake follows the ``ecgtwin.api.TwinModel`` contract of docs/DESIGN.md
(vocabulary, fs, length, checkpoint_hash, validate, generate); its twin is
``0.9 * reference + 0.05 * N(0, 1)`` drawn from the spec's seed, so every
written sample can be checked against the expected value.
"""
from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb

from ecgtwin.cli.generate import main
from ecgtwin.constants import LEADS
from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.io.manifest import twin_record_name
from ecgtwin.io.wfdb_io import read_reference

QUANTUM_MV = 0.5e-3 + 1e-6  # half a 1 uV ADC step: the error of a written twin


def fake_twin(reference: np.ndarray, seed: int) -> np.ndarray:
    """(12, L) mV: what FakeTwinModel generates for a spec."""
    return 0.9 * reference + 0.05 * np.random.default_rng(seed).standard_normal(reference.shape)


class FakeTwinModel:
    """Stand-in for ``ecgtwin.api.TwinModel``; ``fail_after=k`` raises ``failure`` while generating twin k + 1."""

    fs = 100
    length = 1000
    checkpoint_hash = "0123456789ab"
    checkpoint_path = Path("/models/fake-twin.ckpt")

    def __init__(self, vocabulary: LabelVocabulary, fail_after: int | None = None,
                 failure: type[BaseException] = KeyboardInterrupt) -> None:
        self.vocabulary = vocabulary
        self.fail_after, self.failure = fail_after, failure
        self.calls: list[tuple[list[Any], dict[str, Any]]] = []
        self.generated = 0

    def validate(self, spec: Any) -> None:
        for label in list(spec.labels) + list(spec.reference_labels or []):
            try:
                self.vocabulary.index(label)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        if spec.reference.shape != (12, self.length):
            raise ValueError(f"reference must be (12, {self.length}), got {spec.reference.shape}")

    def target_labels(self, labels: Any, rhythm: str | None = None) -> list[str]:
        if rhythm is not None and rhythm.lower() != "none":
            raise ValueError(f"this model has no rhythm tokens; it cannot be asked for rhythm {rhythm!r}")
        return list(labels)

    def reference_heart_rate(self, signal: np.ndarray) -> float:
        return 61.5

    def estimate_seconds(self, num: int, options: Any, batch_size: int) -> float:
        return 0.5 * num

    def generate(self, specs: list[Any], batch_size: int = 16, progress: bool = True, options: Any = None) -> np.ndarray:
        self.calls.append((list(specs), dict(sampler=options.sampler, steps=options.num_steps,
                                             guidance_condition=options.guidance_condition,
                                             guidance_person=options.guidance_person, batch_size=batch_size)))
        out = []
        for spec in specs:
            if self.fail_after is not None and self.generated >= self.fail_after:
                raise self.failure()
            out.append(fake_twin(spec.reference, spec.seed))
            self.generated += 1
        return np.stack(out)  # (N, 12, L)

    @property
    def specs(self) -> list[Any]:
        return [spec for specs, _ in self.calls for spec in specs]


@pytest.fixture(scope="module")
def vocabulary(sample_root: Path) -> LabelVocabulary:
    return LabelVocabulary.from_root(sample_root, "superclass")


@pytest.fixture(scope="module")
def records(sample_root: Path) -> list[Path]:
    """Three real PTB-XL 100 Hz records of the bundled sample."""
    return [h.with_suffix("") for h in sorted((sample_root / "records100").glob("*/*_lr.hea"))[:3]]


def run(argv: list[str], model: FakeTwinModel) -> int:
    return main([*argv, "--no-progress"], model_loader=lambda checkpoint, device: model)


def written(out: Path) -> list[str]:
    return sorted(p.stem for p in out.glob("*.hea"))


def manifest_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def comments_of(out: Path, name: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in wfdb.rdheader(str(out / name)).comments)


def copy_with_comments(record: Path, folder: Path, name: str, comments: list[str], leads: int = 12) -> Path:
    """Re-write a real record (first ``leads`` channels) with wfdb itself, adding header comments."""
    source = wfdb.rdrecord(str(record))
    wfdb.wrsamp(name, fs=source.fs, units=source.units[:leads], sig_name=source.sig_name[:leads],
                p_signal=source.p_signal[:, :leads], fmt=["16"] * leads, adc_gain=[1000.0] * leads,
                baseline=[0] * leads, comments=comments, write_dir=str(folder))
    return folder / name


# ---------------------------------------------------------------- one reference


def test_twin_round_trips_through_wfdb_with_provenance(tmp_path: Path, records: list[Path],
                                                       vocabulary: LabelVocabulary, capsys) -> None:  # type: ignore[no-untyped-def]
    ref = copy_with_comments(records[0], tmp_path, "patient_a", ["Age: 56", "Sex: Female"])
    model, out = FakeTwinModel(vocabulary), tmp_path / "out"
    rc = run(["--reference", str(ref) + ".hea", "--condition", "sttc, mi", "--hr", "80", "--sampler", "ddim",
              "--steps", "10", "--guidance-condition", "2.5", "--guidance-person", "0.5", "--seed", "7",
              "--out", str(out)], model)
    assert rc == 0
    name = twin_record_name("patient_a", ("MI", "STTC"), 7, 0, hr=80.0)
    assert written(out) == [name] and name == "patient_a__MI-STTC__hr80__s7__000"

    # what the model was asked for
    (spec,), kwargs = model.calls[0]
    assert kwargs == dict(sampler="ddim", steps=10, guidance_condition=2.5, guidance_person=0.5, batch_size=16)
    reference = read_reference(ref, target_fs=100, seconds=10.0)
    np.testing.assert_array_equal(spec.reference, reference.signal)
    assert list(spec.labels) == ["STTC", "MI"] and spec.hr == 80.0 and spec.age is None and spec.sex is None
    assert spec.seed == 7 and spec.reference_labels is None and spec.reference_hr == 61.5  # the model's estimate
    assert (spec.reference_age, spec.reference_sex) == (56.0, "F")  # from the header comments

    # what was written
    record = wfdb.rdrecord(str(out / name))
    assert record.sig_name == list(LEADS) and record.units == ["mV"] * 12
    assert record.fs == 100 and record.p_signal.shape == (1000, 12)
    np.testing.assert_allclose(record.p_signal.T, fake_twin(reference.signal, 7), atol=QUANTUM_MV)
    comments = comments_of(out, name)
    assert comments["reference"] == str(ref.resolve())
    assert comments["target_labels"] == "MI;STTC"
    assert (comments["hr"], comments["age"], comments["sex"]) == ("80", "unknown", "unknown")
    assert (comments["reference_age"], comments["reference_sex"]) == ("56", "F")
    assert comments["reference_hr"] == "61.5 (estimated)"
    assert comments["reference_fs"] == "100 Hz (as recorded)" and comments["reference_window"] == "0-10 s of 10 s"
    assert (comments["reference_nan_filled"], comments["reference_dropped_channels"]) == ("0", "none")
    assert comments["reference_lead_names"] == "AVR->aVR;AVL->aVL;AVF->aVF"  # PTB-XL writes AVR
    assert (comments["sampler"], comments["steps"], comments["seed"]) == ("ddim", "10", "7")
    assert (comments["guidance_condition"], comments["guidance_person"]) == ("2.5", "0.5")
    assert comments["checkpoint"] == "0123456789ab" and comments["checkpoint_file"] == "fake-twin.ckpt"
    assert comments["ecgtwin_version"] == "0.1.0"
    (row,) = manifest_rows(out)
    assert row["record_name"] == name and row["target_labels"] == "MI;STTC" and row["seed"] == "7"
    assert {k: v for k, v in row.items() if k in comments} == {k: comments[k] for k in row if k in comments}
    assert (row["sampler"], row["steps"], row["guidance_condition"], row["guidance_person"]) == ("ddim", "10", "2.5", "0.5")
    summary = capsys.readouterr().out
    assert "1 twin(s) written, 0 already there" in summary and str((out / "manifest.csv").resolve()) in summary
    assert "s per twin" in summary

    # command-line reference facts win over the header; --overwrite regenerates
    rc = run(["--reference", str(ref), "--condition", "MI,STTC", "--hr", "80", "--sampler", "ddim", "--steps", "10",
              "--seed", "7", "--reference-age", "40", "--reference-sex", "m", "--reference-hr", "65",
              "--reference-condition", "norm", "--out", str(out), "--overwrite"], model)
    assert rc == 0 and len(model.calls) == 2
    spec = model.calls[1][0][0]
    assert (spec.reference_age, spec.reference_sex, spec.reference_hr) == (40.0, "M", 65.0)
    assert list(spec.reference_labels) == ["NORM"]
    assert comments_of(out, name)["reference_labels"] == "NORM"


def test_num_3_gives_3_distinct_seeded_twins(tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary) -> None:
    model, out = FakeTwinModel(vocabulary), tmp_path / "out"
    assert run(["--reference", str(records[0]), "--condition", "MI", "--num", "3", "--seed", "5",
                "--out", str(out)], model) == 0
    names = [twin_record_name(records[0].name, ("MI",), 5, i) for i in range(3)]
    assert written(out) == names
    assert [s.seed for s in model.specs] == [5, 6, 7] and len(model.calls) == 1
    signals = [wfdb.rdrecord(str(out / n)).p_signal for n in names]
    assert all(np.abs(a - b).max() > 0.05 for i, a in enumerate(signals) for b in signals[i + 1:])
    reference = model.specs[0].reference
    for seed, signal in zip((5, 6, 7), signals):
        np.testing.assert_allclose(signal.T, fake_twin(reference, seed), atol=QUANTUM_MV)
    rows = manifest_rows(out)
    assert [r["record_name"] for r in rows] == names and [r["seed"] for r in rows] == ["5", "6", "7"]
    assert all(Path(r["path"]).is_file() for r in rows)


def test_plot_writes_one_png_per_twin_also_for_skipped_twins(tmp_path: Path, records: list[Path],
                                                             vocabulary: LabelVocabulary) -> None:
    model, out = FakeTwinModel(vocabulary), tmp_path / "out"
    assert run(["--reference", str(records[1]), "--condition", "NORM", "--out", str(out), "--plot"], model) == 0
    name = twin_record_name(records[1].name, ("NORM",), 0, 0)
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a run without --plot, then the same with --plot: the PNG is drawn from the written record, nothing generated
    model2, out2 = FakeTwinModel(vocabulary), tmp_path / "out2"
    assert run(["--reference", str(records[1]), "--condition", "NORM", "--out", str(out2)], model2) == 0
    assert not list(out2.glob("*.png"))
    assert run(["--reference", str(records[1]), "--condition", "NORM", "--out", str(out2), "--plot"], model2) == 0
    assert len(model2.calls) == 1 and (out2 / f"{name}.png").stat().st_size > 10_000


# ---------------------------------------------------------------- batch mode, resume, interruption


def _request_csv(tmp_path: Path, records: list[Path]) -> Path:
    path = tmp_path / "requests.csv"
    path.write_text(
        "reference,condition,hr,age,sex,num,seed\n"
        f"{records[0]},MI,,,,2,\n"
        f"{records[1]},NORM;STTC,70,,,,\n"
        f"{records[2]},CD,,,,2,3\n"
        f"{records[0]},HYP,,50,F,,\n"
    )
    return path


def test_manifest_batches_across_references_and_resumes(tmp_path: Path, records: list[Path],
                                                         vocabulary: LabelVocabulary, capsys) -> None:  # type: ignore[no-untyped-def]
    requests, out = _request_csv(tmp_path, records), tmp_path / "out"
    model = FakeTwinModel(vocabulary)
    assert run(["--manifest", str(requests), "--out", str(out), "--batch-size", "4"], model) == 0
    expected = sorted([twin_record_name(records[0].name, ("MI",), 0, i) for i in range(2)]
                      + [twin_record_name(records[1].name, ("NORM", "STTC"), 0, 0, hr=70.0)]
                      + [twin_record_name(records[2].name, ("CD",), 3, i) for i in range(2)]
                      + [twin_record_name(records[0].name, ("HYP",), 0, 0, age=50.0, sex="F")])
    assert written(out) == expected and len(manifest_rows(out)) == 6
    assert [len(specs) for specs, _ in model.calls] == [4, 2]
    first_batch = model.calls[0][0]  # twins of three references in one model call
    assert len({spec.reference.tobytes() for spec in first_batch}) == 3
    assert [s.seed for s in model.specs] == [0, 1, 0, 3, 4, 0]
    hyp = model.specs[-1]
    assert (list(hyp.labels), hyp.age, hyp.sex) == (["HYP"], 50.0, "F")
    assert "6 twin(s) written, 0 already there" in capsys.readouterr().out

    rerun = FakeTwinModel(vocabulary)
    assert run(["--manifest", str(requests), "--out", str(out), "--batch-size", "4"], rerun) == 0
    assert rerun.calls == [] and "0 twin(s) written, 6 already there (skipped)" in capsys.readouterr().out

    victim = twin_record_name(records[2].name, ("CD",), 3, 1)
    before = wfdb.rdrecord(str(out / victim)).p_signal
    (out / f"{victim}.hea").unlink()
    third = FakeTwinModel(vocabulary)
    assert run(["--manifest", str(requests), "--out", str(out), "--batch-size", "4"], third) == 0
    assert [s.seed for s in third.specs] == [4] and written(out) == expected
    np.testing.assert_array_equal(wfdb.rdrecord(str(out / victim)).p_signal, before)
    assert "1 twin(s) written, 5 already there" in capsys.readouterr().out


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_interruption_mid_batch_keeps_complete_twins_and_rerun_finishes(
    tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary, failure: type[BaseException], capsys  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "out"
    argv = ["--reference", str(records[0]), "--condition", "MI", "--num", "6", "--batch-size", "2", "--out", str(out)]
    broken = FakeTwinModel(vocabulary, fail_after=3, failure=failure)  # dies inside the second batch
    if failure is KeyboardInterrupt:
        assert run(argv, broken) == 130
    else:
        with pytest.raises(RuntimeError):
            run(argv, broken)
    assert "rerun the same command to resume" in capsys.readouterr().err
    names = [twin_record_name(records[0].name, ("MI",), 0, i) for i in range(6)]
    assert written(out) == names[:2] and [r["record_name"] for r in manifest_rows(out)] == names[:2]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.{e}" for n in names[:2] for e in ("hea", "dat")]
                                                           + ["manifest.csv"])  # no temp dirs, no stray .dat
    rerun = FakeTwinModel(vocabulary)
    assert run(argv, rerun) == 0
    assert [s.seed for s in rerun.specs] == [2, 3, 4, 5] and written(out) == names
    assert "4 twin(s) written, 2 already there" in capsys.readouterr().out
    reference = rerun.specs[0].reference
    for seed, name in enumerate(names):
        np.testing.assert_allclose(wfdb.rdrecord(str(out / name)).p_signal.T, fake_twin(reference, seed), atol=QUANTUM_MV)


# ---------------------------------------------------------------- errors: exit 2, clear message, nothing generated


@pytest.mark.parametrize(("extra", "message"), [
    (["--condition", "MII"], "unknown label 'MII' at level 'superclass'; did you mean MI"),
    (["--condition", "MI", "--reference-condition", "NROM"], "--reference-condition: unknown label 'NROM'"),
    (["--condition", "MI", "--hr", "400"], "--hr 400 is outside the plausible range 20-250"),
    (["--condition", "MI", "--age", "-3"], "--age -3 is outside the plausible range 0-120"),
    (["--condition", "MI", "--reference-hr", "5"], "--reference-hr 5 is outside"),
    (["--condition", "MI", "--num", "0"], "--num must be at least 1, got 0"),
    (["--condition", "MI", "--steps", "0"], "--steps must be at least 1, got 0"),
    (["--condition", "MI", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--condition", "MI", "--seed", "-1"], "--seed must be >= 0"),
    (["--condition", "MI", "--guidance-condition", "-1"], "--guidance-condition must be a finite number >= 0"),
    (["--condition", "MI", "--sex", "X"], "argument --sex: 'X' is not M or F"),
    (["--condition", "MI", "--sampler", "euler"], "sampler must be one of ['ddim', 'ddpm', 'dpmpp_2m'"),
    (["--condition", "MI", "--device", "tpu"], "--device 'tpu' is not cpu, cuda or cuda:N"),
    (["--condition", "MI", "--checkpoint", "/nonexistent/model.ckpt"], "--checkpoint /nonexistent/model.ckpt: file not found"),
    ([], "--condition is required with --reference"),
])
def test_bad_arguments_exit_2_before_generating(tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary,
                                                extra: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    model = FakeTwinModel(vocabulary)
    assert run(["--reference", str(records[0]), "--out", str(tmp_path / "out"), *extra], model) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert model.calls == [] and not (tmp_path / "out").exists()


def test_bad_reference_records_exit_2(tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary, capsys) -> None:  # type: ignore[no-untyped-def]
    eight = copy_with_comments(records[0], tmp_path, "eight_leads", [], leads=8)
    model = FakeTwinModel(vocabulary)
    assert run(["--reference", str(eight), "--condition", "MI", "--out", str(tmp_path / "o")], model) == 2
    assert "eight_leads.hea: missing leads V3, V4, V5, V6" in capsys.readouterr().err
    assert run(["--reference", str(tmp_path / "nope"), "--condition", "MI", "--out", str(tmp_path / "o")], model) == 2
    assert "nope.hea: reference record not found" in capsys.readouterr().err
    garbage = tmp_path / "garbage.hea"
    garbage.write_text("this is not a header\n")
    assert run(["--reference", str(garbage), "--condition", "MI", "--out", str(tmp_path / "o")], model) == 2
    assert "garbage.hea: unreadable WFDB record" in capsys.readouterr().err
    assert model.calls == []


def test_output_and_checkpoint_problems_exit_2(tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary,
                                               capsys) -> None:  # type: ignore[no-untyped-def]
    base = ["--reference", str(records[0]), "--condition", "MI"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert run([*base, "--out", str(a_file)], FakeTwinModel(vocabulary)) == 2
    assert f"--out {a_file} exists and is not a folder" in capsys.readouterr().err

    ckpt = tmp_path / "other.ckpt"
    ckpt.write_bytes(b"weights")
    for error in (ValueError("checkpoint other.ckpt was trained with label level 'all', 71 labels"),
                  FileNotFoundError("bundled model missing from ecgtwin/assets")):
        def loader(checkpoint: str | None, device: str, error: Exception = error) -> Any:
            assert (checkpoint, device) == (str(ckpt), "cpu")
            raise error

        argv = [*base, "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--no-progress"]
        assert main(argv, model_loader=loader) == 2
        assert f"cannot load {ckpt}: {error}" in capsys.readouterr().err

    class Picky(FakeTwinModel):
        def validate(self, spec: Any) -> None:
            raise ValueError("reference shape (12, 500) does not match the model")

    picky = Picky(vocabulary)
    assert run([*base, "--out", str(tmp_path / "o")], picky) == 2
    assert "command line: twin" in capsys.readouterr().err and picky.calls == []


def test_manifest_problems_exit_2(tmp_path: Path, records: list[Path], vocabulary: LabelVocabulary, capsys) -> None:  # type: ignore[no-untyped-def]
    model, out = FakeTwinModel(vocabulary), str(tmp_path / "out")
    bad_hr = tmp_path / "bad_hr.csv"
    bad_hr.write_text(f"reference,condition,hr\n{records[0]},MI,70\n{records[1]},MI,500\n")
    assert run(["--manifest", str(bad_hr), "--out", out], model) == 2
    err = capsys.readouterr().err
    assert "bad_hr.csv: 1 of 2 row(s) cannot be generated" in err and "line 3: hr 500 outside the plausible range" in err
    bad_label = tmp_path / "bad_label.csv"
    bad_label.write_text(f"reference,condition\n{records[0]},MI\n{records[1]},STTC;AMI\n")
    assert run(["--manifest", str(bad_label), "--out", out], model) == 2
    assert "line 3: condition: unknown label 'AMI'" in capsys.readouterr().err
    same = tmp_path / "same.csv"
    same.write_text(f"reference,condition\n{records[0]},mi\n{records[0]},MI\n")  # one twin after canonical spelling
    assert run(["--manifest", str(same), "--out", out], model) == 2
    assert "requested twice" in capsys.readouterr().err
    assert run(["--manifest", str(bad_hr), "--condition", "MI", "--num", "2", "--out", out], model) == 2
    assert "--condition, --num cannot be combined with --manifest" in capsys.readouterr().err
    assert main(["--out", out], model_loader=lambda c, d: model) == 2
    assert "give --reference RECORD, --manifest FILE.csv or --complete PARTIAL" in capsys.readouterr().err
    assert model.calls == [] and not Path(out).exists()


def test_other_settings_in_out_dir_refuse_to_resume_without_overwrite(tmp_path: Path, records: list[Path],
                                                                      vocabulary: LabelVocabulary, capsys) -> None:  # type: ignore[no-untyped-def]
    out, model = tmp_path / "out", FakeTwinModel(vocabulary)
    base = ["--reference", str(records[0]), "--condition", "MI", "--out", str(out)]
    assert run([*base, "--steps", "10"], model) == 0
    capsys.readouterr()
    assert run([*base, "--steps", "20"], model) == 2
    err = capsys.readouterr().err
    assert "made with steps=10 (this run: 20)" in err and "--overwrite" in err and len(model.calls) == 1
    assert run([*base, "--steps", "20", "--overwrite"], model) == 0 and len(model.calls) == 2
    name = twin_record_name(records[0].name, ("MI",), 0, 0)
    assert comments_of(out, name)["steps"] == "20" and manifest_rows(out)[-1]["steps"] == "20"


def test_help_is_fast_and_does_not_import_torch() -> None:
    code = ("import sys; from ecgtwin.cli.generate import main; rc = main(['--help']); assert rc == 0; "
            "heavy = [m for m in ('torch', 'lightning', 'wfdb', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    start = time.time()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert time.time() - start < 5.0
    assert "usage: generate-ecg" in result.stdout and "--manifest FILE.csv" in result.stdout


def test_spacing_is_recorded_and_a_resume_with_another_grid_is_refused(tmp_path: Path, records: list[Path],
                                                                       vocabulary: LabelVocabulary, capsys) -> None:  # type: ignore[no-untyped-def]
    from ecgtwin.constants import TIMESTEP_SPACINGS
    from ecgtwin.pipeline import DEFAULT_SAMPLING

    default = DEFAULT_SAMPLING.spacing
    other = next(s for s in sorted(TIMESTEP_SPACINGS) if s != default)
    out, model = tmp_path / "out", FakeTwinModel(vocabulary)
    base = ["--reference", str(records[0]), "--condition", "MI", "--out", str(out), "--steps", "10"]
    assert run(base, model) == 0  # the default grid
    name = twin_record_name(records[0].name, ("MI",), 0, 0)
    assert comments_of(out, name)["spacing"] == default and manifest_rows(out)[-1]["spacing"] == default
    assert run([*base, "--spacing", default], model) == 0 and len(model.calls) == 1  # the same settings: resumed
    capsys.readouterr()
    assert run([*base, "--spacing", other], model) == 2
    assert f"made with spacing={default} (this run: {other})" in capsys.readouterr().err
    assert run([*base, "--spacing", other, "--overwrite"], model) == 0
    assert comments_of(out, name)["spacing"] == other and manifest_rows(out)[-1]["spacing"] == other
    assert run([*base, "--spacing", other], model) == 0 and len(model.calls) == 2  # resumed under the other grid
