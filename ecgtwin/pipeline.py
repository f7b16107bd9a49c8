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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ecgtwin.constants import LEADS, N_INDEPENDENT_LEADS, N_LEADS, TIMESTEP_SPACINGS
from ecgtwin.diffusion.guidance import GuidedDenoiser
from ecgtwin.diffusion.inpainting import MeasurementDenoiser
from ecgtwin.diffusion.samplers import SAMPLERS, NoiseSource, Start
from ecgtwin.diffusion.schedule import VPSchedule
from ecgtwin.leads import derive_leads, independent_leads, lead_law_matrix

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

    resample: int = 1
    """RePaint resampling (``ddpm``/``ddim`` only): each step taken this many times; for lead completion."""

    reconstruction: float = 0.0
    """Lead completion: reconstruction-guidance weight (Ho et al. 2022; 0 = projection only). Costs a backward
    pass through the network per call."""

    spacing: str = "quadratic"
    """The sampler's timestep grid (:data:`~ecgtwin.constants.TIMESTEP_SPACINGS`): ``quadratic`` puts
    more steps at low noise, ``trailing`` (uniform in t) more at high noise, where beat times are decided."""

    def __post_init__(self) -> None:
        if int(self.resample) < 1 or (int(self.resample) > 1 and self.sampler not in ("ddpm", "ddim")):
            raise ValueError(f"resample must be >= 1, and > 1 only with the ddpm or ddim sampler "
                             f"(got {self.resample} with {self.sampler})")
        if self.spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"spacing must be one of {sorted(TIMESTEP_SPACINGS)}, got {self.spacing!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}")
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not float(self.reconstruction) >= 0.0:
            raise ValueError(f"reconstruction must be >= 0, got {self.reconstruction}")
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


DEFAULT_SAMPLING = SamplingOptions("dpmpp_2m_sde", 50, 3.0, 1.0, spacing="trailing")
"""The one place the default sampler, steps and guidance scales are set (``generate-ecg``, the API, the demo,
the notebook and ``ecgtwin evaluate`` all read it): SDE-DPM-Solver++(2M), 50 steps on the uniform timestep grid,
condition guidance 3, person guidance 1. Chosen for the v2 bundle on validation fold 7 (120 twins): the only
setting measured whose twins a discriminator tells from real ECGs with AUROC <= 0.75 (0.74), amplitude ratio
0.99, 1.5 s per twin on 2 cores; docs/GENERATOR.md, "Sampler choice for the v2 bundle". The fast deterministic
path: ``SamplingOptions("dpmpp_2m", 25)``."""


COMPLETION_SAMPLING = SamplingOptions("dpmpp_2m_sde", 50, 1.0, 1.0, reconstruction=16.0)
"""The default sampling of lead completion (``generate-ecg --complete``, ``TwinModel.complete``), apart from the
twins' :data:`DEFAULT_SAMPLING`: SDE-DPM-Solver++(2M) 50 with reconstruction guidance ``w = 16``, chosen on fold 7
with the v2 bundle (docs/EDITING.md; projection alone leaves the free leads out of step with the recorded ones,
and the SDE sampler's fresh noise corrects what a deterministic one carries along: mean precordial r from I + II
0.71 vs 0.52 with DPM-Solver++(2M) 25). No condition guidance: a completion has no target condition unless one
is asked for, and the recorded leads fix the rhythm."""

COMPLETION_REGRESSION_START = 0.7
"""SDEdit strength at which a personal completion (one with an earlier 12-lead ECG) starts from the lead map
fitted on that ECG (:func:`ecgtwin.lead_regression.personal_regression`); 1 = from pure noise. Chosen on fold 7
(docs/EDITING.md; strengths 0.3-0.95 measured): from I + II, mean precordial r 0.82 vs 0.71 from noise and 0.73
for the lead map itself, in 70% of the network calls."""


def resolve_regression_start(value: float | None) -> float:
    """The start strength of a personal completion: ``value``, or :data:`COMPLETION_REGRESSION_START` when None."""
    return COMPLETION_REGRESSION_START if value is None else float(value)


