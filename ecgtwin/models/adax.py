"""AdaX condition injector of the ECGTwin generator (Lai et al. 2025, Sec. 3).

Two pathways carry the conditions into the 1D U-Net:

(a) *adaptive normalisation*, adaLN-Zero style (DiT, Peebles & Xie 2023): a
    global embedding ``g = time_emb + proj(base_vector)`` predicts, per
    residual block, a shift, scale and gate::

        h_mod = GroupNorm(h) * (1 + scale(g)) + shift(g),   out = skip(x) + gate(g) * branch(h_mod)

    The projection is zero-initialised, so a fresh block is the identity on
    its residual branch and the conditions start with no effect.
(b) *cross-attention* from the signal features (as tokens) to the condition
    tokens of :class:`~ecgtwin.models.conditioning.ConditionTokenizer`, with a
    zero-initialised output projection (same "start as identity" rule).

Ablation modes (``mode``):

* ``"adax"`` (default): time + base vector through (a), condition tokens through (b).
* ``"adanorm_only"``: condition tokens are mean-pooled over the valid mask and
  added to ``g``; everything goes through (a), no cross-attention.
* ``"xattn_only"``: time and base vector become two extra context tokens for
  (b); the residual blocks use a plain GroupNorm with the time embedding added
  as a per-channel bias (DDPM style) and a zero-initialised ReZero gate
  (Bachlechner et al. 2021).

``use_base_vector=False`` builds a population model: no base vector at all.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ecgtwin.models.attention import CrossAttention
from ecgtwin.models.conditioning import ConditionTokenizer

ADAX_MODES: tuple[str, ...] = ("adax", "adanorm_only", "xattn_only")


def group_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    """GroupNorm with at most 32 groups of at least 4 channels (1 group if ``channels`` < 8)."""
    groups = math.gcd(max(1, min(32, channels // 4)), channels)
    return nn.GroupNorm(groups, channels, affine=affine)


class AdaptiveGroupNorm(nn.Module):
    """Pathway (a): ``GroupNorm(h) * (1 + scale) + shift`` and a residual gate, all from ``g`` (adaLN-Zero)."""

    def __init__(self, channels: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = group_norm(channels, affine=False)  # the affine part comes from g
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 3 * channels))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, h: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: (B, C, L), g: (B, E) -> modulated h (B, C, L), gate (B, C, 1)."""
        shift, scale, gate = self.modulation(g)[:, :, None].chunk(3, dim=1)  # 3 x (B, C, 1)
        return self.norm(h) * (1 + scale) + shift, gate


