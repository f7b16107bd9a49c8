"""GeneratorModule: pair training, frozen IBE wiring, EMA checkpoints (weights_only), sampling, errors."""
from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecgtwin.models.conditioning import ConditionTokenizer
from ecgtwin.training.generator_module import CHECKPOINT_KEY, GeneratorModule, load_generator, split_pair

V, LENGTH, BASE_DIM = 4, 64, 8
TINY = dict(channels=16, channel_mults=(1, 2), blocks_per_level=1, max_attention_tokens=64, signal_length=LENGTH,
            cond_dim=16, heads=2, warmup_steps=1, lr=2e-3)


class FakeIBE(nn.Module):
    """Stand-in with the IBE contract: ``ibe(signal, labels, demographics, demographics_mask, drop) -> (B, base_dim)``."""

    def __init__(self, num_labels: int = V, base_dim: int = BASE_DIM, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.tokenizer = ConditionTokenizer(num_labels, base_dim)
        self.proj = nn.Linear(2 * 12, base_dim)

    def forward(self, signal: torch.Tensor, labels: torch.Tensor, demographics: torch.Tensor,
                demographics_mask: torch.Tensor | None = None, drop: torch.Tensor | None = None) -> torch.Tensor:
        tokens, _ = self.tokenizer(labels, demographics, demographics_mask, drop)  # (B, T, D)
        stats = torch.cat([signal.mean(-1), signal.std(-1)], dim=1)  # (B, 24)
        return F.normalize(self.proj(stats) + tokens[:, 0], dim=-1)


def record(patient: int, visit: int) -> dict[str, torch.Tensor]:
    """A synthetic record: patient-specific rhythm and amplitude per lead (mV)."""
    g = torch.Generator().manual_seed(100 * patient + visit)
    time = torch.arange(LENGTH) / LENGTH
    amp = 0.2 + 0.1 * torch.arange(12)[:, None] / 12 * (1 + patient % 3)
    signal = amp * torch.sin(2 * math.pi * (3 + patient % 4) * time + 0.1 * visit) + 0.02 * torch.randn(12, LENGTH, generator=g)
    return {"signal": signal.float(), "labels": (torch.rand(V, generator=g) < 0.4).float(),
            "demographics": torch.randn(3, generator=g), "demographics_mask": torch.tensor([True, True, patient % 2 == 0])}


class PairData(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, dict[str, torch.Tensor]]:
        return {"reference": record(i, 0), "target": record(i, 1)}


def pair_batch() -> dict:
    return next(iter(DataLoader(PairData(), batch_size=8)))


def fixed_loss(module: GeneratorModule, batch: dict) -> float:
    with torch.no_grad():
        return sum(module._loss(batch, module.net, training=False, generator=torch.Generator().manual_seed(s)).item()
                   for s in range(6)) / 6


def trainer(steps: int, **kw) -> L.Trainer:  # type: ignore[no-untyped-def]
    args = dict(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1, num_sanity_val_steps=0)
    args.update(kw)
    return L.Trainer(**args)


def test_training_reduces_the_loss_and_checkpoint_reloads_with_weights_only(tmp_path: Path) -> None:
    module = GeneratorModule(V, ibe=FakeIBE(), **TINY)
    assert module.ibe is not None and not any(p.requires_grad for p in module.ibe.parameters())
    batch = pair_batch()
    before = fixed_loss(module, batch)
    ibe_before = {k: v.clone() for k, v in module.ibe.state_dict().items()}
    loader = DataLoader(PairData(), batch_size=8)
    trainer(40).fit(module, loader, loader)
    after = fixed_loss(module, batch)
    assert after < 0.7 * before, (before, after)
    assert int(module.ema.num_updates) == 40
    assert all(torch.equal(v, module.ibe.state_dict()[k]) for k, v in ibe_before.items())  # IBE frozen
    assert not module.ibe.training and not module.ema.module.training

    path = tmp_path / "generator.ckpt"
    module.trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt[CHECKPOINT_KEY]["net_config"]["base_dim"] == BASE_DIM
    ema_keys = [k for k in ckpt["state_dict"] if k.startswith("ema.module.")]
    assert ema_keys and not torch.equal(ckpt["state_dict"][ema_keys[-1]], ckpt["state_dict"]["net." + ema_keys[-1][11:]])

    loaded = load_generator(path, ibe=FakeIBE(seed=7))  # IBE weights come from the generator checkpoint
    for key, value in module.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    cond = {k: v[:2] for k, v in batch["target"].items()}
    ref = {k: v[:2] for k, v in batch["reference"].items()}
    a = module.eval().sample(cond, seeds=[1, 2], reference=ref, steps=4, guidance_condition=2.0)
    b = loaded.sample(cond, seeds=[1, 2], reference=ref, steps=4, guidance_condition=2.0)
    assert a.shape == (2, 12, LENGTH) and torch.allclose(a, b, atol=1e-6)


def test_sample_seeds_scale_and_reference_broadcast() -> None:
    module = GeneratorModule(V, ibe=FakeIBE(), **TINY).eval()
    with torch.no_grad():
        for p in module.ema.module.parameters():
            p.add_(0.05 * torch.randn_like(p))  # a "trained" EMA net whose conditions matter
    batch = pair_batch()
    cond = {k: v[:3] for k, v in batch["target"].items()}
    ref1 = {k: v[:1] for k, v in batch["reference"].items()}
    kw = dict(reference=ref1, steps=3, guidance_person=1.5, guidance_condition=2.0)
    out = module.sample(cond, seeds=[5, 6, 7], **kw)
    single = module.sample({k: v[1:2] for k, v in cond.items()}, seeds=[6], **kw)
    assert torch.allclose(out[1], single[0], atol=1e-5)  # a twin depends on its seed and condition only
    assert not torch.allclose(out[0], module.sample(cond, seeds=[9, 6, 7], **kw)[0], atol=1e-4)
    base = module.base_vectors(ref1)
    assert torch.allclose(out, module.sample(cond, seeds=[5, 6, 7], base_vector=base, steps=3, guidance_person=1.5,
                                             guidance_condition=2.0), atol=1e-6)
    other = GeneratorModule(V, ibe=FakeIBE(), **dict(TINY, signal_scale=1.0)).eval()
    other.load_state_dict(module.state_dict())
    assert torch.allclose(other.sample(cond, seeds=[5, 6, 7], **kw), out / 0.5, atol=1e-5)  # output in mV
    ddpm = module.sample(cond, seeds=[5, 6, 7], reference=ref1, sampler="ddpm", steps=3)
    assert ddpm.shape == (3, 12, LENGTH) and torch.isfinite(ddpm).all()
    with pytest.raises(ValueError, match="3 seeds"):
        module.sample({k: v[:2] for k, v in cond.items()}, seeds=[1, 2, 3])
    with pytest.raises(ValueError, match="sampler must be"):
        module.sample(cond, seeds=[1, 2, 3], sampler="euler")


def test_population_model_without_ibe() -> None:
    module = GeneratorModule(V, ibe_checkpoint=None, use_base_vector=False, **TINY)
    assert module.ibe is None
    loss = module._loss(pair_batch(), module.net, training=True)
    loss.backward()
    assert torch.isfinite(loss) and module.net.in_conv.weight.grad is not None
    record_batch = pair_batch()["target"]  # a single-record batch is its own reference
    assert split_pair(record_batch) == (record_batch, record_batch)
    out = module.sample({k: v[:2] for k, v in record_batch.items()}, seeds=[0, 1], steps=2)
    assert out.shape == (2, 12, LENGTH)
    with pytest.raises(ValueError, match="population model"):
        module.sample({k: v[:2] for k, v in record_batch.items()}, seeds=[0, 1], base_vector=torch.zeros(1, 256))


def test_ibe_wiring_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope" / "ibe.ckpt"
    with pytest.raises(FileNotFoundError, match="nope/ibe.ckpt"):
        GeneratorModule(V, ibe_checkpoint=str(missing), **TINY)
    with pytest.raises(ValueError, match="needs ibe_checkpoint"):
        GeneratorModule(V, **TINY)
    with pytest.raises(ValueError, match="vocabulary mismatch.*6 labels.*num_labels=4"):
        GeneratorModule(V, ibe=FakeIBE(num_labels=V + 2), **TINY)
    with pytest.raises(ValueError, match="base_dim=32"):
        GeneratorModule(V, ibe=FakeIBE(), base_dim=32, **TINY)
    # a checkpoint path goes through ecgtwin.training.ibe_module.load_ibe(path)
    seen: list[str] = []
    fake = types.ModuleType("ecgtwin.training.ibe_module")
    fake.load_ibe = lambda path: seen.append(path) or FakeIBE(num_labels=V + 1)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ecgtwin.training.ibe_module", fake)
    existing = tmp_path / "ibe.ckpt"
    existing.write_bytes(b"")
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        GeneratorModule(V, ibe_checkpoint=str(existing), **TINY)
    assert seen == [str(existing)]
    with pytest.raises(FileNotFoundError, match="generator checkpoint not found"):
        load_generator(tmp_path / "missing.ckpt")


def test_bad_batches_and_hparams() -> None:
    module = GeneratorModule(V, ibe=FakeIBE(), **TINY)
    batch = pair_batch()
    batch["target"]["signal"] = batch["target"]["signal"][:, :11]
    with pytest.raises(ValueError, match=r"x must be \(B, 12, L\)"):
        module._loss(batch, module.net, training=True)
    with pytest.raises(KeyError, match="pair batch"):
        split_pair({"labels": torch.zeros(1, V)})
    with pytest.raises(ValueError, match="signal_scale"):
        GeneratorModule(V, use_base_vector=False, signal_scale=0.0)
    with pytest.raises(ValueError, match="p_cond"):
        GeneratorModule(V, use_base_vector=False, p_cond=1.5)


@pytest.mark.slow
def test_ddp_two_processes_on_cpu() -> None:
    module = GeneratorModule(V, ibe=FakeIBE(), **TINY)
    start = module.net.in_conv.weight.detach().clone()
    loader = DataLoader(PairData(), batch_size=4)
    trainer(3, devices=2, strategy="ddp_spawn", limit_val_batches=0).fit(module, loader)
    assert int(module.ema.num_updates) == 3
    assert not torch.equal(start, module.net.in_conv.weight)


def test_min_snr_shift_starts_at_its_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shifted Min-SNR weighting applies from ``min_snr_shift_from_step`` on, and reaches the loss."""
    import ecgtwin.training.generator_module as gm

    module = GeneratorModule(V, ibe=FakeIBE(), min_snr_gamma=5.0, min_snr_shift=1.0, min_snr_shift_from_step=100,
                             **TINY)
    seen: list[float] = []
    real = gm.diffusion_loss
    monkeypatch.setattr(gm, "diffusion_loss", lambda *a: seen.append(a[-1]) or real(*a))
    for step, shift in ((0, 0.0), (99, 0.0), (100, 1.0), (5000, 1.0)):
        monkeypatch.setattr(GeneratorModule, "global_step", property(lambda self, s=step: s))
        assert module.min_snr_shift == shift
        fixed_loss(module, pair_batch())
        assert seen[-1] == shift
