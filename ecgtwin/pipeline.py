"""The generation pipeline: condition + base vector -> guided denoiser -> sampler -> lead laws -> mV.

Pure functions of a network, a schedule and a noise source; no training code.
:class:`~ecgtwin.api.TwinModel` (and so ``generate-ecg`` and the demo) and the
training module's validation samples all generate through :func:`sample_twins`.

A network with 8 input leads (:data:`~ecgtwin.constants.INDEPENDENT_LEADS`)
generates I, II and V1-V6; the other four limb leads are derived by
:func:`~ecgtwin.leads.derive_leads`, so every twin obeys Einthoven's and
Goldberger's laws exactly, whatever the sampler. A 12-lead network (bundles of
format 1) returns its 12 leads as they are.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ecgtwin.constants import N_INDEPENDENT_LEADS, N_LEADS
from ecgtwin.diffusion.guidance import GuidedDenoiser
from ecgtwin.diffusion.samplers import SAMPLERS, NoiseSource
from ecgtwin.diffusion.schedule import VPSchedule
from ecgtwin.leads import derive_leads

SAMPLER_DEFAULT_STEPS: dict[str, int] = {"ddpm": 1000, "ddim": 50, "dpmpp_2m": 25, "dpmpp_2m_sde": 50}


@dataclass(frozen=True)
class SamplingOptions:
    """How to sample: solver, number of network calls and the two guidance scales."""

    sampler: str = "dpmpp_2m"
    steps: int | None = None
    """``None``: the sampler's default (:data:`SAMPLER_DEFAULT_STEPS`)."""
    guidance_condition: float = 1.0
    guidance_person: float = 1.0
    eta: float = 0.0
    """DDIM only: 0 deterministic, 1 ancestral."""
    guidance_interval: tuple[float, float] | None = None
    """Noise levels ``(sigma_lo, sigma_hi)`` (VP sigma in [0, 1]) where guidance is applied; elsewhere the plain
    conditional model (one network evaluation per step instead of three). ``None``: every step."""

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}")
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance_interval is not None:
            lo, hi = (float(v) for v in self.guidance_interval)
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"guidance_interval must be 0 <= sigma_lo < sigma_hi <= 1, got {self.guidance_interval}")

    def guidance_active(self, schedule: VPSchedule) -> Callable[[int], bool] | None:
        """Whether guidance applies at timestep ``t`` (None: everywhere)."""
        if self.guidance_interval is None:
            return None
        lo, hi = (float(v) for v in self.guidance_interval)
        sigmas = schedule.sigmas
        return lambda t: lo <= float(sigmas[t]) <= hi

    @property
    def num_steps(self) -> int:
        return SAMPLER_DEFAULT_STEPS[self.sampler] if self.steps is None else int(self.steps)


DEFAULT_SAMPLING = SamplingOptions()
"""The one place the default sampler, steps and guidance scales are set (``generate-ecg``, the API, the demo,
the notebook and ``ecgtwin evaluate`` all read it); chosen on validation fold 7, see docs/GENERATOR.md."""


def resolve_sampling(sampler: str | None = None, steps: int | None = None, guidance_condition: float | None = None,
                     guidance_person: float | None = None, defaults: SamplingOptions | None = None) -> SamplingOptions:
    """``defaults`` (None: :data:`DEFAULT_SAMPLING`, read at call time) with the settings that are given (not None) replaced.

    The default step count belongs to the default sampler: another ``sampler`` without ``steps`` gets its own
    default (:data:`SAMPLER_DEFAULT_STEPS`).
    """
    defaults = DEFAULT_SAMPLING if defaults is None else defaults
    changes: dict[str, Any] = {}
    if sampler is not None and sampler != defaults.sampler:
        changes.update(sampler=sampler, steps=None)
    for name, value in (("steps", steps), ("guidance_condition", guidance_condition), ("guidance_person", guidance_person)):
        if value is not None:
            changes[name] = value
    return replace(defaults, **changes)


def generated_leads(net: nn.Module) -> int:
    """How many leads a network generates: 8 (independent leads, limb laws applied after) or 12."""
    leads = int(getattr(net, "in_leads", N_LEADS))
    if leads not in (N_INDEPENDENT_LEADS, N_LEADS):
        raise ValueError(f"a twin network must generate {N_INDEPENDENT_LEADS} or {N_LEADS} leads, not {leads}")
    return leads


def to_twelve_leads(x: torch.Tensor) -> torch.Tensor:
    """(B, 8, L) independent leads -> (B, 12, L); (B, 12, L) unchanged."""
    return derive_leads(x) if x.shape[1] == N_INDEPENDENT_LEADS else x


@torch.no_grad()
def sample_twins(
    net: nn.Module,
    schedule: VPSchedule,
    signal_scale: float,
    condition: Mapping[str, torch.Tensor],
    seeds: Sequence[int],
    base_vector: torch.Tensor | None = None,
    options: SamplingOptions = SamplingOptions(),
    length: int = 1000,
    progress: bool = False,
) -> torch.Tensor:
    """Twins (B, 12, L) in mV, one per seed, on the network's device.

    ``condition``: target ``labels`` (B, V), ``demographics`` (B, 3), optional
    ``demographics_mask`` (B, 3). ``base_vector`` (B or 1, base_dim) is the
    person (``None``: person-unconditional). Sample ``i`` depends on ``seeds[i]`` alone.
    """
    device = next(net.parameters()).device
    b = len(seeds)
    labels = condition["labels"].to(device).float()
    demographics = condition["demographics"].to(device).float()
    if labels.shape[0] != b or demographics.shape[0] != b:
        raise ValueError(f"{b} seeds but the condition has {labels.shape[0]} label rows / {demographics.shape[0]} demographic rows")
    mask = condition.get("demographics_mask")
    if base_vector is not None:
        if not getattr(net, "use_base_vector", True):
            raise ValueError("this is a population model (use_base_vector=False); it takes no reference/base_vector")
        base_vector = base_vector.to(device).float()
        base_vector = base_vector.expand(b, -1) if base_vector.shape[0] == 1 else base_vector  # (B, base_dim)
    denoiser = GuidedDenoiser(net, labels, demographics, None if mask is None else mask.to(device), base_vector,
                              options.guidance_person, options.guidance_condition, options.guidance_active(schedule))
    shape = (b, generated_leads(net), int(length))
    kwargs: dict[str, Any] = {"eta": options.eta} if options.sampler == "ddim" else {}
    result = SAMPLERS[options.sampler](denoiser, schedule, shape, NoiseSource(seeds, device), steps=options.num_steps,
                                      progress=progress, **kwargs)
    return to_twelve_leads(result.x0.float()) * signal_scale  # (B, 12, L) mV
