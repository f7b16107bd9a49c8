"""Lead laws (ecgtwin.leads): exact derivation for any network output, selection, projection, residuals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgtwin.constants import INDEPENDENT_LEADS, LEADS
from ecgtwin.leads import derive_leads, independent_leads, lead_law_matrix, lead_law_residual, project_to_lead_laws


def _lead(x: np.ndarray, name: str) -> np.ndarray:
    return x[..., LEADS.index(name), :]


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_derived_leads_obey_einthoven_and_goldberger_exactly(scale: float) -> None:
    rng = np.random.default_rng(0)
    x8 = (scale * rng.standard_normal((5, 8, 200))).astype(np.float32)  # any network output, heavy tails included
    x12 = derive_leads(x8)
    i, ii, iii = _lead(x12, "I"), _lead(x12, "II"), _lead(x12, "III")
    tol = 1e-6 * scale
    np.testing.assert_allclose(i + iii, ii, atol=tol)  # Einthoven
    np.testing.assert_allclose(_lead(x12, "aVR"), -(i + ii) / 2, atol=tol)  # Goldberger
    np.testing.assert_allclose(_lead(x12, "aVL"), i - ii / 2, atol=tol)
    np.testing.assert_allclose(_lead(x12, "aVF"), ii - i / 2, atol=tol)
    np.testing.assert_allclose(_lead(x12, "aVR") + _lead(x12, "aVL") + _lead(x12, "aVF"), 0, atol=tol)
    assert np.all(lead_law_residual(x12) <= tol)
    np.testing.assert_array_equal(independent_leads(x12), x8)  # the independent leads pass through untouched


def test_torch_and_numpy_agree_and_keep_dtype_and_device() -> None:
    x8 = torch.randn(2, 3, 8, 50, dtype=torch.float64)  # extra leading dims
    out = derive_leads(x8)
    assert out.shape == (2, 3, 12, 50) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), derive_leads(x8.numpy()), atol=1e-12)
    assert float(lead_law_residual(out).max()) < 1e-12


def test_matrix_rows_and_known_values() -> None:
    m = lead_law_matrix()
    assert m.shape == (12, 8)
    col = {name: INDEPENDENT_LEADS.index(name) for name in INDEPENDENT_LEADS}
    assert m[LEADS.index("III"), col["I"]] == -1 and m[LEADS.index("III"), col["II"]] == 1
    assert m[LEADS.index("V4"), col["V4"]] == 1 and m[LEADS.index("V4")].sum() == 1
    with pytest.raises(ValueError):
        m[0, 0] = 2.0  # read-only: one source of truth
    # I = 1 mV, II = 2 mV -> III = 1, aVR = -1.5, aVL = 0, aVF = 1.5
    x8 = np.zeros((8, 1))
    x8[col["I"]], x8[col["II"]] = 1.0, 2.0
    x12 = derive_leads(x8)[:, 0]
    expected = {"III": 1.0, "aVR": -1.5, "aVL": 0.0, "aVF": 1.5}
    assert {k: x12[LEADS.index(k)] for k in expected} == expected


def test_residual_of_a_law_breaking_signal_and_projection() -> None:
    rng = np.random.default_rng(1)
    x12 = derive_leads(rng.standard_normal((3, 8, 100)))
    broken = x12.copy()
    broken[:, LEADS.index("III")] += 0.1  # 0.1 mV offset on one of the four derived leads
    np.testing.assert_allclose(lead_law_residual(broken), np.sqrt(0.1**2 / 4), rtol=1e-9)
    projected = project_to_lead_laws(broken)
    assert np.all(lead_law_residual(projected) < 1e-12)
    np.testing.assert_allclose(project_to_lead_laws(x12), x12, atol=1e-12)  # lawful signals are fixed points


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="8, L"):
        derive_leads(np.zeros((12, 10)))
    with pytest.raises(ValueError, match="12, L"):
        independent_leads(np.zeros((8, 10)))
