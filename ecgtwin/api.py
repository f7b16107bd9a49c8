"""Python API: generate personalised ECG twins in memory.

>>> from ecgtwin.api import TwinModel, TwinSpec
>>> model = TwinModel.load()                       # the bundled model
>>> twins = model.generate([TwinSpec(reference=signal, labels=["MI"], hr=80, seed=0)])
>>> twins.shape                                    # (1, 12, 1000), mV, LEADS order

:func:`generate` is the one-call form. Nothing here touches the disk except
loading the checkpoint; ``generate-ecg`` writes WFDB records on top of it.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ecgtwin.constants import AGE_RANGE_YEARS, HR_RANGE_BPM, LEADS, N_INDEPENDENT_LEADS, N_LEADS
from ecgtwin.data.conditions import DEFAULT_RHYTHM, DemographicsNormalizer, LabelVocabulary
from ecgtwin.diffusion.schedule import VPSchedule
from ecgtwin.io.manifest import split_conditions
from ecgtwin.paths import ASSETS_DIR
from ecgtwin.pipeline import SamplingOptions, resolve_sampling, sample_twins
from ecgtwin.runtime import check_threads, default_threads, torch_threads

DEFAULT_BUNDLE = ASSETS_DIR / "ecgtwin_ptbxl100.pt"
"""The bundled model (IBE + generator trained on the shared PTB-XL folds 1-6, see docs/MODEL_CARD.md)."""
SEX_CODES = {"M": 0.0, "F": 1.0}


@dataclass
class TwinSpec:
    """One twin to generate: a reference ECG of a person and the target condition."""

    reference: np.ndarray
    """(12, L) mV at the model's sampling rate, LEADS order."""
    labels: Sequence[str] | str
    """Target diagnosis labels (vocabulary names); rhythm labels may be among them. A string is split like
    ``generate-ecg --condition``: ``"MI"``, ``"MI,STTC"``; ``[]``, ``""`` and ``"none"`` mean no diagnosis label."""
    hr: float | None = None
    age: float | None = None
    sex: str | None = None
    seed: int = 0
    rhythm: str | None = None
    """Target rhythm (e.g. ``"AFIB"``) for models with rhythm tokens. ``None``: the rhythm label in
    ``labels`` if any, else sinus rhythm (``"SR"``); ``"none"``: no rhythm token (rhythm left to the model)."""
    reference_labels: Sequence[str] | str | None = None
    """The reference's own condition; ``None`` = unknown (null condition for the IBE)."""
    reference_hr: float | None = None
    """``None``: estimated from the reference signal."""
    reference_age: float | None = None
    reference_sex: str | None = None
    preprocessed: bool = False
    """True when ``reference`` already went through the model's preprocessing (e.g. a record of the training
    cache, as the evaluation harness uses): it is then not high-passed a second time."""

    def __post_init__(self) -> None:
        # One label as a string ("MI"), or several ("MI,STTC"); "" and "none": no diagnosis label, as in generate-ecg.
        if isinstance(self.labels, str):
            self.labels = split_conditions(self.labels)
        if isinstance(self.reference_labels, str):
            self.reference_labels = split_conditions(self.reference_labels)


def _check_range(name: str, value: float | None, bounds: tuple[float, float]) -> None:
    if value is not None and not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
        raise ValueError(f"{name} {value} is outside the accepted range {bounds[0]:g}-{bounds[1]:g}")


def _sex_code(sex: str | None, name: str) -> float:
    if sex is None:
        return math.nan
    key = str(sex).strip().upper()[:1]
    if key not in SEX_CODES:
        raise ValueError(f"{name} must be 'M' or 'F', got {sex!r}")
    return SEX_CODES[key]


