"""MIMIC-IV-ECG v1.0 (Gow et al. 2023, PhysioNet): metadata as the common record table.

Layout under ``root``: ``record_list.csv`` (``subject_id, study_id, file_name,
ecg_time, path``), ``machine_measurements.csv`` (``report_0`` .. ``report_17``,
``rr_interval`` in ms, ...) and ``files/pNNNN/pSUBJECT/sSTUDY/STUDY.{hea,dat}``
(10 s, 500 Hz, leads I, II, III, aVR, aVF, aVL, V1-V6 -- reordered on read).

MIMIC-IV-ECG has no SCP statements: ``labels`` is ``{}`` for every record and
the diagnosis lives only in the free-text ``report`` ("report-only" labels; a
model trained on it sees every label slot inactive). Age and sex come from an
optional MIMIC-IV ``patients.csv``; without it they are unknown (NaN).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ecgtwin.constants import HR_RANGE_BPM
from ecgtwin.data.errors import ECGDataError
from ecgtwin.data.metadata import check_record_table

__all__ = ["RECORD_LIST_CSV", "MEASUREMENTS_CSV", "MIMIC_FS", "patient_fold", "load_mimic_record_table"]

RECORD_LIST_CSV = "record_list.csv"
MEASUREMENTS_CSV = "machine_measurements.csv"
PATIENTS_CSV = "patients.csv"
MIMIC_FS = 500.0
N_REPORT_LINES = 18
MIMIC_AGE_CAP = 91
"""MIMIC-IV stores ``anchor_age`` above 89 as 91 (privacy rule): treated as unknown age."""


def patient_fold(patient_id: int, n_folds: int = 10) -> int:
    """Deterministic fold 1..n_folds of a patient (sha256 of the id; stable across runs and machines)."""
    digest = hashlib.sha256(str(int(patient_id)).encode()).hexdigest()
    return int(digest, 16) % n_folds + 1


def _read(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ECGDataError(path, "missing table")
    table = pd.read_csv(path, low_memory=False)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ECGDataError(path, f"missing columns {missing}")
    return table


def _reports_and_hr(path: Path) -> pd.DataFrame:
    """``study_id -> (report, hr)``: report lines joined by ``"; "``, HR = 60000 / rr_interval (ms)."""
    table = _read(path, ("study_id", "rr_interval"))
    lines = [c for c in (f"report_{i}" for i in range(N_REPORT_LINES)) if c in table.columns]
    texts = table[lines].astype("string").fillna("")
    report = ["; ".join(s.strip() for s in row if s.strip()) for row in texts.itertuples(index=False)]
    rr = pd.to_numeric(table["rr_interval"], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        hr = 60000.0 / rr
    hr[~((hr >= HR_RANGE_BPM[0]) & (hr <= HR_RANGE_BPM[1]))] = np.nan  # rr 0 / absurd -> unknown
    return pd.DataFrame({"study_id": table["study_id"].astype(np.int64), "report": report, "hr": hr}).drop_duplicates("study_id")


def _numeric(table: pd.DataFrame, name: str) -> pd.Series:
    if name in table.columns:
        return pd.to_numeric(table[name], errors="coerce").astype(np.float64)
    return pd.Series(np.nan, index=table.index, dtype=np.float64)


def _demographics(path: Path) -> pd.DataFrame:
    """``subject_id -> (sex, anchor_age, anchor_year, age)`` from a MIMIC-IV ``patients.csv``.

    Sex from ``gender`` (M/F) or ``sex`` (M/F or 0/1); age from ``anchor_age``
    (+ years since ``anchor_year``) or a plain ``age`` column.
    """
    table = _read(path, ("subject_id",))
    sex_column = "gender" if "gender" in table.columns else "sex"
    sex_text = table[sex_column].astype("string").str.strip().str.upper() if sex_column in table.columns else None
    sex = sex_text.map({"M": 0.0, "F": 1.0, "0": 0.0, "1": 1.0}) if sex_text is not None else np.nan
    return pd.DataFrame(
        {
            "subject_id": table["subject_id"].astype(np.int64),
            "sex": pd.Series(sex, index=table.index, dtype=np.float64),
            "anchor_age": _numeric(table, "anchor_age"),
            "anchor_year": _numeric(table, "anchor_year"),
            "age": _numeric(table, "age"),
        }
    ).drop_duplicates("subject_id")


def load_mimic_record_table(root: str | os.PathLike[str], patients_csv: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """MIMIC-IV-ECG as the common record table (see :mod:`ecgtwin.data.metadata`).

    ``record_id`` = ``study_id``, ``patient_id`` = ``subject_id``, ``fold`` =
    :func:`patient_fold`, ``hr`` from the machine's RR interval (NaN when absent
    or implausible; estimated from the signal at cache time), ``labels`` = ``{}``.
    ``patients_csv`` defaults to ``<root>/patients.csv`` when that exists.
    """
    root = Path(root).resolve()
    records = _read(root / RECORD_LIST_CSV, ("subject_id", "study_id", "ecg_time", "path"))
    records = records.astype({"subject_id": np.int64, "study_id": np.int64})
    measurements_path = root / MEASUREMENTS_CSV
    if measurements_path.is_file():
        records = records.merge(_reports_and_hr(measurements_path), on="study_id", how="left")
    else:
        records["report"], records["hr"] = "", np.nan
    dates = pd.to_datetime(records["ecg_time"])
    patients_path = Path(patients_csv) if patients_csv is not None else root / PATIENTS_CSV
    sex = age = np.full(len(records), np.nan)
    if patients_csv is not None or patients_path.is_file():
        demo = records[["subject_id"]].merge(_demographics(patients_path), on="subject_id", how="left")
        sex = demo["sex"].to_numpy(dtype=np.float64)
        anchor_age = demo["anchor_age"].to_numpy(dtype=np.float64)
        years_since_anchor = dates.dt.year.to_numpy(dtype=np.float64) - demo["anchor_year"].to_numpy(dtype=np.float64)
        age_at_ecg = anchor_age + np.nan_to_num(years_since_anchor)
        age_at_ecg[anchor_age >= MIMIC_AGE_CAP] = np.nan
        age = np.where(np.isnan(anchor_age), demo["age"].to_numpy(dtype=np.float64), age_at_ecg)
    table = pd.DataFrame(
        {
            "record_id": records["study_id"].to_numpy(),
            "patient_id": records["subject_id"].to_numpy(),
            "recording_date": dates.to_numpy(),
            "age": age,
            "sex": sex,
            "report": records["report"].fillna("").astype(str).to_numpy(),
            "labels": [{} for _ in range(len(records))],
            "path": [str(root / p) for p in records["path"]],
            "fold": [patient_fold(s) for s in records["subject_id"]],
            "hr": records["hr"].to_numpy(dtype=np.float64),
            "source_fs": np.full(len(records), MIMIC_FS),
        }
    )
    return check_record_table(table, str(root / RECORD_LIST_CSV))
