"""generate-ecg --complete: partial WFDB records to full 12-lead ECGs, kept leads, provenance, errors (exit 2)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgtwin.cli.generate import main
from ecgtwin.constants import LEADS
from ecgtwin.io.wfdb_io import read_reference
from ecgtwin.leads import lead_law_residual
from ecgtwin.pipeline import COMPLETION_REGRESSION_START
from tests.test_generator_v2 import v2_bundle, vocab  # noqa: F401  (fixtures)

RECORD = Path("records100") / "01000" / "01495_lr"
FAST = ["--sampler", "dpmpp_2m_sde", "--steps", "5", "--no-progress"]


def partial_record(folder: Path, leads: list[str], sample_root: Path, names: list[str] | None = None) -> Path:
    """A WFDB record holding only ``leads`` of the sample record (channel names ``names``, default the leads)."""
    full = read_reference(sample_root / RECORD).signal  # (12, 1000) mV
    signal = full[[LEADS.index(x) for x in leads]].T.astype(np.float64)  # (L, k)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp("watch", fs=100, units=["mV"] * len(leads), sig_name=names or leads, p_signal=signal,
                fmt=["16"] * len(leads), adc_gain=[1000.0] * len(leads), baseline=[0] * len(leads),
                write_dir=str(folder))
    return folder / "watch"


@pytest.mark.parametrize("personal", [True, False])
def test_completion_from_two_leads(sample_root: Path, v2_bundle: Path, tmp_path: Path, personal: bool,  # noqa: F811
                                   capsys: pytest.CaptureFixture) -> None:
    partial = partial_record(tmp_path / "in", ["I", "II"], sample_root, names=["DI", "DII"])
    out = tmp_path / "out"
    argv = ["--complete", str(partial), "--checkpoint", str(v2_bundle), "--num", "2", "--out", str(out), *FAST]
    argv += ["--reference", str(sample_root / RECORD)] if personal else []
    assert main(argv) == 0
    assert "s per record (sampler dpmpp_2m_sde, 5 steps, checkpoint" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 2
    start = f", from the earlier ECG's lead map at strength {COMPLETION_REGRESSION_START:g}" if (
        personal and COMPLETION_REGRESSION_START < 1) else ""
    assert rows[0]["mode"] == (f"complete from I+II ({'personal' if personal else 'population'}, "
                               f"reconstruction guidance 16{start})")
    kept = read_reference(partial, partial=True).signal  # (2, L) as recorded
    for row in rows:
        stored = wfdb.rdrecord(str(out / row["record_name"]))
        completed, step = stored.p_signal.T, 1.0 / np.asarray(stored.adc_gain)  # (12, L) mV, (12,) mV per unit
        assert np.all(np.abs(completed[:2] - kept) <= np.maximum(step[:2, None], 1e-3) + 1e-6)  # one 16-bit step
        assert float(lead_law_residual(completed)) < 2 * max(step[:6].max(), 1e-3)  # laws hold up to 16-bit storage
    header = dict(c.split(": ", 1) for c in wfdb.rdheader(str(out / rows[0]["record_name"])).comments)
    assert header["recorded_leads"] == "I;II" and "DI->I" in header["recorded_lead_names"]
    assert header["reconstruction_guidance"] == "16"  # the completion default (COMPLETION_SAMPLING)
    assert header["regression_start"] == (f"{COMPLETION_REGRESSION_START:g}" if personal else "none")
    assert main(argv) == 0  # rerun: resumes, nothing new
    assert "0 completed record(s) written, 2 already there" in capsys.readouterr().out
    assert len(list(csv.DictReader((out / "manifest.csv").open()))) == 2


@pytest.mark.parametrize(("setup", "extra", "message"), [
    ("I,II", ["--leads", "X9"], "unknown lead"),
    ("I,II", ["--leads", "V1"], "not in"),
    ("I,II", ["--leads", "I,DI"], "twice"),
    ("ALL", [], "nothing to complete"),
    ("I,II", ["--edit", "--strength", "0.3"], "cannot be combined with --complete"),
    ("I,II", ["--reference", "PARTIAL"], "partial record cannot be the reference"),
    ("I,II", ["--plot"], "--plot cannot be combined with --complete"),
    ("I,II", ["--reconstruction", "-1"], "--reconstruction must be"),
    ("I,II", ["--regression-start", "0.5"], "--regression-start applies to --complete with --reference"),
    ("I,II", ["--reference", "FULL", "--regression-start", "0"], "--regression-start must be in (0, 1]"),
])
def test_completion_errors_exit_2(sample_root: Path, v2_bundle: Path, tmp_path: Path,  # noqa: F811
                                  capsys: pytest.CaptureFixture, setup: str, extra: list[str], message: str) -> None:
    leads = list(LEADS) if setup == "ALL" else setup.split(",")
    partial = partial_record(tmp_path / "in", leads, sample_root)
    extra = [{"PARTIAL": str(partial), "FULL": str(sample_root / RECORD)}.get(x, x) for x in extra]
    code = main(["--complete", str(partial), "--checkpoint", str(v2_bundle), "--out", str(tmp_path / "o"), *FAST,
                 *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_leads_needs_complete(sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--reference", str(sample_root / RECORD), "--condition", "MI", "--leads", "I",
                 "--out", str(tmp_path)]) == 2
    assert "--leads applies to --complete" in capsys.readouterr().err
    assert main(["--out", str(tmp_path)]) == 2


def test_rerun_with_other_settings_is_refused(sample_root: Path, v2_bundle: Path, tmp_path: Path,  # noqa: F811
                                              capsys: pytest.CaptureFixture) -> None:
    partial = partial_record(tmp_path / "in", ["I"], sample_root)
    argv = ["--complete", str(partial), "--checkpoint", str(v2_bundle), "--out", str(tmp_path / "o"), *FAST]
    assert main(argv) == 0
    assert main([*argv, "--steps", "4"]) == 2 and "steps=5" in capsys.readouterr().err
    assert main([*argv, "--reconstruction", "0"]) == 2 and "reconstruction guidance 16" in capsys.readouterr().err
    assert main([*argv, "--steps", "4", "--overwrite"]) == 0
    personal = [*argv, "--steps", "4", "--reference", str(sample_root / RECORD), "--out", str(tmp_path / "p")]
    assert main([*personal, "--regression-start", "0.4"]) == 0
    assert main([*personal, "--regression-start", "0.6"]) == 2 and "lead map at strength 0.4" in capsys.readouterr().err


def test_another_window_is_another_output(sample_root: Path, v2_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    full = read_reference(sample_root / RECORD).signal  # (12, 1000) mV: 10 s
    folder = tmp_path / "in"
    folder.mkdir()
    wfdb.wrsamp("watch", fs=100, units=["mV"], sig_name=["I"], p_signal=np.tile(full[0], 2)[:, None].astype(np.float64),
                fmt=["16"], adc_gain=[1000.0], baseline=[0], write_dir=str(folder))  # 20 s of lead I
    argv = ["--complete", str(folder / "watch"), "--checkpoint", str(v2_bundle), "--out", str(tmp_path / "o"), *FAST]
    assert main(argv) == 0
    assert main([*argv, "--offset", "5"]) == 0  # not mistaken for the first window's record
    names = [row["record_name"] for row in csv.DictReader((tmp_path / "o" / "manifest.csv").open())]
    assert names == ["watch__complete-I__population__s0__000", "watch__complete-I__population__off5__s0__000"]
