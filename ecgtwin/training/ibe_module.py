"""LightningModule of stage one: contrastive training of the Individual Base Extractor (ECGTwin Sec. 3.1).

Batches are pair batches (docs/DESIGN.md): ``batch["reference"]`` and
``batch["target"]`` are record dicts of the same patients. Both ECGs go
through the IBE with their own condition; the CLIP loss pulls pair ``i``'s
base vectors together and pushes other patients' apart.

Validation/test collect the base vectors and report patient identification
(top-1/top-5 against all records of the split, with the chance level),
same/different-patient cosine and the patient silhouette; the test also runs
the raw-signal baseline and the linear label probe and prints a table.

Checkpoints hold only tensors and plain Python values, so
``torch.load(ckpt, weights_only=True)`` works and :func:`load_ibe` rebuilds the
frozen network for the generator stage.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from ecgtwin.eval.identification import (
    identification_report,
    linear_probe_auroc,
    pair_split_records,
    raw_signal_embedding,
)
from ecgtwin.models.ibe import IndividualBaseExtractor
from ecgtwin.models.losses import ClipLoss
from ecgtwin.training.checkpoints import load_weights_only, restore
from ecgtwin.training.schedules import cosine_warmup_factor


def _build_net(num_labels: int | None, net_config: dict[str, Any] | None) -> IndividualBaseExtractor:
    config = dict(net_config or {})
    if num_labels is not None:
        if config.get("num_labels", num_labels) != num_labels:
            raise ValueError(f"net_config num_labels={config['num_labels']} disagrees with num_labels={num_labels}")
        config["num_labels"] = num_labels
    if "num_labels" not in config:
        raise ValueError("IBEModule needs num_labels (from the data module) or a net")
    try:
        return IndividualBaseExtractor(**config)
    except TypeError as err:
        raise ValueError(f"invalid IBE net_config {config}: {err}") from err


class IBEModule(L.LightningModule):
    """Contrastive IBE training.

    Args:
        num_labels: label-vocabulary size (linked from the data module by the CLI). If neither
            it nor ``net`` is given, it is read from ``trainer.datamodule.num_labels``.
        net: an already built :class:`IndividualBaseExtractor` (takes precedence over ``net_config``).
        net_config: keyword arguments of :class:`IndividualBaseExtractor` (dim, depth, patch, ...).
        lr, weight_decay: AdamW settings (no decay on norms, biases, tokens, temperature).
        warmup_steps: linear warmup steps; then cosine decay until ``max_steps`` (default: the
            trainer's estimated number of steps) down to ``min_lr_ratio * lr``.
        init_temperature: initial CLIP temperature.
        mask_same_patient: drop same-patient off-diagonal negatives from the loss.
        ks: identification ranks reported (top-k).
        probe_at_test: run the linear label probe (disentanglement) at test.
    """

    def __init__(
        self,
        num_labels: int | None = None,
        net: IndividualBaseExtractor | None = None,
        net_config: dict[str, Any] | None = None,
        lr: float = 3e-4,
        weight_decay: float = 0.05,
        warmup_steps: int = 500,
        max_steps: int | None = None,
        min_lr_ratio: float = 0.01,
        init_temperature: float = 0.07,
        mask_same_patient: bool = True,
        ks: tuple[int, ...] = (1, 5),
        probe_at_test: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        if net is not None and num_labels is not None and net.num_labels != num_labels:
            raise ValueError(f"injected IBE has num_labels={net.num_labels} but the data has {num_labels}")
        self.net: IndividualBaseExtractor | None = net
        if self.net is None and (num_labels is not None or (net_config or {}).get("num_labels") is not None):
            self.net = _build_net(num_labels, net_config)
        if self.net is not None:
            self._record_net_config()
        self.loss_fn = ClipLoss(init_temperature=init_temperature)
        self.ks = tuple(int(k) for k in ks)
        self._outputs: dict[str, list[torch.Tensor]] = {}
        self.test_results: dict[str, dict[str, float]] = {}

    def _record_net_config(self) -> None:
        """Store the net's constructor arguments (plain values) so the checkpoint rebuilds it."""
        assert self.net is not None
        self.hparams["net_config"] = dict(self.net.config)
        self.hparams["num_labels"] = self.net.num_labels

    def configure_model(self) -> None:
        """Build the net from the data module's vocabulary size when it was not given at init."""
        if self.net is not None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        num_labels = getattr(datamodule, "num_labels", None)
        if num_labels is None:
            raise ValueError("IBEModule got neither num_labels nor net, and the data module has no num_labels")
        self.net = _build_net(int(num_labels), self.hparams.get("net_config"))
        self._record_net_config()

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, item: dict[str, torch.Tensor], drop: torch.Tensor | None = None) -> torch.Tensor:
        """Base vectors (B, base_dim) of a record batch dict (signal, labels, demographics, demographics_mask)."""
        if self.net is None:
            raise RuntimeError("IBEModule.net is not built yet (no num_labels); call trainer.fit or pass num_labels")
        return self.net(item["signal"], item["labels"], item["demographics"], item.get("demographics_mask"), drop)

    def _encode_pairs(self, batch: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass over references and targets together -> (B, D), (B, D)."""
        ref, tgt = batch["reference"], batch["target"]
        both = {key: torch.cat([ref[key], tgt[key]]) for key in ("signal", "labels", "demographics")}  # (2B, ...)
        if "demographics_mask" in ref:
            both["demographics_mask"] = torch.cat([ref["demographics_mask"], tgt["demographics_mask"]])  # (2B, 3)
        z = self(both)  # (2B, D)
        return z[: len(ref["signal"])], z[len(ref["signal"]) :]

    def _loss(self, batch: dict[str, dict[str, torch.Tensor]], stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z_ref, z_tgt = self._encode_pairs(batch)
        patients = batch["reference"]["patient_id"] if self.hparams.mask_same_patient else None
        logits = self.loss_fn.logits(z_ref, z_tgt, patients)  # (B, B)
        loss = self.loss_fn.loss_from_logits(logits)
        b = len(z_ref)
        top1 = (logits.argmax(dim=1) == torch.arange(b, device=logits.device)).float().mean()
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=b)
        self.log(f"{stage}/batch_top1", top1, batch_size=b)
        return loss, z_ref, z_tgt

    def training_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch, "train")
        self.log("train/temperature", self.loss_fn.temperature, batch_size=len(batch["reference"]["signal"]))
        return loss

    # ---- evaluation ----------------------------------------------------------------------------
    def _collect(self, batch: dict[str, dict[str, torch.Tensor]], stage: str) -> None:
        _, z_ref, z_tgt = self._loss(batch, stage)
        ref, tgt = batch["reference"], batch["target"]
        rows = {"z_ref": z_ref, "z_tgt": z_tgt, "p_ref": ref["patient_id"], "p_tgt": tgt["patient_id"]}
        if "record_id" in ref and "record_id" in tgt:
            rows.update(r_ref=ref["record_id"], r_tgt=tgt["record_id"])
        if stage == "test":
            rows.update(y_ref=ref["labels"], y_tgt=tgt["labels"],
                        raw_ref=torch.from_numpy(raw_signal_embedding(ref["signal"])),
                        raw_tgt=torch.from_numpy(raw_signal_embedding(tgt["signal"])))
        for key, value in rows.items():
            self._outputs.setdefault(key, []).append(value.detach().cpu())

    def _gathered(self) -> dict[str, np.ndarray]:
        out = {key: torch.cat(values).float().numpy() if values[0].is_floating_point() else torch.cat(values).numpy()
               for key, values in self._outputs.items()}
        self._outputs = {}
        return out

    def on_validation_epoch_start(self) -> None:
        self._outputs = {}

    def on_test_epoch_start(self) -> None:
        self._outputs = {}

    def validation_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> None:
        self._collect(batch, "val")

    def test_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> None:
        self._collect(batch, "test")

    def _report(self, data: dict[str, np.ndarray], ref: str, tgt: str, silhouette: bool) -> dict[str, float]:
        return identification_report(data[ref], data[tgt], data["p_ref"], data["p_tgt"],
                                     data.get("r_ref"), data.get("r_tgt"), ks=self.ks, silhouette=silhouette)

    def on_validation_epoch_end(self) -> None:
        if not self._outputs:
            return
        report = self._report(self._gathered(), "z_ref", "z_tgt", silhouette=True)
        self.log_dict({f"val/{k}": float(v) for k, v in report.items()})

    def on_test_epoch_end(self) -> None:
        if not self._outputs:
            return
        data = self._gathered()
        results = {"ibe": self._report(data, "z_ref", "z_tgt", silhouette=True),
                   "raw": self._report(data, "raw_ref", "raw_tgt", silhouette=True)}
        if self.hparams.probe_at_test:
            for name, key in (("ibe", "z"), ("raw", "raw")):
                results[name]["probe_auroc"] = self._probe(data, key)
        self.test_results = results
        self.log_dict({f"test/{k}": float(v) for k, v in results["ibe"].items()})
        self.log_dict({f"test/raw_{k}": float(v) for k, v in results["raw"].items()
                       if not k.startswith(("chance", "n_queries"))})  # chance is shared with the IBE
        if self.trainer.is_global_zero:
            print(format_identification_table(results, self.ks))

    def _probe(self, data: dict[str, np.ndarray], key: str, seed: int = 0) -> float:
        """Linear label probe on distinct records, train/test split by patient (half/half)."""
        emb = pair_split_records(data[f"{key}_ref"], data[f"{key}_tgt"], data["p_ref"], data["p_tgt"],
                                 data.get("r_ref"), data.get("r_tgt"))
        lab = pair_split_records(data["y_ref"], data["y_tgt"], data["p_ref"], data["p_tgt"],
                                 data.get("r_ref"), data.get("r_tgt"))  # same dedup order as emb
        patients = np.unique(emb["gallery_patient"])
        train_patients = np.random.default_rng(seed).permutation(patients)[: len(patients) // 2]
        train = np.isin(emb["gallery_patient"], train_patients)
        if train.sum() < 2 or (~train).sum() < 2:
            return float("nan")
        x, y = emb["gallery"], lab["gallery"]
        return linear_probe_auroc(x[train], y[train], x[~train], y[~train])

    # ---- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (betas 0.9/0.98 as in CLIP) with warmup + cosine decay per step."""
        decay, no_decay = [], []
        for param in self.parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 else no_decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.lr, betas=(0.9, 0.98),
        )
        total = self.hparams.max_steps
        if total is None and self._trainer is not None:
            estimated = self.trainer.estimated_stepping_batches
            total = int(estimated) if math.isfinite(estimated) else None
        warmup, min_ratio = self.hparams.warmup_steps, self.hparams.min_lr_ratio

        def factor(step: int) -> float:
            return cosine_warmup_factor(step, warmup, total, min_ratio)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def format_identification_table(results: dict[str, dict[str, float]], ks: tuple[int, ...] = (1, 5)) -> str:
    """Plain-text table of IBE vs raw-signal baseline vs chance."""
    ibe, raw = results["ibe"], results.get("raw", {})
    rows = [(f"top-{k} identification", f"top{k}", f"chance_top{k}") for k in ks]
    rows += [("cosine same patient", "cos_positive", None), ("cosine other patients", "cos_negative", None),
             ("cosine gap", "cos_gap", None), ("silhouette (patients)", "silhouette", None),
             ("label probe AUROC (lower = more condition-free)", "probe_auroc", None)]
    fmt = lambda d, k: f"{d[k]:.4f}" if k is not None and k in d else "-"  # noqa: E731
    lines = [f"IBE patient identification ({int(ibe.get('n_queries', 0))} queries)",
             f"{'metric':<50}{'IBE':>10}{'raw':>10}{'chance':>10}"]
    lines += [f"{name:<50}{fmt(ibe, key):>10}{fmt(raw, key):>10}{fmt(ibe, chance):>10}" for name, key, chance in rows]
    return "\n".join(lines)


def load_ibe(path: str | Path, map_location: str | torch.device = "cpu", freeze: bool = True) -> IndividualBaseExtractor:
    """Rebuild the IBE of an :class:`IBEModule` checkpoint (loaded with ``weights_only=True``).

    Returns the network in eval mode; ``freeze`` also turns off its gradients (generator stage).
    """
    ckpt = load_weights_only(path, "IBE checkpoint", map_location)
    hparams = ckpt.get("hyper_parameters", {})
    if "state_dict" not in ckpt or "net_config" not in hparams:
        raise ValueError(f"{str(path)!r} is not an IBEModule checkpoint (needs state_dict and hyper_parameters.net_config)")
    net = _build_net(None, hparams["net_config"])
    restore(net, ckpt["state_dict"], "net.", path, "IBE", freeze)
    return net
