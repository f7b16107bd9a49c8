"""PTB-XL v1.0.3 (Wagner et al. 2020, Sci Data 7:154): metadata tables and record paths.

Layout under ``root``: ``ptbxl_database.csv``, ``scp_statements.csv``,
``records100/NNNNN/NNNNN_lr.{hea,dat}`` (100 Hz) and optionally
``records500/NNNNN/NNNNN_hr.{hea,dat}`` (500 Hz).
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ecgtwin.constants import PTBXL_AGE_UNKNOWN
from ecgtwin.data.errors import ECGDataError
from ecgtwin.data.metadata import check_record_table
from ecgtwin.data.wfdb_reader import read_wfdb

__all__ = ["DATABASE_CSV", "STATEMENTS_CSV", "load_ptbxl_database", "load_scp_statements", "ptbxl_record_table", "read_records_list", "read_wfdb"]

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
RECORDS_FILE = "RECORDS"
LR_FS, HR_FS = 100.0, 500.0
"""Sampling rates of ``records100`` (``filename_lr``) and ``records500`` (``filename_hr``)."""

_DATABASE_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "recording_date", "report", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
_STATEMENT_COLUMNS = ("description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")


def _read_csv(path: Path, required: tuple[str, ...], **kwargs) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    if not path.is_file():
        raise ECGDataError(path, "missing table")
    try:
        table = pd.read_csv(path, **kwargs)
    except Exception as exc:
        raise ECGDataError(path, f"unreadable CSV: {exc}") from exc
    present = set(table.columns) | {table.index.name}
    missing = [c for c in required if c not in present]
    if missing:
        raise ECGDataError(path, f"missing columns {missing}")
    return table


def _parse_scp_codes(text: str, ecg_id: int, path: Path) -> dict[str, float]:
    try:
        codes = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ECGDataError(path, f"ecg_id {ecg_id}: scp_codes {text!r} is not a dict literal") from exc
    if not isinstance(codes, dict):
        raise ECGDataError(path, f"ecg_id {ecg_id}: scp_codes {text!r} is not a dict")
    return {str(code): float(likelihood) for code, likelihood in codes.items()}


def load_ptbxl_database(root: str | os.PathLike[str]) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ``ecg_id``, with parsed types.

    ``patient_id`` int, ``recording_date`` Timestamp, ``age`` float with 300
    (PTB-XL's "over 89" privacy code) -> NaN, ``sex`` int (0 male, 1 female),
    ``scp_codes`` dict ``{code: likelihood}``, ``strat_fold`` int. Other
    columns are kept as read.
    """
    path = Path(root) / DATABASE_CSV
    table = _read_csv(path, _DATABASE_COLUMNS, index_col="ecg_id")
    table["patient_id"] = table["patient_id"].astype(np.int64)
    table["recording_date"] = pd.to_datetime(table["recording_date"])
    table["age"] = table["age"].astype(np.float64).where(table["age"] != PTBXL_AGE_UNKNOWN)
    table["sex"] = table["sex"].astype(np.int64)
    table["strat_fold"] = table["strat_fold"].astype(np.int64)
    table["report"] = table["report"].fillna("").astype(str)
    table["scp_codes"] = [_parse_scp_codes(t, i, path) for i, t in zip(table.index, table["scp_codes"])]
    return table


def load_scp_statements(root: str | os.PathLike[str]) -> pd.DataFrame:
    """``scp_statements.csv`` indexed by statement code (71 rows in v1.0.3).

    ``diagnostic``, ``form``, ``rhythm`` become bool; ``diagnostic_class``
    (superclass) and ``diagnostic_subclass`` are str or NaN.
    """
    path = Path(root) / STATEMENTS_CSV
    table = _read_csv(path, _STATEMENT_COLUMNS, index_col=0)
    table.index = table.index.astype(str)
    for column in ("diagnostic", "form", "rhythm"):
        table[column] = table[column].fillna(0).astype(float) == 1.0
    return table


def _choose_file(root: Path, lr: str, hr: str, fs: float) -> tuple[str, float]:
    """records500 when the target fs is above 100 Hz and it exists, else records100 (resampled later)."""
    lr_exists = isinstance(lr, str) and (root / f"{lr}.hea").is_file()
    hr_exists = isinstance(hr, str) and (root / f"{hr}.hea").is_file()
    if hr_exists and (fs > LR_FS or not lr_exists):
        return str(root / hr), HR_FS
    return str(root / lr), LR_FS


def read_records_list(root: str | os.PathLike[str]) -> set[str] | None:
    """Record paths listed in ``<root>/RECORDS`` (PhysioNet convention), ``None`` without that file."""
    path = Path(root) / RECORDS_FILE
    if not path.is_file():
        return None
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def ptbxl_record_table(root: str | os.PathLike[str], fs: float = 100.0) -> pd.DataFrame:
    """PTB-XL as the common record table (see :mod:`ecgtwin.data.metadata`), ``hr`` NaN.

    When ``<root>/RECORDS`` exists, only database rows whose ``filename_lr`` or
    ``filename_hr`` it lists are kept (a subset pack ships the full database
    table but only some waveforms). A kept row whose record files are absent
    keeps its path; the cache build skips it with reason ``"missing"``.
    """
    root = Path(root).resolve()
    database = load_ptbxl_database(root)
    listed = read_records_list(root)
    if listed is not None:
        database = database[database["filename_lr"].isin(listed) | database["filename_hr"].isin(listed)]
    chosen = [_choose_file(root, lr, hr, fs) for lr, hr in zip(database["filename_lr"], database["filename_hr"])]
    table = pd.DataFrame(
        {
            "record_id": database.index.astype(np.int64),
            "patient_id": database["patient_id"].to_numpy(),
            "recording_date": database["recording_date"].to_numpy(),
            "age": database["age"].to_numpy(),
            "sex": database["sex"].astype(np.float64).to_numpy(),
            "report": database["report"].to_numpy(),
            "labels": database["scp_codes"].to_numpy(),
            "path": [p for p, _ in chosen],
            "fold": database["strat_fold"].to_numpy(),
            "hr": np.full(len(database), np.nan),
            "source_fs": [f for _, f in chosen],
        }
    )
    return check_record_table(table, str(root / DATABASE_CSV))
