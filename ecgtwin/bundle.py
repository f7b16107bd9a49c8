"""Model bundles: one weights-only file holding everything needed to generate twins.

A bundle is a plain dict saved with :func:`torch.save` (tensors and primitives
only, so it loads with ``torch.load(weights_only=True)``):

* ``net_config`` / ``net_state``: the generator U-Net (EMA weights),
* ``ibe_config`` / ``ibe_state``: the frozen IBE (``None`` for a population model),
* ``generator``: GeneratorModule hyper-parameters (schedule size, signal scale, ...),
* ``vocabulary``, ``normalizer``: label vocabulary and train-set demographic statistics,
* ``preprocess``: ``fs``, ``seconds``, ``highpass_hz`` the model was trained with,
* ``provenance``: where it came from (checkpoint name, data, command, metrics).

:func:`bundle_from_checkpoint` builds one from a Lightning generator checkpoint
(the IBE weights are inside it; its data module state carries the vocabulary).
:func:`build_networks` turns a bundle into the plain modules generation needs
(:class:`TwinNetworks`); nothing here imports ``ecgtwin.training``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecgtwin.diffusion.schedule import VPSchedule
from ecgtwin.weights import load_weights_only, submodule_state

BUNDLE_FORMAT = "ecgtwin-bundle"
BUNDLE_VERSION = 1
GENERATOR_CHECKPOINT_KEY = "ecgtwin_generator"
"""The entry a Lightning generator checkpoint carries its network/IBE configs under
(``ecgtwin.training.generator_module.CHECKPOINT_KEY``; spelled here so converting a ``.ckpt`` imports no training code)."""
_MODULE_ONLY_HPARAMS = ("net", "ibe", "ibe_checkpoint", "init_from")
DEFAULT_SIGNAL_SCALE = 0.5
DEFAULT_NUM_TIMESTEPS = 1000
"""``GeneratorModule`` defaults, used for bundles whose ``generator`` entry predates these keys."""


def _datamodule_state(ckpt: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data module state with vocabulary/normalizer, data module hyper-parameters) of a Lightning checkpoint."""
    for key, value in ckpt.items():
        if isinstance(value, dict) and "vocabulary" in value and "normalizer" in value:
            return value, dict(ckpt.get("datamodule_hyper_parameters", {}))
    raise ValueError(f"{str(path)!r} has no data-module state (vocabulary, normalizer): "
                     "train it with ecgtwin.data.datamodule.ECGDataModule")


