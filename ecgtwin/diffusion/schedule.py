"""Discrete variance-preserving (VP) diffusion with a cosine schedule and v-prediction.

Forward process (DDPM, Ho et al. 2020), timesteps ``t = 0 .. T-1``::

    x_t = alpha_t * x0 + sigma_t * eps,   alpha_t = sqrt(abar_t),  sigma_t = sqrt(1 - abar_t)

Cosine schedule (Nichol & Dhariwal 2021, Eq. 17)::

    abar(u) = f(u) / f(0),  f(u) = cos(((u + s) / (1 + s)) * pi / 2) ** 2,   s = 0.008
    beta_t = min(1 - abar((t + 1) / T) / abar(t / T), 0.999),  abar_t = prod_{j <= t} (1 - beta_j)

The network predicts the velocity (Salimans & Ho 2022, Sec. 4)::

    v = alpha_t * eps - sigma_t * x0,   x0 = alpha_t * x_t - sigma_t * v,   eps = sigma_t * x_t + alpha_t * v

Why: the v target has unit scale at every t (no blow-up of the x0/eps
conversions near t = 0 or T), it trains stably with the cosine schedule, and x0
and eps -- which DDIM and DPM-Solver++ need -- are exact linear functions of
the network output.

Loss: ``E || v_theta(x_t, t) - v ||^2`` with uniform ``t``; optional Min-SNR-gamma
weighting (Hang et al. 2023), which for v-prediction is ``min(SNR, gamma) / (SNR + 1)``
(off by default).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ecgtwin.constants import TIMESTEP_SPACINGS


def cosine_alphas_cumprod(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """``abar_t`` for ``t = 0 .. T-1`` of the cosine schedule (float64, (T,))."""
    u = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps  # (T+1,)
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)  # (T,)
    return torch.cumprod(1 - betas, dim=0)


def _expand(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) broadcastable against ``like``."""
    return coef.to(dtype=like.dtype, device=like.device).reshape(-1, *([1] * (like.ndim - 1)))


class VPSchedule:
    """The discrete VP process: coefficients, forward noising and v <-> (x0, eps) conversions."""

    def __init__(self, num_timesteps: int = 1000, cosine_s: float = 0.008, max_beta: float = 0.999) -> None:
        if num_timesteps < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {num_timesteps}")
        self.num_timesteps = num_timesteps
        self.alphas_cumprod = cosine_alphas_cumprod(num_timesteps, cosine_s, max_beta)  # (T,) float64
        self.alphas = self.alphas_cumprod.sqrt()  # alpha_t, (T,)
        self.sigmas = (1 - self.alphas_cumprod).sqrt()  # sigma_t, (T,)

    def _check(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.ndim != 1:
            raise ValueError(f"timesteps must be an integer tensor (B,), got dtype {t.dtype} shape {tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(f"timesteps must lie in [0, {self.num_timesteps - 1}], got [{int(t.min())}, {int(t.max())}]")
        return t.cpu()

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_t, sigma_t)`` for integer timesteps ``t`` (B,), float64 on the CPU."""
        t = self._check(t)
        return self.alphas[t], self.sigmas[t]

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ``alpha_t^2 / sigma_t^2`` (B,)."""
        alpha, sigma = self.alpha_sigma(t)
        return alpha**2 / sigma**2

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = alpha_t x0 + sigma_t eps`` (B, ...)."""
        alpha, sigma = self.alpha_sigma(t)
        return _expand(alpha, x0) * x0 + _expand(sigma, x0) * noise

    def v_target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``v = alpha_t eps - sigma_t x0`` (Salimans & Ho 2022)."""
        alpha, sigma = self.alpha_sigma(t)
        return _expand(alpha, x0) * noise - _expand(sigma, x0) * x0

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``x0 = alpha_t x_t - sigma_t v``."""
        alpha, sigma = self.alpha_sigma(t)
        return _expand(alpha, x_t) * x_t - _expand(sigma, x_t) * v

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``eps = sigma_t x_t + alpha_t v``."""
        alpha, sigma = self.alpha_sigma(t)
        return _expand(sigma, x_t) * x_t + _expand(alpha, x_t) * v

    def sample_timesteps(self, batch_size: int, device: torch.device | str = "cpu",
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform training timesteps (B,) int64 on ``device``."""
        t = torch.randint(0, self.num_timesteps, (batch_size,), generator=generator)
        return t.to(device)

    def sampling_timesteps(self, steps: int, spacing: str = "quadratic", t_max: int | None = None) -> list[int]:
        """``steps`` strictly decreasing timesteps from ``t_max`` (default ``T-1``) to ``0``.

        ``"quadratic"`` (default): ``t_i = (T-1) u_i^2`` for ``u`` uniform in
        [1, 0] (the "quad" spacing of DDIM, Song et al. 2021, App. D.2), which
        puts more steps at low noise where the cosine schedule's log-SNR moves
        fastest; ``"trailing"``: uniform in ``t`` (Lin et al. 2024). Both give
        every timestep when ``steps == T``. A ``t_max`` below ``T-1`` starts part-way
        (editing); ``steps`` is then capped at ``t_max + 1``.
        """
        top = self.num_timesteps - 1 if t_max is None else int(t_max)
        if not 0 <= top <= self.num_timesteps - 1:
            raise ValueError(f"t_max must be in [0, {self.num_timesteps - 1}], got {t_max}")
        if not 1 <= steps <= self.num_timesteps:
            raise ValueError(f"steps must be in [1, {self.num_timesteps}], got {steps}")
        steps = min(steps, top + 1)
        if spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"spacing must be one of {sorted(TIMESTEP_SPACINGS)}, got {spacing!r}")
        u = torch.linspace(1.0, 0.0, steps, dtype=torch.float64)
        grid = (top * u ** TIMESTEP_SPACINGS[spacing]).round().long().tolist()
        for i in range(steps - 2, -1, -1):  # keep the grid strictly decreasing near t = 0
            grid[i] = max(grid[i], grid[i + 1] + 1)
        return grid


NetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def diffusion_loss(
    net_fn: NetFn,
    schedule: VPSchedule,
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    min_snr_gamma: float | None = None,
    min_snr_shift: float = 0.0,
) -> torch.Tensor:
    """Mean squared error between ``net_fn(x_t, t)`` and the v target (scalar).

    ``min_snr_gamma`` turns on Min-SNR weighting ``min(SNR + shift, gamma) / (SNR + 1)`` of the v error, i.e.
    ``min(SNR + shift, gamma)`` of the x0 error (the v error is ``SNR + 1`` times the x0 error). ``shift = 0``
    is Min-SNR-gamma (Hang et al. 2023), whose weight vanishes with the SNR at high noise; ``shift = 1`` keeps
    the plain v-loss weight 1 wherever ``SNR <= gamma - 1`` and caps only the low-noise end.
    """
    if x0.shape != noise.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must have the same shape")
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must be (B={x0.shape[0]},), got {tuple(t.shape)}")
    prediction = net_fn(schedule.q_sample(x0, t, noise), t)
    target = schedule.v_target(x0, t, noise)
    per_sample = F.mse_loss(prediction, target, reduction="none").flatten(1).mean(dim=1)  # (B,)
    if min_snr_gamma is not None:
        snr = schedule.snr(t)
        weight = (snr + float(min_snr_shift)).clamp(max=min_snr_gamma) / (snr + 1)  # (B,)
        per_sample = per_sample * weight.to(per_sample)
    return per_sample.mean()
