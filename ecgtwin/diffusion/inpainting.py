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

Projection alone lets the free leads commit early to beats the recorded ones do
not have (the "disharmony" of replacement methods). ``reconstruction`` > 0 adds
reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", Eq. 7)
before the projection: the whole prediction moves along the gradient that makes
its recorded part agree with ``y`` through the network,

    x0_hat <- x0_hat - (w alpha_t / 2) * grad_{x_t} ||H^+ (y - H x0_hat(x_t))||^2,

so a beat drawn in a free lead where the recorded leads have none is pulled
out of it (one backward pass through the network per call). The residual is
measured as the least-norm correction ``H^+ r`` of the independent signal (the
generated leads, or the basis coordinates below) rather than ``r`` itself: the
same where each recorded lead is one independent lead (then ``H H^T = I``; lead
I, I + II, precordial leads), and blind to redundant recordings, so the six limb
leads (four of them linear in I and II) pull exactly as I + II do instead of
3.5x as hard on lead I, and a 12-lead network is pulled as an 8-lead one.

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
    return torch.linalg.pinv(h.double(), rtol=1e-10)  # rank-deficient H (six limb leads): round-off stays out


class MeasurementDenoiser:
    """``(x_t, t) -> v`` whose data prediction agrees with ``y = H x0`` (see the module docstring).

    ``h``: (k, C) measurement matrix over the C generated leads; ``y``: (B, k, L)
    measurements in the same units as the diffusion signal.
    """

    def __init__(self, denoiser: Denoiser, schedule: VPSchedule, h: torch.Tensor, y: torch.Tensor,
                 basis: torch.Tensor | None = None, reconstruction: float = 0.0) -> None:
        if y.ndim != 3 or y.shape[1] != h.shape[0]:
            raise ValueError(f"measurements must be (B, {h.shape[0]}, L), got {tuple(y.shape)}")
        if not reconstruction >= 0.0:
            raise ValueError(f"reconstruction guidance weight must be >= 0, got {reconstruction}")
        self.reconstruction = float(reconstruction)
        self.denoiser = denoiser
        self.schedule = schedule
        self.basis = None if basis is None else basis.double()  # (C, D)
        self.basis_pinv = None if basis is None else range_projector(self.basis)  # (D, C)
        self.h = h.double() if basis is None else h.double() @ self.basis  # (k, C) or (k, D)
        self.pinv = range_projector(self.h)  # (C or D, k)
        # H over the generated leads, through the subspace when there is one: (k, C)
        self.h_generated = self.h if basis is None else self.h @ self.basis_pinv
        self.y = y.double()

    def project(self, x0: torch.Tensor) -> torch.Tensor:
        """``x0 + H^+ (y - H x0)`` for x0 (B, C, L) (in the basis' subspace when one is given)."""
        x = x0.double()
        if self.basis is not None:
            x = torch.einsum("dc,bcl->bdl", self.basis_pinv.to(x.device), x)  # (B, D, L)
        residual = self.y.to(x.device) - torch.einsum("kc,bcl->bkl", self.h.to(x.device), x)  # (B, k, L)
        x = x + torch.einsum("ck,bkl->bcl", self.pinv.to(x.device), residual)
        if self.basis is not None:
            x = torch.einsum("cd,bdl->bcl", self.basis.to(x.device), x)  # (B, C, L)
        return x.to(x0.dtype)

    def measured(self, x0: torch.Tensor) -> torch.Tensor:
        """``H x0`` (B, k, L) of a prediction (B, C, L), differentiable."""
        return torch.einsum("kc,bcl->bkl", self.h_generated.to(x0), x0)

    def mismatch(self, x0: torch.Tensor) -> torch.Tensor:
        """``||H^+ (y - H x0)||^2`` summed over the batch, for x0 (B, C, L): the squared least-norm correction in
        the independent coordinates (the generated leads, or the basis' D coordinates)."""
        residual = self.y.to(x0) - self.measured(x0)  # (B, k, L)
        correction = torch.einsum("dk,bkl->bdl", self.pinv.to(x0), residual)  # (B, C or D, L)
        return correction.pow(2).sum()

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        step = int(t.reshape(-1)[0])
        alpha, sigma = float(self.schedule.alphas[step]), float(self.schedule.sigmas[step])
        if self.reconstruction > 0.0:
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = alpha * xg - sigma * self.denoiser(xg, t)  # (B, C, L)
                loss = self.mismatch(x0)
                (grad,) = torch.autograd.grad(loss, xg)
            x0 = x0.detach() - 0.5 * self.reconstruction * alpha * grad  # Ho et al. 2022, Eq. 7
        else:
            x0 = alpha * x - sigma * self.denoiser(x, t)
        x0 = self.project(x0)  # corrected data prediction (B, C, L)
        return (alpha * x - x0) / sigma  # the v that yields x0 exactly
