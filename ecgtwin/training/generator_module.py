"""LightningModule of the ECGTwin generator: AdaX U-Net + VP diffusion + frozen IBE + EMA.

Training on pair batches (docs/DESIGN.md): the base vector comes from the
*reference* ECG through the frozen Individual Base Extractor (with the
reference's own condition); the diffusion target is the *target* ECG with the
*target*'s condition tokens. Single-record examples (``personal`` False,
:class:`~ecgtwin.data.datasets.TwinExamples`) train the person-dropped
branches; the condition is dropped with ``p_cond`` and the base vector of
personal examples with ``p_base`` (:func:`~ecgtwin.models.conditioning.training_dropout`),
so that two-scale classifier-free guidance works at sampling time. With
``independent_leads`` the network models the 8 independent leads and the
other four follow from the limb-lead laws (:mod:`ecgtwin.leads`). Signals are divided by ``signal_scale`` (mV)
before diffusion. The EMA copy of the network is used for validation and
sampling and is stored in every checkpoint; checkpoints load with
``torch.load(weights_only=True)`` (:func:`load_generator`).

Defaults are a CPU config: ``channels=32, channel_mults=(1, 2, 4, 4),
blocks_per_level=2`` is a 3.7 M-parameter U-Net with cross-attention at 250
and 125 tokens; one training step (IBE forward, U-Net forward + backward,
AdamW, EMA) on a batch of 32 x 12 x 1000 takes about 1.0-1.1 s on 2 CPU
cores. ``signal_scale=0.5`` mV maps band-passed PTB-XL (element std about
0.22 mV) to a std of about 0.45.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from ecgtwin.constants import DEFAULT_LENGTH, DEMOGRAPHICS, N_INDEPENDENT_LEADS, N_LEADS
from ecgtwin.diffusion.ema import EMA
from ecgtwin.diffusion.schedule import VPSchedule, diffusion_loss
from ecgtwin.leads import independent_leads as select_independent_leads
from ecgtwin.models.conditioning import ConditionTokenizer, training_dropout
from ecgtwin.models.unet import UNet1D
from ecgtwin.pipeline import SamplingOptions, sample_twins
from ecgtwin.training.checkpoints import load_weights_only

CHECKPOINT_KEY = "ecgtwin_generator"
Batch = Mapping[str, Any]


def _ibe_num_labels(ibe: nn.Module) -> int | None:
    """The IBE's label-vocabulary size (``num_labels`` attribute or its ConditionTokenizer)."""
    n = getattr(ibe, "num_labels", None)
    if isinstance(n, int):
        return n
    sizes = [m.num_labels for m in ibe.modules() if isinstance(m, ConditionTokenizer)]
    return sizes[0] if sizes else None


@torch.no_grad()
def _probe_base_dim(ibe: nn.Module, num_labels: int, length: int) -> int:
    """Run the IBE once on a dummy record to read its base-vector size."""
    out = ibe(torch.zeros(1, N_LEADS, length), torch.zeros(1, num_labels), torch.zeros(1, len(DEMOGRAPHICS)),
              torch.zeros(1, len(DEMOGRAPHICS), dtype=torch.bool))
    if out.ndim != 2 or out.shape[0] != 1:
        raise ValueError(f"the IBE must return base vectors (B, base_dim), got shape {tuple(out.shape)}")
    return int(out.shape[1])


def _load_frozen_ibe(ibe: nn.Module | None, ibe_checkpoint: str | None) -> nn.Module:
    if ibe is None:
        if ibe_checkpoint is None:
            raise ValueError("use_base_vector=True needs ibe_checkpoint (or an ibe module); "
                             "use use_base_vector=False for a population model")
        path = Path(ibe_checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"IBE checkpoint not found: {str(path)!r} (GeneratorModule ibe_checkpoint)")
        from ecgtwin.training.ibe_module import load_ibe

        ibe = load_ibe(str(path))
    ibe.eval()
    ibe.requires_grad_(False)
    return ibe


