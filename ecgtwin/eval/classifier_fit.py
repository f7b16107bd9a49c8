"""Training glue of the downstream tests: fit an :class:`ECGClassifier` on arrays, fine-tune a copy, score it.

Plain PyTorch loops over in-memory arrays (no Lightning): the downstream
protocols train many small classifiers (one per arm, one fine-tune per test
patient) and need each to be cheap, seeded and independent of the trainer.

* :func:`fit_classifier` follows the reference classifier's recipe
  (:class:`~ecgtwin.training.classifier_module.ClassifierModule`: AdamW with no
  decay on norms/biases, linear warmup then cosine decay, BCE) and keeps the
  epoch with the best macro-AUROC on a real validation set (PTB-XL benchmark
  model selection, Strodthoff et al. 2021).
* :func:`fine_tune` adapts a copy of a trained classifier to a handful of
  records of one patient: BatchNorm statistics stay frozen (a batch of ten
  records of one person would overwrite the population's running means).
* :func:`binary_metrics`: accuracy, macro-F1 and macro-AUROC of multi-label predictions.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.eval.metrics import macro_auroc
from ecgtwin.training.schedules import cosine_warmup_factor

ARCHITECTURE_KEYS: tuple[str, ...] = ("widths", "blocks", "kernel", "head_dim", "dropout")


def param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices/kernels, none on norms and biases (1-D parameters)."""
    decay = [p for p in net.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def batched_outputs(net: nn.Module, signals: np.ndarray, method: str = "forward", batch_size: int = 64) -> np.ndarray:
    """``net.<method>`` (float64, (N, D)) of ``signals`` (N, 12, L) mV, in eval mode on the net's device, by batches."""
    net.eval()
    device = next(net.parameters()).device
    fn = getattr(net, method)
    out = []
    for start in range(0, len(signals), batch_size):
        x = torch.as_tensor(np.asarray(signals[start:start + batch_size]), dtype=torch.float32, device=device)  # (b, 12, L)
        out.append(fn(x).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, getattr(net, "num_labels", 0)))  # (N, D)