def bundle_from_checkpoint(path: str | Path, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert a Lightning ``GeneratorModule`` checkpoint into a bundle dict (weights-only, no training code)."""
    path = Path(path).expanduser()
    ckpt = load_weights_only(path, "checkpoint")
    if GENERATOR_CHECKPOINT_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{str(path)!r} is not an ecgtwin generator checkpoint (no {GENERATOR_CHECKPOINT_KEY!r} entry)")
    data_state, data_hparams = _datamodule_state(ckpt, path)
    state = ckpt["state_dict"]
    net_state = submodule_state(state, "ema.module.")
    ibe_state = submodule_state(state, "ibe.")
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items()
               if k not in _MODULE_ONLY_HPARAMS and not k.startswith("_")}
    ibe_config = None
    if ibe_state:
        ibe_config = ckpt[GENERATOR_CHECKPOINT_KEY].get("ibe_config")
        if ibe_config is None:
            raise ValueError(f"{str(path)!r} holds IBE weights but no IBE config (train with a newer ecgtwin)")
    return make_bundle(dict(ckpt[GENERATOR_CHECKPOINT_KEY]["net_config"]), net_state, ibe_config, ibe_state or None, hparams,
                       data_state["vocabulary"], data_state["normalizer"],
                       {"fs": int(data_hparams.get("fs", 100)), "seconds": float(data_hparams.get("seconds", 10.0)),
                        "highpass_hz": data_hparams.get("highpass_hz", 0.5)},
                       {"checkpoint": path.name, **_training_progress(ckpt), **(provenance or {})})


def _training_progress(ckpt: dict[str, Any]) -> dict[str, int]:
    """The optimisation step (and epoch) a Lightning checkpoint was saved at, for the bundle's provenance."""
    return {key: int(ckpt[key]) for key in ("global_step", "epoch") if isinstance(ckpt.get(key), int)}


def make_bundle(net_config: dict[str, Any], net_state: dict[str, torch.Tensor], ibe_config: dict[str, Any] | None,
                ibe_state: dict[str, torch.Tensor] | None, generator: dict[str, Any], vocabulary: dict[str, Any],
                normalizer: dict[str, float], preprocess: dict[str, Any],
                provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble a bundle dict (see the module docstring for the fields)."""
    if (ibe_config is None) != (ibe_state is None):
        raise ValueError("a bundle needs both the IBE config and its weights, or neither (population model)")
    return {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION,
        "net_config": net_config, "net_state": net_state, "ibe_config": ibe_config, "ibe_state": ibe_state,
        "generator": generator, "vocabulary": vocabulary, "normalizer": normalizer, "preprocess": preprocess,
        "provenance": provenance or {},
    }


def bundle_from_module(module: Any, vocabulary: dict[str, Any], normalizer: dict[str, float],
                       preprocess: dict[str, Any], provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Bundle a live ``GeneratorModule`` (EMA weights) with its data-side state."""
    hparams = {k: v for k, v in dict(module.hparams).items() if k not in _MODULE_ONLY_HPARAMS and not k.startswith("_")}
    ibe = module.ibe
    return make_bundle(dict(module.net.config), module.ema.module.state_dict(),
                       None if ibe is None else dict(ibe.config), None if ibe is None else ibe.state_dict(),
                       hparams, vocabulary, normalizer, preprocess, provenance)


def save_bundle(bundle: dict[str, Any], path: str | Path) -> Path:
    """Write a bundle atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(bundle, tmp)
    tmp.replace(path)
    return path


def load_bundle(path: str | Path) -> dict[str, Any]:
    """Load a bundle (``.pt``) or convert a Lightning generator checkpoint (``.ckpt``) on the fly."""
    path = Path(path).expanduser()
    obj = load_weights_only(path, "checkpoint")
    if obj.get("format") == BUNDLE_FORMAT:
        if obj.get("format_version") != BUNDLE_VERSION:
            raise ValueError(f"{str(path)!r} is bundle format v{obj.get('format_version')}; this ecgtwin reads v{BUNDLE_VERSION}")
        return obj
    return bundle_from_checkpoint(path)


@dataclass
class TwinNetworks:
    """The plain modules a bundle describes: what :func:`ecgtwin.pipeline.sample_twins` needs, nothing of training."""

    net: nn.Module
    """The generator U-Net (EMA weights), eval mode."""
    ibe: nn.Module | None
    """The frozen Individual Base Extractor; ``None`` for a population model."""
    schedule: VPSchedule
    signal_scale: float
    """mV per unit of the diffusion signal."""
    hparams: dict[str, Any]
    """The generator's training hyper-parameters (as stored in the bundle)."""


def build_networks(bundle: dict[str, Any], device: str | torch.device = "cpu") -> TwinNetworks:
    """Build the U-Net, the IBE and the noise schedule of a bundle (weights loaded, eval mode, frozen)."""
    from ecgtwin.models.ibe import IndividualBaseExtractor
    from ecgtwin.models.unet import UNet1D

    hparams = dict(bundle.get("generator") or {})
    signal_scale = float(hparams.get("signal_scale", DEFAULT_SIGNAL_SCALE))
    if not signal_scale > 0:
        raise ValueError(f"bundle signal_scale must be > 0 mV, got {signal_scale}")
    net = UNet1D(**bundle["net_config"])
    net.load_state_dict(bundle["net_state"])
    ibe = None
    if bundle.get("ibe_config") is not None:
        ibe = IndividualBaseExtractor(**bundle["ibe_config"])
        ibe.load_state_dict(bundle["ibe_state"])
        if net.use_base_vector and int(ibe.config["base_dim"]) != int(net.base_dim):
            raise ValueError(f"the IBE returns base vectors of size {ibe.config['base_dim']}, the U-Net takes {net.base_dim}")
    for module in (net, ibe):
        if module is not None:
            module.to(torch.device(device)).eval().requires_grad_(False)
    return TwinNetworks(net, ibe, VPSchedule(int(hparams.get("num_timesteps", DEFAULT_NUM_TIMESTEPS))), signal_scale, hparams)
