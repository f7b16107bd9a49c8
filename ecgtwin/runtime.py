"""CPU threads for generation: a default that stays fast beside other CPU jobs.

torch's own default (one OpenMP thread per core, spinning while it waits) is
the worst case on a shared machine: beside another CPU job, generation ran
17x slower than on a quiet machine (issue 12). Here:

* :func:`default_threads` is ``OMP_NUM_THREADS`` when set, else the CPUs this
  process may use (affinity, cgroup quota; at most :data:`MAX_DEFAULT_THREADS`)
  minus those already busy (the larger of the 1-minute load average and a
  50 ms ``/proc/stat`` sample), at least 1. It is computed once per process.
* :func:`prepare_process` (command-line entry points, before torch is imported)
  makes idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``,
  unless set), so a background job that starts later costs a share of the CPU,
  not a stall.
* :func:`torch_threads` sets torch's thread count for a block and restores it
  (``TwinModel.generate`` runs inside it with the model's ``threads``).

``scripts/bench_threads.py`` measures the effect (quiet vs busy, one run).
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

MAX_DEFAULT_THREADS = 8
"""More threads rarely help the small convolutions of one generation batch on CPU."""
_override: int | None = None


def available_cpus() -> int:
    """CPUs this process may run on: affinity mask, capped by a cgroup v2 CPU quota (``cpu.max``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _proc_stat_busy(interval_s: float = 0.05) -> float | None:
    """Busy CPUs (host-wide) over ``interval_s`` from ``/proc/stat``; None where unavailable."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval_s)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1.0 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def busy_cpus() -> float:
    """CPUs other work keeps busy now: max of the 1-minute load average and a short ``/proc/stat`` sample."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    sampled = _proc_stat_busy()
    return max(load, sampled or 0.0)


def _env_threads() -> int | None:
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


@lru_cache(maxsize=1)
def _measured_default() -> int:
    free = min(available_cpus(), MAX_DEFAULT_THREADS) - busy_cpus()
    return max(1, min(available_cpus(), MAX_DEFAULT_THREADS, math.floor(free + 0.5)))


def default_threads() -> int:
    """The thread count generation uses when none is given (see the module docstring)."""
    if _override is not None:
        return _override
    return _env_threads() or _measured_default()


def check_threads(threads: int) -> int:
    """``threads`` as an int >= 1, else ValueError."""
    if int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    return int(threads)


def prepare_process(threads: int | None = None) -> int:
    """Command-line entry points: fix this process's thread count (``threads`` or the default) and, before
    torch is imported, let idle OpenMP threads sleep. Returns the thread count."""
    global _override
    count = check_threads(threads) if threads is not None else default_threads()
    _override = count
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return count


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(threads)``; the previous count is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
