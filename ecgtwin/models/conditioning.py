"""Condition tokens: diagnosis labels + heart rate, age, sex (ECGTwin Sec. 3, AdaX cross-attention pathway).

A batch's condition is given as

* ``labels``: ``(B, V)`` multi-hot float over the label vocabulary,
* ``demographics``: ``(B, 3)`` normalised ``(hr, age, sex)`` (see
  :data:`ecgtwin.constants.DEMOGRAPHICS`),
* ``demographics_mask``: ``(B, 3)`` bool, ``True`` where the value is known.

:class:`ConditionTokenizer` turns it into a token sequence ``(B, 1 + V + 3, D)``
with a validity mask. Token 0 is a learned *null* token that is always valid,
so attention never sees an all-masked row; a *dropped* condition (classifier-
free guidance, unknown reference diagnosis) keeps only that null token.
"""
from __future__ import annotations

import torch
from torch import nn

from ecgtwin.constants import DEMOGRAPHICS


class ConditionTokenizer(nn.Module):
    """Embed labels and demographics as attention tokens.

    One token per active label (learned embedding from the vocabulary, inactive
    labels masked), one token per demographic value (a small MLP on the
    normalised scalar), plus a type embedding per token slot.
    """

    def __init__(self, num_labels: int, dim: int = 128, hidden: int = 64) -> None:
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        self.num_labels = num_labels
        self.dim = dim
        self.null_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.label_embedding = nn.Parameter(torch.randn(num_labels, dim) * 0.02)
        self.demographic_mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, dim)) for _ in DEMOGRAPHICS
        )
        self.type_embedding = nn.Parameter(torch.randn(1 + num_labels + len(DEMOGRAPHICS), dim) * 0.02)

    @property
    def num_tokens(self) -> int:
        return 1 + self.num_labels + len(DEMOGRAPHICS)

    def forward(
        self,
        labels: torch.Tensor,
        demographics: torch.Tensor,
        demographics_mask: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``tokens`` (B, T, D) and ``mask`` (B, T) bool (True = valid).

        ``drop`` (B,) bool replaces the whole condition of those rows by the null token.
        """
        b = labels.shape[0]
        if labels.ndim != 2 or labels.shape[1] != self.num_labels:
            raise ValueError(f"labels must be (B, {self.num_labels}), got {tuple(labels.shape)}")
        if demographics.shape != (b, len(DEMOGRAPHICS)):
            raise ValueError(f"demographics must be (B, {len(DEMOGRAPHICS)}), got {tuple(demographics.shape)}")
        if demographics_mask is None:
            demographics_mask = torch.ones_like(demographics, dtype=torch.bool)
        demographics = torch.nan_to_num(demographics.float()) * demographics_mask  # unknown -> 0

        null = self.null_token.expand(b, 1, self.dim)  # (B, 1, D)
        label_tokens = self.label_embedding.expand(b, -1, -1)  # (B, V, D)
        demo_tokens = torch.stack(
            [mlp(demographics[:, i : i + 1]) for i, mlp in enumerate(self.demographic_mlps)], dim=1
        )  # (B, 3, D)
        tokens = torch.cat([null, label_tokens, demo_tokens], dim=1) + self.type_embedding  # (B, T, D)

        mask = torch.cat(
            [
                torch.ones(b, 1, dtype=torch.bool, device=labels.device),
                labels > 0.5,
                demographics_mask.to(torch.bool),
            ],
            dim=1,
        )  # (B, T)
        if drop is not None:
            mask = mask.clone()
            mask[drop.to(torch.bool), 1:] = False
        return tokens, mask


def condition_dropout_mask(batch_size: int, p: float, device: torch.device | str = "cpu",
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli(p) drop mask of shape (B,) for classifier-free guidance training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    return torch.rand(batch_size, device=device, generator=generator) < p


GUIDANCE_BRANCHES: tuple[str, ...] = ("u(b,c)", "u(b,0)", "u(0,c)", "u(0,0)")
"""The four network evaluations two-scale guidance combines (:mod:`ecgtwin.diffusion.guidance`)."""


def training_dropout(personal: torch.Tensor, p_cond: float, p_base: float = 0.0,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(drop_base, drop_condition)`` (B,) bool for one training batch.

    The base vector is dropped for every non-``personal`` example (a single
    record with no other ECG of its patient in the batch) and, with probability
    ``p_base``, for personal ones; the condition is dropped with probability
    ``p_cond`` independently. With a personal share ``s`` the guidance branches
    get ``u(b,c) = s(1-p_base)(1-p_cond)``, ``u(b,0) = s(1-p_base)p_cond``,
    ``u(0,c) = (1-s(1-p_base))(1-p_cond)``, ``u(0,0) = (1-s(1-p_base))p_cond``
    (:func:`branch_shares`).
    """
    personal = personal.to(torch.bool)
    b = personal.shape[0]
    drop_base = ~personal | condition_dropout_mask(b, p_base, "cpu", generator).to(personal.device)
    drop_condition = condition_dropout_mask(b, p_cond, "cpu", generator).to(personal.device)
    return drop_base, drop_condition


def branch_shares(personal_share: float, p_cond: float, p_base: float = 0.0) -> dict[str, float]:
    """Expected share of training examples in each guidance branch (see :func:`training_dropout`)."""
    with_base = personal_share * (1.0 - p_base)
    return {"u(b,c)": with_base * (1 - p_cond), "u(b,0)": with_base * p_cond,
            "u(0,c)": (1 - with_base) * (1 - p_cond), "u(0,0)": (1 - with_base) * p_cond}


def branch_counts(drop_base: torch.Tensor, drop_condition: torch.Tensor) -> dict[str, int]:
    """How many examples of a batch fall in each guidance branch."""
    keep_b, keep_c = ~drop_base.to(torch.bool), ~drop_condition.to(torch.bool)
    return {"u(b,c)": int((keep_b & keep_c).sum()), "u(b,0)": int((keep_b & ~keep_c).sum()),
            "u(0,c)": int((~keep_b & keep_c).sum()), "u(0,0)": int((~keep_b & ~keep_c).sum())}
