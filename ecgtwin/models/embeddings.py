"""Diffusion timestep embedding: sinusoidal features + MLP.

The sinusoid is the positional encoding of Vaswani et al. (2017) applied to the
timestep, as in DDPM (Ho et al. 2020):

    emb(t) = [cos(t * w_0), ..., cos(t * w_{h-1}), sin(t * w_0), ..., sin(t * w_{h-1})],
    w_i = max_period ** (-i / h),  h = d // 2.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps ``t`` (B,) -> (B, dim)."""
    if t.ndim != 1:
        raise ValueError(f"timesteps must be a 1-D tensor (B,), got shape {tuple(t.shape)}")
    if dim < 2:
        raise ValueError(f"embedding dim must be >= 2, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)  # (D/2,)
    args = t.float()[:, None] * freqs[None, :]  # (B, D/2)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2 * (D/2))
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)  # (B, D)
    return emb


class TimestepEmbedding(nn.Module):
    """``t`` (B,) -> sinusoid (B, frequency_dim) -> Linear/SiLU/Linear -> (B, dim)."""

    def __init__(self, dim: int, frequency_dim: int = 64, max_period: float = 10_000.0) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_dim, self.max_period))  # (B, dim)
