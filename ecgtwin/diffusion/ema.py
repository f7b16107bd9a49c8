"""Exponential moving average of network weights (Polyak averaging, as in DDPM/ADM sampling).

``theta_ema <- d * theta_ema + (1 - d) * theta`` with the warm-up
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (Tensorflow's
``ExponentialMovingAverage(num_updates=...)``), so early averages are not
dominated by the random initialisation. Buffers are copied, not averaged.

:class:`EMA` is an ``nn.Module`` holding the averaged copy, so it is part of
the owner's ``state_dict`` and of every checkpoint.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """An averaged copy of ``model`` (``self.module``), updated with :meth:`update`."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay used by the next update."""
        n = int(self.num_updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        d = self.current_decay()
        own = dict(self.module.named_parameters())
        for name, param in model.named_parameters():
            if name not in own:
                raise KeyError(f"EMA: parameter {name!r} of the model has no averaged copy")
            own[name].lerp_(param.detach().to(own[name].dtype), 1.0 - d)  # ema + (1-d) (p - ema)
        own_buffers = dict(self.module.named_buffers())
        for name, buf in model.named_buffers():
            own_buffers[name].copy_(buf)
        self.num_updates += 1

    def train(self, mode: bool = True) -> EMA:
        """The averaged copy stays in eval mode (no dropout)."""
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, *args: object, **kwargs: object) -> torch.Tensor:
        return self.module(*args, **kwargs)
