"""Edit a person's ECG and complete missing leads, in memory (the API behind ``generate-ecg --edit/--complete``).

* :func:`edit_ecgs`: SDEdit (Meng et al. 2022). Each spec's reference *is* the
  recording to edit: it is noised to the level given by ``strength`` in (0, 1]
  and denoised under the spec's target condition and the person's own base
  vector. Strength -> 0 returns the recording, 1 is an ordinary twin.
* :func:`complete_leads`: personal 12-lead reconstruction from a few recorded
  leads (lead I from a watch, I + II, the six limb leads, ...). The recorded
  leads are kept exactly (null-space projection,
  :class:`~ecgtwin.diffusion.inpainting.MeasurementDenoiser`) and the others are
  generated consistent with them, for the person of an earlier full 12-lead
  ``reference`` of the same patient; without one, for the population (the
  learned null base vector). Leads tied to the recorded ones by the limb-lead
  laws follow from them.

Both go through :func:`ecgtwin.pipeline.sample_twins`, so every sampler, the
guidance scales, per-twin seeds and the lead laws behave as for twins.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from ecgtwin.constants import LEADS, N_LEADS, canonical_lead
from ecgtwin.lead_regression import personal_regression
from ecgtwin.leads import derive_leads, independent_leads
from ecgtwin.pipeline import (COMPLETION_SAMPLING, KnownLeads, SamplingOptions, edit_start_step, generated_leads,
                              resolve_regression_start, resolve_sampling, sample_twins)

if TYPE_CHECKING:
    from ecgtwin.api import TwinModel, TwinSpec


def _chunks(n: int, batch_size: int) -> list[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [slice(start, min(n, start + batch_size)) for start in range(0, n, batch_size)]


@torch.no_grad()
def edit_ecgs(model: TwinModel, specs: Sequence[TwinSpec], strength: float, options: SamplingOptions | None = None,
              batch_size: int = 16, progress: bool = True) -> np.ndarray:
    """Edited ECGs (N, 12, L) mV: spec ``i``'s reference under its target condition at ``strength``.

    Below the sampler's first timestep (strength < 0.5 / (T - 1)) the recordings are returned unchanged;
    otherwise the recording after the model's preprocessing (0.5 Hz high-pass) is the starting point, and the
    baseline the filter removed (drift, offset; what the model never sees) is added back to the edit, through
    the limb-lead laws, so that a small strength stays close to the recording. At strength 1 (start from pure
    noise) the result is the ordinary twin, without the recording's baseline.
    """
    options = resolve_sampling(defaults=options)
    t_start = edit_start_step(strength, model.schedule)  # validates the strength before any work
    for spec in specs:
        model.validate(spec)
    if t_start is None:
        return np.stack([np.asarray(s.reference, dtype=np.float32) for s in specs])  # (N, 12, L)
    from_recording = t_start < model.schedule.num_timesteps - 1  # else an ordinary twin
    out = np.empty((len(specs), N_LEADS, model.length), dtype=np.float32)
    bar = tqdm(total=len(specs), desc=f"edits (strength {strength:g})", unit="ecg", disable=not progress)
    for part in _chunks(len(specs), batch_size):
        chunk = specs[part]
        reference, unknown = model._reference_batch(chunk)  # preprocessed recordings (b, 12, L) + their condition
        base = model._base_vectors(reference, unknown) if model.personalised else None
        condition = model._to_batch([model.encode_condition(model.target_labels(s.labels, s.rhythm), s.hr, s.age, s.sex)
                                     for s in chunk])
        edited = sample_twins(model.net, model.schedule, model.signal_scale, condition, [int(s.seed) for s in chunk],
                              base, options, model.length, edit=reference["signal"], strength=strength)
        if from_recording:
            raw = torch.from_numpy(np.stack([np.asarray(s.reference, dtype=np.float32) for s in chunk]))  # (b, 12, L)
            edited = edited.cpu() + _lawful(raw - reference["signal"].cpu(), model)  # + the removed baseline
        out[part] = edited.cpu().numpy()
        bar.update(len(chunk))
    bar.close()
    return out


def _lawful(signal: torch.Tensor, model: TwinModel) -> torch.Tensor:
    """``signal`` (B, 12, L) made to obey the limb-lead laws from its I and II when the model generates the 8
    independent leads (its outputs obey them exactly); unchanged for a 12-lead network."""
    if generated_leads(model.net) == N_LEADS:
        return signal
    return derive_leads(independent_leads(signal))  # (B, 12, L)


def canonical_leads(leads: Sequence[str]) -> tuple[str, ...]:
    """Lead names in LEADS spelling (aliases accepted); unknown names and a lead given twice are errors."""
    names = []
    for lead in leads:
        name = canonical_lead(lead)
        if name is None:
            raise ValueError(f"unknown lead name {lead!r}; expected one of {', '.join(LEADS)} (or an alias)")
        names.append(name)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"lead(s) given twice: {', '.join(twice)}")
    if len(names) == N_LEADS:
        raise ValueError("all 12 leads are given: there is nothing to complete")
    if not names:
        raise ValueError("no leads given: completion needs at least one recorded lead")
    return tuple(names)


@torch.no_grad()
def complete_leads(model: TwinModel, partial: np.ndarray, leads: Sequence[str], reference: np.ndarray | None = None,
                   labels: Sequence[str] | str | None = None, hr: float | None = None, age: float | None = None,
                   sex: str | None = None, rhythm: str | None = "none", seeds: Sequence[int] | None = None,
                   options: SamplingOptions | None = None, batch_size: int = 16, progress: bool = True,
                   preprocessed: bool = False, regression_start: float | None = None) -> np.ndarray:
    """Full 12-lead ECGs (N, 12, L) mV from recorded leads ``partial`` (N, k, L) or (k, L) named ``leads``.

    ``reference``: an earlier 12-lead ECG of the same person, (12, L) for all or (N, 12, L) one each; None =
    the population branch. ``labels``/``hr``/``age``/``sex``/``rhythm``: an optional target condition (default:
    nothing known, so the recorded leads alone decide). ``seeds``: one per output (default 0..N-1).
    ``options``: default :data:`~ecgtwin.pipeline.COMPLETION_SAMPLING`.

    The model works on high-passed ECGs (its training data): the recorded leads are filtered as references
    are, completed, and the baseline the filter removed is added back to the output through the limb-lead laws
    (:meth:`~ecgtwin.pipeline.KnownLeads.lift`), so the recorded leads come out as recorded. ``preprocessed``:
    ``partial`` and ``reference`` already went through the model's preprocessing (e.g. the training cache).

    ``regression_start`` S in (0, 1] (with a ``reference`` only): instead of pure noise, the sampler starts (as
    an SDEdit of strength S) from the patient-specific linear reconstruction, the lead map fitted on the
    reference (:func:`ecgtwin.lead_regression.personal_regression`), so the person's heart-axis geometry sets
    the missing leads and the diffusion model their detail; 1 starts from pure noise; None = the default
    :data:`~ecgtwin.pipeline.COMPLETION_REGRESSION_START` when a reference is given.
    """
    from ecgtwin.api import TwinSpec

    names = canonical_leads(leads)
    partial = np.asarray(partial, dtype=np.float32)
    partial = partial[None] if partial.ndim == 2 else partial  # (N, k, L)
    if partial.ndim != 3 or partial.shape[1:] != (len(names), model.length):
        raise ValueError(f"recorded leads must be (N, {len(names)}, {model.length}) mV at {model.fs} Hz for the "
                         f"leads {', '.join(names)}, got {tuple(partial.shape)}")
    if not np.all(np.isfinite(partial)):
        raise ValueError("the recorded leads contain NaN or infinite samples")
    n = partial.shape[0]
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} recordings")
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float32)
        reference = np.broadcast_to(reference, (n, *reference.shape[-2:])) if reference.ndim == 2 else reference
        if reference.shape != (n, N_LEADS, model.length):
            raise ValueError(f"the reference must be a full 12-lead ECG (12, {model.length}) or one per recording "
                             f"({n}, 12, {model.length}), got {tuple(reference.shape)}: a partial record cannot "
                             "be the reference")
        if not model.personalised:
            raise ValueError("this is a population model: it takes no reference; leave the reference out")
    if regression_start is not None and reference is None:
        raise ValueError("regression_start needs a reference: the lead map is fitted on the earlier 12-lead ECG")
    start_strength = 1.0 if reference is None else resolve_regression_start(regression_start)
    edit_start_step(start_strength, model.schedule)  # validates the strength before any work
    options = resolve_sampling(defaults=COMPLETION_SAMPLING if options is None else options)
    specs = [TwinSpec(reference=reference[i] if reference is not None else np.zeros((N_LEADS, model.length), np.float32),
                      labels=labels if labels is not None else [], hr=hr, age=age, sex=sex, rhythm=rhythm, seed=seeds[i],
                      preprocessed=preprocessed)
             for i in range(n)]
    filtered = partial if preprocessed else model._preprocess(partial)  # (N, k, L), the model's high-pass
    baseline = torch.from_numpy((partial - filtered).astype(np.float32))  # (N, k, L) what the filter removed
    for spec in specs:
        model.validate(spec)
    out = np.empty((n, N_LEADS, model.length), dtype=np.float32)
    bar = tqdm(total=n, desc=f"completion from {'+'.join(names)}", unit="ecg", disable=not progress)
    for part in _chunks(n, batch_size):
        chunk = specs[part]
        base, start = None, None
        if reference is not None:
            ref_batch, unknown = model._reference_batch(chunk)
            base = model._base_vectors(ref_batch, unknown)  # (b, base_dim)
            if start_strength < 1.0:  # (b, 12, L) the person's linear reconstruction, filtered space
                start = torch.from_numpy(personal_regression(names, ref_batch["signal"].cpu().numpy(), filtered[part]))
        condition = model._to_batch([model.encode_condition(model.target_labels(s.labels, s.rhythm), s.hr, s.age, s.sex)
                                     for s in chunk])
        known = KnownLeads(names, torch.from_numpy(filtered[part]))
        full = sample_twins(model.net, model.schedule, model.signal_scale, condition, seeds[part], base, options,
                            model.length, known=known, edit=start,
                            strength=start_strength)  # (b, 12, L)
        out[part] = (full.cpu() + known.lift(baseline[part])).numpy()
        bar.update(len(chunk))
    bar.close()
    return out
