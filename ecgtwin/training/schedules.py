"""Learning-rate schedules shared by the training modules and the downstream classifier loops (no Lightning import)."""
from __future__ import annotations

import math


def cosine_warmup_factor(step: int, warmup_steps: int, total_steps: int | None, min_ratio: float) -> float:
    """Learning-rate factor: linear warmup, then half-cosine decay to ``min_ratio`` (Loshchilov & Hutter 2017).

    f(s) = (s+1)/W for s < W; else r + (1-r) * 0.5 * (1 + cos(pi * min(1, (s-W)/(S-W)))); constant 1 when S is None.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps is None:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
