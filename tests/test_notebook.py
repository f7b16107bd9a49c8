"""notebooks/explore_twins.ipynb runs end to end on a tiny bundle; its helpers (ecgtwin.viz.notebook) compute the right numbers."""
from __future__ import annotations

import base64
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from nbclient import NotebookClient

from ecgtwin.constants import lead_index
from ecgtwin.data.conditions import LabelVocabulary
from ecgtwin.data.ptbxl import load_ptbxl_database
from ecgtwin.io.wfdb_io import read_reference
from ecgtwin.viz.notebook import (CLINICAL_COLUMNS, clinical_table, cosine_similarity, patient_records,
                                  patients_with_records, plot_leads, plot_similarity)
from bundles import tiny_bundle

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore_twins.ipynb"
PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def database(sample_root: Path) -> pd.DataFrame:
    return load_ptbxl_database(sample_root)


@pytest.fixture(scope="module")
def vocabulary(sample_root: Path) -> LabelVocabulary:
    return LabelVocabulary.from_root(sample_root, "superclass")


def _outputs(notebook: nbformat.NotebookNode) -> tuple[str, list[bytes]]:
    """All printed text of a run notebook and every PNG it displayed (decoded)."""
    text, pngs = [], []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"cell failed: {out.get('ename')}: {out.get('evalue')}"
            text.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
            if "image/png" in out.get("data", {}):
                pngs.append(base64.b64decode(out["data"]["image/png"]))
    return "\n".join(text), pngs


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert sum(c.cell_type == "markdown" for c in notebook.cells) >= len(code) // 2  # every step explained


def test_notebook_runs_on_atiny_bundle(sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECGTWIN_BUNDLE", str(tiny_bundle(sample_root, tmp_path)))
    monkeypatch.setenv("ECGTWIN_NB_STEPS", "2")
    monkeypatch.setenv("ECGTWIN_NB_NUM", "1")
    monkeypatch.setenv("ECGTWIN_NB_OUT", str(tmp_path / "figures"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text, pngs = _outputs(notebook)
    assert "steps=2 twins/condition=1" in text  # the environment reached the setup cell
    assert "['CD', 'HYP', 'MI', 'NORM', 'STTC']" in text and "note: test" in text  # vocabulary and provenance
    assert "1495" in text and "1513" in text and "5131" in text  # patient 11568's three records
    assert "6 twins of shape (12, 1000)" in text  # six conditions x one seed
    assert "HEART RATE AND INTERVALS" in text and "measured_hr" in text and "MI @ 110 bpm #0" in text
    assert "TWIN BASE VECTORS" in text and "nearest patient" in text
    assert len(pngs) >= 6 and all(p.startswith(PNG_MAGIC) for p in pngs)  # comparison, leads x2, overlay, heatmaps x2
    assert (tmp_path / "figures" / "twins_by_condition.png").read_bytes().startswith(PNG_MAGIC)


def test_patient_records_are_sorted_and_labelled(database: pd.DataFrame, vocabulary: LabelVocabulary) -> None:
    table = patient_records(database, 11568, vocabulary)
    assert list(table.index) == [1495, 1513, 5131]
    assert table["recording_date"].is_monotonic_increasing
    assert list(table["labels"]) == [["NORM"], ["MI"], ["MI", "STTC"]]  # IMI -> MI, NDT -> STTC
    with pytest.raises(ValueError, match="patient_id 1 has no records"):
        patient_records(database, 1, vocabulary)


def test_patients_with_records_orders_by_count(database: pd.DataFrame) -> None:
    chosen = patients_with_records(database, 4, min_records=2, include=[11568])
    sizes = database["patient_id"].value_counts()
    assert chosen[0] == 11568 and len(chosen) == 4 == len(set(chosen))
    assert [sizes[p] for p in chosen[1:]] == sorted(sizes[sizes >= 2].to_numpy(), reverse=True)[:3]
    with pytest.raises(ValueError, match="no records"):
        patients_with_records(database, 2, include=[-5])
    with pytest.raises(ValueError, match=">= 1"):
        patients_with_records(database, 0)


def test_clinical_table_measures_real_and_synthetic_rates(sample_root: Path) -> None:
    real = read_reference(sample_root / "records100/01000/01495_lr").signal
    fs, t = 100, np.arange(1000) / 100
    synthetic = np.zeros((12, 1000), np.float32)
    beats = np.zeros(1000)
    beats[(np.arange(0, 10, 0.5) * fs).astype(int)] = 1.0  # a spike every 0.5 s = 120 bpm
    synthetic[:] = np.convolve(beats, np.hanning(7), mode="same") * 1.5 + 0.05 * np.sin(2 * np.pi * 0.3 * t)
    table = clinical_table({"real": real, "spikes": synthetic, "flat": np.zeros((12, 1000))}, fs,
                           target_hr={"spikes": 110.0, "real": None})
    assert list(table.columns) == list(CLINICAL_COLUMNS) and list(table.index) == ["real", "spikes", "flat"]
    assert table.loc["spikes", "measured_hr"] == pytest.approx(120, abs=2)
    assert table.loc["spikes", "hr_error"] == pytest.approx(table.loc["spikes", "measured_hr"] - 110)
    assert 40 < table.loc["real", "measured_hr"] < 120 and np.isnan(table.loc["real", "target_hr"])
    assert 40 <= table.loc["real", "qrs_ms"] <= 200 and 250 <= table.loc["real", "qt_ms"] <= 600
    assert table.loc["flat"].drop("target_hr").isna().all()  # undetectable -> NaN, not a crash
    with pytest.raises(ValueError, match="empty"):
        clinical_table({}, fs)


def test_cosine_similarity_numbers() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(a), [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(cosine_similarity(a[:1], np.array([[1.0, 1.0]])), [[2 ** -0.5]])
    with pytest.raises(ValueError, match=r"\(N, D\) and \(M, D\)"):
        cosine_similarity(a, np.ones((2, 3)))


def test_plots_draw_blocks_and_leads(sample_root: Path) -> None:
    sim = cosine_similarity(np.random.default_rng(0).normal(size=(5, 4)))
    ax = plot_similarity(sim, list("abcde"), row_groups=[1, 1, 2, 2, 2])
    assert isinstance(ax.figure, Figure)
    assert [line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] == line.get_ydata()[1]] == [1.5]
    assert sorted(line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1]) == [1.5]
    with pytest.raises(ValueError, match="does not match"):
        plot_similarity(sim, list("abc"))
    real = read_reference(sample_root / "records100/01000/01495_lr").signal
    fig = plot_leads({"a": real, "b": 2 * real}, 100, leads=("II", "V2"))
    axes = fig.get_axes()
    assert len(axes) == 2 and [len(ax.lines) for ax in axes] == [2, 2]
    np.testing.assert_allclose(axes[1].lines[1].get_ydata(), 2 * real[lead_index("V2")])
    with pytest.raises(ValueError, match="empty"):
        plot_leads({}, 100)
