"""The work behind ``generate-ecg``: requests -> twin jobs -> batches -> WFDB records + manifest rows.

A *job* is one twin: request ``r``, index ``i`` (``0 <= i < r.num``), seed
``r.seed + i`` and the deterministic record name of
:func:`~ecgtwin.io.manifest.twin_record_name`. Jobs whose record is already
listed in ``out_dir/manifest.csv`` and on disk are skipped (resume); the rest
are cut into batches of ``batch_size`` across references, generated with
``TwinModel.generate`` and written one by one (record, optional PNG, manifest
row), so an interruption loses at most the batch in flight.

Everything that needs the model is checked in :func:`prepare_jobs`, before the
first twin is generated (:mod:`ecgtwin.cli._generate_checks` has the checks and
the handling of bad manifest rows). Each twin's header comments and manifest row
come from one dict, :func:`twin_provenance`.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from tqdm import tqdm

from ecgtwin import __version__
from ecgtwin.cli.generate import UsageError
from ecgtwin.constants import N_LEADS
from ecgtwin.cli._generate_checks import canonicalize, reject
from ecgtwin.io.manifest import NO_LABELS, OutputManifest, RequestManifest, TwinRequest, TwinRow
from ecgtwin.io.wfdb_io import ECGInputError, Reference, read_reference, write_twin
from ecgtwin.pipeline import SamplingOptions, edit_steps
from ecgtwin.viz.ecg_plot import plot_twin_comparison


@dataclass(frozen=True)
class RunSampling:
    """How every twin of a run is sampled (recorded in headers and manifest rows) and how many per model call."""

    options: SamplingOptions
    batch_size: int = 16
    edit_strength: float | None = None
    """``generate-ecg --edit --strength S``: each output is the reference edited at strength S (SDEdit)."""

    @property
    def mode(self) -> str:
        """``twin``, or ``edit strength S`` (recorded in headers and the manifest)."""
        return "twin" if self.edit_strength is None else f"edit strength {self.edit_strength:g}"

    @property
    def name_tag(self) -> str | None:
        """Part of the record names of edits (``edit0p3``), so edits and twins of one request never collide."""
        return None if self.edit_strength is None else "edit" + f"{self.edit_strength:g}".replace(".", "p")

    @property
    def sampler(self) -> str:
        return self.options.sampler

    @property
    def steps(self) -> int:
        return self.options.num_steps

    @property
    def guidance_condition(self) -> float:
        return float(self.options.guidance_condition)

    @property
    def guidance_person(self) -> float:
        return float(self.options.guidance_person)


@dataclass(frozen=True)
class ReferenceOptions:
    """Command-line facts about the references; None = from the header comments (age, sex) or the API (HR)."""

    labels: tuple[str, ...] | None = None
    hr: float | None = None
    age: float | None = None
    sex: str | None = None


@dataclass(frozen=True)
class TwinJob:
    """One twin to generate: twin ``index`` of ``request``."""

    request: TwinRequest
    index: int
    record_name: str

    @property
    def seed(self) -> int:
        """Per-twin seed: ``request.seed + index``."""
        return self.request.seed + self.index


@dataclass(frozen=True)
class LoadedReference:
    """A reference window as the model sees it, and the HR (bpm) assumed for it (``hr_source``: given/estimated)."""

    reference: Reference
    hr: float | None
    hr_source: str


@dataclass
class Plan:
    """Checked jobs of a run: ``pending`` to generate (with their specs), ``done`` already written."""

    pending: list[TwinJob]
    specs: list[Any]
    done: list[TwinJob]
    references: dict[tuple[Path, float], LoadedReference]


@dataclass
class RunSummary:
    """What a run did; ``interrupted`` is set when it stopped early (Ctrl-C)."""

    out_dir: Path
    manifest_path: Path
    written: int = 0
    skipped: int = 0
    plotted: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    written_names: list[str] = field(default_factory=list)

    def report(self, sampling: RunSampling, checkpoint_hash: str, threads: int | None = None) -> str:
        """The short summary printed at the end of a run."""
        per_twin = f"{self.seconds / self.written:.2f} s per twin" if self.written else "nothing generated"
        lines = [
            f"generate-ecg: {self.written} twin(s) written, {self.skipped} already there (skipped)"
            + (f", {self.plotted} plot(s)" if self.plotted else ""),
            f"  records:  {self.out_dir.resolve()}",
            f"  manifest: {self.manifest_path.resolve()}",
            f"  {per_twin} (sampler {sampling.sampler}, {sampling.steps} steps, checkpoint {checkpoint_hash}"
            + (f", {threads} CPU thread(s))" if threads else ")"),
        ]
        return "\n".join(lines)


def plan_jobs(requests: Sequence[TwinRequest], tag: str | None = None) -> list[TwinJob]:
    """All twins of ``requests`` in request order, ``num`` per request (``tag`` goes after the reference name)."""
    def named(request: TwinRequest, name: str) -> str:
        if tag is None:
            return name
        return f"{request.reference_name}__{tag}{name[len(request.reference_name):]}"

    return [TwinJob(r, i, named(r, name)) for r in requests for i, name in enumerate(r.record_names())]


def check_settings_match(done: Sequence[TwinJob], manifest: OutputManifest, sampling: RunSampling,
                         checkpoint_hash: str) -> None:
    """Refuse to silently skip twins that were made with other sampling settings or another checkpoint."""
    rows = {row["record_name"]: row for row in manifest.rows()}
    now = {"sampler": sampling.sampler, "steps": sampling.steps, "spacing": sampling.options.spacing,
           "guidance_condition": sampling.guidance_condition,
           "guidance_person": sampling.guidance_person, "checkpoint": checkpoint_hash, "mode": sampling.mode}
    for job in done:
        row = {"mode": "twin", "spacing": "quadratic",  # rows written before these columns existed
               **{k: v for k, v in rows[job.record_name].items() if v != "" or k not in ("mode", "spacing")}}
        for key, value in now.items():
            same = row[key] == value if isinstance(value, str) else _same_number(row[key], value)
            if not same:
                raise UsageError(
                    f"{manifest.out_dir} already holds twin {job.record_name} made with {key}={row[key]} "
                    f"(this run: {value}); pass --overwrite to replace such twins, or choose another --out"
                )


def _same_number(text: str, value: float) -> bool:
    try:
        return abs(float(text) - float(value)) <= 1e-9
    except ValueError:
        return False


def reference_key(request: TwinRequest) -> tuple[Path, float]:
    """A reference as the model sees it: the record and the start of the window used."""
    return request.reference, request.offset


def load_references(requests: RequestManifest, wanted: Sequence[TwinRequest], model: Any,
                    options: ReferenceOptions) -> dict[tuple[Path, float], LoadedReference]:
    """Read each distinct reference window of ``wanted`` once, at the model's rate and duration, with the HR
    the model assumes for it; requests whose reference cannot be used are rejected."""
    loaded: dict[tuple[Path, float], LoadedReference] = {}
    failed: dict[tuple[Path, float], str] = {}
    for request in wanted:
        key = reference_key(request)
        if key in loaded or key in failed:
            continue
        try:
            reference = read_reference(request.reference, target_fs=model.fs, seconds=model.length / model.fs,
                                       offset=request.offset)
        except ECGInputError as exc:
            failed[key] = str(exc)
            continue
        hr = options.hr if options.hr is not None else model.reference_heart_rate(reference.signal)
        loaded[key] = LoadedReference(reference, hr, "given" if options.hr is not None else "estimated")
    for request in [r for r in requests.requests if reference_key(r) in failed]:
        reject(requests, request, failed[reference_key(request)])
    return loaded


def build_spec(job: TwinJob, loaded: LoadedReference, options: ReferenceOptions, spec_class: Callable[..., Any]) -> Any:
    """The ``TwinSpec`` of one job; reference age/sex from the command line, else from the record's header."""
    request, reference = job.request, loaded.reference
    return spec_class(
        reference=reference.signal,
        labels=list(request.conditions),
        hr=request.hr,
        age=request.age,
        sex=request.sex,
        seed=job.seed,
        rhythm=request.rhythm,
        reference_labels=list(options.labels) if options.labels is not None else None,
        reference_hr=loaded.hr,
        reference_age=options.age if options.age is not None else reference.age,
        reference_sex=options.sex if options.sex is not None else reference.sex,
    )


