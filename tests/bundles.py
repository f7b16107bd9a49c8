"""Tiny real model bundles for tests: real IBE + generator modules with random weights."""
from __future__ import annotations

from pathlib import Path

import torch

from ecgtwin.bundle import bundle_from_module, save_bundle
from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
from ecgtwin.models.ibe import IndividualBaseExtractor
from ecgtwin.training.generator_module import GeneratorModule

TINY_UNET = dict(channels=8, channel_mults=(1, 2, 2, 2), blocks_per_level=1, cond_dim=16, heads=2, warmup_steps=1)
"""Four levels so that the lowest (125 samples at L=1000) gets cross-attention to the condition tokens."""


def tiny_bundle(sample_root: Path, folder: Path, personalised: bool = True, level: str = "superclass") -> Path:
    """Write ``tiny.pt`` (IBE + generator) or ``population.pt`` (no IBE) into ``folder``; return its path.

    ``level``: the label vocabulary (``"superclass_rhythm"`` writes ``tiny_rhythm.pt``/``population_rhythm.pt``).
    """
    torch.manual_seed(0)
    vocab = LabelVocabulary.from_root(sample_root, level)
    ibe = IndividualBaseExtractor(len(vocab), dim=32, depth=1, heads=2, patch=16, base_dim=16, cond_dim=16) if personalised else None
    module = GeneratorModule(len(vocab), use_base_vector=personalised, ibe=ibe, **TINY_UNET)
    with torch.no_grad():  # make the zero-initialised conditioning pathways matter
        for p in module.ema.module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    bundle = bundle_from_module(module, vocab.to_dict(), DemographicsNormalizer().to_dict(),
                                {"fs": 100, "seconds": 10.0, "highpass_hz": 0.5}, {"note": "test"})
    suffix = "" if level == "superclass" else "_rhythm"
    return save_bundle(bundle, Path(folder) / (f"tiny{suffix}.pt" if personalised else f"population{suffix}.pt"))
