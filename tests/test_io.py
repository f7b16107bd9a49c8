"""WFDB reading of user references and atomic writing of twins (ecgtwin.io.wfdb_io)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgtwin.constants import LEADS
from ecgtwin.io import wfdb_io
from ecgtwin.io.wfdb_io import (
    ECGInputError,
    choose_adc_gain,
    file_sha256,
    parse_sex,
    read_reference,
    sanitize_record_name,
    write_twin,
)
from ecgtwin.paths import BUNDLED_SAMPLE, SHARED_PTBXL


def _real_record() -> Path:
    """A real PTB-XL 100 Hz record (bundled sample first, else the shared pack); skip if neither exists."""
    for root in (BUNDLED_SAMPLE, SHARED_PTBXL):
        headers = sorted((root / "records100").glob("*/*_lr.hea")) if root.is_dir() else []
        if headers:
            return headers[0].with_suffix("")
    pytest.skip("no real PTB-XL record (data/ptbxl_sample or ../shared/data/ptbxl100)")


def _synthetic(fs: float, seconds: float, seed: int = 0) -> np.ndarray:
    """(12, L) mV: per-lead sinusoid mix with distinct amplitudes so lead permutations are detectable."""
    t = np.arange(int(round(fs * seconds))) / fs
    rng = np.random.default_rng(seed)
    amps = np.linspace(0.2, 1.5, len(LEADS))
    phases = rng.uniform(0, 2 * np.pi, len(LEADS))
    return amps[:, None] * np.sin(2 * np.pi * 1.2 * t[None] + phases[:, None]) + 0.1 * np.sin(2 * np.pi * 5 * t)[None]


def _write_raw(
    folder: Path,
    name: str,
    signal: np.ndarray,
    fs: float,
    sig_name: list[str],
    units: str = "mV",
    comments: list[str] | None = None,
    gain: float = 1000.0,
) -> Path:
    """Write an arbitrary WFDB record with wfdb itself (no ecgtwin code); NaN -> WFDB's missing-sample code."""
    digital = np.where(np.isnan(signal), -32768, np.round(np.nan_to_num(signal) * gain)).astype(np.int16)  # (C, L)
    wfdb.wrsamp(name, fs=fs, units=[units] * len(sig_name), sig_name=sig_name, d_signal=digital.T,
                fmt=["16"] * len(sig_name), adc_gain=[gain] * len(sig_name), baseline=[0] * len(sig_name),
                comments=comments or [], write_dir=str(folder))
    return folder / name


# ---------------------------------------------------------------- write_twin


def test_write_twin_round_trips_through_wfdb(tmp_path: Path) -> None:
    signal = _synthetic(100, 10).astype(np.float32)
    comments = {"reference": "00004_lr", "labels": "IMI;AFIB", "hr": 72, "sampler": "ddim", "seed": 3}
    hea = write_twin(tmp_path, "twin_a", signal, 100, comments)
    assert hea == tmp_path / "twin_a.hea"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twin_a.dat", "twin_a.hea"]  # no temp dir left
    record = wfdb.rdrecord(str(tmp_path / "twin_a"))
    assert record.sig_name == list(LEADS)
    assert record.units == ["mV"] * 12
    assert record.fs == 100 and record.fmt == ["16"] * 12
    assert record.p_signal.shape == (1000, 12)
    assert record.comments == ["reference: 00004_lr", "labels: IMI;AFIB", "hr: 72", "sampler: ddim", "seed: 3"]
    gain = record.adc_gain[0]
    assert gain == 1000.0
    np.testing.assert_allclose(record.p_signal.T, signal, atol=0.5 / gain + 1e-6)  # half a quantisation step


def test_write_twin_gain_and_clipping(tmp_path: Path) -> None:
    big = _synthetic(100, 2) * 40.0  # peaks 60 mV: beyond 1000 adu/mV, within 200 adu/mV
    assert choose_adc_gain(big) == 200.0
    write_twin(tmp_path, "big", big, 100, [])
    record = wfdb.rdrecord(str(tmp_path / "big"))
    np.testing.assert_allclose(record.p_signal.T, big, atol=0.5 / 200 + 1e-6)

    huge = _synthetic(100, 2)
    huge[1, 10] = 500.0
    with pytest.warns(UserWarning, match="1 samples beyond"):
        write_twin(tmp_path, "huge", huge, 100, [])
    assert wfdb.rdrecord(str(tmp_path / "huge")).p_signal[10, 1] == pytest.approx(32767 / 200)


def test_write_twin_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a valid WFDB name"):
        write_twin(tmp_path, "a.b", _synthetic(100, 1), 100)
    with pytest.raises(ValueError, match=r"\(12, L\)"):
        write_twin(tmp_path, "a", np.zeros((11, 100)), 100)
    nan = _synthetic(100, 1)
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="1 non-finite"):
        write_twin(tmp_path, "a", nan, 100)
    assert list(tmp_path.iterdir()) == []