def _warm_start_bundle(init_from: str | None) -> dict[str, Any] | None:
    """The bundle (or generator checkpoint, converted) whose weights start a run, or None."""
    if init_from is None:
        return None
    path = Path(init_from).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"init_from: no bundle or generator checkpoint at {str(path)!r}")
    from ecgtwin.bundle import load_bundle

    return load_bundle(path)


def _bundle_ibe(bundle: Mapping[str, Any], path: str | None) -> nn.Module:
    """The frozen IBE stored in a bundle (a warm start needs no separate IBE checkpoint)."""
    if bundle.get("ibe_config") is None:
        raise ValueError(f"init_from {path!r} is a population bundle (no IBE): pass ibe_checkpoint")
    from ecgtwin.models.ibe import IndividualBaseExtractor

    ibe = IndividualBaseExtractor(**bundle["ibe_config"])
    ibe.load_state_dict(bundle["ibe_state"])
    return ibe


def split_pair(batch: Batch) -> tuple[Batch, Batch]:
    """``(reference, target)`` of a pair batch; a single-record batch is its own reference."""
    if "reference" in batch and "target" in batch:
        return batch["reference"], batch["target"]
    if "signal" in batch:
        return batch, batch
    raise KeyError(f"expected a pair batch {{'reference', 'target'}} or a record batch with 'signal'; got keys {sorted(batch)}")


