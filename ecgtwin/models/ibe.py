"""Individual Base Extractor (IBE): the contrastive patient encoder of ECGTwin (Lai et al. 2025, Sec. 3.1).

The IBE maps one 12-lead ECG and its condition (diagnosis labels, heart rate,
age, sex) to a unit-norm **base vector** that should describe the *individual*
(anatomy, electrode placement, personal morphology) and not the condition.

Architecture (per layer, pre-norm transformer on conv-stem tokens)::

    x = x + SelfAttn(LN(x))
    x = x - CrossAttn(LN(x), condition_tokens)     # condition subtraction
    x = x + MLP(LN(x))

The cross-attention output is *subtracted* from the token stream: the paper's
way of removing the reference's condition features from the representation,
so the contrastive loss cannot be solved by matching diagnoses. With
``subtract_condition=False`` (the ablation) there is no condition pathway at
all. The output is ``normalize(Linear(mean_tokens(LN(x))))``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecgtwin.constants import DEMOGRAPHICS, N_LEADS
from ecgtwin.models.attention import CrossAttention
from ecgtwin.models.conditioning import ConditionTokenizer, condition_dropout_mask


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups that divide ``channels``."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


def sinusoidal_positions(n: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed sinusoidal position embedding (Vaswani et al. 2017, Sec. 3.5) for ``n`` tokens -> (n, dim).

    PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim)); works for any length.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)  # (half,)
    angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * freqs[None, :]  # (n, half)
    pe = torch.cat([angles.sin(), angles.cos()], dim=1)  # (n, 2 * half)
    if pe.shape[1] < dim:  # odd dim: pad one zero channel
        pe = F.pad(pe, (0, dim - pe.shape[1]))  # (n, dim)
    return pe


class ConvStem(nn.Module):
    """Strided 1D conv stem: two stride-2 convs (k=5) then a non-overlapping stride-``patch/4`` conv.

    Token count is about ``L / patch`` (1000 samples, patch 8 -> 125 tokens;
    5000 samples, patch 40 -> 125 tokens).
    """

    def __init__(self, in_leads: int, dim: int, patch: int) -> None:
        super().__init__()
        if patch < 4 or patch % 4 != 0:
            raise ValueError(f"patch must be a positive multiple of 4 (two stride-2 convs then stride patch/4), got {patch}")
        c1, c2 = max(dim // 4, 8), max(dim // 2, 8)
        last = patch // 4
        self.patch = patch
        self.layers = nn.Sequential(
            nn.Conv1d(in_leads, c1, kernel_size=5, stride=2, padding=2), _group_norm(c1), nn.GELU(),
            nn.Conv1d(c1, c2, kernel_size=5, stride=2, padding=2), _group_norm(c2), nn.GELU(),
            nn.Conv1d(c2, dim, kernel_size=last, stride=last),
        )

    def num_tokens(self, length: int) -> int:
        """Number of tokens produced for a signal of ``length`` samples."""
        quarter = math.ceil(math.ceil(length / 2) / 2)  # after the two stride-2 convs (padding 2, kernel 5)
        return quarter // (self.patch // 4)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """signal (B, leads, L) -> tokens (B, N, dim)."""
        return self.layers(signal).transpose(1, 2)  # (B, dim, N) -> (B, N, dim)


class IBELayer(nn.Module):
    """Self-attention, optional condition subtraction by cross-attention, MLP; all pre-norm."""

    def __init__(self, dim: int, heads: int, cond_dim: int | None, dropout: float) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = CrossAttention(dim, heads=heads)
        self.subtract = cond_dim is not None
        if self.subtract:
            self.norm_cond = nn.LayerNorm(dim)
            self.cond_attn = CrossAttention(dim, context_dim=cond_dim, heads=heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, cond_tokens: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, N, dim), cond_tokens (B, T, cond_dim), cond_mask (B, T) -> (B, N, dim)."""
        x = x + self.dropout(self.self_attn(self.norm_self(x)))
        if self.subtract:
            # ECGTwin: remove the reference's condition features from the stream.
            x = x - self.dropout(self.cond_attn(self.norm_cond(x), cond_tokens, cond_mask))
        return x + self.dropout(self.mlp(self.norm_mlp(x)))


