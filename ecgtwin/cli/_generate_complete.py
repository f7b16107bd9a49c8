"""``generate-ecg --complete PARTIAL [--leads I,II] [--reference EARLIER]``: full 12-lead ECGs from a few leads.

The recorded leads of PARTIAL (all its standard leads, or those named by
``--leads``) are kept; the others are generated for the person of
``--reference`` (an earlier full 12-lead ECG of the same patient), or for the
population without one (:func:`ecgtwin.editing.complete_leads`). Each output
is a 12-lead WFDB record with its provenance in the header and in
``out/manifest.csv``; reruns resume.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ecgtwin.cli.generate import UsageError
from ecgtwin.constants import LEADS

PARTIAL_INCOMPATIBLE = ("manifest", "edit", "strength", "reference_condition", "reference_hr", "reference_age",
                        "reference_sex", "skip_invalid", "plot")
"""Options that make no sense with --complete."""


def check_completion_args(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The checks of a completion run that need no model; returns the --leads names (None = all recorded)."""
    from ecgtwin.cli._generate_checks import check_checkpoint_path, check_output_folder
    from ecgtwin.editing import canonical_leads
    from ecgtwin.io.wfdb_io import ECGInputError, check_reference

    given = [f"--{name.replace('_', '-')}" for name in PARTIAL_INCOMPATIBLE if getattr(args, name) not in (None, False)]
    if given:
        raise UsageError(f"{', '.join(given)} cannot be combined with --complete")
    leads = None
    if args.leads is not None:
        try:
            leads = canonical_leads([x for x in args.leads.replace(";", ",").split(",") if x.strip()])
        except ValueError as exc:
            raise UsageError(f"--leads: {exc}") from None
    try:
        check_reference(args.complete, allow_missing=True)
        if args.reference is not None:
            header = check_reference(args.reference, allow_missing=True)
            missing = [lead for lead, c in zip(LEADS, header.columns) if c < 0]
            if missing:
                raise UsageError(f"--reference {args.reference}: must be a full 12-lead ECG, it lacks "
                                 f"{', '.join(missing)} (a partial record cannot be the reference)")
    except ECGInputError as exc:
        raise UsageError(str(exc)) from None
    check_output_folder(Path(args.out).expanduser().resolve())
    check_checkpoint_path(args.checkpoint)
    return leads


def completion_name(partial: Any, leads: tuple[str, ...], reference: Any | None, seed: int, index: int,
                    offset: float = 0.0) -> str:
    """``<partial>__complete-I-II__<reference or population>[__off<offset>]__s<seed>__<index>``."""
    from ecgtwin.io.manifest import name_number
    from ecgtwin.io.wfdb_io import sanitize_record_name

    person = reference.record_name if reference is not None else "population"
    parts = [partial.record_name, "complete-" + "-".join(leads), person]
    parts += [f"off{name_number(str(offset))}"] if offset else []  # another window of the record is another output
    parts += [f"s{seed}", f"{index:03d}"]
    return "__".join(sanitize_record_name(p) for p in parts)


def completion_provenance(args: argparse.Namespace, partial: Any, leads: tuple[str, ...], reference: Any | None,
                          seed: int, model: Any) -> dict[str, str]:
    """Header comments of a completed record (and, under the same names, its manifest row)."""
    from ecgtwin import __version__

    options = args.sampling
    kept = {f"recorded_{k}": v for k, v in partial.transformations().items() if k.startswith("reference_")}
    return {
        "mode": f"complete from {'+'.join(leads)} ({'personal' if reference is not None else 'population'}"
                f"{f', reconstruction guidance {options.reconstruction:g}' if options.reconstruction else ''}"
                f"{_start_note(args) if reference is not None else ''})",
        "recorded_leads_filter": "high-passed like references for the model; the removed baseline added back",
        "reference": str(partial.path.resolve()),
        "recorded_leads": ";".join(leads),
        **{k.replace("recorded_reference_", "recorded_"): v for k, v in kept.items()},
        "person": str(reference.path.resolve()) if reference is not None else "population (no reference)",
        "target_labels": ";".join(args.condition or ()) or "none",
        "rhythm": args.rhythm or "none",
        "hr": "unknown" if args.hr is None else f"{args.hr:g}",
        "age": "unknown" if args.age is None else f"{args.age:g}",
        "sex": args.sex or "unknown",
        "sampler": options.sampler, "steps": str(options.num_steps),
        "spacing": options.spacing,
        "guidance_condition": f"{options.guidance_condition:g}", "guidance_person": f"{options.guidance_person:g}",
        "reconstruction_guidance": f"{options.reconstruction:g}",
        "regression_start": "none" if reference is None else f"{regression_start(args):g}", "seed": str(seed), "checkpoint": str(model.checkpoint_hash),
        "checkpoint_file": Path(model.checkpoint_path).name, "ecgtwin_version": __version__,
    }


