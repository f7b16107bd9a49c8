"""ECGClassifier shapes/validation, ClassifierModule training (real, extra synthetic), checkpoint round trip."""
from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.training.classifier_module import ArrayRecordDataset, ClassifierModule, load_classifier

TINY = {"widths": (8, 16), "blocks": 1, "head_dim": 16, "dropout": 0.0}
LENGTH = 250


def separable_records(n: int, seed: int) -> ArrayRecordDataset:
    """Two independent labels: a 3 Hz wave in lead I, a 20 Hz wave in lead V2 (100 Hz, 2.5 s, noisy)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n, 2), generator=gen).float()  # (N, 2)
    t = torch.arange(LENGTH) / 100.0
    signals = 0.3 * torch.randn(n, 12, LENGTH, generator=gen)  # (N, 12, L)
    signals[:, 0] += labels[:, :1] * torch.sin(2 * math.pi * 3.0 * t)
    signals[:, 7] += labels[:, 1:] * torch.sin(2 * math.pi * 20.0 * t)
    return ArrayRecordDataset(signals, labels)


def full_batch(data: ArrayRecordDataset) -> dict[str, torch.Tensor]:
    return {"signal": data.signals, "labels": data.labels}


# ---- network ----------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1000, 250, 37])
def test_classifier_shapes(length: int) -> None:
    net = ECGClassifier(num_labels=5, **TINY).eval()
    x = torch.randn(3, 12, length)
    assert net(x).shape == (3, 5)
    features = net.features(x)
    assert features.shape == (3, net.feature_dim) == (3, 16)
    assert (features >= 0).all()  # after the head ReLU
    torch.testing.assert_close(net.out(features), net(x))  # features are the penultimate layer


def test_classifier_default_size_and_stage_config() -> None:
    net = ECGClassifier(num_labels=71)
    n_params = sum(p.numel() for p in net.parameters())
    assert 2e5 < n_params < 2e6  # CPU-trainable
    deeper = ECGClassifier(num_labels=3, widths=(8, 16, 32), blocks=(2, 1, 1), head_dim=8)
    assert len(deeper.stages) == 4 and deeper.eval()(torch.randn(2, 12, 100)).shape == (2, 3)


def test_residual_blocks_start_as_identity() -> None:
    net = ECGClassifier(num_labels=2, widths=(8,), blocks=2, head_dim=4).eval()
    h = torch.relu(torch.randn(2, 8, 50))
    torch.testing.assert_close(net.stages(h), h)  # zero-initialised last BN: relu(0 + x) = x for x >= 0


def test_classifier_bad_input() -> None:
    net = ECGClassifier(num_labels=2, **TINY)
    with pytest.raises(ValueError, match=r"\(B, 12, L\)"):
        net(torch.randn(2, 8, 100))
    with pytest.raises(ValueError, match=r"\(B, 12, L\)"):
        net.features(torch.randn(12, 100))
    with pytest.raises(ValueError, match="odd"):
        ECGClassifier(num_labels=2, kernel=4)
    with pytest.raises(ValueError, match="block count"):
        ECGClassifier(num_labels=2, widths=(8, 16), blocks=(1,))
    with pytest.raises(ValueError, match="num_labels"):
        ECGClassifier(num_labels=0)


# ---- module -----------------------------------------------------------------------------------
NO_TRAINER = pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")


@NO_TRAINER
def test_training_steps_reduce_loss_on_separable_problem() -> None:
    torch.manual_seed(0)
    module = ClassifierModule(num_labels=2, **TINY)
    loader = DataLoader(separable_records(64, seed=0), batch_size=16, shuffle=True)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        for i, batch in enumerate(loader):
            loss = module.training_step(batch, i)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:4])


@NO_TRAINER
def test_extra_train_only_and_mix_use_the_extra_records() -> None:
    real, extra = separable_records(8, seed=1), separable_records(6, seed=2)
    net_kwargs = {"num_labels": 2, **TINY}
    for mode in ("only", "mix"):
        torch.manual_seed(0)
        module = ClassifierModule(**net_kwargs, extra_train=extra, extra_mode=mode, extra_batch_size=len(extra)).eval()
        loss = module.training_step(full_batch(real), 0)  # eval(): BN running stats, order-independent mean
        x = extra.signals if mode == "only" else torch.cat([real.signals, extra.signals])
        y = extra.labels if mode == "only" else torch.cat([real.labels, extra.labels])
        torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(module.net(x), y))
    assert "extra_train" not in module.hparams


def test_module_bad_input() -> None:
    module = ClassifierModule(num_labels=3, **TINY)
    data = separable_records(4, seed=0)
    with pytest.raises(ValueError, match=r"labels must be \(B, 3\)"):
        module.training_step(full_batch(data), 0)
    with pytest.raises(KeyError, match="pairs=False"):
        module.training_step({"reference": full_batch(data), "target": full_batch(data)}, 0)
    with pytest.raises(ValueError, match="needs extra_train"):
        ClassifierModule(num_labels=2, extra_mode="only")
    with pytest.raises(ValueError, match="extra_mode"):
        ClassifierModule(num_labels=2, extra_mode="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same N"):
        ArrayRecordDataset(torch.zeros(3, 12, 10), torch.zeros(2, 2))
    mixed = ClassifierModule(num_labels=2, **TINY, extra_train=ArrayRecordDataset(torch.zeros(2, 12, 100), torch.zeros(2, 2)))
    with pytest.raises(ValueError, match="differ from real ones"):
        mixed.training_step(full_batch(separable_records(4, seed=0)), 0)


def test_fit_validate_test_and_checkpoint_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    L.seed_everything(0, verbose=False)
    module = ClassifierModule(num_labels=2, **TINY, lr=3e-3, warmup_steps=1, test_n_boot=50)
    train = DataLoader(separable_records(64, seed=0), batch_size=16, shuffle=True)
    val = DataLoader(separable_records(32, seed=1), batch_size=16)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val/macro_auroc", mode="max", save_top_k=1)
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", devices=1, logger=False, callbacks=[checkpoint],
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, train, val)
    assert float(trainer.callback_metrics["val/macro_auroc"]) > 0.8
    trainer.test(module, val, verbose=False)
    assert "test macro AUROC" in capsys.readouterr().out
    results = module.test_results
    assert results["macro_auroc_low"] <= results["macro_auroc"] <= results["macro_auroc_high"]

    ckpt = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["widths"] == [8, 16]
    net = load_classifier(checkpoint.best_model_path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    best = ClassifierModule(num_labels=2, **TINY)
    best.load_state_dict(ckpt["state_dict"])
    x = separable_records(4, seed=5).signals
    torch.testing.assert_close(net(x), best.net.eval()(x))
    torch.testing.assert_close(net.features(x), best.net.features(x))


def test_load_classifier_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_classifier(tmp_path / "missing.ckpt")
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1.0}}, other)
    with pytest.raises(ValueError, match="not a ClassifierModule checkpoint"):
        load_classifier(other)
