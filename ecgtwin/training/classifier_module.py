"""LightningModule of the reference classifier: multi-label BCE training of :class:`ECGClassifier`.

Batches are record batches (docs/DESIGN.md; ``ECGDataModule(pairs=False)``):
only ``batch["signal"]`` (B, 12, L) and ``batch["labels"]`` (B, V) are used.

Synthetic data (TSTR, real + synthetic): ``extra_train`` is any Dataset whose
items are dicts with ``signal`` (12, L) and ``labels`` (V,) (e.g.
:class:`ArrayRecordDataset` over generated twins). Each training step draws
one extra batch and either concatenates it to the real batch
(``extra_mode="mix"``) or trains on it alone (``"only"``, train-on-synthetic;
an epoch is still one pass of the real loader). The module does not know
where the extra samples came from. For a pure TSTR run one can equally pass
``trainer.fit(module, train_dataloaders=synthetic_loader, val_dataloaders=real_val_loader)``.

Model selection: ``val/macro_auroc`` (PTB-XL benchmark, Strodthoff et al.
2021); the test prints macro AUROC with a bootstrap 95% CI. Checkpoints hold
only primitive hyper-parameters and tensors (``torch.load(weights_only=True)``);
:func:`load_classifier` rebuilds the network.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.eval.classifier_fit import param_groups
from ecgtwin.eval.metrics import bootstrap_ci, macro_auroc
from ecgtwin.training.checkpoints import load_weights_only, restore
from ecgtwin.training.schedules import cosine_warmup_factor

Batch = Mapping[str, Any]
NET_KEYS: tuple[str, ...] = ("num_labels", "widths", "blocks", "kernel", "head_dim", "dropout")
"""Hyper-parameters of :class:`ClassifierModule` that are :class:`ECGClassifier` arguments."""


class ArrayRecordDataset(Dataset):
    """Record dicts ``{"signal": (12, L), "labels": (V,)}`` over in-memory arrays (e.g. generated twins).

    ``signals`` (N, 12, L) in mV, ``labels`` (N, V) multi-hot; numpy arrays or tensors.
    """

    def __init__(self, signals: Any, labels: Any) -> None:
        self.signals = torch.as_tensor(signals, dtype=torch.float32)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        if self.signals.ndim != 3 or self.labels.ndim != 2 or len(self.signals) != len(self.labels):
            raise ValueError(f"ArrayRecordDataset needs signals (N, 12, L) and labels (N, V) with the same N, "
                             f"got {tuple(self.signals.shape)} and {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.signals)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"signal": self.signals[i], "labels": self.labels[i]}


class ClassifierModule(L.LightningModule):
    """Train/evaluate the reference ECG classifier.

    Args:
        num_labels: V, label-vocabulary size (linked from the data module by the CLI).
        widths, blocks, kernel, head_dim, dropout: :class:`ECGClassifier` architecture.
        lr, weight_decay, warmup_steps: AdamW with linear warmup then cosine decay over the
            trainer's estimated steps (to 1% of ``lr``).
        extra_train: optional Dataset of extra (synthetic) records; not saved in the checkpoint.
        extra_mode: ``"mix"`` (real + extra in each step) or ``"only"`` (extra only).
        extra_batch_size: extra records per step (default: the real batch size).
        test_n_boot: bootstrap resamples of the test macro-AUROC CI.
    """

    def __init__(
        self,
        num_labels: int,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: int | Sequence[int] = 1,
        kernel: int = 5,
        head_dim: int = 128,
        dropout: float = 0.25,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        warmup_steps: int = 100,
        extra_train: Dataset | None = None,
        extra_mode: Literal["mix", "only"] = "mix",
        extra_batch_size: int | None = None,
        test_n_boot: int = 1000,
    ) -> None:
        super().__init__()
        if extra_mode not in ("mix", "only"):
            raise ValueError(f"extra_mode must be 'mix' or 'only', got {extra_mode!r}")
        if extra_mode == "only" and extra_train is None:
            raise ValueError("extra_mode='only' (train on synthetic) needs extra_train")
        if extra_batch_size is not None and extra_batch_size < 1:
            raise ValueError(f"extra_batch_size must be >= 1, got {extra_batch_size}")
        if extra_train is not None and len(extra_train) == 0:  # type: ignore[arg-type]
            raise ValueError("extra_train is empty")
        widths = [int(w) for w in widths]  # plain lists/ints keep the checkpoint weights_only-loadable
        blocks = int(blocks) if isinstance(blocks, int) else [int(b) for b in blocks]
        self.save_hyperparameters(ignore=["extra_train"])
        self.net = ECGClassifier(**{key: self.hparams[key] for key in NET_KEYS})
        self.extra_train = extra_train
        self._extra_iter: Iterator[Batch] | None = None
        self._outputs: dict[str, list[torch.Tensor]] = {}
        self.test_results: dict[str, float] = {}

    # ---- data -------------------------------------------------------------------------------
    def _signals_labels(self, batch: Batch, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        if "signal" not in batch or "labels" not in batch:
            raise KeyError(f"ClassifierModule needs record batches with 'signal' and 'labels' ({where}); got keys "
                           f"{sorted(batch)} (pair batches: use ECGDataModule(pairs=False))")
        x, y = batch["signal"].float(), batch["labels"].float()
        if y.ndim != 2 or y.shape[1] != self.hparams.num_labels or x.shape[0] != y.shape[0]:
            raise ValueError(f"{where}: labels must be (B, {self.hparams.num_labels}) matching signal (B, 12, L), "
                             f"got {tuple(y.shape)} and {tuple(x.shape)}")
        return x.to(self.device), y.to(self.device)

    def _next_extra(self, real_batch_size: int) -> Batch:
        """Next batch of ``extra_train`` (reshuffled and restarted when exhausted)."""
        assert self.extra_train is not None
        for _ in range(2):
            if self._extra_iter is None:
                size = self.hparams.extra_batch_size or real_batch_size
                self._extra_iter = iter(DataLoader(self.extra_train, batch_size=size, shuffle=True))
            try:
                return next(self._extra_iter)
            except StopIteration:
                self._extra_iter = None
        raise RuntimeError("extra_train yielded no batch")

    def _training_batch(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._signals_labels(batch, "training batch")
        if self.extra_train is None:
            return x, y
        x_extra, y_extra = self._signals_labels(self._next_extra(len(x)), "extra_train batch")
        if self.hparams.extra_mode == "only":
            return x_extra, y_extra
        if x_extra.shape[1:] != x.shape[1:]:
            raise ValueError(f"extra_train signals {tuple(x_extra.shape[1:])} differ from real ones {tuple(x.shape[1:])}")
        return torch.cat([x, x_extra]), torch.cat([y, y_extra])  # (B + B_extra, 12, L), (B + B_extra, V)

    # ---- steps ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of signals (B, 12, L)."""
        return self.net(x)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = self._training_batch(batch)
        loss = F.binary_cross_entropy_with_logits(self.net(x), y)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(x))
        return loss

    def _collect(self, batch: Batch, stage: str) -> None:
        x, y = self._signals_labels(batch, f"{stage} batch")
        logits = self.net(x)  # (B, V)
        self.log(f"{stage}/loss", F.binary_cross_entropy_with_logits(logits, y), prog_bar=True, batch_size=len(x))
        self._outputs.setdefault("logits", []).append(logits.detach().float().cpu())
        self._outputs.setdefault("labels", []).append(y.detach().cpu())

    def _gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        logits, labels = torch.cat(self._outputs["logits"]), torch.cat(self._outputs["labels"])  # (N, V), (N, V)
        self._outputs = {}
        return logits, labels

    def on_validation_epoch_start(self) -> None:
        self._outputs = {}

    def on_test_epoch_start(self) -> None:
        self._outputs = {}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._collect(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._collect(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self._outputs:
            logits, labels = self._gathered()
            self.log("val/macro_auroc", macro_auroc(labels.numpy(), logits.numpy()), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        if not self._outputs:
            return
        logits, labels = self._gathered()
        point, low, high = bootstrap_ci(macro_auroc, labels.numpy(), logits.numpy(), n_boot=self.hparams.test_n_boot)
        self.test_results = {"macro_auroc": point, "macro_auroc_low": low, "macro_auroc_high": high,
                             "n_records": float(len(labels))}
        self.log_dict({f"test/{k}": v for k, v in self.test_results.items()})
        if self.trainer.is_global_zero:
            print(f"test macro AUROC {point:.4f} (95% bootstrap CI {low:.4f}-{high:.4f}, "
                  f"{self.hparams.test_n_boot} resamples, {len(labels)} records)")

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per-label probabilities (B, V) and penultimate features (B, head_dim)."""
        x = batch["signal"].float().to(self.device) if isinstance(batch, Mapping) else batch.float().to(self.device)
        features = self.net.features(x)  # (B, F)
        return {"probs": torch.sigmoid(self.net.out(features)), "features": features}

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (no decay on norms and biases), warmup + cosine decay per step."""
        optimizer = torch.optim.AdamW(param_groups(self.net, self.hparams.weight_decay), lr=self.hparams.lr)
        total = None
        if self._trainer is not None:
            estimated = self.trainer.estimated_stepping_batches
            total = int(estimated) if math.isfinite(estimated) else None
        warmup = max(1, self.hparams.warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_warmup_factor(step, warmup, total, 0.01))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> ECGClassifier:
    """The :class:`ECGClassifier` of a :class:`ClassifierModule` checkpoint, in eval mode without gradients.

    Loaded with ``torch.load(weights_only=True)``. ``net.label_names`` holds the label names it was trained on (its
    data module's vocabulary; ``None`` for a checkpoint without them): the harness selects the generator's label
    columns by these names (:func:`ecgtwin.eval.harness_data.classifier_columns`).
    """
    ckpt = load_weights_only(path, "classifier checkpoint", map_location)
    hparams = ckpt.get("hyper_parameters", {})
    if "state_dict" not in ckpt or any(key not in hparams for key in NET_KEYS):
        raise ValueError(f"{str(path)!r} is not a ClassifierModule checkpoint (needs state_dict and hyper_parameters {NET_KEYS})")
    net = ECGClassifier(**{key: hparams[key] for key in NET_KEYS})
    restore(net, ckpt["state_dict"], "net.", path, "classifier")
    net.label_names = checkpoint_label_names(ckpt)
    return net


def checkpoint_label_names(ckpt: dict) -> list[str] | None:
    """The label names a loaded ClassifierModule checkpoint was trained on (its data module's vocabulary)."""
    names = (ckpt.get("ECGDataModule") or {}).get("vocabulary", {}).get("names")
    return [str(n) for n in names] if names else None
