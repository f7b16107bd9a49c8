"""Generator v2: 8 generated leads with exact limb-lead laws for every sampler, personal flags, warm start, rhythm."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.bundle import bundle_from_module, save_bundle
from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
from ecgtwin.diffusion.samplers import SAMPLERS
from ecgtwin.leads import lead_law_residual
from ecgtwin.models.ibe import IndividualBaseExtractor
from ecgtwin.training.generator_module import GeneratorModule

TINY = dict(channels=8, channel_mults=(1, 2, 2, 2), blocks_per_level=1, cond_dim=16, heads=2, warmup_steps=1)


def v2_module(vocab: LabelVocabulary, seed: int = 0, **kw: object) -> GeneratorModule:
    torch.manual_seed(seed)
    ibe = IndividualBaseExtractor(len(vocab), dim=32, depth=1, heads=2, patch=16, base_dim=16, cond_dim=16)
    module = GeneratorModule(len(vocab), ibe=ibe, independent_leads=True, **TINY, **kw)  # type: ignore[arg-type]
    with torch.no_grad():  # make the zero-initialised pathways matter
        for p in module.ema.module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


@pytest.fixture(scope="module")
def vocab(sample_root: Path) -> LabelVocabulary:
    return LabelVocabulary.from_root(sample_root, "superclass_rhythm")


@pytest.fixture(scope="module")
def v2_bundle(vocab: LabelVocabulary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    module = v2_module(vocab)
    bundle = bundle_from_module(module, vocab.to_dict(), DemographicsNormalizer().to_dict(),
                                {"fs": 100, "seconds": 10.0, "highpass_hz": 0.5}, {"note": "test v2"})
    return save_bundle(bundle, tmp_path_factory.mktemp("v2") / "v2.pt")


def test_the_network_models_eight_leads_and_trains_on_pair_and_record_examples(vocab: LabelVocabulary) -> None:
    module = v2_module(vocab)
    assert module.net.in_leads == 8
    g = torch.Generator().manual_seed(0)
    item = {"signal": torch.randn(4, 12, 1000, generator=g) * 0.2, "labels": torch.zeros(4, len(vocab)),
            "demographics": torch.zeros(4, 3), "demographics_mask": torch.ones(4, 3, dtype=torch.bool)}
    batch = {"reference": item, "target": item, "personal": torch.tensor([True, True, False, False])}
    seen = {}
    original = module.net.forward

    def spy(x, t, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["x"], seen["drop_base"] = x, kwargs.get("drop_base")
        return original(x, t, *args, **kwargs)

    module.net.forward = spy  # type: ignore[method-assign]
    loss = module._loss(batch, module.net, training=True)
    assert torch.isfinite(loss) and seen["x"].shape == (4, 8, 1000)
    assert seen["drop_base"][2:].all()  # single records never see a base vector


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_returns_twelve_leads_that_obey_the_limb_lead_laws(v2_bundle: Path, sampler: str) -> None:
    model = TwinModel.load(v2_bundle)
    ref = np.random.default_rng(0).standard_normal((12, 1000)).astype(np.float32) * 0.2
    twins = model.generate([TwinSpec(ref, ["MI"], hr=70, seed=s) for s in range(2)], sampler=sampler, steps=4,
                           guidance_condition=3.0, guidance_person=2.0, progress=False)
    assert twins.shape == (2, 12, 1000) and np.all(np.isfinite(twins))
    assert float(np.abs(twins).max()) > 1e-3  # not trivially zero
    assert float(lead_law_residual(twins).max()) < 1e-6  # exact up to float32 rounding


def test_default_rhythm_is_sinus_and_rhythm_requests_are_checked(v2_bundle: Path, sample_root: Path,
                                                                   tmp_path: Path) -> None:
    model = TwinModel.load(v2_bundle)
    assert model.target_labels(["MI"]) == ["MI", "SR"]
    assert model.target_labels(["MI"], "AFIB") == ["MI", "AFIB"]
    assert model.target_labels(["MI", "AFIB"]) == ["MI", "AFIB"]  # a rhythm in the labels wins over the default
    assert model.target_labels(["MI"], "none") == ["MI"]
    with pytest.raises(ValueError, match="not a rhythm label"):
        model.target_labels(["MI"], "STTC")
    with pytest.raises(ValueError, match="conflicts"):
        model.target_labels(["SR"], "AFIB")
    with pytest.raises(ValueError, match="unknown label"):
        model.target_labels(["MI"], "AFL")
    from tests.bundles import tiny_bundle

    v1 = TwinModel.load(tiny_bundle(sample_root, tmp_path))  # superclass vocabulary: no rhythm tokens
    assert v1.target_labels(["MI"]) == ["MI"]
    with pytest.raises(ValueError, match="no rhythm tokens"):
        v1.target_labels(["MI"], "AFIB")


def test_warm_start_from_a_bundle_takes_its_generator_and_ibe(vocab: LabelVocabulary, v2_bundle: Path,
                                                               tmp_path: Path) -> None:
    stored = torch.load(v2_bundle, weights_only=True)
    warm = GeneratorModule(len(vocab), init_from=str(v2_bundle), independent_leads=True, **TINY)  # type: ignore[arg-type]
    for name, value in stored["net_state"].items():
        assert torch.equal(warm.net.state_dict()[name], value) and torch.equal(warm.ema.module.state_dict()[name], value)
    for name, value in stored["ibe_state"].items():
        assert torch.equal(warm.ibe.state_dict()[name], value)
    with pytest.raises(ValueError, match="architecture"):
        GeneratorModule(len(vocab), init_from=str(v2_bundle), independent_leads=True, **{**TINY, "channels": 16})  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="init_from"):
        GeneratorModule(len(vocab), init_from=str(tmp_path / "missing.pt"), **TINY)  # type: ignore[arg-type]
