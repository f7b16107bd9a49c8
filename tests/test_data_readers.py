"""WFDB reader, PTB-XL tables and the MIMIC-IV-ECG reader, on the bundled sample and on bad copies in tmp_path."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgtwin.constants import LEADS
from ecgtwin.data.errors import ECGDataError
from ecgtwin.data.metadata import RECORD_COLUMNS
from ecgtwin.data.mimic import load_mimic_record_table, patient_fold
from ecgtwin.data.preprocess import resample
from ecgtwin.data.ptbxl import load_ptbxl_database, load_scp_statements, ptbxl_record_table, read_wfdb

RECORD = "records100/00000/00316_lr"
MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]


def copy_record(sample_root: Path, dst: Path, record: str = RECORD, exts: tuple[str, ...] = (".hea", ".dat")) -> Path:
    """Writable copy of a sample record in ``dst``; returns the base path."""
    dst.mkdir(parents=True, exist_ok=True)
    name = Path(record).name
    for ext in exts:
        shutil.copyfile(sample_root / f"{record}{ext}", dst / f"{name}{ext}")
    return dst / name


def write_record(base: Path, samples: np.ndarray, names: list[str], fs: float = 100, units: str = "mV", gain: float | None = 1000.0) -> Path:
    """Write ``samples`` (L, n) with wfdb.wrsamp (16-bit)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"adc_gain": [gain] * len(names), "baseline": [0] * len(names)} if gain else {}
    wfdb.wrsamp(base.name, fs=fs, units=[units] * len(names), sig_name=names, p_signal=samples, fmt=["16"] * len(names), write_dir=str(base.parent), **kwargs)
    return base


def limb_lead_errors(signal: np.ndarray) -> np.ndarray:
    """Einthoven (II = I + III) and Goldberger (aVR, aVL, aVF) residuals: ~0 only in LEADS order."""
    i, ii, iii, avr, avl, avf = signal[:6]
    return np.array([np.abs(ii - i - iii).max(), np.abs(avr + (i + ii) / 2).max(), np.abs(avl - (i - iii) / 2).max(), np.abs(avf - (ii + iii) / 2).max()])


# ---- real records --------------------------------------------------------------------------
def test_real_record_shape_lead_order_and_mv_units(sample_root: Path) -> None:
    signal, fs = read_wfdb(sample_root / RECORD, expected_fs=100)
    assert signal.shape == (12, 1000) and signal.dtype == np.float32 and fs == 100.0
    assert limb_lead_errors(signal).max() < 0.0025  # 16-bit quantisation is 0.001 mV
    raw = wfdb.rdrecord(str(sample_root / RECORD))
    for i, lead in enumerate(LEADS):
        np.testing.assert_allclose(signal[i], raw.p_signal[:, raw.sig_name.index(lead.upper())], atol=1e-6)
    ptp = np.ptp(signal, axis=1)
    assert 0.3 < ptp.max() < 10.0 and ptp.min() > 0.05  # mV: QRS of a few mV, not uV (x1000) or V (/1000)


def test_every_sample_record_reads_with_12_plausible_leads(sample_root: Path) -> None:
    records = (sample_root / "RECORDS").read_text().split()
    assert len(records) > 200
    for record in records[::10]:
        signal, _ = read_wfdb(sample_root / record, expected_fs=100)
        assert signal.shape == (12, 1000) and np.isfinite(signal).all()
        assert limb_lead_errors(signal).max() < 0.0025, record


def test_any_lead_order_and_name_case_and_units_are_normalised(sample_root: Path, tmp_path: Path) -> None:
    original, _ = read_wfdb(sample_root / RECORD)
    order = [3, 11, 0, 7, 5, 1, 9, 2, 4, 6, 8, 10]
    names = [LEADS[k].lower() if k % 2 else LEADS[k].upper() for k in order]  # e.g. "avr", "V6", "I"
    shuffled = original[order].T.astype(np.float64)  # (L, 12) in the file's order
    mv, _ = read_wfdb(write_record(tmp_path / "mv", shuffled, names))
    uv, _ = read_wfdb(write_record(tmp_path / "uv", shuffled * 1000.0, names, units="uV", gain=1.0))
    volt, _ = read_wfdb(write_record(tmp_path / "volt", shuffled / 1000.0, names, units="V", gain=1e6))
    for signal in (mv, uv, volt):
        np.testing.assert_allclose(signal, original, atol=1.5e-3)