def predict_logits(net: nn.Module, signals: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits (N, V) float64 of ``signals`` (N, 12, L) mV (:func:`batched_outputs`)."""
    return batched_outputs(net, signals, "forward", batch_size)


def _check_xy(signals: np.ndarray, labels: np.ndarray, what: str, min_rows: int = 2) -> None:
    if signals.ndim != 3 or labels.ndim != 2 or len(signals) != len(labels):
        raise ValueError(f"{what}: need signals (N, 12, L) and labels (N, V) with the same N, "
                         f"got {signals.shape} and {labels.shape}")
    if len(signals) < min_rows:
        raise ValueError(f"{what}: need at least {min_rows} record(s), got {len(signals)}")


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of index batches, the last one dropped when it has a single row (BatchNorm needs 2)."""
    order = torch.randperm(n, generator=generator)
    return [idx for idx in order.split(batch_size) if len(idx) > 1]


def fit_classifier(
    train_signals: np.ndarray,
    train_labels: np.ndarray,
    val_signals: np.ndarray,
    val_labels: np.ndarray,
    architecture: Mapping[str, Any] | None = None,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    warmup_steps: int = 100,
    seed: int = 0,
    progress: bool = False,
    desc: str = "classifier",
) -> tuple[ECGClassifier, dict[str, Any]]:
    """Train an :class:`ECGClassifier` from scratch; keep the epoch with the best validation macro-AUROC.

    Args:
        train_signals, train_labels: (N, 12, L) mV and (N, V) multi-hot.
        val_signals, val_labels: the real validation records (model selection).
        architecture: :class:`ECGClassifier` keyword arguments (e.g. the reference classifier's
            hyper-parameters; only :data:`ARCHITECTURE_KEYS` are read).
    Returns:
        ``(net in eval mode, {"best_epoch", "val_macro_auroc", "val_curve", "n_train"})``.
    """
    _check_xy(train_signals, train_labels, "train")
    _check_xy(val_signals, val_labels, "val")
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"epochs must be >= 1 and batch_size >= 2, got {epochs}, {batch_size}")
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    arch = {k: v for k, v in (architecture or {}).items() if k in ARCHITECTURE_KEYS}
    net = ECGClassifier(train_labels.shape[1], **arch)
    optimizer = torch.optim.AdamW(param_groups(net, weight_decay), lr=lr)
    steps_per_epoch = max(1, len(train_signals) // batch_size)
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_warmup_factor(s, max(1, warmup_steps), total, 0.01))
    x_all = torch.as_tensor(np.asarray(train_signals), dtype=torch.float32)  # (N, 12, L)
    y_all = torch.as_tensor(np.asarray(train_labels), dtype=torch.float32)  # (N, V)
    generator = torch.Generator().manual_seed(seed)
    best: tuple[float, int, dict[str, torch.Tensor] | None] = (-math.inf, -1, None)
    curve = []
    for epoch in tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress):
        net.train()
        for idx in _batches(len(x_all), batch_size, generator):
            loss = F.binary_cross_entropy_with_logits(net(x_all[idx]), y_all[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        score = macro_auroc(val_labels, predict_logits(net, val_signals))
        curve.append(score)
        if math.isfinite(score) and score > best[0]:
            best = (score, epoch, copy.deepcopy(net.state_dict()))
    if best[2] is not None:
        net.load_state_dict(best[2])
    info = {"best_epoch": best[1], "val_macro_auroc": best[0] if best[2] is not None else math.nan,
            "val_curve": curve, "n_train": len(train_signals)}
    return net.eval(), info


def fine_tune(net: nn.Module, signals: np.ndarray, labels: np.ndarray, steps: int = 20, lr: float = 1e-4,
              batch_size: int = 32, seed: int = 0) -> nn.Module:
    """A fine-tuned COPY of ``net`` (the original is untouched): ``steps`` Adam steps of BCE on (signals, labels).

    BatchNorm layers stay in eval mode (frozen running statistics); dropout is active.
    ``signals`` (N, 12, L) mV, ``labels`` (N, V) multi-hot, N >= 1.
    """
    _check_xy(signals, labels, "fine_tune", min_rows=1)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    tuned = copy.deepcopy(net)
    if steps == 0:
        return tuned.eval()
    tuned.requires_grad_(True)  # loaded reference classifiers come frozen (load_classifier)
    device = next(tuned.parameters()).device
    x = torch.as_tensor(np.asarray(signals), dtype=torch.float32, device=device)  # (N, 12, L)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float32, device=device)  # (N, V)
    optimizer = torch.optim.Adam(tuned.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    tuned.train()
    for module in tuned.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()  # frozen running statistics
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=generator)[:batch_size].to(device)
        loss = F.binary_cross_entropy_with_logits(tuned(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tuned.eval()


def binary_metrics(labels: np.ndarray, logits: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Multi-label scores of ``logits`` (N, V) against ``labels`` (N, V) multi-hot.

    ``accuracy``: mean over labels of the per-label accuracy at ``sigmoid(logit) >= threshold``;
    ``exact_match``: share of records with every label right; ``macro_f1``: mean per-label F1 over the
    labels with at least one positive or predicted positive; ``macro_auroc``: :func:`macro_auroc`.
    """
    labels = np.asarray(labels, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    if labels.shape != logits.shape or labels.ndim != 2:
        raise ValueError(f"labels and logits must both be (N, V), got {labels.shape} and {logits.shape}")
    if len(labels) == 0:
        return {"accuracy": math.nan, "exact_match": math.nan, "macro_f1": math.nan, "macro_auroc": math.nan, "n": 0}
    predicted = (1.0 / (1.0 + np.exp(-logits))) >= threshold  # (N, V)
    truth = labels > 0.5  # (N, V)
    tp = (predicted & truth).sum(axis=0)  # (V,)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    defined = (tp + fp + fn) > 0
    f1 = 2 * tp[defined] / (2 * tp[defined] + fp[defined] + fn[defined])
    return {"accuracy": float((predicted == truth).mean()), "exact_match": float((predicted == truth).all(axis=1).mean()),
            "macro_f1": float(f1.mean()) if defined.any() else math.nan,
            "macro_auroc": macro_auroc(truth.astype(np.float64), logits), "n": int(len(labels))}


def paired_bootstrap(groups: np.ndarray, labels: np.ndarray, logits_a: np.ndarray, logits_b: np.ndarray,
                     metrics: Sequence[str] = ("accuracy", "macro_f1", "macro_auroc"), n_boot: int = 200,
                     seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """``{metric: (delta, low, high)}``: ``b - a`` with a 95% bootstrap CI resampling whole ``groups`` (patients).

    Rows of one group (e.g. a patient's later ECGs) are drawn together, so the interval accounts
    for the within-patient correlation; a and b are scored on the same draw (paired).
    """
    uniq = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in uniq]
    point_a, point_b = binary_metrics(labels, logits_a), binary_metrics(labels, logits_b)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in metrics}
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(uniq), size=len(uniq))])
        a, b = binary_metrics(labels[idx], logits_a[idx]), binary_metrics(labels[idx], logits_b[idx])
        for m in metrics:
            draws[m].append(b[m] - a[m])
    out = {}
    for m in metrics:
        finite = np.asarray(draws[m])[np.isfinite(draws[m])]
        low, high = np.quantile(finite, [0.025, 0.975]) if len(finite) else (math.nan, math.nan)
        out[m] = (point_b[m] - point_a[m], float(low), float(high))
    return out