def prepare_jobs(requests: RequestManifest, model: Any, manifest: OutputManifest, sampling: RunSampling,
                 reference_options: ReferenceOptions, spec_class: Callable[..., Any], overwrite: bool,
                 plot: bool) -> Plan:
    """Check every request against the loaded model (bad manifest rows are rejected, see
    :mod:`~ecgtwin.cli._generate_checks`) and split its twins into done and pending; nothing is generated yet."""
    canonicalize(requests, model)
    jobs = plan_jobs(requests.requests, sampling.name_tag)
    done_names = set() if overwrite else {j.record_name for j in jobs if manifest.already_written(j.record_name)}
    wanted = [j.request for j in jobs if j.record_name not in done_names
              or (plot and not png_path(manifest.out_dir, j).is_file())]
    references = load_references(requests, wanted, model, reference_options)
    specs: dict[str, Any] = {}
    for job in plan_jobs(requests.requests, sampling.name_tag):
        if job.record_name in done_names or job.request not in requests.requests:
            continue
        spec = specs[job.record_name] = build_spec(job, references[reference_key(job.request)], reference_options,
                                                   spec_class)
        try:
            model.validate(spec)
        except ValueError as exc:
            reject(requests, job.request, f"twin {job.record_name}: {exc}")
    jobs = plan_jobs(requests.requests, sampling.name_tag)
    pending = [j for j in jobs if j.record_name not in done_names]
    done = [j for j in jobs if j.record_name in done_names]
    return Plan(pending=pending, specs=[specs[j.record_name] for j in pending], done=done, references=references)