class TwinModel:
    """A loaded IBE + generator with its vocabulary and preprocessing: plain modules, no training code.

    ``net`` (the U-Net, EMA weights), ``ibe`` (``None`` for a population model),
    ``schedule`` and ``signal_scale`` are what :func:`ecgtwin.pipeline.sample_twins`
    takes; ``hparams`` are the generator's training hyper-parameters.
    """

    def __init__(self, net: torch.nn.Module, ibe: torch.nn.Module | None, schedule: VPSchedule, signal_scale: float,
                 vocabulary: LabelVocabulary, normalizer: DemographicsNormalizer, preprocess: dict,
                 checkpoint_path: Path | None = None, checkpoint_hash: str = "unknown",
                 provenance: dict | None = None, hparams: dict | None = None, threads: int | None = None) -> None:
        self.net = net.eval()
        self.ibe = None if ibe is None else ibe.eval()
        self.schedule = schedule
        self.signal_scale = float(signal_scale)
        self.hparams = dict(hparams or {})
        self.vocabulary = vocabulary
        self.normalizer = normalizer
        self.fs = int(preprocess["fs"])
        self.length = int(round(preprocess["fs"] * preprocess["seconds"]))
        self.highpass_hz = preprocess.get("highpass_hz")
        self.checkpoint_path = checkpoint_path
        self.checkpoint_hash = checkpoint_hash
        self.provenance = provenance or {}
        self.person_dropped = False
        self.threads = default_threads() if threads is None else check_threads(threads)
        """CPU threads torch uses while this model generates (:func:`ecgtwin.runtime.default_threads` unless given)."""

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu", threads: int | None = None) -> TwinModel:
        """Load a bundle (``.pt``) or a generator checkpoint (``.ckpt``); ``None`` = the bundled model.

        ``threads``: CPU threads while generating; None = :func:`ecgtwin.runtime.default_threads`
        (``OMP_NUM_THREADS`` if set, else the idle CPUs), so generation stays fast beside other CPU jobs.
        """
        from ecgtwin.bundle import build_networks, load_bundle
        from ecgtwin.io.wfdb_io import file_sha256

        path = Path(path).expanduser() if path is not None else DEFAULT_BUNDLE
        if path.is_dir():
            raise IsADirectoryError(f"checkpoint {str(path)!r} is a folder; give the model file (.pt bundle or .ckpt)")
        if not path.is_file():
            hint = " (the bundled model is missing: reinstall ecgtwin or pass --checkpoint)" if path == DEFAULT_BUNDLE else ""
            raise FileNotFoundError(f"checkpoint not found: {str(path)!r}{hint}")
        bundle = load_bundle(path)
        net_config = dict(bundle["net_config"])
        if int(net_config.get("in_leads", N_LEADS)) not in (N_INDEPENDENT_LEADS, N_LEADS):
            raise ValueError(f"{str(path)!r} was trained on {net_config['in_leads']} leads; ecgtwin generates the 12 leads "
                             f"{LEADS} (or their {N_INDEPENDENT_LEADS} independent ones)")
        vocabulary = LabelVocabulary.from_dict(bundle["vocabulary"])
        if int(net_config["num_labels"]) != len(vocabulary):
            raise ValueError(f"{str(path)!r}: generator has {net_config['num_labels']} labels but its vocabulary {len(vocabulary)}")
        nets = build_networks(bundle, device)
        normalizer = DemographicsNormalizer.from_dict(bundle["normalizer"])
        return cls(nets.net, nets.ibe, nets.schedule, nets.signal_scale, vocabulary, normalizer, bundle["preprocess"],
                   path, file_sha256(path)[:12], bundle.get("provenance"), nets.hparams, threads)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def personalised(self) -> bool:
        """False for a population model (no IBE / base vector, or :meth:`without_person`)."""
        return self.ibe is not None and not self.person_dropped

    def without_person(self) -> TwinModel:
        """This generator as a population model: every twin gets the learned NULL base vector.

        Base-vector dropout during training (``p_base``) teaches the network the
        person-unconditional branch ``u(0, c)``, a model of the target condition
        over the whole population (Ho & Salimans 2022). The view shares the weights;
        the reference is ignored and :meth:`base_vectors` is refused.
        """
        if self.ibe is None:
            raise ValueError("this is already a population model (no IBE)")
        view = copy.copy(self)
        view.person_dropped = True
        return view

    @property
    def description(self) -> str:
        """Checkpoint path, marked when the person is dropped (reports name the model with it)."""
        return f"{self.checkpoint_path} (null base vector)" if self.person_dropped else str(self.checkpoint_path)

    # --------------------------------------------------------------- conditions
    def target_labels(self, labels: Sequence[str], rhythm: str | None = None) -> list[str]:
        """The labels a twin is asked for: ``labels`` plus the rhythm (see :attr:`TwinSpec.rhythm`)."""
        labels = list(labels)
        rhythms = self.vocabulary.rhythm_names
        if rhythm is not None and str(rhythm).lower() != "none":
            if not rhythms:
                raise ValueError(f"this model has no rhythm tokens (labels {', '.join(self.vocabulary.names)}); "
                                 f"it cannot be asked for rhythm {rhythm!r}")
            try:
                name = self.vocabulary.names[self.vocabulary.index(rhythm)]
            except KeyError as err:
                raise ValueError(f"rhythm: {err.args[0]}") from None
            if name not in rhythms:
                raise ValueError(f"{rhythm!r} is not a rhythm label; rhythm labels: {', '.join(rhythms)}")
            given = [n for n in labels if n in rhythms and n != name]
            if given:
                raise ValueError(f"rhythm {name!r} conflicts with the rhythm label(s) {given} in the condition")
            return labels if name in labels else labels + [name]
        if rhythm is None and rhythms and not any(self.vocabulary.names[self.vocabulary.index(n)] in rhythms for n in labels):
            return labels + [DEFAULT_RHYTHM]
        return labels

    def encode_condition(self, labels: Sequence[str] | None, hr: float | None, age: float | None,
                         sex: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels (V,), demographics (3,), demographics_mask (3,))``; unknown values are masked."""
        multi_hot = self.vocabulary.encode_names(list(labels or []))
        nan = math.nan
        values, mask = self.normalizer.transform(nan if hr is None else hr, nan if age is None else age,
                                                 _sex_code(sex, "sex"))
        return multi_hot.astype(np.float32), values, mask

    def validate(self, spec: TwinSpec) -> None:
        """Raise ValueError with a clear message for anything that would make generation fail or lie."""
        ref = np.asarray(spec.reference)
        if ref.shape != (N_LEADS, self.length):
            raise ValueError(f"reference must be (12, {self.length}) at {self.fs} Hz, got {ref.shape}")
        if not np.all(np.isfinite(ref)):
            raise ValueError("reference contains NaN or infinite samples")
        for what, names in (("target", spec.labels), ("reference", spec.reference_labels or [])):
            for name in names:
                try:
                    self.vocabulary.index(name)
                except KeyError as err:
                    raise ValueError(f"{what} label: {err.args[0]}") from None
        self.target_labels(spec.labels, spec.rhythm)
        for prefix, hr, age, sex in (("", spec.hr, spec.age, spec.sex),
                                     ("reference ", spec.reference_hr, spec.reference_age, spec.reference_sex)):
            _check_range(f"{prefix}HR (bpm)", hr, HR_RANGE_BPM)
            _check_range(f"{prefix}age (years)", age, AGE_RANGE_YEARS)
            _sex_code(sex, f"{prefix}sex")

    # --------------------------------------------------------------- inference
    def _preprocess(self, signals: np.ndarray) -> np.ndarray:
        from ecgtwin.data.preprocess import highpass

        if self.highpass_hz:
            signals = np.stack([highpass(s, self.fs, float(self.highpass_hz)) for s in signals])  # (N, 12, L)
        return signals.astype(np.float32)

    def _estimated_hr(self, preprocessed: np.ndarray) -> float | None:
        from ecgtwin.data.heartrate import estimate_heart_rate

        hr = estimate_heart_rate(preprocessed, self.fs)
        return None if hr is None or not math.isfinite(hr) else float(hr)

    def reference_heart_rate(self, signal: np.ndarray) -> float | None:
        """The HR (bpm) the model assumes for a reference (12, L) mV whose HR is not given: estimated from
        the preprocessed signal; None when it cannot be estimated (the HR token is then masked)."""
        return self._estimated_hr(self._preprocess(np.asarray(signal, dtype=np.float32)[None])[0])

    def _reference_batch(self, specs: Sequence[TwinSpec]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        signals = np.stack([np.asarray(s.reference, dtype=np.float32) for s in specs])  # (B, 12, L) mV
        raw = [i for i, s in enumerate(specs) if not s.preprocessed]
        if raw:
            signals[raw] = self._preprocess(signals[raw])  # the high-pass, once
        rows = []
        for spec, signal in zip(specs, signals):
            hr = float(spec.reference_hr) if spec.reference_hr is not None else self._estimated_hr(signal)
            rows.append(self.encode_condition(spec.reference_labels, hr, spec.reference_age, spec.reference_sex))
        batch = self._to_batch(rows)
        batch["signal"] = torch.from_numpy(signals).to(self.device)
        unknown = torch.tensor([s.reference_labels is None for s in specs], device=self.device)
        return batch, unknown

    def _to_batch(self, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        labels, values, mask = (np.stack(col) for col in zip(*rows))
        return {"labels": torch.from_numpy(labels).to(self.device),
                "demographics": torch.from_numpy(values).to(self.device),
                "demographics_mask": torch.from_numpy(mask).to(self.device)}

    def _base_vectors(self, reference: dict[str, torch.Tensor], drop: torch.Tensor) -> torch.Tensor:
        """IBE base vectors (B, base_dim) of a reference batch; ``drop`` = unknown reference condition."""
        assert self.ibe is not None
        return self.ibe(reference["signal"], reference["labels"], reference["demographics"],
                        reference.get("demographics_mask"), drop=drop)

    @torch.no_grad()
    def base_vectors(self, specs: Sequence[TwinSpec]) -> np.ndarray:
        """IBE base vectors (N, base_dim) of the specs' references (their own condition removed)."""
        if not self.personalised:
            raise ValueError("this is a population model: it has no Individual Base Extractor")
        with torch_threads(self.threads):
            batch, unknown = self._reference_batch(specs)
            return self._base_vectors(batch, unknown).cpu().numpy()

    @torch.no_grad()
    def generate(self, specs: Sequence[TwinSpec], sampler: str | None = None, steps: int | None = None,
                 guidance_condition: float | None = None, guidance_person: float | None = None, batch_size: int = 16,
                 progress: bool = True, options: SamplingOptions | None = None) -> np.ndarray:
        """Twins (N, 12, L) in mV, one per spec, batched on the model's device.

        Sampling settings not given come from ``options``, else :data:`ecgtwin.pipeline.DEFAULT_SAMPLING`
        (:func:`~ecgtwin.pipeline.resolve_sampling`).
        """
        options = resolve_sampling(sampler, steps, guidance_condition, guidance_person, options)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for spec in specs:
            self.validate(spec)
        with torch_threads(self.threads):
            return self._generate(specs, options, batch_size, progress)

    def _generate(self, specs: Sequence[TwinSpec], options: SamplingOptions, batch_size: int,
                  progress: bool) -> np.ndarray:
        sampler, steps = options.sampler, options.num_steps
        out = np.empty((len(specs), N_LEADS, self.length), dtype=np.float32)
        bar = tqdm(total=len(specs), desc=f"twins ({sampler}, {steps} steps)", unit="twin", disable=not progress)
        for start in range(0, len(specs), batch_size):
            chunk = specs[start:start + batch_size]
            base = None
            if self.personalised:
                reference, unknown = self._reference_batch(chunk)
                base = self._base_vectors(reference, unknown)  # (b, base_dim)
            condition = self._to_batch([self.encode_condition(self.target_labels(s.labels, s.rhythm), s.hr, s.age, s.sex)
                                        for s in chunk])
            twins = sample_twins(self.net, self.schedule, self.signal_scale, condition, [int(s.seed) for s in chunk],
                                 base, options, self.length)  # (b, 12, L) mV
            out[start:start + len(chunk)] = twins.cpu().numpy()
            bar.update(len(chunk))
        bar.close()
        return out


    def edit(self, specs: Sequence[TwinSpec], strength: float, options: SamplingOptions | None = None,
             batch_size: int = 16, progress: bool = True) -> np.ndarray:
        """Each spec's reference edited towards its target condition at ``strength`` in (0, 1] (SDEdit):
        (N, 12, L) mV; -> 0 returns the recording, 1 is an ordinary twin (:func:`ecgtwin.editing.edit_ecgs`)."""
        from ecgtwin.editing import edit_ecgs

        with torch_threads(self.threads):
            return edit_ecgs(self, specs, strength, resolve_sampling(defaults=options), batch_size, progress)

    def complete(self, partial: np.ndarray, leads: Sequence[str], reference: np.ndarray | None = None,
                 **kwargs: Any) -> np.ndarray:
        """Full 12-lead ECGs (N, 12, L) from recorded ``leads`` (N or 1, k, L), personal with an earlier 12-lead
        ``reference`` of the same person, else population (:func:`ecgtwin.editing.complete_leads`)."""
        from ecgtwin.editing import complete_leads

        with torch_threads(self.threads):
            return complete_leads(self, partial, leads, reference, **kwargs)

    @torch.no_grad()
    def estimate_seconds(self, num: int, options: SamplingOptions | None = None, batch_size: int = 16) -> float:
        """About how long :meth:`generate` takes for ``num`` twins: one sampler step of one batch is timed."""
        options = resolve_sampling(defaults=options)
        b = max(1, min(int(batch_size), int(num)))
        condition = {"labels": torch.zeros(b, len(self.vocabulary), device=self.device),
                     "demographics": torch.zeros(b, 3, device=self.device)}
        base = None
        if self.personalised and getattr(self.net, "use_base_vector", True):
            base = torch.zeros(b, int(self.net.base_dim), device=self.device)
        with torch_threads(self.threads):
            start = time.perf_counter()
            sample_twins(self.net, self.schedule, self.signal_scale, condition, list(range(b)), base,
                         replace(options, steps=1), self.length)
            step = time.perf_counter() - start
        return step * options.num_steps * math.ceil(num / b)


def generate(reference: np.ndarray, conditions: Sequence[str] | str, num: int = 1, seed: int = 0,
             model: TwinModel | None = None, hr: float | None = None, age: float | None = None,
             sex: str | None = None, **kwargs: object) -> np.ndarray:
    """``num`` twins (num, 12, L) of one reference (12, L) mV under ``conditions``; twin i uses seed ``seed + i``.

    ``kwargs`` go to :meth:`TwinModel.generate` (sampler, steps, guidance_condition, guidance_person, options;
    defaults from :data:`ecgtwin.pipeline.DEFAULT_SAMPLING`).
    """
    model = model or TwinModel.load()
    specs = [TwinSpec(reference=reference, labels=conditions, hr=hr, age=age, sex=sex, seed=seed + i)
             for i in range(num)]
    return model.generate(specs, **kwargs)  # type: ignore[arg-type]
