"""The record cache: contents, re-use, invalidation, atomic build, corrupt records, speed."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgtwin.data import cache as cache_module
from ecgtwin.data.cache import ECGCache, ensure_cache
from ecgtwin.data.metadata import first_patients
from ecgtwin.data.preprocess import PreprocessConfig, preprocess
from ecgtwin.data.ptbxl import DATABASE_CSV, ptbxl_record_table, read_wfdb


@pytest.fixture()
def small_root(sample_root: Path, tmp_path: Path) -> Path:
    """Writable copy of the sample restricted (by RECORDS) to its first 6 patients."""
    root = tmp_path / "ptbxl"
    root.mkdir()
    for name in (DATABASE_CSV, "scp_statements.csv"):
        shutil.copyfile(sample_root / name, root / name)
    database = pd.read_csv(sample_root / DATABASE_CSV)
    patients = sorted(database["patient_id"].unique())[:6]
    records = database[database["patient_id"].isin(patients)]["filename_lr"].tolist()
    for record in records:
        (root / record).parent.mkdir(parents=True, exist_ok=True)
        for ext in (".hea", ".dat"):
            shutil.copyfile(sample_root / f"{record}{ext}", root / f"{record}{ext}")
    (root / "RECORDS").write_text("\n".join(records) + "\n")
    return root


def build(root: Path, cache_dir: Path, config: PreprocessConfig | None = None) -> ECGCache:
    return ensure_cache(ptbxl_record_table(root), cache_dir, config or PreprocessConfig(), [root / DATABASE_CSV], progress=False)


def test_sample_cache_contents(sample_datamodule, sample_root: Path) -> None:  # type: ignore[no-untyped-def]
    cache = sample_datamodule.cache
    assert isinstance(cache.signals, np.memmap) and cache.signals.dtype == np.float32
    assert cache.signals.shape == (235, 12, 1000) and len(cache.metadata) == 235
    assert cache.manifest["n_skipped"] == 0 and cache.manifest["fingerprint"]["config"]["fs"] == 100
    assert cache.manifest["build_seconds"] < 60, "the sample cache should build in seconds"
    row = 17
    raw, fs = read_wfdb(cache.metadata["path"].iat[row], expected_fs=100)
    np.testing.assert_array_equal(cache.signals[row], preprocess(raw, fs, PreprocessConfig())[0])
    hr = cache.metadata["hr"].to_numpy()
    assert np.isfinite(hr).mean() >= 0.95 and ((hr[np.isfinite(hr)] >= 30) & (hr[np.isfinite(hr)] <= 200)).all()
    assert set(cache.metadata["hr_source"]) <= {"estimated", "none"}
    assert isinstance(cache.metadata["labels"].iat[0], dict) and pd.api.types.is_datetime64_any_dtype(cache.metadata["recording_date"])
    reopened = ECGCache.open(cache.path)
    assert reopened.metadata[["record_id", "patient_id", "fold"]].equals(cache.metadata[["record_id", "patient_id", "fold"]])


def test_second_build_is_a_fast_no_op(small_root: Path, tmp_path: Path) -> None:
    first = build(small_root, tmp_path / "cache")
    assert not first.reused and first.signals.shape[0] == len((small_root / "RECORDS").read_text().split())
    stamp = (tmp_path / "cache" / "signals.npy").stat().st_mtime_ns
    start = time.perf_counter()
    second = build(small_root, tmp_path / "cache")
    assert second.reused and time.perf_counter() - start < 2.0
    assert (tmp_path / "cache" / "signals.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(second.signals, first.signals)


def test_config_change_rebuilds(small_root: Path, tmp_path: Path) -> None:
    filtered = np.array(build(small_root, tmp_path / "cache").signals)
    unfiltered = build(small_root, tmp_path / "cache", PreprocessConfig(highpass_hz=None))
    assert not unfiltered.reused and not np.allclose(unfiltered.signals, filtered)
    at_500 = build(small_root, tmp_path / "cache", PreprocessConfig(fs=500))
    assert not at_500.reused and at_500.signals.shape[1:] == (12, 5000)
    assert not any(p.name.startswith(".cache.") for p in tmp_path.iterdir()), "old caches must be cleaned up"


def test_source_change_rebuilds(small_root: Path, tmp_path: Path) -> None:
    before = build(small_root, tmp_path / "cache")
    database = small_root / DATABASE_CSV
    database.write_text(database.read_text().replace("sinusrhythmus", "sinus rhythm", 1))  # table content changed
    after_table = build(small_root, tmp_path / "cache")
    assert not after_table.reused and build(small_root, tmp_path / "cache").reused
    dat = Path(after_table.metadata["path"].iat[0] + ".dat")
    os.utime(dat, ns=(dat.stat().st_atime_ns, dat.stat().st_mtime_ns + 10**9))  # a record file changed
    after_record = build(small_root, tmp_path / "cache")
    assert not after_record.reused and len(after_record.metadata) == len(before.metadata)


def test_interrupted_build_leaves_nothing(small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = cache_module._process_record
    calls = {"n": 0}

    def failing(job):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # e.g. Ctrl-C mid-build
        return real(job)

    monkeypatch.setattr(cache_module, "_process_record", failing)
    with pytest.raises(KeyboardInterrupt):
        build(small_root, tmp_path / "cache")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ptbxl"]  # no cache, no temporary folder
    # an interrupted *re*build keeps the previous cache intact
    monkeypatch.setattr(cache_module, "_process_record", real)
    old = build(small_root, tmp_path / "cache")
    monkeypatch.setattr(cache_module, "_process_record", failing)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        build(small_root, tmp_path / "cache", PreprocessConfig(highpass_hz=1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "ptbxl"]
    monkeypatch.setattr(cache_module, "_process_record", real)
    again = build(small_root, tmp_path / "cache")
    assert again.reused and again.signals.shape == old.signals.shape


def test_corrupt_and_missing_records_are_skipped_and_counted(small_root: Path, tmp_path: Path) -> None:
    records = (small_root / "RECORDS").read_text().split()
    missing, truncated, flat = (small_root / r for r in records[:3])
    for ext in (".hea", ".dat"):
        Path(f"{missing}{ext}").unlink()  # database row whose record files are gone
    data = Path(f"{truncated}.dat").read_bytes()
    Path(f"{truncated}.dat").write_bytes(data[:1000])
    Path(f"{flat}.dat").write_bytes(bytes(len(data)))  # all zero samples
    with pytest.warns(UserWarning) as caught:
        cache = build(small_root, tmp_path / "cache")
    messages = " ".join(str(w.message) for w in caught)
    for record in (missing, truncated, flat):
        assert record.name in messages
    assert "3 of" in messages and "records skipped" in messages
    reasons = {Path(s["path"]).name.split(".")[0]: s["reason"] for s in cache.skipped}
    assert cache.manifest["n_skipped"] == 3 and reasons[missing.name] == "missing"
    assert reasons[truncated.name].startswith("truncated signal file") and reasons[flat.name].startswith("flat line")
    assert cache.signals.shape[0] == len(records) - 3 == len(cache.metadata)
    assert not {missing.name, truncated.name, flat.name} & {Path(p).name for p in cache.metadata["path"]}
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["n_skipped"] == 3 and len(manifest["skipped"]) == 3


def test_nothing_usable_is_an_error(small_root: Path, tmp_path: Path) -> None:
    for path in small_root.glob("records100/*/*.dat"):
        path.unlink()
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable record"):
        build(small_root, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_refuses_to_replace_a_foreign_folder(small_root: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="not an ecgtwin cache"):
        build(small_root, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


def test_max_records_keeps_whole_patients(sample_root: Path) -> None:
    table = ptbxl_record_table(sample_root)
    limited = first_patients(table, 20)
    assert 15 <= len(limited) <= 20
    full_counts = table.groupby("patient_id").size()
    kept_counts = limited.groupby("patient_id").size()
    assert kept_counts.to_dict() == full_counts[kept_counts.index].to_dict()
    assert limited["record_id"].min() == table["record_id"].min()  # starts from the first record


def test_loading_batches_from_cache_is_much_faster_than_wfdb(sample_datamodule) -> None:  # type: ignore[no-untyped-def]
    dataset = sample_datamodule.record_dataset("all")
    paths = dataset.metadata["path"].tolist()[:60]
    start = time.perf_counter()
    for path in paths:
        preprocess(*read_wfdb(path, expected_fs=100), PreprocessConfig())
    wfdb_rate = len(paths) / (time.perf_counter() - start)
    start = time.perf_counter()
    n = 0
    for _ in range(5):
        for first in range(0, len(dataset), 32):
            n += dataset.batch(np.arange(first, min(first + 32, len(dataset))))["signal"].shape[0]
    cache_rate = n / (time.perf_counter() - start)
    assert cache_rate > 10 * wfdb_rate, f"cache {cache_rate:.0f} rec/s vs WFDB {wfdb_rate:.0f} rec/s"


@pytest.mark.slow
def test_two_worker_build_matches_single_process(small_root: Path, tmp_path: Path) -> None:
    table = ptbxl_record_table(small_root)
    single = ensure_cache(table, tmp_path / "one", PreprocessConfig(), progress=False, workers=1)
    pooled = ensure_cache(table, tmp_path / "two", PreprocessConfig(), progress=False, workers=2)
    np.testing.assert_array_equal(pooled.signals, single.signals)
    pd.testing.assert_series_equal(pooled.metadata["hr"], single.metadata["hr"])
