"""Downstream utility of twins (optional harness section): TSTR and TRTS with a tiny classifier.

Esteban et al. 2017 ("Real-valued (medical) time series generation with
recurrent conditional GANs"): train on synthetic, test on real (TSTR) and the
reverse (TRTS), next to train-real-test-real (TRTR). The test pairs are split
into two patient-disjoint halves: classifiers train on half A (real targets or
twins, both labelled with the target labels) and are scored by macro-AUROC on
half B. A small budget (few epochs, tiny network): a relative comparison, not
a benchmark number.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ecgtwin.eval.classifier import ECGClassifier
from ecgtwin.eval.harness_metrics import patient_halves
from ecgtwin.eval.metrics import macro_auroc

NAN = float("nan")


def train_tiny_classifier(signals: np.ndarray, labels: np.ndarray, epochs: int = 3, batch_size: int = 32,
                          lr: float = 3e-3, seed: int = 0) -> ECGClassifier:
    """A small :class:`ECGClassifier` trained with BCE (Adam) on ``signals`` (N, 12, L), ``labels`` (N, V)."""
    if len(signals) < 2:
        raise ValueError(f"need at least 2 training records, got {len(signals)}")
    torch.manual_seed(seed)
    net = ECGClassifier(labels.shape[1], widths=(16, 32), head_dim=32, dropout=0.1)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = torch.as_tensor(signals, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32)  # (N, 12, L), (N, V)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            loss = F.binary_cross_entropy_with_logits(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def _score(net: ECGClassifier, signals: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        logits = net(torch.as_tensor(signals, dtype=torch.float32)).numpy()  # (N, V)
    return macro_auroc(labels, logits)


def downstream_section(real: np.ndarray, synthetic: Mapping[str, np.ndarray], labels: np.ndarray,
                       patient_id: np.ndarray, epochs: int = 3, seed: int = 0) -> dict[str, dict[str, float]]:
    """``{"real": {"trtr"}, method: {"tstr", "trts"}}`` macro-AUROCs on patient-disjoint halves (NaN if too small)."""
    train, test = patient_halves(patient_id, seed)
    if train.sum() < 2 or test.sum() < 2:
        return {"real": {"trtr": NAN}, **{name: {"tstr": NAN, "trts": NAN} for name in synthetic}}
    on_real = train_tiny_classifier(real[train], labels[train], epochs, seed=seed)
    out = {"real": {"trtr": _score(on_real, real[test], labels[test])}}
    for name, x in synthetic.items():
        on_synthetic = train_tiny_classifier(x[train], labels[train], epochs, seed=seed)
        out[name] = {"tstr": _score(on_synthetic, real[test], labels[test]),
                     "trts": _score(on_real, x[test], labels[test])}
    return out
