"""Resumable generation of the harness: chunked storage of generated sets (SectionStore.generated) and a killed
downstream stage that resumes without generating its finished chunks again."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgtwin.api import TwinModel
from ecgtwin.eval.harness import evaluate
from ecgtwin.eval.harness_data import select_pairs, twin_specs
from ecgtwin.eval.harness_store import SectionStore

from bundles import tiny_bundle


class Rows:
    """A stand-in generator: row i is filled with i; records every call; can be told to die at a call."""

    def __init__(self, die_at: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.die_at = die_at

    def __call__(self, rows: slice) -> np.ndarray:
        if self.die_at is not None and len(self.calls) == self.die_at:
            raise KeyboardInterrupt("killed")
        self.calls.append((rows.start, rows.stop))
        return np.repeat(np.arange(rows.start, rows.stop, dtype=np.float32)[:, None], 3, axis=1)  # (n, 3)


def test_generated_stores_chunks_and_a_rerun_computes_only_the_missing_ones(tmp_path: Path) -> None:
    store = SectionStore(tmp_path, "run-a")
    killed = Rows(die_at=2)
    with pytest.raises(KeyboardInterrupt):
        store.generated("downstream_twin", 10, killed, chunk=4)
    assert killed.calls == [(0, 4), (4, 8)]
    assert sorted(p.name for p in (tmp_path / "sections").glob("*.npz")) == ["downstream_twin.0000.npz",
                                                                             "downstream_twin.0001.npz"]
    resumed = Rows()
    rows = store.generated("downstream_twin", 10, resumed, chunk=4)
    assert resumed.calls == [(8, 10)]  # only the chunk the kill lost
    np.testing.assert_array_equal(rows[:, 0], np.arange(10))
    assert rows.shape == (10, 3)

    again = Rows()
    np.testing.assert_array_equal(store.generated("downstream_twin", 10, again, chunk=4), rows)
    assert again.calls == []


def test_generated_recomputes_for_another_run_or_stage_options_and_checks_row_counts(tmp_path: Path) -> None:
    SectionStore(tmp_path, "run-a").generated("twins_twin", 6, Rows(), chunk=4)
    other_run = Rows()
    SectionStore(tmp_path, "run-b").generated("twins_twin", 6, other_run, chunk=4)
    assert other_run.calls == [(0, 4), (4, 6)]
    other_options = Rows()
    SectionStore(tmp_path, "run-b").generated("twins_twin", 6, other_options, {"max_pairs": 6}, chunk=4)
    assert other_options.calls == [(0, 4), (4, 6)]
    fewer = Rows()  # the same run asking for fewer rows: the last chunk's stored length no longer matches
    SectionStore(tmp_path, "run-b").generated("twins_twin", 5, fewer, {"max_pairs": 6}, chunk=4)
    assert fewer.calls == [(4, 5)]

    with pytest.raises(ValueError, match="returned 2 rows, not 4"):
        SectionStore(tmp_path, "run-c").generated("x", 4, lambda rows: np.zeros((2, 3)), chunk=4)
    assert SectionStore(tmp_path, "run-c").generated("x", 0, lambda rows: np.zeros((0, 3))).shape == (0, 3)
    SectionStore(tmp_path, "run-c", resume=False)  # a fresh run forgets the stored chunks too
    assert list((tmp_path / "sections").glob("*.npz")) == []


def test_chunked_twins_equal_one_call_per_twin_seeds(sample_root: Path, sample_datamodule,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    model = TwinModel.load(tiny_bundle(sample_root, tmp_path, True))
    specs = twin_specs(model, select_pairs(sample_datamodule, 5, 0))
    whole = model.generate(specs, steps=3, progress=False)
    chunked = SectionStore(tmp_path / "out", "k").generated(
        "twins_twin", len(specs), lambda rows: model.generate(specs[rows], steps=3, progress=False), chunk=2)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)  # mV: batch composition changes only float rounding


def test_a_downstream_stage_killed_mid_generation_resumes_from_its_chunks(  # type: ignore[no-untyped-def]
        sample_root: Path, sample_datamodule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecgtwin.eval.classifier import ECGClassifier

    model = TwinModel.load(tiny_bundle(sample_root, tmp_path, True))
    classifier = ECGClassifier(len(sample_datamodule.vocabulary), widths=(8, 16), head_dim=16).eval()
    kwargs = dict(max_pairs=3, steps=2, n_extreme=1, max_clinical=2, n_boot=5, privacy=False, downstream=True,
                  downstream_max_pairs=5, downstream_epochs=1, progress=False)
    original = SectionStore.generated
    calls: list[tuple[str, int, int]] = []
    kill = {"on": True}

    def chunked(self, name, n, generate, options=None, chunk=256):  # type: ignore[no-untyped-def]
        def watched(rows: slice) -> np.ndarray:
            if kill["on"] and name.startswith("downstream") and rows.start == 4:
                raise KeyboardInterrupt("killed during the downstream twins")
            calls.append((name, rows.start, rows.stop))
            return generate(rows)
        return original(self, name, n, watched, options, chunk=2)  # chunks of 2 rows

    monkeypatch.setattr(SectionStore, "generated", chunked)
    with pytest.raises(KeyboardInterrupt):
        evaluate(model, sample_datamodule, classifier, tmp_path / "out", **kwargs)
    assert [c for c in calls if c[0].startswith("downstream")] == [("downstream_twin", 0, 2), ("downstream_twin", 2, 4)]
    assert ("twins_twin", 2, 3) in calls  # the test pairs' twins, in two chunks as well
    calls.clear()
    kill["on"] = False
    report = evaluate(model, sample_datamodule, classifier, tmp_path / "out", **kwargs)
    assert calls == [("downstream_twin", 4, 5)]  # only the chunk the kill lost is generated again
    assert report["downstream"]["settings"]["train_pairs"] == 5
    assert "twins" in " ".join(report["notes"])  # the test twins were reused
