"""1D diffusion U-Net with the AdaX condition injector (ECGTwin generator, Lai et al. 2025).

Layout follows the ADM U-Net (Dhariwal & Nichol 2021) in 1D: residual blocks
(GroupNorm, SiLU, conv1d) with ``blocks_per_level`` blocks per resolution,
strided-conv downsampling, nearest + conv upsampling, concatenated skip
connections, and a middle block with self- and cross-attention. Conditions
enter through :mod:`ecgtwin.models.adax` (adaptive norm in every residual
block, cross-attention at the short resolutions only).

Input lengths that are not a multiple of ``2 ** (len(channel_mults) - 1)`` are
zero-padded on the right and the output is cropped back.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecgtwin.constants import DEFAULT_LENGTH, N_LEADS
from ecgtwin.models.adax import ADAX_MODES, AdaXConditioner, ConditionCrossAttention, group_norm, make_block_norm
from ecgtwin.models.conditioning import ConditionTokenizer
from ecgtwin.models.embeddings import TimestepEmbedding


class ResBlock(nn.Module):
    """``out = skip(h) + gate * conv2(SiLU(AdaNorm(conv1(SiLU(GroupNorm(h))), g)))``."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, mode: str = "adax", dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, padding=1)
        self.norm2 = make_block_norm(mode, out_channels, emb_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """h: (B, C_in, L), g: (B, E) -> (B, C_out, L)."""
        r = self.conv1(F.silu(self.norm1(h)))
        r, gate = self.norm2(r, g)
        r = self.conv2(self.dropout(F.silu(r)))
        return self.skip(h) + gate * r


class Stage(nn.Module):
    """One residual block, optionally followed by AdaX cross-attention."""

    def __init__(self, block: ResBlock, attention: ConditionCrossAttention | None) -> None:
        super().__init__()
        self.block = block
        self.attention = attention

    def forward(self, h: torch.Tensor, g: torch.Tensor, context: torch.Tensor | None,
                context_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.block(h, g)
        return h if self.attention is None else self.attention(h, context, context_mask)


class Downsample(nn.Module):
    """Strided conv: (B, C, L) -> (B, C, ceil(L / 2))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(h)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then conv: (B, C, L) -> (B, C, 2L)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))


def level_lengths(signal_length: int, num_levels: int) -> list[int]:
    """Sequence length at each level: the input padded to a multiple of ``2 ** (num_levels - 1)``, halved per level."""
    multiple = 2 ** (num_levels - 1)
    padded = -(-signal_length // multiple) * multiple
    return [padded // 2**level for level in range(num_levels)]


def auto_attention_levels(signal_length: int, num_levels: int, max_attention_tokens: int) -> list[int]:
    """Levels whose (padded) sequence length is at most ``max_attention_tokens``."""
    lengths = level_lengths(signal_length, num_levels)
    return [level for level, length in enumerate(lengths) if length <= max_attention_tokens]


def _no_attention_message(mode: str, signal_length: int, num_levels: int, max_attention_tokens: int, explicit: bool) -> str:
    """Why a cross-attention mode without attention levels is refused, and what to change."""
    lengths = level_lengths(signal_length, num_levels)
    head = (f"UNet1D mode={mode!r} feeds the condition tokens only through cross-attention, but no level has "
            f"attention, so the conditions would be silently ignored: ")
    if explicit:
        return head + f"attention_levels is empty. Pass at least one level in 0..{num_levels - 1} (lengths {lengths})."
    enough = next((n for n in range(num_levels + 1, num_levels + 17)
                   if level_lengths(signal_length, n)[-1] <= max_attention_tokens), None)
    more = f" (e.g. {enough} levels instead of {num_levels})" if enough else ""
    return head + (f"signal_length={signal_length} gives level lengths {lengths} for channel_mults with {num_levels} "
                   f"levels, all above max_attention_tokens={max_attention_tokens}. Add levels to channel_mults{more} "
                   f"or raise max_attention_tokens to at least {lengths[-1]}.")


class UNet1D(nn.Module):
    """Denoising network ``(x_t, t, base_vector, condition) -> v`` for ``(B, leads, L)`` signals."""

    def __init__(
        self,
        num_labels: int,
        in_leads: int = N_LEADS,
        channels: int = 64,
        channel_mults: Sequence[int] = (1, 2, 2, 4),
        blocks_per_level: int = 2,
        attention_levels: Sequence[int] | None = None,
        max_attention_tokens: int = 250,
        signal_length: int = DEFAULT_LENGTH,
        base_dim: int = 256,
        cond_dim: int = 128,
        heads: int = 4,
        mode: str = "adax",
        use_base_vector: bool = True,
        dropout: float = 0.0,
        rotary_attention: bool = False,
    ) -> None:
        super().__init__()
        if mode not in ADAX_MODES:
            raise ValueError(f"UNet1D mode must be one of {ADAX_MODES}, got {mode!r}")
        if not channel_mults or any(m < 1 for m in channel_mults):
            raise ValueError(f"channel_mults must be a non-empty list of positive ints, got {channel_mults!r}")
        if channels < 1 or blocks_per_level < 1 or in_leads < 1:
            raise ValueError(f"channels, blocks_per_level, in_leads must be >= 1 (got {channels}, {blocks_per_level}, {in_leads})")
        num_levels = len(channel_mults)
        explicit = attention_levels is not None
        if attention_levels is None:
            attention_levels = auto_attention_levels(signal_length, num_levels, max_attention_tokens)
        bad = [lv for lv in attention_levels if not 0 <= lv < num_levels]
        if bad:
            raise ValueError(f"attention_levels {bad} out of range for {num_levels} levels")
        if mode != "adanorm_only" and not attention_levels:  # adax and xattn_only need cross-attention
            raise ValueError(_no_attention_message(mode, signal_length, num_levels, max_attention_tokens, explicit))
        self.config: dict[str, Any] = {
            "num_labels": num_labels, "in_leads": in_leads, "channels": channels,
            "channel_mults": [int(m) for m in channel_mults], "blocks_per_level": blocks_per_level,
            "attention_levels": sorted(int(lv) for lv in attention_levels),
            "max_attention_tokens": max_attention_tokens, "signal_length": signal_length, "base_dim": base_dim,
            "cond_dim": cond_dim, "heads": heads, "mode": mode, "use_base_vector": use_base_vector, "dropout": dropout,
            "rotary_attention": rotary_attention,
        }
        self.in_leads = in_leads
        self.attention_levels = tuple(self.config["attention_levels"])
        self.length_multiple = 2 ** (num_levels - 1)
        emb_dim = 4 * channels
        self.time_embed = TimestepEmbedding(emb_dim, frequency_dim=channels)
        self.conditioner = AdaXConditioner(num_labels, emb_dim, base_dim, cond_dim, mode, use_base_vector)
        cross = self.conditioner.uses_cross_attention

        def stage(c_in: int, c_out: int, level: int) -> Stage:
            attn = ConditionCrossAttention(c_out, cond_dim, heads) if cross and level in self.attention_levels else None
            return Stage(ResBlock(c_in, c_out, emb_dim, mode, dropout), attn)

        self.in_conv = nn.Conv1d(in_leads, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skip_channels, ch = [channels], channels
        for level, mult in enumerate(channel_mults):
            for _ in range(blocks_per_level):
                self.down.append(stage(ch, channels * mult, level))
                ch = channels * mult
                skip_channels.append(ch)
            if level < num_levels - 1:
                self.down.append(Downsample(ch))
                skip_channels.append(ch)

        lowest = num_levels - 1
        mid_attn = (ConditionCrossAttention(ch, cond_dim, heads, self_attention=True, rotary=rotary_attention)
                    if lowest in self.attention_levels else None)  # rotary: beat-to-beat distances are visible
        self.middle = nn.ModuleList([Stage(ResBlock(ch, ch, emb_dim, mode, dropout), mid_attn), stage(ch, ch, -1)])

        self.up = nn.ModuleList()
        for level in reversed(range(num_levels)):
            for _ in range(blocks_per_level + 1):
                self.up.append(stage(ch + skip_channels.pop(), channels * channel_mults[level], level))
                ch = channels * channel_mults[level]
            if level > 0:
                self.up.append(Upsample(ch))
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv1d(ch, in_leads, 3, padding=1))

    @property
    def tokenizer(self) -> ConditionTokenizer:
        return self.conditioner.tokenizer

    @property
    def num_labels(self) -> int:
        return self.config["num_labels"]

    @property
    def use_base_vector(self) -> bool:
        return self.config["use_base_vector"]

    @property
    def base_dim(self) -> int:
        return self.config["base_dim"]

    def _timesteps(self, t: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(batch)  # (B,)
        if t.shape != (batch,):
            raise ValueError(f"t must be a scalar or shaped (B={batch},), got {tuple(t.shape)}")
        return t

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float | int,
        base_vector: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        demographics: torch.Tensor | None = None,
        demographics_mask: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
        drop_base: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, leads, L) noisy signal, t: (B,) timesteps -> (B, leads, L) prediction (v).

        ``labels`` (B, V) and ``demographics`` (B, 3) default to "nothing known"
        (all-zero labels, masked demographics), i.e. the null condition.
        """
        if x.ndim != 3 or x.shape[1] != self.in_leads:
            raise ValueError(f"x must be (B, {self.in_leads}, L), got {tuple(x.shape)}")
        batch, _, length = x.shape
        if labels is None:
            labels = x.new_zeros(batch, self.num_labels)  # (B, V)
        if demographics is None:
            demographics = x.new_zeros(batch, 3)  # (B, 3)
            demographics_mask = torch.zeros(batch, 3, dtype=torch.bool, device=x.device)
        time_emb = self.time_embed(self._timesteps(t, batch, x.device))  # (B, E)
        g, context, context_mask = self.conditioner(
            time_emb, base_vector, labels, demographics, demographics_mask, drop_condition, drop_base
        )

        pad = (-length) % self.length_multiple
        h = self.in_conv(F.pad(x, (0, pad)))  # (B, C, L + pad)
        skips = [h]
        for layer in self.down:
            h = layer(h, g, context, context_mask) if isinstance(layer, Stage) else layer(h)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, g, context, context_mask)
        for layer in self.up:
            if isinstance(layer, Stage):
                h = layer(torch.cat([h, skips.pop()], dim=1), g, context, context_mask)  # (B, C + C_skip, L')
            else:
                h = layer(h)
        return self.out(h)[..., :length]  # (B, leads, L)