class BiasGroupNorm(nn.Module):
    """``xattn_only`` ablation: plain GroupNorm + time bias; the gate is a learned per-channel ReZero scalar."""

    def __init__(self, channels: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.bias = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, channels))
        self.gate = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, h: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: (B, C, L), g: (B, E) -> normalised h + bias (B, C, L), gate (C, 1)."""
        return self.norm(h) + self.bias(g)[:, :, None], self.gate


def make_block_norm(mode: str, channels: int, emb_dim: int) -> nn.Module:
    """The residual-block norm for an AdaX ``mode``."""
    return BiasGroupNorm(channels, emb_dim) if mode == "xattn_only" else AdaptiveGroupNorm(channels, emb_dim)


class ConditionCrossAttention(nn.Module):
    """Pathway (b): pre-norm cross-attention of the signal tokens to the condition tokens, zero-init output.

    With ``self_attention=True`` a (zero-initialised) self-attention over the
    signal tokens comes first (used in the U-Net middle block); ``rotary`` gives
    it rotary positions.
    """

    def __init__(self, channels: int, cond_dim: int, heads: int = 4, self_attention: bool = False,
                 rotary: bool = False) -> None:
        super().__init__()
        self.self_attn: CrossAttention | None = None
        if self_attention:
            self.self_norm = nn.LayerNorm(channels)
            self.self_attn = CrossAttention(channels, heads=heads, zero_init_out=True, rotary=rotary)
        self.cross_norm = nn.LayerNorm(channels)
        self.cross_attn = CrossAttention(channels, context_dim=cond_dim, heads=heads, zero_init_out=True)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None, context_mask: torch.Tensor | None) -> torch.Tensor:
        """h: (B, C, L), context: (B, M, cond_dim) | None, context_mask: (B, M) -> (B, C, L)."""
        x = rearrange(h, "b c l -> b l c")  # (B, L, C)
        if self.self_attn is not None:
            x = x + self.self_attn(self.self_norm(x))
        if context is not None:
            x = x + self.cross_attn(self.cross_norm(x), context, context_mask)
        return rearrange(x, "b l c -> b c l")  # (B, C, L)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens`` (B, T, D) over valid positions of ``mask`` (B, T) -> (B, D)."""
    weights = mask.to(tokens.dtype)[:, :, None]  # (B, T, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class AdaXConditioner(nn.Module):
    """Turn (time embedding, base vector, condition) into the global embedding ``g`` and the context tokens.

    Owns the :class:`ConditionTokenizer` and the learned *null* base vector
    (used for rows with ``drop_base`` or when no base vector is given).
    """

    def __init__(
        self,
        num_labels: int,
        emb_dim: int,
        base_dim: int = 256,
        cond_dim: int = 128,
        mode: str = "adax",
        use_base_vector: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ADAX_MODES:
            raise ValueError(f"mode must be one of {ADAX_MODES}, got {mode!r}")
        self.mode = mode
        self.use_base_vector = use_base_vector
        self.base_dim = base_dim
        self.tokenizer = ConditionTokenizer(num_labels, cond_dim)
        if use_base_vector:
            self.null_base = nn.Parameter(torch.randn(base_dim) * 0.02)
            base_out = cond_dim if mode == "xattn_only" else emb_dim
            self.base_proj = nn.Sequential(nn.Linear(base_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, base_out))
        if mode == "adanorm_only":
            self.pool_proj = nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if mode == "xattn_only":
            self.time_token = nn.Linear(emb_dim, cond_dim)

    @property
    def uses_cross_attention(self) -> bool:
        return self.mode != "adanorm_only"

    def resolve_base(self, base_vector: torch.Tensor | None, drop_base: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Base vectors (B, base_dim) with the learned null vector where dropped or missing."""
        null = self.null_base.expand(batch, self.base_dim)  # (B, base_dim)
        if base_vector is None:
            return null
        if base_vector.shape != (batch, self.base_dim):
            raise ValueError(f"base_vector must be (B={batch}, base_dim={self.base_dim}), got {tuple(base_vector.shape)}")
        if drop_base is None:
            drop_base = torch.zeros(batch, dtype=torch.bool, device=base_vector.device)
        # torch.where keeps the null vector in the graph even without dropped rows (DDP needs every parameter used).
        return torch.where(drop_base.to(torch.bool)[:, None], null, base_vector.to(null.dtype))

    def forward(
        self,
        time_emb: torch.Tensor,
        base_vector: torch.Tensor | None,
        labels: torch.Tensor,
        demographics: torch.Tensor,
        demographics_mask: torch.Tensor | None,
        drop_condition: torch.Tensor | None = None,
        drop_base: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """-> g (B, E), context (B, M, cond_dim) or None, context_mask (B, M) or None."""
        batch = time_emb.shape[0]
        if labels.shape[0] != batch:
            raise ValueError(f"labels has batch size {labels.shape[0]}, the signal has {batch}")
        if not self.use_base_vector and (base_vector is not None):
            raise ValueError("this generator was built with use_base_vector=False (population model); pass base_vector=None")
        tokens, mask = self.tokenizer(labels, demographics, demographics_mask, drop_condition)  # (B, T, D), (B, T)
        g = time_emb
        base = self.resolve_base(base_vector, drop_base, batch) if self.use_base_vector else None
        if self.mode == "xattn_only":
            extra = [self.time_token(time_emb)[:, None]]  # [(B, 1, D)]
            if base is not None:
                extra.append(self.base_proj(base)[:, None])  # (B, 1, D)
            tokens = torch.cat([*extra, tokens], dim=1)  # (B, T', D)
            mask = torch.cat([torch.ones(batch, len(extra), dtype=torch.bool, device=mask.device), mask], dim=1)
            return g, tokens, mask
        if base is not None:
            g = g + self.base_proj(base)
        if self.mode == "adanorm_only":
            return g + self.pool_proj(masked_mean(tokens, mask)), None, None
        return g, tokens, mask