def _fmt(value: float | str | None, unknown: str = "unknown") -> str:
    if value is None:
        return unknown
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def rhythm_used(job: TwinJob, model: Any) -> str:
    """The target rhythm token a twin got: a name, ``SR (default)``, ``none``, or none for a model without them."""
    rhythms = tuple(getattr(model.vocabulary, "rhythm_names", ()))
    if not rhythms:
        return "none (model without rhythm tokens)"
    used = [n for n in model.target_labels(job.request.conditions, job.request.rhythm) if n in rhythms]
    if not used:
        return "none"
    return f"{used[0]} (default)" if job.request.rhythm is None and used[0] not in job.request.conditions else used[0]


def twin_provenance(job: TwinJob, spec: Any, loaded: LoadedReference, sampling: RunSampling,
                    model: Any) -> dict[str, str]:
    """What a twin is and how it was made: its header comments, and (same names, same values) its manifest row.

    Includes every change made to the reference (resampling, window, NaN filling, dropped channels, mapped lead
    names) and the reference HR the model assumed. ``age``/``sex`` keys are read back by ``read_reference``.
    """
    request = job.request
    hr_text = "unknown (not estimable)" if loaded.hr is None else f"{loaded.hr:.1f} ({loaded.hr_source})"
    return {
        "reference": str(loaded.reference.path.resolve()),
        "target_labels": ";".join(sorted(request.conditions)) or NO_LABELS,
        "rhythm": rhythm_used(job, model),
        "hr": _fmt(spec.hr),
        "age": _fmt(spec.age),
        "sex": _fmt(spec.sex),
        "reference_labels": ";".join(spec.reference_labels) if spec.reference_labels else "unknown (null condition)",
        "reference_hr": hr_text,
        "reference_age": _fmt(spec.reference_age),
        "reference_sex": _fmt(spec.reference_sex),
        **loaded.reference.transformations(),
        "mode": sampling.mode,
        "sampler": sampling.sampler,
        "steps": str(sampling.steps),
        "spacing": sampling.options.spacing,
        **({"edit_steps_used": str(edit_steps(sampling.edit_strength, sampling.steps, model.schedule))}
           if sampling.edit_strength is not None else {}),
        "guidance_condition": _fmt(float(sampling.guidance_condition)),
        "guidance_person": _fmt(float(sampling.guidance_person)),
        **({"guidance_interval": str(list(sampling.options.guidance_interval))} if sampling.options.guidance_interval else {}),
        "seed": str(job.seed),
        "checkpoint": str(model.checkpoint_hash),
        "checkpoint_file": Path(model.checkpoint_path).name,
        "ecgtwin_version": __version__,
    }


