"""Linear-measurement consistency for diffusion sampling: lead completion by null-space projection.

Given measurements ``y = H x0`` of the clean signal (``H`` (k, C): which
combinations of the generated leads were recorded), every denoiser call's
data prediction is corrected in the range of ``H`` and left free in its null
space (DDNM, Wang et al. 2023, Eq. 13)::

    x0' = x0_hat + H^+ (y - H x0_hat)

and handed back to the sampler as the equivalent v prediction
``v' = (alpha_t x_t - x0') / sigma_t``. Because the samplers take the last
data prediction as their result, the output satisfies ``H x0 = y`` exactly (in
the least-squares sense when ``y`` is inconsistent, e.g. measured limb leads
that break Einthoven's law by recording noise). The wrapper works with every
sampler and with guidance (it wraps the guided denoiser).

With a ``basis`` ``B`` (C, D) the prediction is first taken to the subspace
``x0 = B z`` (least squares), corrected there and mapped back: a 12-lead
network (``B`` the 12 x 8 lead-law matrix) then obeys the limb-lead laws too.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ecgtwin.diffusion.schedule import VPSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def range_projector(h: torch.Tensor) -> torch.Tensor:
    """``H^+`` (C, k), the Moore-Penrose pseudo-inverse of the measurement matrix ``H`` (k, C), in float64."""
    if h.ndim != 2 or h.shape[0] < 1:
        raise ValueError(f"the measurement matrix must be (k >= 1, C), got {tuple(h.shape)}")
    return torch.linalg.pinv(h.double())


class MeasurementDenoiser:
    """``(x_t, t) -> v`` whose data prediction agrees with ``y = H x0`` (see the module docstring).

    ``h``: (k, C) measurement matrix over the C generated leads; ``y``: (B, k, L)
    measurements in the same units as the diffusion signal.
    """

    def __init__(self, denoiser: Denoiser, schedule: VPSchedule, h: torch.Tensor, y: torch.Tensor,
                 basis: torch.Tensor | None = None) -> None:
        if y.ndim != 3 or y.shape[1] != h.shape[0]:
            raise ValueError(f"measurements must be (B, {h.shape[0]}, L), got {tuple(y.shape)}")
        self.denoiser = denoiser
        self.schedule = schedule
        self.basis = None if basis is None else basis.double()  # (C, D)
        self.h = h.double() if basis is None else h.double() @ self.basis  # (k, C) or (k, D)
        self.pinv = range_projector(self.h)  # (C or D, k)
        self.y = y.double()

    def project(self, x0: torch.Tensor) -> torch.Tensor:
        """``x0 + H^+ (y - H x0)`` for x0 (B, C, L) (in the basis' subspace when one is given)."""
        x = x0.double()
        if self.basis is not None:
            x = torch.einsum("dc,bcl->bdl", torch.linalg.pinv(self.basis).to(x.device), x)  # (B, D, L)
        residual = self.y.to(x.device) - torch.einsum("kc,bcl->bkl", self.h.to(x.device), x)  # (B, k, L)
        x = x + torch.einsum("ck,bkl->bcl", self.pinv.to(x.device), residual)
        if self.basis is not None:
            x = torch.einsum("cd,bdl->bcl", self.basis.to(x.device), x)  # (B, C, L)
        return x.to(x0.dtype)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = self.denoiser(x, t)
        step = int(t.reshape(-1)[0])
        alpha, sigma = float(self.schedule.alphas[step]), float(self.schedule.sigmas[step])
        x0 = self.project(alpha * x - sigma * v)  # corrected data prediction (B, C, L)
        return (alpha * x - x0) / sigma  # the v that yields x0 exactly
