"""One-time record cache: every record preprocessed once into a memory-mapped array.

A cache directory holds

* ``signals.npy``: float32 ``(N, 12, L)`` (open with ``mmap_mode="r"``),
* ``metadata.csv``: the common record table (:mod:`ecgtwin.data.metadata`) of the
  N cached records, row i <-> ``signals[i]``, with ``hr`` filled (estimated from
  the signal where the source has none), ``hr_source`` and ``zeroed_leads``,
* ``manifest.json``: the source fingerprint (table hashes, record list, record
  file sizes/mtimes, preprocessing config, code version) and the skipped
  corrupt records with their reasons.

It is built in a temporary sibling directory and renamed into place, so an
interrupted build leaves nothing behind; it is re-used while the fingerprint
matches and rebuilt when anything in it changes.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgtwin.constants import N_LEADS
from ecgtwin.data.errors import ECGDataError
from ecgtwin.data.metadata import check_record_table, read_metadata_csv, write_metadata_csv
from ecgtwin.data.preprocess import PreprocessConfig

CACHE_FORMAT = 1
SIGNALS_FILE, METADATA_FILE, MANIFEST_FILE = "signals.npy", "metadata.csv", "manifest.json"
_CODE_FILES = ("wfdb_reader.py", "preprocess.py", "heartrate.py", "cache.py", "metadata.py")
"""Modules whose source is part of the fingerprint: editing them rebuilds caches."""
MAX_RECORD_WARNINGS = 20
"""One warning per skipped record up to this many; then one summary warning (all are in the manifest)."""


@dataclass
class ECGCache:
    """An opened cache: ``signals`` (memory-mapped, read-only), ``metadata`` and ``manifest``."""

    path: Path
    signals: np.ndarray
    metadata: pd.DataFrame
    manifest: dict[str, Any]
    reused: bool = field(default=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str], reused: bool = False) -> ECGCache:
        path = Path(path)
        for name in (SIGNALS_FILE, METADATA_FILE, MANIFEST_FILE):
            if not (path / name).is_file():
                raise ECGDataError(path / name, "missing cache file (rebuild the cache)")
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        signals = np.load(path / SIGNALS_FILE, mmap_mode="r")
        metadata = read_metadata_csv(path / METADATA_FILE)
        metadata["zeroed_leads"] = metadata["zeroed_leads"].fillna("").astype(str)
        if signals.shape[0] != len(metadata):
            raise ECGDataError(path, f"cache is inconsistent: {signals.shape[0]} signals, {len(metadata)} metadata rows")
        return cls(path, signals, metadata, manifest, reused)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """``[{"record_id", "path", "reason"}, ...]`` of the records left out as corrupt or missing."""
        return list(self.manifest["skipped"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_token(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def source_fingerprint(table: pd.DataFrame, config: PreprocessConfig, source_files: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """JSON-ready fingerprint of everything a cache depends on."""
    from ecgtwin import __version__

    records = hashlib.sha256("\n".join(f"{r},{p}" for r, p in zip(table["record_id"], table["path"])).encode())
    stats = hashlib.sha256()
    for p in table["path"]:
        stats.update(f"{p}|{_stat_token(p + '.hea')}|{_stat_token(p + '.dat')}\n".encode())
    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in _CODE_FILES))
    fingerprint = {
        "format": CACHE_FORMAT,
        "code_version": __version__,
        "code_sha256": code.hexdigest(),
        "config": config.to_dict(),
        "tables": {Path(f).name: _sha256_file(Path(f)) for f in source_files},
        "n_source_records": int(len(table)),
        "records_sha256": records.hexdigest(),
        "record_files_sha256": stats.hexdigest(),
    }
    return json.loads(json.dumps(fingerprint))  # normalise (tuples -> lists) for comparison with the stored one


def _process_record(job: tuple[str, float, float, PreprocessConfig]) -> tuple[str, Any]:
    """Read + preprocess one record; ``("ok", (signal, hr, hr_source, zeroed))`` or ``("skip", (path, reason))``."""
    from ecgtwin.data.heartrate import estimate_heart_rate
    from ecgtwin.data.preprocess import preprocess
    from ecgtwin.data.wfdb_reader import read_wfdb

    path, source_fs, known_hr, config = job
    if not os.path.isfile(path + ".hea"):
        return "skip", (path, "missing")
    try:
        raw, fs = read_wfdb(path, expected_fs=None if np.isnan(source_fs) else source_fs)
        signal, zeroed = preprocess(raw, fs, config, where=path)
    except ECGDataError as exc:
        return "skip", (exc.path, exc.problem)
    if np.isfinite(known_hr):
        return "ok", (signal, float(known_hr), "source", zeroed)
    hr = estimate_heart_rate(raw, fs)
    return "ok", (signal, hr, "estimated" if np.isfinite(hr) else "none", zeroed)


def _results(jobs: list[tuple[str, float, float, PreprocessConfig]], workers: int) -> Iterator[tuple[str, Any]]:
    if workers <= 1:
        yield from map(_process_record, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_process_record, jobs, chunksize=16)


def _shrink_npy(path: Path, n_rows: int) -> None:
    """Keep the first ``n_rows`` of an ``.npy`` file in place (rewrite the header, truncate the data)."""
    fmt = np.lib.format
    with open(path, "r+b") as f:
        version = fmt.read_magic(f)
        read_header, write_header = (
            (fmt.read_array_header_1_0, fmt.write_array_header_1_0) if version == (1, 0) else (fmt.read_array_header_2_0, fmt.write_array_header_2_0)
        )
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        header = io.BytesIO()
        write_header(header, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": fortran, "shape": (n_rows, *shape[1:])})
        if len(header.getvalue()) == offset:  # same header size: no data needs to move
            f.seek(0)
            f.write(header.getvalue())
            f.truncate(offset + n_rows * int(np.prod(shape[1:])) * dtype.itemsize)
            return
    old = np.load(path, mmap_mode="r")
    np.save(path.with_suffix(".shrunk.npy"), np.ascontiguousarray(old[:n_rows]))
    del old
    os.replace(path.with_suffix(".shrunk.npy"), path)


def _install(tmp: Path, target: Path) -> None:
    """Atomically put the finished ``tmp`` directory at ``target`` (replacing an old cache)."""
    if target.exists():
        if any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
            raise ValueError(f"cache_dir {target} exists and is not an ecgtwin cache; refusing to replace it")
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, trash / "old")
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, target)


def build_cache(
    table: pd.DataFrame,
    cache_dir: str | os.PathLike[str],
    config: PreprocessConfig,
    fingerprint: dict[str, Any],
    progress: bool = True,
    workers: int = 1,
) -> ECGCache:
    """Preprocess every row of the record ``table`` into a new cache at ``cache_dir``.

    Corrupt or missing records are skipped, each with a warning naming it, and
    listed in the manifest. Raises ``ECGDataError`` if no record is usable.
    """
    from tqdm.auto import tqdm

    table = check_record_table(table, "build_cache")
    target = Path(cache_dir).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    start = time.perf_counter()
    try:
        signals = np.lib.format.open_memmap(tmp / SIGNALS_FILE, mode="w+", dtype=np.float32, shape=(len(table), N_LEADS, config.length))
        jobs = [(str(p), float(f), float(h), config) for p, f, h in zip(table["path"], table["source_fs"], table["hr"])]
        kept: list[int] = []
        hr, hr_source, zeroed_leads, skipped = [], [], [], []
        for row, (status, payload) in enumerate(tqdm(_results(jobs, workers), total=len(jobs), desc=f"caching {target.name}", unit="rec", disable=not progress)):
            if status == "skip":
                path, reason = payload
                skipped.append({"record_id": int(table["record_id"].iat[row]), "path": path, "reason": reason})
                if len(skipped) <= MAX_RECORD_WARNINGS:
                    warnings.warn(f"skipping record {table['record_id'].iat[row]} ({path}): {reason}", stacklevel=2)
                continue
            signals[len(kept)] = payload[0]
            kept.append(row)
            hr.append(payload[1])
            hr_source.append(payload[2])
            zeroed_leads.append(";".join(payload[3]))
        signals.flush()
        del signals
        if not kept:
            raise ECGDataError(target, f"no usable record among {len(table)} ({len(skipped)} skipped, e.g. {skipped[:3]})")
        if len(kept) < len(table):
            _shrink_npy(tmp / SIGNALS_FILE, len(kept))
        metadata = table.iloc[kept].reset_index(drop=True)
        metadata["hr"], metadata["hr_source"], metadata["zeroed_leads"] = hr, hr_source, zeroed_leads
        write_metadata_csv(metadata, tmp / METADATA_FILE)
        n_zeroed = int(sum(bool(z) for z in zeroed_leads))
        if n_zeroed:
            warnings.warn(f"{n_zeroed} cached record(s) had missing leads set to zero (see zeroed_leads in {METADATA_FILE})", stacklevel=2)
        manifest = {
            "format": CACHE_FORMAT,
            "fingerprint": fingerprint,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - start, 3),
            "shape": [len(kept), N_LEADS, config.length],
            "n_records": len(kept),
            "n_skipped": len(skipped),
            "skipped": skipped,
            "n_records_with_zeroed_leads": n_zeroed,
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        _install(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if skipped:
        warnings.warn(f"{len(skipped)} of {len(table)} records skipped as corrupt or missing (listed in {target / MANIFEST_FILE})", stacklevel=2)
    return ECGCache.open(target)


def ensure_cache(
    table: pd.DataFrame,
    cache_dir: str | os.PathLike[str],
    config: PreprocessConfig,
    source_files: Sequence[str | os.PathLike[str]] = (),
    progress: bool = True,
    workers: int = 1,
) -> ECGCache:
    """Open the cache at ``cache_dir`` if its fingerprint matches, else (re)build it."""
    fingerprint = source_fingerprint(table, config, source_files)
    manifest_path = Path(cache_dir) / MANIFEST_FILE
    if manifest_path.is_file():
        try:
            stored = json.loads(manifest_path.read_text()).get("fingerprint")
        except (OSError, json.JSONDecodeError):
            stored = None
        if stored == fingerprint:
            return ECGCache.open(cache_dir, reused=True)
    return build_cache(table, cache_dir, config, fingerprint, progress, workers)
