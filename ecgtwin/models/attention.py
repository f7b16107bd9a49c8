"""Masked multi-head attention shared by the IBE and the generator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class CrossAttention(nn.Module):
    """Multi-head attention from a query sequence to a (masked) context sequence.

    Used both as self-attention (``context=None``) and as cross-attention to
    condition tokens. ``context_mask`` is ``True`` where a context token is
    valid; the condition tokeniser always keeps one valid (null) token, so no
    row is ever fully masked.
    """

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4, zero_init_out: bool = False) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        context_dim = dim if context_dim is None else context_dim
        self.heads = heads
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
        attn_mask = None
        if context_mask is not None:
            attn_mask = context_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, M), True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, d)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))  # (B, N, dim)