def test_write_twin_interrupted_inside_wfdb_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_wrsamp = wfdb.wrsamp

    def crash_after_writing(*args, **kwargs):  # type: ignore[no-untyped-def]
        real_wrsamp(*args, **kwargs)  # the header and data exist in the temp dir ...
        raise KeyboardInterrupt  # ... then the user hits Ctrl-C

    monkeypatch.setattr(wfdb_io.wfdb, "wrsamp", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        write_twin(tmp_path, "twin", _synthetic(100, 10), 100)
    assert list(tmp_path.iterdir()) == []


def test_write_twin_interrupted_between_moves_leaves_no_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_twin(tmp_path, "twin", _synthetic(100, 10, seed=1), 100, ["old"])  # an earlier complete twin
    real_replace = os.replace
    moves: list[str] = []

    def crash_on_header(src, dst):  # type: ignore[no-untyped-def]
        moves.append(Path(dst).suffix)
        if Path(dst).suffix == ".hea":
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(wfdb_io.os, "replace", crash_on_header)
    with pytest.raises(OSError, match="disk full"):
        write_twin(tmp_path, "twin", _synthetic(100, 10, seed=2), 100, ["new"])
    assert moves == [".dat", ".hea"]  # data first, header last
    assert list(tmp_path.iterdir()) == []  # neither the new half-record nor a mismatched old header survive


# ---------------------------------------------------------------- read_reference


def test_read_reference_reorders_lowercase_shuffled_leads(tmp_path: Path) -> None:
    signal = _synthetic(100, 12)
    order = np.random.default_rng(1).permutation(12)
    names = [LEADS[i].lower() if i % 2 else LEADS[i].upper() for i in order]  # "avr", "V1", ...
    _write_raw(tmp_path, "shuffled", signal[order], 100, names, comments=["Age: 63", "Sex: Female"])
    ref = read_reference(tmp_path / "shuffled.hea")  # with the .hea extension
    assert ref.signal.shape == (12, 1000) and ref.signal.dtype == np.float32
    np.testing.assert_allclose(ref.signal, signal[:, :1000], atol=1e-3)  # cropped to the first 10 s
    assert (ref.fs, ref.original_fs, ref.record_name) == (100, 100.0, "shuffled")
    assert (ref.age, ref.sex) == (63.0, "F")


def test_read_reference_ignores_extra_channels_and_reads_mimic_style_comments(tmp_path: Path) -> None:
    signal = _synthetic(100, 10)
    extra = np.vstack([signal, signal[:1] * 0.5])
    _write_raw(tmp_path, "frank", extra, 100, list(LEADS) + ["vx"], comments=["<age>: 300", "<sex>: M"])
    ref = read_reference(tmp_path / "frank")
    np.testing.assert_allclose(ref.signal, signal, atol=1e-3)
    assert ref.age is None and ref.sex == "M"  # PTB-XL's 300 means unknown


def test_read_reference_resamples_500_to_100_hz(tmp_path: Path) -> None:
    signal_500 = _synthetic(500, 10)
    _write_raw(tmp_path, "hr500", signal_500, 500, list(LEADS))
    ref = read_reference(tmp_path / "hr500", target_fs=100)
    assert ref.signal.shape == (12, 1000) and ref.original_fs == 500.0
    expected = _synthetic(100, 10)  # the same band-limited waveform sampled at 100 Hz
    np.testing.assert_allclose(ref.signal[:, 20:-20], expected[:, 20:-20], atol=0.02)


def test_read_reference_converts_microvolts(tmp_path: Path) -> None:
    signal = _synthetic(100, 10)
    _write_raw(tmp_path, "micro", signal * 1000.0, 100, list(LEADS), units="uV", gain=1.0)
    ref = read_reference(tmp_path / "micro")
    assert ref.original_units == ("uV",) * 12
    np.testing.assert_allclose(ref.signal, signal, atol=2e-3)


def test_read_reference_interpolates_partial_nan(tmp_path: Path) -> None:
    signal = _synthetic(100, 10)
    signal[4, 100:103] = np.nan
    _write_raw(tmp_path, "gap", signal, 100, list(LEADS))
    with pytest.warns(UserWarning, match="interpolated 3 missing"):
        ref = read_reference(tmp_path / "gap")
    assert np.isfinite(ref.signal).all()
    assert ref.signal[4, 100:103] == pytest.approx(np.linspace(signal[4, 99], signal[4, 103], 5)[1:4], abs=2e-3)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "not found"),
        ("eleven", "missing leads V6"),
        ("duplicate", "lead aVR appears 2 times"),
        ("flat", "flat line in leads V3"),
        ("nan", "leads I have no valid samples"),
        ("short", "shorter than the 10 s"),
        ("units", "unsupported signal units"),
        ("corrupt", "unreadable WFDB record"),
    ],
)
def test_read_reference_errors_name_the_file(tmp_path: Path, case: str, message: str) -> None:
    signal, names = _synthetic(100, 10), list(LEADS)
    if case == "eleven":
        signal, names = signal[:11], names[:11]
    elif case == "duplicate":
        signal, names = np.vstack([signal, signal[3:4]]), names + ["AVR"]
    elif case == "flat":
        signal[LEADS.index("V3")] = 0.2
    elif case == "nan":
        signal[0] = np.nan
    elif case == "short":
        signal = signal[:, :950]
    if case != "missing":
        _write_raw(tmp_path, "rec", signal, 100, names, units="furlongs" if case == "units" else "mV")
    if case == "corrupt":
        (tmp_path / "rec.dat").write_bytes(b"\x00\x01")  # truncated data file
    with pytest.raises(ECGInputError, match=message) as info:
        read_reference(tmp_path / "rec")
    assert info.value.path == str(tmp_path / "rec.hea")
    assert str(tmp_path / "rec.hea") in str(info.value)


@pytest.mark.shared
def test_real_record_round_trips_and_neurokit_finds_beats(tmp_path: Path) -> None:
    import neurokit2 as nk

    path = _real_record()
    ref = read_reference(path)
    original = wfdb.rdrecord(str(path))
    columns = [[n.lower() for n in original.sig_name].index(lead.lower()) for lead in LEADS]
    np.testing.assert_allclose(ref.signal, original.p_signal[:1000, columns].T, atol=1e-6)
    write_twin(tmp_path, sanitize_record_name(f"twin of {ref.record_name}"), ref.signal, ref.fs, ["x"])
    back = wfdb.rdrecord(str(tmp_path / f"twin_of_{ref.record_name}"))
    np.testing.assert_allclose(back.p_signal.T, ref.signal, atol=5e-4 + 1e-6)
    lead_ii = back.p_signal[:, LEADS.index("II")]
    signals, info = nk.ecg_process(lead_ii, sampling_rate=back.fs)
    assert 5 <= len(info["ECG_R_Peaks"]) <= 30  # 10 s at 30-180 bpm
    assert 30 < float(signals["ECG_Rate"].mean()) < 180


# ---------------------------------------------------------------- small helpers


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a.b c", "a_b_c"), ("Müller ECG", "Muller_ECG"), ("心电图", "record"), ("", "record"),
     ("..x//y..", "x_y"), ("ok-name_1", "ok-name_1"), ("a...b", "a_b")],
)
def test_sanitize_record_name(raw: str, clean: str) -> None:
    assert sanitize_record_name(raw) == clean


def test_sanitized_names_are_accepted_by_wfdb(tmp_path: Path) -> None:
    name = sanitize_record_name("patient 7 (copy).v2 é")
    write_twin(tmp_path, name, _synthetic(100, 1), 100)
    assert wfdb.rdheader(str(tmp_path / name)).record_name == name


def test_parse_sex() -> None:
    assert [parse_sex(v) for v in ("M", "female", " F ", "0", "1.0", "", None)] == ["M", "F", "F", "M", "F", None, None]
    with pytest.raises(ValueError, match="sex 'x'"):
        parse_sex("x")


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 test vector
    assert file_sha256(path, chunk_bytes=1) == file_sha256(path)


# ---------------------------------------------------------------- lead-name aliases (issue 12)


@pytest.mark.parametrize("names", [
    ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"],
    ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6"],
    ["Lead I", "Lead_II", "lead III", "aVR", "aVL", "aVF", "V1 ", " V2", "V3", "V4", "V5", "V6"],
    ["D1", "D2", "D3", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
])
def test_common_lead_name_aliases_are_read_as_the_standard_leads(tmp_path: Path, names: list[str]) -> None:
    from ecgtwin.constants import LEADS, canonical_lead

    signal = _alias_record(tmp_path, names)
    ref = read_reference(tmp_path / "alias")
    np.testing.assert_allclose(ref.signal, signal, atol=2e-3)
    assert [canonical_lead(n) for n in names] == list(LEADS)


def test_unknown_and_inverted_lead_names_are_not_guessed(tmp_path: Path) -> None:
    from ecgtwin.constants import canonical_lead, lead_index

    assert canonical_lead("-aVR") is None and canonical_lead("MLII") is None and canonical_lead("X") is None
    assert lead_index("DII") == 1 and lead_index("avr") == 3
    with pytest.raises(KeyError, match="unknown lead name"):
        lead_index("-aVR")
    _alias_record(tmp_path, ["DI", "II", "DII", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    with pytest.raises(ECGInputError, match=r"lead II appears 2 times \(\['II', 'DII'\]\)"):
        read_reference(tmp_path / "alias")


def _alias_record(folder: Path, names: list[str]) -> np.ndarray:
    """A 12-channel 100 Hz, 10 s record with channel ``names``; returns its (12, 1000) mV signal."""
    t = np.arange(1000) / 100
    signal = np.stack([(k + 1) * 0.1 * np.sin(2 * np.pi * 1.2 * t + k) for k in range(12)])
    wfdb.wrsamp("alias", fs=100, units=["mV"] * 12, sig_name=[f"ch{k}" for k in range(12)], p_signal=signal.T,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder))
    hea = folder / "alias.hea"
    lines = hea.read_text().splitlines()  # WFDB lets a description hold spaces; wfdb.wrsamp does not write them
    hea.write_text("\n".join([lines[0]] + [line.rsplit(" ", 1)[0] + " " + name
                                            for line, name in zip(lines[1:13], names)] + lines[13:]) + "\n")
    return signal
