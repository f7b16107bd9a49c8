"""Contrastive loss of the Individual Base Extractor.

CLIP-style symmetric InfoNCE (Radford et al. 2021, Fig. 3 pseudo-code): for a
batch of B pairs with unit embeddings ``r_i`` (reference) and ``t_i`` (target),

    logits_ij = exp(s) * <r_i, t_j>,        s = log(1 / T) (learnable)
    loss = 1/2 * [CE(logits, diag) + CE(logits^T, diag)]

where ``CE(., diag)`` is the mean cross-entropy with pair ``i``'s partner as
the class of row ``i``. As in CLIP, ``s`` starts at ``log(1 / 0.07)`` and the
scale ``exp(s)`` is clamped at 100 (temperature >= 0.01).

Same-patient negatives: a batch may hold two pairs of the same patient. Their
off-diagonal entries are not negatives (they are the same individual), so when
``patient_ids`` is given those logits are set to ``-inf`` and drop out of both
softmaxes; the diagonal positive is always kept.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ClipLoss(nn.Module):
    """Symmetric InfoNCE with a learnable temperature (CLIP).

    Args:
        init_temperature: initial temperature ``T`` (CLIP: 0.07).
        max_logit_scale: clamp of ``1 / T`` (CLIP: 100).
        learnable: train the temperature; ``False`` keeps it fixed.
    """

    def __init__(self, init_temperature: float = 0.07, max_logit_scale: float = 100.0, learnable: bool = True) -> None:
        super().__init__()
        if init_temperature <= 0:
            raise ValueError(f"init_temperature must be > 0, got {init_temperature}")
        self.max_logit_scale = max_logit_scale
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)), requires_grad=learnable)

    @property
    def scale(self) -> torch.Tensor:
        """``exp(s) = 1 / T`` clamped at ``max_logit_scale`` (scalar tensor)."""
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    @property
    def temperature(self) -> torch.Tensor:
        """Current temperature ``T = 1 / scale`` (scalar tensor, no gradient)."""
        return 1.0 / self.scale.detach()

    def logits(
        self, z_ref: torch.Tensor, z_tgt: torch.Tensor, patient_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled cosine logits (B, B), rows = references, columns = targets, same-patient negatives masked."""
        if z_ref.ndim != 2 or z_ref.shape != z_tgt.shape:
            raise ValueError(f"ClipLoss needs z_ref and z_tgt of equal shape (B, D), got {tuple(z_ref.shape)} and {tuple(z_tgt.shape)}")
        b = z_ref.shape[0]
        logits = self.scale * F.normalize(z_ref, dim=-1) @ F.normalize(z_tgt, dim=-1).T  # (B, B)
        if patient_ids is not None:
            if patient_ids.shape != (b,):
                raise ValueError(f"ClipLoss patient_ids must be (B,) = ({b},), got {tuple(patient_ids.shape)}")
            same = patient_ids[:, None] == patient_ids[None, :]  # (B, B)
            same &= ~torch.eye(b, dtype=torch.bool, device=same.device)  # keep the positives
            logits = logits.masked_fill(same, float("-inf"))
        return logits

    @staticmethod
    def loss_from_logits(logits: torch.Tensor) -> torch.Tensor:
        """Symmetric cross-entropy with the diagonal as targets."""
        target = torch.arange(logits.shape[0], device=logits.device)  # (B,)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    def forward(
        self, z_ref: torch.Tensor, z_tgt: torch.Tensor, patient_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Loss (scalar) for B pairs ``(z_ref[i], z_tgt[i])``; see the module docstring."""
        return self.loss_from_logits(self.logits(z_ref, z_tgt, patient_ids))
