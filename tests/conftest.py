"""Shared pytest fixtures: one torch thread, the bundled PTB-XL sample, the shared pack, a prepared sample DataModule."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_ROOT = REPO / "data" / "ptbxl_sample"
SHARED_ROOT = REPO.parent / "shared" / "data" / "ptbxl100"
os.environ.setdefault("OMP_NUM_THREADS", "1")  # ecgtwin.runtime.default_threads() and subprocesses: one thread


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run every test with one torch thread, restoring the previous count afterwards.

    Tests use tiny tensors: extra threads only contend on a shared CPU (and can stall
    in OpenMP). torch is not imported here: a session of torch-free tests (data, io)
    stays torch-free; a test that imports torch only inside its body gets one thread
    from the next test on.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The bundled real PTB-XL sample (data/ptbxl_sample; read-only for tests)."""
    assert (SAMPLE_ROOT / "ptbxl_database.csv").is_file(), f"bundled sample missing at {SAMPLE_ROOT} (run scripts/make_sample.py)"
    return SAMPLE_ROOT


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The shared PTB-XL folds 1-8 pack beside the checkout; skips the test where it is absent."""
    if not (SHARED_ROOT / "ptbxl_database.csv").is_file():
        pytest.skip(f"shared PTB-XL pack not found at {SHARED_ROOT}")
    return SHARED_ROOT


@pytest.fixture(scope="session")
def sample_datamodule(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``ECGDataModule`` on the bundled sample, split 1-6 / 7 / 8, pairs, 100 Hz, cache in a temp dir, set up for fit.

    Built once per test session (a few seconds); treat it as read-only.
    """
    from ecgtwin.data.datamodule import ECGDataModule

    dm = ECGDataModule(
        root=str(sample_root),
        cache_dir=str(tmp_path_factory.mktemp("ecgtwin-cache") / "sample"),
        train_folds=[1, 2, 3, 4, 5, 6],
        val_folds=[7],
        test_folds=[8],
        batch_size=8,
        progress=False,
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm
