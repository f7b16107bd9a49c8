"""The main job (``ecgtwin demo``) and ``generate-ecg`` with the real bundled model, end to end."""
from __future__ import annotations

from pathlib import Path

import neurokit2 as nk
import numpy as np
import pytest
import wfdb

from ecgtwin.api import DEFAULT_BUNDLE, TwinModel
from ecgtwin.cli.main import main
from ecgtwin.constants import LEADS

from bundles import tiny_bundle


def test_demo_writes_twins_of_two_conditions_and_an_overview(sample_root: Path, tmp_path: Path) -> None:
    bundle = tiny_bundle(sample_root, tmp_path)
    out = tmp_path / "demo"
    assert main(["demo", "--checkpoint", str(bundle), "--out", str(out), "--num", "1", "--steps", "2"]) == 0
    heads = sorted(p.stem for p in out.glob("*.hea"))
    assert heads == ["01495_lr__MI__s0__000", "01495_lr__NORM__s0__000"]
    assert (out / "overview.png").stat().st_size > 10_000 and len(list(out.glob("*__000.png"))) == 2
    assert len((out / "manifest.csv").read_text().strip().splitlines()) == 3  # header + 2 twins


@pytest.mark.skipif(not DEFAULT_BUNDLE.is_file(), reason="bundled model not present")
def test_bundled_model_generates_a_processable_wfdb_twin(sample_root: Path, tmp_path: Path) -> None:
    model = TwinModel.load()
    names = list(model.vocabulary.names)
    assert model.personalised and names[:5] == ["CD", "HYP", "MI", "NORM", "STTC"]  # superclasses ...
    assert {"SR", "AFIB", "STACH", "SBRAD"} <= set(names[5:])  # ... and rhythm statements (v2)
    out = tmp_path / "twins"
    rc = main_generate(["--reference", str(sample_root / "records100/01000/01495_lr"), "--condition", "MI",
                        "--hr", "75", "--out", str(out), "--steps", "10", "--no-progress"])
    assert rc == 0
    record = wfdb.rdrecord(str(next(out.glob("*.hea")).with_suffix("")))
    assert record.sig_name == list(LEADS) and record.units == ["mV"] * 12 and record.fs == 100
    assert record.p_signal.shape == (1000, 12)
    assert any(c.startswith("checkpoint") and model.checkpoint_hash in c for c in record.comments)
    assert "rhythm: SR (default)" in record.comments
    # lead-law-exact output: the limb leads obey Einthoven's law up to the 16-bit storage step (1 uV per lead)
    limb = {name: record.p_signal[:, LEADS.index(name)] for name in ("I", "II", "III")}
    assert np.abs(limb["I"] + limb["III"] - limb["II"]).max() <= 1.5e-3
    lead_ii = record.p_signal[:, LEADS.index("II")]
    assert 0.05 < np.ptp(lead_ii) < 10  # mV scale, not noise-level or exploded
    signals, _ = nk.ecg_process(nk.signal_resample(lead_ii, sampling_rate=100, desired_sampling_rate=500), sampling_rate=500)
    assert signals["ECG_R_Peaks"].sum() >= 3  # neurokit2 finds beats in the twin


def main_generate(argv: list[str]) -> int:
    from ecgtwin.cli.generate import main as generate_main

    return generate_main(argv)