def twin_row(job: TwinJob, hea: Path, provenance: dict[str, str]) -> TwinRow:
    """The output-manifest row of a written twin: its header's provenance under the same names and values."""
    columns = {f.name for f in dataclasses.fields(TwinRow)}
    return TwinRow(record_name=job.record_name, path=str(hea.resolve()),
                   **{k: v for k, v in provenance.items() if k in columns})


def png_path(out_dir: Path, job: TwinJob) -> Path:
    """Comparison plot of a twin: ``out_dir/<record_name>.png``."""
    return out_dir / f"{job.record_name}.png"


def plot_job(out_dir: Path, job: TwinJob, reference: Reference, twin: np.ndarray, fs: int) -> Path:
    """PNG with the reference printout above the twin's."""
    request = job.request
    target = ", ".join(request.conditions) or NO_LABELS
    extras = " ".join(f"{k} {_fmt(v)}" for k, v in (("HR", request.hr), ("age", request.age), ("sex", request.sex))
                      if v is not None)
    titles = [f"reference {reference.record_name}", f"twin {job.record_name}: {target} {extras} (seed {job.seed})"]
    return plot_twin_comparison(reference.signal, [twin], fs, titles=titles, path=png_path(out_dir, job))


def run_plan(plan: Plan, model: Any, manifest: OutputManifest, sampling: RunSampling, plot: bool,
             progress: bool = True) -> RunSummary:
    """Generate the pending twins batch by batch and write record, PNG, manifest row for each.

    A twin counts as written once its manifest row is appended (after its
    record and PNG), so a rerun redoes exactly the unfinished ones. Ctrl-C
    drops the twins in flight and sets ``interrupted``; any other exception
    propagates. Either way the finished twins stay complete on disk.
    """
    out_dir = manifest.out_dir
    summary = RunSummary(out_dir=out_dir, manifest_path=manifest.path, skipped=len(plan.done))
    out_dir.mkdir(parents=True, exist_ok=True)
    for job in plan.done:  # e.g. a rerun with --plot after a run without it
        if plot and not png_path(out_dir, job).is_file():
            twin = wfdb.rdrecord(str(out_dir / job.record_name)).p_signal.T  # (12, L) mV
            plot_job(out_dir, job, plan.references[reference_key(job.request)].reference, twin, model.fs)
            summary.plotted += 1
    start = time.perf_counter()
    bar = tqdm(total=len(plan.pending), unit="twin", desc="generate-ecg", disable=not progress or not plan.pending)
    try:
        for first in range(0, len(plan.pending), sampling.batch_size):
            jobs = plan.pending[first:first + sampling.batch_size]
            specs = plan.specs[first:first + sampling.batch_size]
            if sampling.edit_strength is None:
                signals = np.asarray(model.generate(specs, options=sampling.options, batch_size=sampling.batch_size,
                                                    progress=False))
            else:
                signals = np.asarray(model.edit(specs, sampling.edit_strength, options=sampling.options,
                                                batch_size=sampling.batch_size, progress=False))
            if signals.shape != (len(jobs), N_LEADS, model.length):
                raise RuntimeError(f"TwinModel.generate returned {signals.shape}, expected {(len(jobs), N_LEADS, model.length)}")
            for job, spec, signal in zip(jobs, specs, signals):  # signal: (12, L) mV
                loaded = plan.references[reference_key(job.request)]
                provenance = twin_provenance(job, spec, loaded, sampling, model)
                hea = write_twin(out_dir, job.record_name, signal, model.fs, provenance)
                if plot:
                    plot_job(out_dir, job, loaded.reference, signal, model.fs)
                    summary.plotted += 1
                manifest.append(twin_row(job, hea, provenance))
                summary.written += 1
                summary.written_names.append(job.record_name)
                bar.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary
