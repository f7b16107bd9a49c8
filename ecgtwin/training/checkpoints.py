"""Checkpoint helpers of the training stages; the weights-only loader lives in :mod:`ecgtwin.weights`
(re-exported here so ``from ecgtwin.training.checkpoints import load_weights_only`` keeps working)."""
from __future__ import annotations

from pathlib import Path
import torch
from torch import nn

from ecgtwin.weights import load_weights_only, submodule_state

__all__ = ["load_weights_only", "restore", "submodule_state"]


def restore(net: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, path: str | Path, what: str,
            freeze: bool = True) -> nn.Module:
    """Load ``net`` from the ``prefix`` part of a Lightning state dict; eval mode, optionally frozen."""
    try:
        net.load_state_dict(submodule_state(state_dict, prefix))
    except RuntimeError as err:
        raise ValueError(f"{str(path)!r}: {what} weights do not match its configuration: {err}") from err
    net.eval()
    if freeze:
        net.requires_grad_(False)
    return net
