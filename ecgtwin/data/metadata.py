"""The common per-record metadata table shared by the PTB-XL and MIMIC-IV-ECG readers.

One row per record, columns :data:`RECORD_COLUMNS`:

=================  ===========================================================
``record_id``      int: ``ecg_id`` (PTB-XL) or ``study_id`` (MIMIC-IV-ECG)
``patient_id``     int
``recording_date`` pandas Timestamp
``age``            float years, NaN when unknown (PTB-XL's 300 = "over 89")
``sex``            float: 0 male, 1 female, NaN unknown
``report``         str free-text report
``labels``         dict {statement code: likelihood}; ``{}`` when none (MIMIC)
``path``           str record path without extension (absolute)
``fold``           int 1..10 (PTB-XL ``strat_fold``; hashed patient id for MIMIC)
``hr``             float bpm, NaN until measured/estimated
``source_fs``      float: sampling rate the record file should have (NaN = any)
=================  ===========================================================
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

RECORD_COLUMNS: tuple[str, ...] = (
    "record_id", "patient_id", "recording_date", "age", "sex", "report", "labels", "path", "fold", "hr", "source_fs",
)


def check_record_table(table: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Check ``table`` has :data:`RECORD_COLUMNS` and unique record ids; return it with a clean index."""
    missing = [c for c in RECORD_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{origin}: record table lacks columns {missing}")
    duplicated = table["record_id"][table["record_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{origin}: duplicate record ids {duplicated.head(5).tolist()}")
    return table.reset_index(drop=True)


def write_metadata_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a record table as CSV (``labels`` as JSON text, dates in ISO format)."""
    out = table.copy()
    out["labels"] = [json.dumps(d, sort_keys=True) for d in out["labels"]]
    out["recording_date"] = pd.to_datetime(out["recording_date"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    out.to_csv(path, index=False)


def read_metadata_csv(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_metadata_csv` back with its dtypes."""
    table = pd.read_csv(path, keep_default_na=True, dtype={"report": str, "path": str})
    table["report"] = table["report"].fillna("")
    table["labels"] = [json.loads(s) for s in table["labels"]]
    table["recording_date"] = pd.to_datetime(table["recording_date"])
    for column in ("record_id", "patient_id", "fold"):
        table[column] = table[column].astype(np.int64)
    for column in ("age", "sex", "hr", "source_fs"):
        table[column] = table[column].astype(np.float64)
    return table


def first_patients(table: pd.DataFrame, max_records: int | None) -> pd.DataFrame:
    """Whole patients, in order of their first record, while the total stays <= ``max_records``.

    Keeps pairs intact for quick runs (a plain head() would split patients).
    At least one patient is kept. ``None`` returns ``table`` unchanged.
    """
    if max_records is None or len(table) <= max_records:
        return table
    if max_records < 1:
        raise ValueError(f"max_records must be >= 1 or None, got {max_records}")
    order = table.sort_values("record_id", kind="stable")
    counts = order.groupby("patient_id", sort=False).size()  # in order of first record
    keep = counts.index[(counts.cumsum() <= max_records).to_numpy()]
    if keep.empty:
        keep = counts.index[:1]
    return order[order["patient_id"].isin(keep)].reset_index(drop=True)