def format_sampling(options: SamplingOptions) -> str:
    """The compact form of ``options`` that :func:`parse_sampling` reads back (docs state the defaults in it)."""
    plain = SamplingOptions(options.sampler, options.steps, options.guidance_condition, options.guidance_person,
                            guidance_interval=options.guidance_interval, spacing=options.spacing)
    if replace(options, steps=plain.steps) != plain:
        raise ValueError(f"{options!r} has settings (eta, resample, reconstruction) the compact form does not hold")
    text = f"{options.sampler}:{options.num_steps}:{options.guidance_condition:g}:{options.guidance_person:g}"
    if options.guidance_interval is not None:
        text += ":{:g}-{:g}".format(*options.guidance_interval)
    return text if options.spacing == "quadratic" else f"{text}:{options.spacing}"


def parse_sampling(text: str) -> SamplingOptions:
    """A compact setting ``sampler:steps:s_c:s_p[:sigma_lo-sigma_hi][:spacing]`` (benchmarks and comparisons)."""
    parts = text.split(":")
    if not 4 <= len(parts) <= 6:
        raise ValueError(f"bad setting {text!r}: expected sampler:steps:s_c:s_p[:lo-hi][:spacing]")
    interval, spacing = None, "quadratic"
    for extra in parts[4:]:
        if extra in TIMESTEP_SPACINGS:
            spacing = extra
        else:
            lo, hi = extra.split("-")
            interval = (float(lo), float(hi))
    return SamplingOptions(parts[0], int(parts[1]), float(parts[2]), float(parts[3]), guidance_interval=interval,
                           spacing=spacing)


def resolve_sampling(sampler: str | None = None, steps: int | None = None, guidance_condition: float | None = None,
                     guidance_person: float | None = None, defaults: SamplingOptions | None = None,
                     spacing: str | None = None) -> SamplingOptions:
    """``defaults`` (None: :data:`DEFAULT_SAMPLING`, read at call time) with the settings that are given (not None) replaced.

    The default step count belongs to the default sampler: another ``sampler`` without ``steps`` gets its own
    default (:data:`SAMPLER_DEFAULT_STEPS`).
    """
    defaults = DEFAULT_SAMPLING if defaults is None else defaults
    changes: dict[str, Any] = {}
    if sampler is not None and sampler != defaults.sampler:
        changes.update(sampler=sampler, steps=None)
    for name, value in (("steps", steps), ("guidance_condition", guidance_condition), ("guidance_person", guidance_person),
                        ("spacing", spacing)):
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


