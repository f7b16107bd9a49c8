"""IBEModule: optimisation, evaluation hooks, checkpoint round trip and load_ibe."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ecgtwin.eval.identification import identification_report
from ecgtwin.models.ibe import IndividualBaseExtractor
from ecgtwin.training.ibe_module import IBEModule, cosine_warmup_factor, format_identification_table, load_ibe

V = 4
LENGTH = 128
NET = dict(dim=32, depth=1, heads=2, base_dim=16, cond_dim=16, condition_dropout=0.0)


def record(patient: int, record_id: int, signature: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "signal": signature + 0.05 * torch.randn(12, LENGTH, generator=g),  # (12, L) mV
        "labels": (torch.rand(V, generator=g) > 0.5).float(),
        "demographics": torch.randn(3, generator=g),
        "demographics_mask": torch.tensor([True, True, patient % 2 == 0]),
        "patient_id": torch.tensor(patient),
        "record_id": torch.tensor(record_id),
    }


class SyntheticPairs(Dataset):
    """Patients with a fixed random 12-lead 'signature'; each pair = two noisy copies of it."""

    def __init__(self, n_patients: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        signatures = torch.randn(n_patients, 12, LENGTH, generator=g).cumsum(-1) * 0.1  # (P, 12, L) smooth-ish
        self.items = [
            {"reference": record(p, 2 * p, signatures[p], g), "target": record(p, 2 * p + 1, signatures[p], g)}
            for p in range(n_patients)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, dict[str, torch.Tensor]]:
        return self.items[i]


class PairDataModule(L.LightningDataModule):
    num_labels = V

    def __init__(self, data: SyntheticPairs) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=len(self.data))

    val_dataloader = test_dataloader = train_dataloader


def trainer(tmp_path, steps: int = 25) -> L.Trainer:
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                     num_sanity_val_steps=0, limit_val_batches=0)


def evaluator(tmp_path) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                     default_root_dir=tmp_path)


def eval_loss(module: IBEModule, batch: dict) -> float:
    module.eval()
    with torch.no_grad():
        z_ref, z_tgt = module._encode_pairs(batch)
        return module.loss_fn(z_ref, z_tgt).item()


def full_batch(data: SyntheticPairs) -> dict:
    return next(iter(DataLoader(data, batch_size=len(data))))


def test_training_steps_reduce_the_loss(tmp_path) -> None:
    torch.manual_seed(0)
    data = SyntheticPairs()
    module = IBEModule(num_labels=V, net_config=NET, lr=2e-3, warmup_steps=2, weight_decay=0.0)
    batch = full_batch(data)
    before = eval_loss(module, batch)
    module.train()
    trainer(tmp_path).fit(module, DataLoader(data, batch_size=len(data)))
    after = eval_loss(module, batch)
    assert after < 0.5 * before, (before, after)
    assert module.loss_fn.temperature.item() != pytest.approx(0.07)  # the temperature trained too


def test_net_built_from_datamodule_and_injected_net(tmp_path) -> None:
    data = SyntheticPairs(4)
    lazy = IBEModule(net_config=NET, warmup_steps=1)
    assert lazy.net is None
    trainer(tmp_path, steps=1).fit(lazy, datamodule=PairDataModule(data))
    assert isinstance(lazy.net, IndividualBaseExtractor) and lazy.net.num_labels == V
    assert lazy.hparams["net_config"]["num_labels"] == V

    net = IndividualBaseExtractor(V, **NET)
    injected = IBEModule(net=net)
    assert injected.net is net and injected.hparams["net_config"] == net.config
    with pytest.raises(ValueError, match="num_labels"):
        IBEModule(num_labels=V + 1, net=net)
    with pytest.raises(ValueError, match="net_config"):
        IBEModule(num_labels=V, net_config={"width": 3})


def test_validation_and_test_report_identification(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    data = SyntheticPairs(12)
    module = IBEModule(num_labels=V, net_config=NET, lr=2e-3, warmup_steps=2)
    trainer(tmp_path, steps=30).fit(module, DataLoader(data, batch_size=12))
    t = evaluator(tmp_path)
    val = t.validate(module, DataLoader(data, batch_size=6), verbose=False)[0]  # two batches, collected over epoch
    assert {"val/loss", "val/top1", "val/top5", "val/chance_top1", "val/cos_gap", "val/silhouette"} <= set(val)
    assert val["val/chance_top1"] == pytest.approx(1 / 23)  # 24 distinct records, 1 partner each
    assert val["val/n_queries"] == 12
    # the epoch-level metrics equal the metrics of the whole split computed in one go
    batch = full_batch(data)
    module.eval()
    with torch.no_grad():
        z_ref, z_tgt = module._encode_pairs(batch)
    ref, tgt = batch["reference"], batch["target"]
    direct = identification_report(z_ref, z_tgt, ref["patient_id"], tgt["patient_id"],
                                   ref["record_id"], tgt["record_id"])
    for key in ("top1", "top5", "cos_gap", "silhouette"):
        assert val[f"val/{key}"] == pytest.approx(direct[key], abs=1e-5), key
    t.test(module, DataLoader(data, batch_size=6), verbose=False)
    printed = capsys.readouterr().out
    assert "top-1 identification" in printed and "raw" in printed and "label probe" in printed
    assert module.test_results["raw"]["top1"] == pytest.approx(1.0)  # noisy copies: raw correlation suffices
    assert "probe_auroc" in module.test_results["ibe"]


def test_checkpoint_is_weights_only_and_load_ibe_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    data = SyntheticPairs(4)
    module = IBEModule(num_labels=V, net_config={**NET, "patch": 16}, warmup_steps=1)
    t = trainer(tmp_path, steps=2)
    t.fit(module, DataLoader(data, batch_size=4))
    path = tmp_path / "ibe.ckpt"
    t.save_checkpoint(path)

    ckpt = torch.load(path, weights_only=True)
    assert ckpt["hyper_parameters"]["net_config"]["patch"] == 16

    net = load_ibe(path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    batch = full_batch(data)["reference"]
    module.eval()
    with torch.no_grad():
        expected = module(batch)
    torch.testing.assert_close(net(batch["signal"], batch["labels"], batch["demographics"], batch["demographics_mask"]),
                               expected, rtol=0, atol=0)
    reloaded = IBEModule.load_from_checkpoint(path, weights_only=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(batch), expected, rtol=0, atol=0)


def test_load_ibe_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_ibe(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights-only"):
        load_ibe(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, other)
    with pytest.raises(ValueError, match="net_config"):
        load_ibe(other)
    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"net.project.weight": torch.zeros(1)},
                "hyper_parameters": {"net_config": {"num_labels": V, **NET}}}, wrong)
    with pytest.raises(ValueError, match="do not match"):
        load_ibe(wrong)


def test_learning_rate_schedule() -> None:
    assert cosine_warmup_factor(0, 10, 110, 0.0) == pytest.approx(0.1)
    assert cosine_warmup_factor(9, 10, 110, 0.0) == pytest.approx(1.0)
    assert cosine_warmup_factor(60, 10, 110, 0.0) == pytest.approx(0.5)
    assert cosine_warmup_factor(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert cosine_warmup_factor(500, 10, 110, 0.1) == pytest.approx(0.1)
    assert cosine_warmup_factor(500, 10, None, 0.1) == 1.0
    assert cosine_warmup_factor(0, 0, 100, 0.0) == pytest.approx(1.0)


def test_table_formatting() -> None:
    results = {"ibe": {"top1": 0.5, "top5": 0.75, "chance_top1": 0.01, "chance_top5": 0.05, "n_queries": 10},
               "raw": {"top1": 0.25}}
    table = format_identification_table(results)
    assert "10 queries" in table
    line = next(row for row in table.splitlines() if row.startswith("top-1"))
    assert line.split()[-3:] == ["0.5000", "0.2500", "0.0100"]
    assert math.isfinite(results["ibe"]["top1"])