def regression_start(args: argparse.Namespace) -> float:
    """The SDEdit strength of a personal completion's start from the earlier ECG's lead map (1 = pure noise)."""
    from ecgtwin.pipeline import resolve_regression_start

    return resolve_regression_start(args.regression_start)


def _start_note(args: argparse.Namespace) -> str:
    start = regression_start(args)
    return "" if start >= 1.0 else f", from the earlier ECG's lead map at strength {start:g}"


def run_completion(args: argparse.Namespace, model: Any, leads: tuple[str, ...] | None) -> int:
    """Read, complete and write; returns the exit code."""
    from ecgtwin.editing import canonical_leads
    from ecgtwin.io.manifest import OutputManifest, TwinRow
    from ecgtwin.io.wfdb_io import ECGInputError, read_reference, write_twin

    if args.reconstruction is not None:  # else the reconstruction weight of COMPLETION_SAMPLING
        args.sampling = replace(args.sampling, reconstruction=args.reconstruction)
    seconds = model.length / model.fs
    try:
        partial = read_reference(args.complete, model.fs, seconds, args.offset, partial=True)
        reference = read_reference(args.reference, model.fs, seconds) if args.reference is not None else None
    except ECGInputError as exc:
        raise UsageError(str(exc)) from None
    names = leads if leads is not None else partial.leads
    missing = [n for n in names if n not in partial.leads]
    if missing:
        raise UsageError(f"--leads {', '.join(missing)}: not in {partial.path} (it holds {', '.join(partial.leads)})")
    try:
        names = canonical_leads(names)
    except ValueError as exc:
        raise UsageError(f"{partial.path}: {exc} (pick some with --leads)") from None
    names = tuple(n for n in partial.leads if n in names)  # LEADS order
    rows = [partial.leads.index(n) for n in names]
    out_dir = Path(args.out).expanduser().resolve()
    manifest = OutputManifest(out_dir)
    seeds = [args.seed + i for i in range(args.num)]
    record_names = [completion_name(partial, names, reference, args.seed, i, args.offset or 0.0)
                    for i in range(args.num)]
    todo = [i for i, name in enumerate(record_names) if args.overwrite or not manifest.already_written(name)]
    settings = completion_provenance(args, partial, names, reference, args.seed, model)
    rows_by_name = {row["record_name"]: row for row in manifest.rows()}
    for i in set(range(args.num)) - set(todo):  # refuse to skip records made otherwise
        row = rows_by_name[record_names[i]]
        for key in ("reference", "mode", "sampler", "steps", "guidance_condition", "guidance_person", "checkpoint",
                    "target_labels", "rhythm", "hr", "age", "sex", "spacing"):
            made = str(row.get(key) or ("quadratic" if key == "spacing" else ""))  # rows from before the spacing column
            if made != settings[key]:
                raise UsageError(f"{out_dir} already holds {record_names[i]} made with {key}={made} (this run: "
                                 f"{settings[key]}); pass --overwrite to replace it, or choose another --out")
    seconds = 0.0
    if todo:
        start = time.perf_counter()
        try:
            signals = model.complete(np.repeat(partial.signal[rows][None], len(todo), axis=0), names,
                                     None if reference is None else reference.signal, labels=args.condition or [],
                                     hr=args.hr, age=args.age, sex=args.sex, rhythm=args.rhythm or "none",
                                     seeds=[seeds[i] for i in todo], options=args.sampling,
                                     regression_start=args.regression_start,
                                     batch_size=args.batch_size, progress=not args.no_progress)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        seconds = (time.perf_counter() - start) / len(todo)
        for i, signal in zip(todo, signals):  # signal: (12, L) mV
            provenance = completion_provenance(args, partial, names, reference, seeds[i], model)
            hea = write_twin(out_dir, record_names[i], signal, model.fs, provenance)
            manifest.append(TwinRow(record_name=record_names[i], path=str(hea), reference=provenance["reference"],
                                    target_labels=provenance["target_labels"], hr=provenance["hr"],
                                    age=provenance["age"], sex=provenance["sex"], sampler=provenance["sampler"],
                                    steps=provenance["steps"], guidance_person=provenance["guidance_person"],
                                    guidance_condition=provenance["guidance_condition"], seed=provenance["seed"],
                                    checkpoint=provenance["checkpoint"], rhythm=provenance["rhythm"],
                                    mode=provenance["mode"], spacing=provenance["spacing"]))
    print(f"generate-ecg: {len(todo)} completed record(s) written, {args.num - len(todo)} already there (skipped)\n"
          f"  from {'+'.join(names)} of {partial.path}, person: "
          f"{reference.path if reference is not None else 'population (no reference)'}\n"
          f"  records:  {out_dir}\n  manifest: {manifest.path}"
          + (f"\n  {seconds:.2f} s per record (sampler {args.sampling.sampler}, {args.sampling.num_steps} steps, "
             f"checkpoint {model.checkpoint_hash})" if todo else ""))
    return 0
