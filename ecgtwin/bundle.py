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
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ecgtwin.training.checkpoints import load_weights_only, submodule_state

BUNDLE_FORMAT = "ecgtwin-bundle"
BUNDLE_VERSION = 1
_MODULE_ONLY_HPARAMS = ("net", "ibe", "ibe_checkpoint")


def _datamodule_state(ckpt: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data module state with vocabulary/normalizer, data module hyper-parameters) of a Lightning checkpoint."""
    for key, value in ckpt.items():
        if isinstance(value, dict) and "vocabulary" in value and "normalizer" in value:
            return value, dict(ckpt.get("datamodule_hyper_parameters", {}))
    raise ValueError(f"{str(path)!r} has no data-module state (vocabulary, normalizer): "
                     "train it with ecgtwin.data.datamodule.ECGDataModule")


def bundle_from_checkpoint(path: str | Path, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert a Lightning ``GeneratorModule`` checkpoint into a bundle dict."""
    from ecgtwin.training.generator_module import CHECKPOINT_KEY

    path = Path(path).expanduser()
    ckpt = load_weights_only(path, "checkpoint")
    if CHECKPOINT_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{str(path)!r} is not an ecgtwin generator checkpoint (no {CHECKPOINT_KEY!r} entry)")
    data_state, data_hparams = _datamodule_state(ckpt, path)
    state = ckpt["state_dict"]
    net_state = submodule_state(state, "ema.module.")
    ibe_state = submodule_state(state, "ibe.")
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items()
               if k not in _MODULE_ONLY_HPARAMS and not k.startswith("_")}
    ibe_config = None
    if ibe_state:
        ibe_config = ckpt[CHECKPOINT_KEY].get("ibe_config")
        if ibe_config is None:
            raise ValueError(f"{str(path)!r} holds IBE weights but no IBE config (train with a newer ecgtwin)")
    return make_bundle(dict(ckpt[CHECKPOINT_KEY]["net_config"]), net_state, ibe_config, ibe_state or None, hparams,
                       data_state["vocabulary"], data_state["normalizer"],
                       {"fs": int(data_hparams.get("fs", 100)), "seconds": float(data_hparams.get("seconds", 10.0)),
                        "highpass_hz": data_hparams.get("highpass_hz", 0.5)},
                       {"checkpoint": path.name, **(provenance or {})})


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