@dataclass(frozen=True)
class KnownLeads:
    """Recorded leads a twin must keep (lead completion): names in LEADS spelling and their signals (B, k, L) mV."""

    leads: tuple[str, ...]
    signal: torch.Tensor

    def __post_init__(self) -> None:
        unknown = [name for name in self.leads if name not in LEADS]
        if unknown:
            raise ValueError(f"unknown lead names {unknown}; expected names from {LEADS}")
        if len(set(self.leads)) != len(self.leads):
            raise ValueError(f"a lead is given twice: {list(self.leads)}")
        if not 1 <= len(self.leads) < len(LEADS):
            raise ValueError(f"give between 1 and {len(LEADS) - 1} leads to complete, got {len(self.leads)}")
        if self.signal.ndim != 3 or self.signal.shape[1] != len(self.leads):
            raise ValueError(f"known lead signals must be (B, {len(self.leads)}, L), got {tuple(self.signal.shape)}")

    def measurement(self, generated: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(H, basis)``: the known leads as linear functions ``H`` (k, generated) of the generated leads, and
        for a 12-lead network the lead-law basis (12, 8) its completions are kept in (None for 8 leads)."""
        rows = [LEADS.index(name) for name in self.leads]
        laws = torch.tensor(lead_law_matrix())  # (12, 8)
        if generated != len(LEADS):
            return laws[rows], None  # (k, 8)
        return torch.eye(len(LEADS), dtype=torch.float64)[rows], laws  # (k, 12), (12, 8)

    def lift(self, residual: torch.Tensor) -> torch.Tensor:
        """A (B, k, L) signal on the known leads as the least-squares 12-lead signal (B, 12, L) obeying the
        limb-lead laws (e.g. the baseline a high-pass removed, added back after completion)."""
        laws = torch.tensor(lead_law_matrix())  # (12, 8)
        rows = [LEADS.index(name) for name in self.leads]
        z = torch.einsum("dk,bkl->bdl", torch.linalg.pinv(laws[rows]), residual.double())  # (B, 8, L)
        return torch.einsum("cd,bdl->bcl", laws, z).to(residual.dtype)  # (B, 12, L)


def edit_start_step(strength: float, schedule: VPSchedule) -> int | None:
    """The timestep an edit of ``strength`` in (0, 1] starts from (SDEdit).

    None below the first timestep (the recording is returned as is); ``T - 1`` at strength 1, where the
    sampler starts from pure noise, as for an ordinary twin.
    """
    if not 0.0 < float(strength) <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    scaled = float(strength) * (schedule.num_timesteps - 1)
    return None if scaled < 0.5 else int(round(scaled))


def edit_steps(strength: float, steps: int, schedule: VPSchedule) -> int:
    """Network steps of an edit at ``strength`` (``ceil(strength * steps)``, at most the timesteps left)."""
    t_start = edit_start_step(strength, schedule)
    if t_start is None:
        return 0
    if t_start >= schedule.num_timesteps - 1:
        return steps
    return min(max(1, math.ceil(float(strength) * steps)), t_start + 1)


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
    edit: torch.Tensor | None = None,
    strength: float = 1.0,
    known: KnownLeads | None = None,
) -> torch.Tensor:
    """Twins (B, 12, L) in mV, one per seed, on the network's device.

    ``condition``: target ``labels`` (B, V), ``demographics`` (B, 3), optional
    ``demographics_mask`` (B, 3). ``base_vector`` (B or 1, base_dim) is the
    person (``None``: person-unconditional). Sample ``i`` depends on ``seeds[i]`` alone.

    Editing (SDEdit, Meng et al. 2022): ``edit`` (B, 12, L) mV recordings are noised to the level
    ``strength`` in (0, 1] and denoised under the condition in ``ceil(strength * steps)`` steps; a strength
    below the first timestep returns the recordings unchanged, 1 is an ordinary twin.
    Completion: ``known`` leads are kept (:class:`~ecgtwin.diffusion.inpainting.MeasurementDenoiser`), the
    others generated consistent with them.
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
    leads = generated_leads(net)
    shape = (b, leads, int(length))
    kwargs: dict[str, Any] = {"eta": options.eta} if options.sampler == "ddim" else {}
    kwargs["spacing"] = options.spacing
    if options.resample > 1:
        kwargs["resample"] = int(options.resample)
    steps = options.num_steps
    if edit is not None:
        if tuple(edit.shape) != (b, len(LEADS), int(length)):
            raise ValueError(f"recordings to edit must be (B={b}, 12, {length}) mV, got {tuple(edit.shape)}")
        t_start = edit_start_step(strength, schedule)
        if t_start is None:
            return edit.detach().clone().float()  # nothing to denoise: the recordings themselves
        if t_start < schedule.num_timesteps - 1:
            x0 = edit.to(device).float()
            x0 = (independent_leads(x0) if leads != len(LEADS) else x0) / signal_scale  # (B, leads, L)
            kwargs["start"] = Start(x0, t_start)
            steps = edit_steps(strength, steps, schedule)
    if known is not None:
        if known.signal.shape[0] != b or known.signal.shape[-1] != int(length):
            raise ValueError(f"known leads must be (B={b}, k, {length}), got {tuple(known.signal.shape)}")
        h, basis = known.measurement(leads)
        denoiser = MeasurementDenoiser(denoiser, schedule, h, known.signal.to(device).double() / signal_scale, basis,
                                       reconstruction=options.reconstruction)
    result = SAMPLERS[options.sampler](denoiser, schedule, shape, NoiseSource(seeds, device), steps=steps,
                                      progress=progress, **kwargs)
    return to_twelve_leads(result.x0.float()) * signal_scale  # (B, 12, L) mV
