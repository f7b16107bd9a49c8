"""Weights-only checkpoint loading, shared by generation (bundles) and training (IBE, generator, classifier).

Plain torch, no training code: the generation path (:mod:`ecgtwin.bundle`,
:mod:`ecgtwin.api`) loads checkpoints through this module without importing
``ecgtwin.training`` (which re-exports these functions for older imports).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def load_weights_only(path: str | Path, what: str = "checkpoint",
                      map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors for a missing, foreign or folder path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a folder, not a checkpoint file")
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