class IndividualBaseExtractor(nn.Module):
    """ECG + condition -> unit-norm base vector ``(B, base_dim)``.

    Args:
        num_labels: size of the diagnosis label vocabulary ``V``.
        in_leads: number of input leads (12).
        dim: transformer width.
        depth: number of layers.
        heads: attention heads.
        patch: total stem downsampling (multiple of 4); 8 at 100 Hz, 40 at 500 Hz keeps ~125 tokens.
        base_dim: size of the base vector.
        cond_dim: width of the condition tokens.
        subtract_condition: subtract cross-attention to the condition (paper); ``False`` removes
            the condition pathway entirely (ablation).
        condition_dropout: probability, during training, of replacing a sample's condition by
            the null token (so the IBE also works when a reference's diagnosis is unknown).
        dropout: residual/MLP dropout.
    """

    def __init__(
        self,
        num_labels: int,
        in_leads: int = N_LEADS,
        dim: int = 256,
        depth: int = 4,
        heads: int = 4,
        patch: int = 8,
        base_dim: int = 256,
        cond_dim: int = 128,
        subtract_condition: bool = True,
        condition_dropout: float = 0.1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if not 0.0 <= condition_dropout <= 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1], got {condition_dropout}")
        self.config: dict[str, Any] = dict(
            num_labels=num_labels, in_leads=in_leads, dim=dim, depth=depth, heads=heads, patch=patch,
            base_dim=base_dim, cond_dim=cond_dim, subtract_condition=subtract_condition,
            condition_dropout=condition_dropout, dropout=dropout,
        )  # constructor arguments (plain values): IndividualBaseExtractor(**net.config) rebuilds the network
        self.num_labels = num_labels
        self.in_leads = in_leads
        self.subtract_condition = subtract_condition
        self.condition_dropout = condition_dropout
        self.stem = ConvStem(in_leads, dim, patch)
        self.tokenizer = ConditionTokenizer(num_labels, cond_dim) if subtract_condition else None
        self.layers = nn.ModuleList(
            IBELayer(dim, heads, cond_dim if subtract_condition else None, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, base_dim)

    def num_tokens(self, length: int) -> int:
        """Number of transformer tokens for a signal of ``length`` samples."""
        return self.stem.num_tokens(length)

    def _check_inputs(
        self, signal: torch.Tensor, labels: torch.Tensor | None, demographics: torch.Tensor | None
    ) -> None:
        if signal.ndim != 3 or signal.shape[1] != self.in_leads:
            raise ValueError(
                f"IBE signal must be (B, {self.in_leads}, L) in mV, got shape {tuple(signal.shape)}"
                " (wrong lead count or missing batch dimension?)"
            )
        if signal.shape[2] < self.stem.patch:
            raise ValueError(f"IBE signal length {signal.shape[2]} is shorter than the patch size {self.stem.patch}")
        if not torch.isfinite(signal).all():
            raise ValueError("IBE signal contains NaN or inf values; clean or interpolate the record first")
        b = signal.shape[0]
        if labels is not None and (labels.ndim != 2 or labels.shape != (b, self.num_labels)):
            raise ValueError(
                f"IBE labels must be (B, num_labels) = ({b}, {self.num_labels}), got {tuple(labels.shape)};"
                " the label vocabulary of the data does not match the one the IBE was built with"
            )
        if demographics is not None and demographics.shape != (b, len(DEMOGRAPHICS)):
            raise ValueError(f"IBE demographics must be (B, 3) = ({b}, 3) {DEMOGRAPHICS}, got {tuple(demographics.shape)}")

    def _condition(
        self,
        batch: int,
        labels: torch.Tensor | None,
        demographics: torch.Tensor | None,
        demographics_mask: torch.Tensor | None,
        drop: torch.Tensor | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition tokens (B, T, cond_dim) and mask (B, T).

        Unknown parts mask their tokens: ``labels=None`` activates no label token,
        ``demographics=None`` masks all three demographic tokens; both unknown leaves
        only the null token, exactly like ``drop``.
        """
        assert self.tokenizer is not None
        if labels is None:
            labels = torch.zeros(batch, self.num_labels, device=device)  # (B, V) no active label
        if demographics is None:
            demographics = torch.zeros(batch, len(DEMOGRAPHICS), device=device)  # (B, 3)
            demographics_mask = torch.zeros(batch, len(DEMOGRAPHICS), dtype=torch.bool, device=device)  # (B, 3)
        if drop is None and self.training and self.condition_dropout > 0:
            drop = condition_dropout_mask(batch, self.condition_dropout, device=device)
        if drop is not None and drop.shape != (batch,):
            raise ValueError(f"IBE drop must be (B,) = ({batch},) bool, got {tuple(drop.shape)}")
        return self.tokenizer(labels.float(), demographics.float(), demographics_mask, drop)

    def forward(
        self,
        signal: torch.Tensor,
        labels: torch.Tensor | None = None,
        demographics: torch.Tensor | None = None,
        demographics_mask: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Base vector ``(B, base_dim)``, unit L2 norm.

        ``signal`` (B, 12, L) mV; ``labels`` (B, V) multi-hot; ``demographics`` (B, 3);
        ``demographics_mask`` (B, 3) bool; ``drop`` (B,) bool forces the null condition
        for those rows. ``labels``/``demographics`` of ``None`` mean "unknown" (their
        tokens are masked; both ``None`` is the null condition). In training mode, rows
        are dropped with probability ``condition_dropout`` unless ``drop`` is given. With ``subtract_condition=False``
        the condition arguments are only shape-checked.
        """
        self._check_inputs(signal, labels, demographics)
        x = self.stem(signal.float())  # (B, N, dim)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2], device=x.device)  # (B, N, dim)
        cond_tokens = cond_mask = None
        if self.tokenizer is not None:
            cond_tokens, cond_mask = self._condition(
                signal.shape[0], labels, demographics, demographics_mask, drop, signal.device
            )  # (B, T, cond_dim), (B, T)
        for layer in self.layers:
            x = layer(x, cond_tokens, cond_mask)  # (B, N, dim)
        pooled = self.norm(x).mean(dim=1)  # (B, dim)
        return F.normalize(self.project(pooled), dim=-1)  # (B, base_dim)
