"""Weights-only checkpoint loading shared by every stage (IBE, generator, classifier, bundles)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


def load_weights_only(path: str | Path, what: str = "checkpoint",
                      map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors for a missing or foreign file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {str(path)!r}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(f"{str(path)!r} is not a loadable weights-only torch checkpoint: {err}") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not an ecgtwin {what}")
    return obj


def submodule_state(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` under ``prefix`` (e.g. ``"net."``), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


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
