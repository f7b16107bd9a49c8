"""Reference ECG classifier: a small 1D XResNet (the xresnet1d of the PTB-XL benchmark).

Strodthoff et al. 2021 (PTB-XL benchmark) found xresnet1d among the best
models; its design follows He et al. 2019 ("Bag of tricks", ResNet-D):

* stem: three ``Conv-BN-ReLU`` (the first with stride 2) and a stride-2 max-pool;
* residual stages of basic blocks ``Conv-BN-ReLU-Conv-BN`` (kernel 5), the
  last BN initialised to zero so every block starts as the identity; the
  shortcut down-samples by average pooling before a 1x1 conv (ResNet-D);
* head: adaptive concat-pool (average and max over time), then
  ``BN-Dropout-Linear-ReLU`` (the penultimate features) and
  ``BN-Dropout-Linear`` (the logits).

:meth:`ECGClassifier.features` (the penultimate layer) is the feature space of
FID / precision-recall / MMD between real and generated ECGs; call it in
``eval()`` mode.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecgtwin.constants import N_LEADS


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, relu: bool = True,
            zero_bn: bool = False) -> nn.Sequential:
    """``Conv1d`` (same padding, no bias) -> ``BatchNorm1d`` (weight 0 if ``zero_bn``) -> optional ``ReLU``."""
    bn = nn.BatchNorm1d(out_channels)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    layers: list[nn.Module] = [nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False), bn]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock1d(nn.Module):
    """Basic residual block ``relu(conv_bn(conv_bn(x)) + shortcut(x))`` (He et al. 2016; ResNet-D shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 5, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(in_channels, out_channels, kernel, stride=stride),
            conv_bn(out_channels, out_channels, kernel, relu=False, zero_bn=True),
        )
        shortcut: list[nn.Module] = []
        if stride > 1:
            shortcut.append(nn.AvgPool1d(stride, stride, ceil_mode=True))
        if in_channels != out_channels:
            shortcut.append(conv_bn(in_channels, out_channels, 1, relu=False))
        self.shortcut = nn.Sequential(*shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))  # (B, C_out, ceil(L / stride))


class AdaptiveConcatPool1d(nn.Module):
    """Concatenated global average and max pooling over time: ``(B, C, L)`` -> ``(B, 2C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)  # (B, 2C)


class ECGClassifier(nn.Module):
    """Multi-label 12-lead ECG classifier ``(B, in_leads, L)`` -> logits ``(B, num_labels)``.

    Args:
        num_labels: V, size of the label vocabulary (one logit per label).
        in_leads: input channels (12 leads in ``LEADS`` order, mV).
        widths: channels of the residual stages; the stem outputs ``widths[0]``.
        blocks: residual blocks per stage (an int for all stages); every stage but the first halves L.
        kernel: convolution kernel size (odd).
        head_dim: size of the penultimate feature layer (:meth:`features`).
        dropout: dropout before each head ``Linear``.

    ``label_names``: the names of the V outputs when known (set by ``load_classifier`` from the checkpoint).
    """

    def __init__(
        self,
        num_labels: int,
        in_leads: int = N_LEADS,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: int | Sequence[int] = 1,
        kernel: int = 5,
        head_dim: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        blocks = (int(blocks),) * len(widths) if isinstance(blocks, int) else tuple(int(b) for b in blocks)
        if num_labels < 1 or in_leads < 1 or head_dim < 1:
            raise ValueError(f"num_labels, in_leads and head_dim must be >= 1, got {num_labels}, {in_leads}, {head_dim}")
        if not widths or min(widths) < 1 or len(blocks) != len(widths) or min(blocks) < 1:
            raise ValueError(f"need one block count >= 1 per stage width >= 1, got widths={widths}, blocks={blocks}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd size, got {kernel}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.label_names: list[str] | None = None
        self.num_labels, self.in_leads, self.feature_dim = num_labels, in_leads, head_dim
        self.config = {"num_labels": num_labels, "in_leads": in_leads, "widths": list(widths), "blocks": list(blocks),
                       "kernel": kernel, "head_dim": head_dim, "dropout": dropout}
        """The constructor arguments (rebuild an untrained copy with ``ECGClassifier(**net.config)``)."""
        self.stem = nn.Sequential(
            conv_bn(in_leads, widths[0], kernel, stride=2),
            conv_bn(widths[0], widths[0], kernel),
            conv_bn(widths[0], widths[0], kernel),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        channels = widths[0]
        for stage, (width, n_blocks) in enumerate(zip(widths, blocks)):
            for block in range(n_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(ResBlock1d(channels, width, kernel, stride=stride))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = AdaptiveConcatPool1d()
        self.hidden = nn.Sequential(
            nn.BatchNorm1d(2 * channels), nn.Dropout(dropout), nn.Linear(2 * channels, head_dim), nn.ReLU(inplace=True),
        )
        self.out = nn.Sequential(nn.BatchNorm1d(head_dim), nn.Dropout(dropout), nn.Linear(head_dim, num_labels))

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.in_leads:
            raise ValueError(f"ECGClassifier expects (B, {self.in_leads}, L) signals, got shape {tuple(x.shape)}")
        if x.shape[2] < 8:
            raise ValueError(f"ECGClassifier needs at least 8 samples per lead, got L={x.shape[2]}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, 12, L)`` -> ``(B, head_dim)`` (non-negative, after the head ReLU)."""
        self._check(x)
        h = self.stages(self.stem(x))  # (B, C, ~L / 2^(1 + len(widths)))
        return self.hidden(self.pool(h))  # (B, head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 12, L)`` -> ``(B, num_labels)`` (apply a sigmoid for per-label probabilities)."""
        return self.out(self.features(x))  # (B, V)
