"""Resumable evaluation: finished sections and the generated twins are kept beside the report.

``<out>/sections/<name>.json`` holds one finished stage (its report sections,
notes and the small arrays its figures need); ``<out>/twins.npz`` holds the
generated twins and the arms they were compared with, so any other tool can
judge the very same samples; ``<out>/sections/<set>.<i>.npz`` holds chunk ``i`` of a
larger generated set (the downstream and personalised stages' twins), so a
killed run loses at most one chunk of generation. Both carry the run key: a hash of everything
that determines the results (checkpoints, data, folds, pairs, sampler,
guidance, seed, options). Rerunning the same command reuses what matches the
key and computes only the rest; a different command starts afresh.
Files are written atomically (temporary file + rename): a killed run leaves
finished sections intact and never a half-written file.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ecgtwin.eval.report import to_jsonable

TWINS_FILE = "twins.npz"
SECTIONS_DIR = "sections"


def run_key(settings: Mapping[str, Any]) -> str:
    """16 hex digits identifying a run: SHA-256 of the JSON of ``settings`` (sorted keys)."""
    text = json.dumps(to_jsonable(dict(settings)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class SectionStore:
    """Finished stages and twins of one run (``key``) in ``out_dir``."""

    def __init__(self, out_dir: str | os.PathLike[str], key: str, resume: bool = True) -> None:
        self.out = Path(out_dir)
        self.key = key
        self.folder = self.out / SECTIONS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.clear()

    def clear(self) -> None:
        """Forget every stored stage (the twins file is replaced by the next :meth:`twins`)."""
        for pattern in ("*.json", "*.npz"):
            for path in self.folder.glob(pattern):
                path.unlink()

    # ---------------------------------------------------------------- stages
    def stage_key(self, options: Mapping[str, Any] | None = None) -> str:
        """The run key, refined by a stage's own options (e.g. the downstream epochs) when given."""
        return run_key({"run": self.key, **dict(options)}) if options else self.key

    def get(self, name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The stored payload of stage ``name`` when it belongs to this run (and options), else ``None``."""
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        return stored.get("payload") if stored.get("key") == self.stage_key(options) else None

    def put(self, name: str, payload: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Store a finished stage's payload (JSON-ready after :func:`to_jsonable`); return it as stored."""
        stored = {"key": self.stage_key(options), "payload": to_jsonable(payload)}
        _atomic_write(self.folder / f"{name}.json", lambda p: p.write_text(json.dumps(stored)))
        return stored["payload"]

    def stage(self, name: str, compute: Callable[[], Mapping[str, Any]],
              options: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """``(payload, reused)``: the stored payload of ``name``, or ``compute()`` stored now."""
        payload = self.get(name, options)
        if payload is not None:
            return payload, True
        return self.put(name, compute(), options), False

    # ---------------------------------------------------------------- twins
    def load_twins(self) -> dict[str, np.ndarray] | None:
        """The arrays of ``twins.npz`` when it belongs to this run, else ``None``."""
        path = self.out / TWINS_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["run_key"]) != self.key:
                    return None
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError):
            return None

    def save_twins(self, arrays: Mapping[str, np.ndarray]) -> Path:
        """Write ``twins.npz`` (the given arrays plus ``run_key``)."""
        path = self.out / TWINS_FILE

        def write(tmp: Path) -> None:
            with tmp.open("wb") as handle:
                np.savez(handle, run_key=np.array(self.key), **dict(arrays))

        _atomic_write(path, write)
        return path

    # ---------------------------------------------------------------- generated sets, chunk by chunk
    def generated(self, name: str, n: int, generate: Callable[[slice], np.ndarray],
                  options: Mapping[str, Any] | None = None, chunk: int = 256) -> np.ndarray:
        """Rows ``0..n`` of a generated set: ``generate(rows)`` -> array of ``len(rows)`` rows, called per chunk of
        ``chunk`` rows; each chunk is stored as ``sections/<name>.<i>.npz`` under the stage key (of ``options``)
        and reused by a rerun of the same run. Rows must not depend on the chunking (per-twin seeds)."""
        if n <= 0:
            return np.asarray(generate(slice(0, 0)))
        key = self.stage_key(options)
        parts = []
        for i, start in enumerate(range(0, n, chunk)):
            rows = slice(start, min(start + chunk, n))
            path = self.folder / f"{name}.{i:04d}.npz"
            part = _load_chunk(path, key, rows.stop - rows.start)
            if part is None:
                part = np.asarray(generate(rows))
                if len(part) != rows.stop - rows.start:
                    raise ValueError(f"generate({rows}) returned {len(part)} rows, not {rows.stop - rows.start}")
                _atomic_write(path, lambda tmp, part=part: _save_chunk(tmp, key, part))
            parts.append(part)
        return np.concatenate(parts)  # (n, ...)


def _save_chunk(path: Path, key: str, rows: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.savez(handle, run_key=np.array(key), rows=rows)


def _load_chunk(path: Path, key: str, n: int) -> np.ndarray | None:
    """The stored rows of one chunk when they belong to ``key`` and number ``n``, else ``None``."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["run_key"]) != key or len(data["rows"]) != n:
                return None
            return data["rows"]
    except (OSError, ValueError, KeyError):
        return None
