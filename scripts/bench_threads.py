"""Thread benchmark: generate-ecg on a quiet machine and beside busy background CPU processes, in one run.

For each thread setting, ``generate-ecg`` runs in a fresh process (model load
excluded: the time is its own "s per twin", sampling + writing) first on the
quiet machine, then while ``--busy`` processes spin on the CPUs (pure Python
loops, one per CPU by default). Settings:

* ``default``: what a user gets (no ``--threads``, no ``OMP_NUM_THREADS``),
* ``1`` and ``all`` (``--threads`` 1 and one per CPU),
* ``torch-default``: the behaviour before issue 12: one thread per CPU with
  spinning OpenMP threads (``OMP_WAIT_POLICY=ACTIVE``).

The table shows s/twin quiet, s/twin busy and their ratio; the target is a
ratio under 3 for ``default``. Run it on an otherwise idle machine (it prints
the load it sees first):

    python scripts/bench_threads.py --num 8 --steps 25
    python scripts/bench_threads.py --num 2 --steps 2 --settings default 1    # a quick check that it runs
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ecgtwin.paths import BUNDLED_SAMPLE
from ecgtwin.runtime import available_cpus, busy_cpus

RECORD = BUNDLED_SAMPLE / "records100/01000/01495_lr"
SETTINGS = ("default", "1", "all", "torch-default")
TARGET_RATIO = 3.0
_PER_TWIN = re.compile(r"([0-9.]+) s per twin .*?(\d+) CPU thread")


def run_generation(setting: str, args: argparse.Namespace, out: Path) -> tuple[float, int]:
    """(seconds per twin, threads used) of one ``generate-ecg`` run in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-m", "ecgtwin.cli.generate", "--reference", str(args.reference), "--condition", "MI",
           "--num", str(args.num), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--out", str(out), "--no-progress"]
    cmd += ["--sampler", args.sampler] if args.sampler else []
    cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    if setting == "all":
        cmd += ["--threads", str(available_cpus())]
    elif setting == "torch-default":
        cmd += ["--threads", str(available_cpus())]
        env["OMP_WAIT_POLICY"] = "ACTIVE"
    elif setting != "default":
        cmd += ["--threads", setting]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    match = _PER_TWIN.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"generate-ecg failed ({setting}):\n{result.stdout}\n{result.stderr[-2000:]}")
    return float(match.group(1)), int(match.group(2))


def start_busy(n: int) -> list[subprocess.Popen]:
    """``n`` background processes spinning on the CPU."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=8, help="twins per run (default 8)")
    p.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    p.add_argument("--sampler", help="sampler (default: ecgtwin.pipeline.DEFAULT_SAMPLING)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--busy", type=int, default=available_cpus(), help="busy background processes (default: one per CPU)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), help=f"thread settings (default: {' '.join(SETTINGS)})")
    p.add_argument("--checkpoint", help="model (default: the bundled model)")
    p.add_argument("--reference", default=str(RECORD))
    p.add_argument("--timeout", type=float, default=1800, help="seconds per generate-ecg run")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    print(f"{available_cpus()} CPU(s); busy before the quiet runs: {busy_cpus():.2f} CPU(s) "
          "(should be near 0 for a quiet baseline)", flush=True)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp:
        for setting in args.settings:
            seconds, threads = run_generation(setting, args, Path(tmp) / f"quiet-{setting}")
            rows[setting] = {"quiet_s": seconds, "quiet_threads": threads}
            print(f"  quiet {setting}: {seconds:.3f} s/twin ({threads} threads)", flush=True)
        busy = start_busy(args.busy)
        try:
            time.sleep(1.0)
            for setting in args.settings:
                seconds, threads = run_generation(setting, args, Path(tmp) / f"busy-{setting}")
                rows[setting].update(busy_s=seconds, busy_threads=threads)
                print(f"  busy  {setting}: {seconds:.3f} s/twin ({threads} threads)", flush=True)
        finally:
            stop(busy)
    print(f"\n| threads | quiet s/twin | with {args.busy} busy process(es) s/twin | busy / quiet |")
    print("|---|---|---|---|")
    for setting, r in rows.items():
        r["ratio"] = r["busy_s"] / r["quiet_s"]
        print(f"| {setting} ({r['quiet_threads']:.0f} quiet, {r['busy_threads']:.0f} busy) | {r['quiet_s']:.3f} "
              f"| {r['busy_s']:.3f} | {r['ratio']:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": rows}, indent=2))
    if "default" in rows:
        ok = rows["default"]["ratio"] <= TARGET_RATIO
        print(f"\ndefault under load: {rows['default']['ratio']:.2f}x quiet -> {'PASS' if ok else 'FAIL'} "
              f"(target <= {TARGET_RATIO:g}x)")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
