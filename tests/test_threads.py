"""CPU threads: a default that stays fast beside other CPU jobs, ``--threads``, the API's ``threads``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ecgtwin.api
from ecgtwin import runtime
from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.cli.generate import main as generate_main
from ecgtwin.io.wfdb_io import read_reference

from bundles import tiny_bundle

RECORD = "records100/01000/01495_lr"


@pytest.fixture()
def measured(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Control the machine the default sees: ``set(cpus, busy)``; OMP_NUM_THREADS unset, no override, no cache."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_override", None)
    runtime._measured_default.cache_clear()

    def set_machine(cpus: int, busy: float) -> int:
        monkeypatch.setattr(runtime, "available_cpus", lambda: cpus)
        monkeypatch.setattr(runtime, "busy_cpus", lambda: busy)
        runtime._measured_default.cache_clear()
        return runtime.default_threads()

    yield set_machine
    runtime._measured_default.cache_clear()


def test_default_uses_idle_cpus_only(measured) -> None:  # type: ignore[no-untyped-def]
    assert measured(2, 0.1) == 2  # quiet 2-core machine: both cores
    assert measured(2, 2.4) == 1  # a training job on both cores (issue 12): one thread, never oversubscribe
    assert measured(2, 50.0) == 1  # never below one
    assert measured(64, 0.0) == runtime.MAX_DEFAULT_THREADS
    assert measured(16, 6.0) == 2  # min(16, 8) - 6 busy


def test_omp_num_threads_and_an_explicit_count_win(measured, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    measured(2, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime.default_threads() == 3
    for bad in ("0", "-2", "two", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert runtime.default_threads() == 2  # an invalid variable is ignored
    assert runtime.prepare_process(5) == 5 and runtime.default_threads() == 5
    for bad in (0, -1):
        with pytest.raises(ValueError, match="threads must be an integer >= 1"):
            runtime.check_threads(bad)


def test_the_machine_is_measured_for_real() -> None:
    assert runtime.available_cpus() >= 1 and runtime.busy_cpus() >= 0.0


def test_cli_entry_makes_idle_openmp_threads_sleep() -> None:
    code = ("import os, sys; from ecgtwin import runtime; n = runtime.prepare_process(2); "
            "assert 'torch' not in sys.modules; print(n, os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["2", "PASSIVE"]


def test_api_generates_with_the_models_thread_count_and_restores_it(sample_root: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = ecgtwin.api.sample_twins

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(ecgtwin.api, "sample_twins", spy)
    model = TwinModel.load(tiny_bundle(sample_root, tmp_path), threads=2)
    assert model.threads == 2 and TwinModel.load(model.checkpoint_path).threads == runtime.default_threads()
    torch.set_num_threads(1)
    model.generate([TwinSpec(read_reference(sample_root / RECORD).signal, ["MI"])], steps=1, progress=False)
    assert seen == [2] and torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="threads must be"):
        TwinModel.load(model.checkpoint_path, threads=0)


def test_generate_ecg_threads_option(sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_override", None)
    bundle = tiny_bundle(sample_root, tmp_path)
    base = ["--reference", str(sample_root / RECORD), "--condition", "MI", "--steps", "1", "--checkpoint", str(bundle),
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert generate_main([*base, "--threads", "0"]) == 2
    assert "--threads: threads must be an integer >= 1, got 0" in capsys.readouterr().err
    assert generate_main([*base, "--threads", "2"]) == 0
    assert "2 CPU thread(s)" in capsys.readouterr().out