# ---- bad input ---------------------------------------------------------------------------------
def test_missing_dat_names_the_file(sample_root: Path, tmp_path: Path) -> None:
    base = copy_record(sample_root, tmp_path, exts=(".hea",))
    with pytest.raises(ECGDataError, match=r"00316_lr\.dat: missing signal file"):
        read_wfdb(base)


def test_truncated_dat(sample_root: Path, tmp_path: Path) -> None:
    base = copy_record(sample_root, tmp_path)
    data = (tmp_path / "00316_lr.dat").read_bytes()
    (tmp_path / "00316_lr.dat").write_bytes(data[: len(data) // 2])
    with pytest.raises(ECGDataError, match=r"00316_lr\.dat: truncated signal file: 12000 bytes, header needs 24000"):
        read_wfdb(base)


def test_missing_hea(sample_root: Path, tmp_path: Path) -> None:
    base = copy_record(sample_root, tmp_path, exts=(".dat",))
    with pytest.raises(ECGDataError, match=r"00316_lr\.hea: missing header file"):
        read_wfdb(base)


def test_wrong_lead_names(sample_root: Path, tmp_path: Path) -> None:
    base = copy_record(sample_root, tmp_path)
    header = tmp_path / "00316_lr.hea"
    header.write_text(header.read_text().replace(" V6\n", " X6\n").replace(" AVL\n", " aVX\n"))
    with pytest.raises(ECGDataError, match=r"00316_lr\.hea: unknown lead names \['aVX', 'X6'\]"):
        read_wfdb(base)


def test_wrong_lead_count(sample_root: Path, tmp_path: Path) -> None:
    original, _ = read_wfdb(sample_root / RECORD)
    base = write_record(tmp_path / "eight", original[[0, 1, 6, 7, 8, 9, 10, 11]].T.astype(np.float64), ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    with pytest.raises(ECGDataError, match=r"eight\.hea: expected 12 leads, found 8"):
        read_wfdb(base)


def test_wrong_sampling_rate(sample_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ECGDataError, match="sampling rate 100 Hz, expected 500 Hz"):
        read_wfdb(sample_root / RECORD, expected_fs=500)
    original, _ = read_wfdb(sample_root / RECORD)
    base = write_record(tmp_path / "fs250", original.T.astype(np.float64), list(LEADS), fs=250)
    with pytest.raises(ECGDataError, match=r"fs250\.hea: sampling rate 250 Hz, expected 100 Hz"):
        read_wfdb(base, expected_fs=100)


def test_all_nan_record(tmp_path: Path) -> None:
    base = write_record(tmp_path / "nan", np.full((1000, 12), np.nan), list(LEADS))
    with pytest.raises(ECGDataError, match=r"nan\.hea: all samples are NaN"):
        read_wfdb(base)


def test_flat_line_record(tmp_path: Path) -> None:
    base = write_record(tmp_path / "flat", np.full((1000, 12), 0.2), list(LEADS))
    with pytest.raises(ECGDataError, match=r"flat\.hea: flat line"):
        read_wfdb(base)


def test_partly_nan_record_reads_with_nan_kept(sample_root: Path, tmp_path: Path) -> None:
    original, _ = read_wfdb(sample_root / RECORD)
    samples = original.T.astype(np.float64)
    samples[:, 4] = np.nan  # aVL missing
    signal, _ = read_wfdb(write_record(tmp_path / "part", samples, list(LEADS)))
    assert np.isnan(signal[4]).all() and np.isfinite(np.delete(signal, 4, axis=0)).all()


# ---- PTB-XL tables ---------------------------------------------------------------------------
def test_database_parsing(sample_root: Path) -> None:
    raw = pd.read_csv(sample_root / "ptbxl_database.csv")
    db = load_ptbxl_database(sample_root)
    assert len(db) == len(raw) == 235 and db.index.name == "ecg_id"
    assert db["patient_id"].dtype == np.int64 and pd.api.types.is_datetime64_any_dtype(db["recording_date"])
    assert db["age"].isna().sum() == (raw["age"] == 300).sum() == 3 and db["age"].max() < 100
    assert set(db["sex"]) <= {0, 1} and set(db["strat_fold"]) == set(range(1, 9))
    assert db.loc[762, "scp_codes"] == {"NORM": 100.0, "NST_": 0.0, "SBRAD": 0.0}


def test_statements_table(sample_root: Path) -> None:
    statements = load_scp_statements(sample_root)
    assert len(statements) == 71 and statements["diagnostic"].sum() == 44
    assert statements.loc["IMI", "diagnostic_class"] == "MI" and statements.loc["IMI", "diagnostic_subclass"] == "IMI"
    assert statements.loc["AFIB", "rhythm"] and not statements.loc["AFIB", "diagnostic"]


def test_record_table_uses_records_list_and_records500_when_present(sample_root: Path, tmp_path: Path) -> None:
    table = ptbxl_record_table(sample_root, fs=100)
    assert tuple(table.columns) == RECORD_COLUMNS and len(table) == 235
    assert table["hr"].isna().all() and (table["source_fs"] == 100).all()
    assert all(Path(p + ".hea").is_file() for p in table["path"])
    # a copy whose RECORDS lists 2 records and that has one records500 file
    shutil.copyfile(sample_root / "ptbxl_database.csv", tmp_path / "ptbxl_database.csv")
    (tmp_path / "RECORDS").write_text("records100/00000/00316_lr\nrecords500/00000/00762_hr\n")
    copy_record(sample_root, tmp_path / "records100/00000")
    signal, _ = read_wfdb(sample_root / "records100/00000/00762_lr")
    write_record(tmp_path / "records500/00000/00762_hr", resample(signal, 100, 500).T.astype(np.float64), list(LEADS), fs=500)
    small = ptbxl_record_table(tmp_path, fs=500).set_index("record_id")
    assert sorted(small.index) == [316, 762]
    assert small.loc[762, "path"].endswith("records500/00000/00762_hr") and small.loc[762, "source_fs"] == 500
    assert small.loc[316, "path"].endswith("records100/00000/00316_lr") and small.loc[316, "source_fs"] == 100


@pytest.mark.shared
def test_shared_pack_table_follows_its_records_list(shared_root: Path) -> None:
    table = ptbxl_record_table(shared_root)  # the pack ships the full 21,799-row database
    assert len(table) == 5150 and table["patient_id"].nunique() == 2755
    assert set(table["fold"]) == set(range(1, 9)) and (table["source_fs"] == 100).all()
    assert all(Path(p + ".dat").is_file() for p in table["path"][::50])


def test_bad_database_table(tmp_path: Path) -> None:
    with pytest.raises(ECGDataError, match="ptbxl_database.csv: missing table"):
        load_ptbxl_database(tmp_path)
    (tmp_path / "ptbxl_database.csv").write_text("ecg_id,patient_id\n1,2\n")
    with pytest.raises(ECGDataError, match="missing columns"):
        load_ptbxl_database(tmp_path)


# ---- MIMIC-IV-ECG ------------------------------------------------------------------------------
@pytest.fixture()
def mimic_root(sample_root: Path, tmp_path: Path) -> Path:
    """A tiny MIMIC-IV-ECG layout: 3 studies of 2 subjects, 500 Hz, MIMIC lead order, real PTB-XL waveforms."""
    root = tmp_path / "mimic"
    studies = [(10000032, 40689238, "2180-07-23 08:44:00", 857.0, "00316_lr"), (10000032, 44458630, "2180-08-06 09:07:00", 0.0, "00762_lr"),
               (10000099, 41111111, "2181-01-01 10:00:00", 1000.0, "00316_lr")]
    rows, measurements = [], []
    for subject, study, time, rr, source in studies:
        rel = f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"
        signal, _ = read_wfdb(sample_root / "records100/00000" / source)
        samples = resample(signal, 100, 500)[[LEADS.index(n) for n in MIMIC_LEADS]].T.astype(np.float64)  # (5000, 12)
        write_record(root / rel, samples, MIMIC_LEADS, fs=500, gain=200.0)
        rows.append({"subject_id": subject, "study_id": study, "file_name": study, "ecg_time": time, "path": rel})
        measurements.append({"subject_id": subject, "study_id": study, "report_0": "Sinus rhythm", "report_1": "Normal ECG" if rr else None, "rr_interval": rr})
    pd.DataFrame(rows).to_csv(root / "record_list.csv", index=False)
    pd.DataFrame(measurements).to_csv(root / "machine_measurements.csv", index=False)
    pd.DataFrame({"subject_id": [10000032, 10000099], "gender": ["F", "M"], "anchor_age": [52, 91], "anchor_year": [2180, 2181]}).to_csv(root / "patients.csv", index=False)
    return root


def test_mimic_record_table(mimic_root: Path) -> None:
    table = load_mimic_record_table(mimic_root).set_index("record_id")
    assert list(table.index) == [40689238, 44458630, 41111111]
    assert table.loc[40689238, "report"] == "Sinus rhythm; Normal ECG" and table.loc[44458630, "report"] == "Sinus rhythm"
    assert table.loc[40689238, "hr"] == pytest.approx(60000 / 857) and np.isnan(table.loc[44458630, "hr"])  # rr 0 -> unknown
    assert table.loc[40689238, "sex"] == 1.0 and table.loc[41111111, "sex"] == 0.0
    assert table.loc[40689238, "age"] == 52 and np.isnan(table.loc[41111111, "age"])  # anchor_age 91 = over 89
    assert (table["labels"] == {}).all() and (table["source_fs"] == 500).all()
    assert table.loc[40689238, "fold"] == table.loc[44458630, "fold"] == patient_fold(10000032)
    assert 1 <= patient_fold(10000099) <= 10 and patient_fold(10000099) == patient_fold(10000099)


def test_mimic_waveform_reorders_leads(mimic_root: Path, sample_root: Path) -> None:
    path = load_mimic_record_table(mimic_root)["path"].iloc[0]
    signal, fs = read_wfdb(path, expected_fs=500)
    original, _ = read_wfdb(sample_root / RECORD)
    assert fs == 500 and signal.shape == (12, 5000)
    np.testing.assert_allclose(signal, resample(original, 100, 500), atol=3e-3)  # 200 adc/mV quantisation


def test_mimic_datamodule_end_to_end(mimic_root: Path, tmp_path: Path) -> None:
    from ecgtwin.data.datamodule import ECGDataModule

    dm = ECGDataModule(root=str(mimic_root), source="mimic", cache_dir=str(tmp_path / "cache"), train_folds=list(range(1, 11)),
                       val_folds=[], test_folds=[], progress=False)
    dm.prepare_data()
    with pytest.warns(UserWarning, match="has no records"):
        dm.setup("fit")
    meta = dm.cache.metadata.set_index("record_id")
    assert meta.loc[40689238, "hr_source"] == "source" and meta.loc[44458630, "hr_source"] == "estimated"
    assert 40 < meta.loc[44458630, "hr"] < 120
    item = dm.train_dataset[0]
    assert item["reference"]["signal"].shape == (12, 1000) and item["reference"]["labels"].sum() == 0
    assert len(dm.train_dataset) == 1 and int(item["reference"]["record_id"]) == 40689238  # earlier study is the reference
