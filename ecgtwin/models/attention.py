"""Masked multi-head attention shared by the IBE and the generator, with optional rotary positions."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def rotate_positions(x: torch.Tensor, base: float = 10_000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021) of ``x`` (..., N, d) at positions 0..N-1.

    Each pair of channels ``(x_2i, x_2i+1)`` is rotated by the angle ``n * base^(-2i/d)``, so the dot product
    of a rotated query at ``m`` and a rotated key at ``n`` depends on ``m - n`` only: self-attention learns
    *how far* another token is (e.g. one RR interval), which plain attention over conv features cannot.
    """
    n, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise ValueError(f"rotary positions need an even head dimension, got {d}")
    freq = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)  # (d/2,)
    angle = torch.arange(n, device=x.device, dtype=torch.float32)[:, None] * freq  # (N, d/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., N, d/2)
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # (..., N, d/2, 2)
    return rotated.flatten(-2)  # (..., N, d)


class CrossAttention(nn.Module):
    """Multi-head attention from a query sequence to a (masked) context sequence.

    Used both as self-attention (``context=None``) and as cross-attention to
    condition tokens. ``context_mask`` is ``True`` where a context token is
    valid; the condition tokeniser always keeps one valid (null) token, so no
    row is ever fully masked. ``rotary``: self-attention with rotary positions
    (:func:`rotate_positions` on queries and keys).
    """

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4, zero_init_out: bool = False,
                 rotary: bool = False) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        if rotary and context_dim is not None:
            raise ValueError("rotary positions apply to self-attention only (no context_dim)")
        context_dim = dim if context_dim is None else context_dim
        self.heads = heads
        self.rotary = rotary
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        if zero_init_out:
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, N, dim); context: (B, M, context_dim); context_mask: (B, M) bool -> (B, N, dim)."""
        context = x if context is None else context
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)  # (B, H, N, d)
        k, v = rearrange(self.to_kv(context), "b m (two h d) -> two b h m d", two=2, h=self.heads)  # (B, H, M, d)
        if self.rotary:
            q, k = rotate_positions(q), rotate_positions(k)  # (B, H, N, d): scores depend on m - n
        attn_mask = None
        if context_mask is not None:
            attn_mask = context_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, M), True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, d)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))  # (B, N, dim)
