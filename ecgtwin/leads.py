"""The limb-lead laws as one linear map: 8 independent leads <-> the standard 12 leads.

With ``x8`` the leads :data:`~ecgtwin.constants.INDEPENDENT_LEADS` (I, II, V1-V6),
the 12 standard leads are ``x12 = M @ x8`` with the (12, 8) matrix
:func:`lead_law_matrix`: identity rows for I, II and V1-V6, and rows
:data:`~ecgtwin.constants.LIMB_LEAD_LAWS` for III, aVR, aVL and aVF.

Everything that must obey the laws goes through here: the generator is trained
on ``x8`` and every twin, whatever the sampler, is ``derive_leads(x8)``, so
Einthoven's and Goldberger's laws hold to float precision by construction.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

import numpy as np
import torch

from ecgtwin.constants import INDEPENDENT_LEADS, LEADS, LIMB_LEAD_LAWS, N_INDEPENDENT_LEADS, N_LEADS

Signal = TypeVar("Signal", np.ndarray, torch.Tensor)

INDEPENDENT_INDEX: tuple[int, ...] = tuple(LEADS.index(name) for name in INDEPENDENT_LEADS)
"""Positions of the independent leads in :data:`~ecgtwin.constants.LEADS` order."""


@lru_cache(maxsize=1)
def lead_law_matrix() -> np.ndarray:
    """``M`` (12, 8) float64 with ``x12 = M @ x8`` (rows in LEADS order, columns in INDEPENDENT_LEADS order)."""
    m = np.zeros((N_LEADS, N_INDEPENDENT_LEADS))
    for col, name in enumerate(INDEPENDENT_LEADS):
        m[LEADS.index(name), col] = 1.0
    i, ii = INDEPENDENT_LEADS.index("I"), INDEPENDENT_LEADS.index("II")
    for name, (a, b) in LIMB_LEAD_LAWS.items():
        m[LEADS.index(name), i], m[LEADS.index(name), ii] = a, b
    m.setflags(write=False)
    return m


def _check(x: Signal, leads: int, what: str) -> None:
    if x.ndim < 2 or x.shape[-2] != leads:
        raise ValueError(f"{what} must be shaped (..., {leads}, L), got {tuple(x.shape)}")


def derive_leads(x8: Signal) -> Signal:
    """12 standard leads ``(..., 12, L)`` from the 8 independent ones ``(..., 8, L)`` (numpy or torch)."""
    _check(x8, N_INDEPENDENT_LEADS, "independent leads")
    m = lead_law_matrix()
    if isinstance(x8, torch.Tensor):
        return torch.einsum("ij,...jl->...il", torch.tensor(m, dtype=x8.dtype, device=x8.device), x8)  # (..., 12, L)
    return np.einsum("ij,...jl->...il", m.astype(x8.dtype, copy=False), x8)  # (..., 12, L)


def independent_leads(x12: Signal) -> Signal:
    """The 8 independent leads ``(..., 8, L)`` of a 12-lead signal ``(..., 12, L)`` (a selection, no arithmetic)."""
    _check(x12, N_LEADS, "12-lead signals")
    index = list(INDEPENDENT_INDEX)
    return x12[..., index, :]  # (..., 8, L)


def project_to_lead_laws(x12: Signal) -> Signal:
    """The closest 12-lead signal (least squares over the leads) that obeys the limb-lead laws exactly.

    Solves ``min_x8 ||M x8 - x12||`` per sample; ``derive_leads`` of that. A
    signal that already obeys the laws is returned unchanged (up to rounding).
    """
    _check(x12, N_LEADS, "12-lead signals")
    m = lead_law_matrix()
    p = np.linalg.pinv(m)  # (8, 12)
    if isinstance(x12, torch.Tensor):
        x8 = torch.einsum("ij,...jl->...il", torch.tensor(p, dtype=x12.dtype, device=x12.device), x12)  # (..., 8, L)
    else:
        x8 = np.einsum("ij,...jl->...il", p.astype(x12.dtype, copy=False), x12)  # (..., 8, L)
    return derive_leads(x8)


def lead_law_residual(x12: Signal) -> Signal:
    """Per-sample RMS (over leads III/aVR/aVL/aVF and time) of ``x12 - derive_leads(independent_leads(x12))``: ``(...,)``."""
    derived = derive_leads(independent_leads(x12))
    index = [LEADS.index(name) for name in LIMB_LEAD_LAWS]
    diff = (x12 - derived)[..., index, :]  # (..., 4, L)
    if isinstance(diff, torch.Tensor):
        return diff.pow(2).mean(dim=(-2, -1)).sqrt()
    return np.sqrt(np.mean(diff**2, axis=(-2, -1)))