class GeneratorModule(L.LightningModule):
    """Train and sample the ECGTwin generator (``net`` is built from the hyper-parameters unless injected)."""

    def __init__(
        self,
        num_labels: int,
        ibe_checkpoint: str | None = None,
        use_base_vector: bool = True,
        mode: str = "adax",
        channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 4, 4),
        blocks_per_level: int = 2,
        max_attention_tokens: int = 250,
        signal_length: int = DEFAULT_LENGTH,
        base_dim: int | None = None,
        cond_dim: int = 128,
        heads: int = 4,
        dropout: float = 0.0,
        rotary_attention: bool = False,
        signal_scale: float = 0.5,
        num_timesteps: int = 1000,
        p_cond: float = 0.1,
        p_base: float = 0.1,
        min_snr_gamma: float | None = None,
        min_snr_shift: float = 0.0,
        min_snr_shift_from_step: int = 0,
        independent_leads: bool = False,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 500,
        ema_decay: float = 0.999,
        init_from: str | None = None,
        net: UNet1D | None = None,
        ibe: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "ibe"])
        if signal_scale <= 0:
            raise ValueError(f"signal_scale must be > 0 mV, got {signal_scale}")
        for name, p in (("p_cond", p_cond), ("p_base", p_base)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        warm = _warm_start_bundle(init_from)
        if warm is not None and use_base_vector and ibe is None and ibe_checkpoint is None:
            ibe = _bundle_ibe(warm, init_from)
        self.ibe = _load_frozen_ibe(ibe, ibe_checkpoint) if use_base_vector else None
        if self.ibe is not None:
            ibe_labels = _ibe_num_labels(self.ibe)
            if ibe_labels is not None and ibe_labels != num_labels:
                raise ValueError(f"label vocabulary mismatch: the IBE was trained with {ibe_labels} labels, "
                                 f"the generator has num_labels={num_labels}")
            ibe_dim = _probe_base_dim(self.ibe, num_labels, signal_length)
            if base_dim is not None and base_dim != ibe_dim:
                raise ValueError(f"base_dim={base_dim} but the IBE returns base vectors of size {ibe_dim}")
            base_dim = ibe_dim
        if net is None:
            leads = N_INDEPENDENT_LEADS if independent_leads else N_LEADS
            net = UNet1D(num_labels, leads, channels, channel_mults, blocks_per_level, None, max_attention_tokens,
                         signal_length, base_dim or 256, cond_dim, heads, mode, use_base_vector, dropout,
                         rotary_attention)
        elif (net.num_labels != num_labels or net.use_base_vector != use_base_vector
              or net.in_leads != (N_INDEPENDENT_LEADS if independent_leads else N_LEADS)):
            raise ValueError(f"injected net has num_labels={net.num_labels}, use_base_vector={net.use_base_vector}, "
                             f"in_leads={net.in_leads}; the module has num_labels={num_labels}, "
                             f"use_base_vector={use_base_vector}, independent_leads={independent_leads}")
        if base_dim is not None and use_base_vector and net.base_dim != base_dim:
            raise ValueError(f"net base_dim={net.base_dim} does not match the IBE's base vectors ({base_dim})")
        if warm is not None:
            try:
                net.load_state_dict(warm["net_state"])
            except RuntimeError as err:
                raise ValueError(f"init_from {init_from!r} does not fit this generator's architecture: {err}") from None
        self.net = net
        self.ema = EMA(net, decay=ema_decay)
        self.schedule = VPSchedule(num_timesteps)

    # ----------------------------------------------------------------- helpers
    def train(self, mode: bool = True) -> GeneratorModule:
        """The IBE stays frozen in eval mode."""
        super().train(mode)
        if self.ibe is not None:
            self.ibe.eval()
        return self

    @torch.no_grad()
    def base_vectors(self, reference: Batch, drop: torch.Tensor | None = None) -> torch.Tensor | None:
        """Base vectors (B, base_dim) of reference records (mV signals), or None for a population model."""
        if self.ibe is None:
            return None
        return self.ibe(reference["signal"], reference["labels"], reference["demographics"],
                        reference.get("demographics_mask"), drop=drop)

    def _loss(self, batch: Batch, net: nn.Module, training: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        reference, target = split_pair(batch)
        signal = target["signal"]  # (B, 12, L) mV
        if self.hparams.independent_leads:
            signal = select_independent_leads(signal)  # (B, 8, L)
        x0 = signal / self.hparams.signal_scale  # in units of signal_scale
        b = x0.shape[0]
        base = self.base_vectors(reference)
        personal = batch.get("personal")
        if personal is None:
            personal = torch.ones(b, dtype=torch.bool, device=self.device)  # pair batches: every example personal
        drop_c = None
        drop_b = ~personal.to(self.device, torch.bool)
        if training:
            drop_b, drop_c = training_dropout(personal.to(self.device), self.hparams.p_cond, self.hparams.p_base)
        t = self.schedule.sample_timesteps(b, self.device, generator)
        noise = torch.randn(x0.shape, generator=generator).to(x0)

        def net_fn(x_t: torch.Tensor, t_: torch.Tensor) -> torch.Tensor:
            return net(x_t, t_, base, target["labels"], target["demographics"], target.get("demographics_mask"),
                       drop_condition=drop_c, drop_base=drop_b if base is not None else None)

        return diffusion_loss(net_fn, self.schedule, x0, t, noise, self.hparams.min_snr_gamma, self.min_snr_shift)

    @property
    def min_snr_shift(self) -> float:
        """The Min-SNR shift of the current step: ``min_snr_shift`` from ``min_snr_shift_from_step`` on, else 0
        (:func:`~ecgtwin.diffusion.schedule.diffusion_loss`)."""
        if self.global_step >= int(self.hparams.min_snr_shift_from_step):
            return float(self.hparams.min_snr_shift)
        return 0.0

    # ---------------------------------------------------------------- lightning
    def forward(self, x: torch.Tensor, t: torch.Tensor, **condition: Any) -> torch.Tensor:
        return self.net(x, t, **condition)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch, self.net, training=True)
        self.log("train/loss", loss, prog_bar=True, batch_size=split_pair(batch)[1]["signal"].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        if (batch_idx + 1) % max(1, self.trainer.accumulate_grad_batches) == 0:
            self.ema.update(self.net)

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(batch_idx)  # same t and noise every epoch
        loss = self._loss(batch, self.ema.module, training=False, generator=generator)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=split_pair(batch)[1]["signal"].shape[0])
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        warmup = max(1, self.hparams.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        ibe_config = getattr(self.ibe, "config", None)
        checkpoint[CHECKPOINT_KEY] = {"net_config": dict(self.net.config), "format": 1,
                                      "ibe_config": None if ibe_config is None else dict(ibe_config)}

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(
        self,
        condition: Batch,
        seeds: Sequence[int],
        reference: Batch | None = None,
        base_vector: torch.Tensor | None = None,
        sampler: str = "dpmpp_2m",
        steps: int = 25,
        guidance_condition: float = 1.0,
        guidance_person: float = 1.0,
        length: int | None = None,
        eta: float = 0.0,
        use_ema: bool = True,
        progress: bool = False,
    ) -> torch.Tensor:
        """Generate twins (B, 12, L) in mV, one per seed.

        ``condition``: target ``labels`` (B, V), ``demographics`` (B, 3),
        optional ``demographics_mask``. The person comes from ``reference``
        (a record batch, run through the IBE; 1 row is broadcast to B) or a
        precomputed ``base_vector``; with neither the person is unconditional.
        ``eta`` applies to ``sampler="ddim"`` only.
        """
        if reference is not None and base_vector is None:
            reference = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in reference.items()}
            base_vector = self.base_vectors(reference)
            length = length or int(reference["signal"].shape[-1])
        if base_vector is not None and self.ibe is None and not self.net.use_base_vector:
            raise ValueError("this is a population model (use_base_vector=False); it takes no reference/base_vector")
        options = SamplingOptions(sampler, steps, guidance_condition, guidance_person, eta)
        net = self.ema.module if use_ema else self.net
        return sample_twins(net, self.schedule, self.hparams.signal_scale, condition, seeds, base_vector, options,
                            length or self.hparams.signal_length, progress)  # (B, 12, L) mV


def load_generator(path: str | Path, map_location: str | torch.device = "cpu", ibe_checkpoint: str | None = None,
                   ibe: nn.Module | None = None) -> GeneratorModule:
    """Rebuild a :class:`GeneratorModule` (eval mode) from a checkpoint with ``torch.load(weights_only=True)``.

    The IBE architecture comes from ``ibe`` or ``ibe_checkpoint`` (default: the
    path stored at training time); its weights are then restored from the
    generator checkpoint, so twins use exactly the IBE the generator saw.
    """
    path = Path(path).expanduser()
    ckpt = load_weights_only(path, "generator checkpoint", map_location)
    if CHECKPOINT_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{str(path)!r} is not an ecgtwin generator checkpoint (no {CHECKPOINT_KEY!r} entry)")
    hparams = dict(ckpt.get("hyper_parameters", {}))
    for key in [k for k in hparams if k in ("net", "ibe", "init_from") or k.startswith("_")]:
        hparams.pop(key)  # injected modules, the warm start (weights come from the state dict); LightningCLI entries
    if ibe_checkpoint is not None:
        hparams["ibe_checkpoint"] = ibe_checkpoint
    elif ibe is None and ckpt[CHECKPOINT_KEY].get("ibe_config") is not None:
        from ecgtwin.models.ibe import IndividualBaseExtractor

        ibe = IndividualBaseExtractor(**ckpt[CHECKPOINT_KEY]["ibe_config"])  # weights come from the state dict below
    net = UNet1D(**ckpt[CHECKPOINT_KEY]["net_config"])
    try:
        module = GeneratorModule(**hparams, net=net, ibe=ibe)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; the generator {str(path)!r} needs its IBE architecture: "
                                "pass ibe_checkpoint= (or ibe=) to load_generator") from err
    module.load_state_dict(ckpt["state_dict"])
    return module.eval()
