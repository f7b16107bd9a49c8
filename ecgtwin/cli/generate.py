"""generate-ecg: personalised 12-lead ECG twins of your own reference record.

One reference:
  generate-ecg --reference data/ptbxl_sample/records100/01000/01495_lr --condition MI --num 3 --out twins --plot

Edit the recording itself towards a condition (SDEdit; strength 0-1):
  generate-ecg --reference REC --condition MI --edit --strength 0.3 --out edits

Complete a few recorded leads (e.g. lead I of a watch) to a personal 12-lead ECG:
  generate-ecg --complete PARTIAL --leads I --reference EARLIER_12_LEAD_REC --num 3 --out completed

Thousands of twins (one CSV row per reference x target condition; columns
reference, condition [, hr, age, sex, num, seed, offset, rhythm]; see ecgtwin.io.manifest):
  generate-ecg --manifest requests.csv --out twins --batch-size 64 --device cuda

Every input problem is reported before the model loads where it can be (exit 2):
all bad manifest rows at once, with their line numbers; nothing is generated
unless --skip-invalid (then the valid rows are, and out/rejected.csv lists the rest).

Each twin is a WFDB record (out/<name>.hea/.dat, mV, PTB-XL lead order) whose
header comments carry its provenance (reference, labels, rhythm, sampler, seed,
checkpoint hash, and every change made to the reference: resampling, window,
NaN filling, dropped channels, mapped lead names, the reference HR assumed),
listed under the same names in out/manifest.csv. Rerunning the same command
resumes: twins already written are skipped. Twin i of --num N --seed S uses
seed S + i, so the same command always gives the same twins.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ecgtwin.constants import AGE_RANGE_YEARS, HR_RANGE_BPM, TIMESTEP_SPACINGS

DEFAULTS_NOTE = "default: ecgtwin.pipeline.DEFAULT_SAMPLING, with --complete COMPLETION_SAMPLING"
PER_TWIN_OPTIONS: tuple[str, ...] = ("condition", "hr", "age", "sex", "num", "seed", "offset", "rhythm")
"""Options that a --manifest gives per row (its columns) and so may not be given on the command line."""
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
_SEXES = {"m": "M", "male": "M", "f": "F", "female": "F"}


class UsageError(Exception):
    """A problem with the user's input, found before generation: printed without traceback, exit code 2."""


def _sex(text: str) -> str:
    key = text.strip().lower()
    if key not in _SEXES:
        raise argparse.ArgumentTypeError(f"{text!r} is not M or F")
    return _SEXES[key]


def _labels(text: str) -> tuple[str, ...]:
    from ecgtwin.io.manifest import split_conditions

    return split_conditions(text)


def build_parser() -> argparse.ArgumentParser:
    """The ``generate-ecg`` argument parser (no heavy imports)."""
    p = argparse.ArgumentParser(prog="generate-ecg", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    inputs = p.add_argument_group("input (--reference, --manifest or --complete)")
    source = inputs.add_mutually_exclusive_group()
    source.add_argument("--reference", metavar="RECORD",
                        help="12-lead WFDB record (path with or without .hea); with --complete: an earlier 12-lead "
                             "ECG of the same person (without it, completion is for the population)")
    source.add_argument("--manifest", metavar="FILE.csv", help="batch request CSV, one row per reference x condition")
    inputs.add_argument("--complete", metavar="PARTIAL",
                        help="WFDB record holding some of the 12 leads: complete it to a full 12-lead ECG")
    inputs.add_argument("--leads", metavar="LEAD[,LEAD...]",
                        help="with --complete: the recorded leads to keep (default: every standard lead it holds)")

    target = p.add_argument_group("target (with --reference; per row with --manifest)")
    target.add_argument("--condition", type=_labels, metavar="LABEL[,LABEL...]",
                        help="target diagnosis label(s) of the model's vocabulary, e.g. MI or MI,STTC; "
                             "'none' (or '') for no diagnosis label")
    target.add_argument("--rhythm", metavar="NAME",
                        help="target rhythm for models with rhythm labels, e.g. AFIB (default: SR, sinus rhythm; "
                             "'none': no rhythm token)")
    target.add_argument("--hr", type=float, metavar="BPM", help="target heart rate (default: unknown)")
    target.add_argument("--age", type=float, metavar="YEARS", help="target age (default: unknown)")
    target.add_argument("--sex", type=_sex, metavar="M|F", help="target sex (default: unknown)")
    target.add_argument("--num", type=int, metavar="N", help="number of twins (default 1)")
    target.add_argument("--seed", type=int, metavar="SEED", help="seed of twin 0; twin i uses SEED + i (default 0)")

    ref = p.add_argument_group("reference facts (apply to every reference)")
    ref.add_argument("--reference-condition", type=_labels, metavar="LABEL[,..]",
                     help="the reference's own labels (default: unknown, the null condition)")
    ref.add_argument("--reference-hr", type=float, metavar="BPM", help="default: estimated from the signal")
    ref.add_argument("--reference-age", type=float, metavar="YEARS", help="default: from the header comments")
    ref.add_argument("--reference-sex", type=_sex, metavar="M|F", help="default: from the header comments")
    ref.add_argument("--offset", type=float, metavar="SECONDS",
                     help="start of the reference window the model uses (default 0: the first seconds)")

    edit = p.add_argument_group("editing (instead of twins drawn from noise)")
    edit.add_argument("--edit", action="store_true",
                      help="edit the reference itself towards the target condition (SDEdit): the output stays as close "
                           "to the recording as --strength says")
    edit.add_argument("--strength", type=float, metavar="S",
                      help="with --edit: noise level in (0, 1] the recording is taken to; near 0 returns the recording, "
                           "1 is an ordinary twin (e.g. 0.3 keeps the beats, 0.6 changes the morphology)")

    gen = p.add_argument_group("sampling")
    gen.add_argument("--sampler", metavar="NAME",
                     help=f"sampler, e.g. dpmpp_2m or ddpm ({DEFAULTS_NOTE}; an unknown name lists all)")
    gen.add_argument("--steps", type=int, metavar="K",
                     help="sampler steps (default: that of DEFAULT_SAMPLING for its sampler, else the sampler's own)")
    gen.add_argument("--guidance-condition", type=float, metavar="S",
                     help=f"classifier-free guidance scale of the target condition ({DEFAULTS_NOTE})")
    gen.add_argument("--guidance-person", type=float, metavar="S",
                     help=f"guidance scale of the reference's base vector ({DEFAULTS_NOTE})")
    gen.add_argument("--spacing", choices=tuple(TIMESTEP_SPACINGS),
                     help=f"timestep grid: quadratic (more steps at low noise) or trailing (uniform) ({DEFAULTS_NOTE})")
    gen.add_argument("--reconstruction", type=float, metavar="W",
                     help="with --complete: reconstruction-guidance weight (default "
                          "that of ecgtwin.pipeline.COMPLETION_SAMPLING; 0 = projection only)")
    gen.add_argument("--regression-start", type=float, metavar="S",
                     help="with --complete and --reference: start from the lead map fitted on the earlier ECG, "
                          "noised to strength S in (0, 1] (default that of ecgtwin.pipeline.COMPLETION_REGRESSION_START; "
                          "1 = from pure noise)")
    gen.add_argument("--checkpoint", metavar="CKPT", help="model bundle (default: the bundled model)")
    gen.add_argument("--batch-size", type=int, default=16, metavar="B", help="twins per model call (default 16)")
    gen.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    gen.add_argument("--threads", type=int, metavar="N",
                     help="CPU threads (default: OMP_NUM_THREADS if set, else the idle CPUs, at most 8)")

    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, metavar="DIR", help="output folder (created; reruns resume)")
    out.add_argument("--plot", action="store_true", help="also write a PNG per twin (reference above twin)")
    out.add_argument("--overwrite", action="store_true",
                     help="regenerate twins already in --out instead of skipping them")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("--skip-invalid", action="store_true",
                     help="with --manifest: generate the valid rows and list the rejected ones in OUT/rejected.csv "
                          "(default: nothing is generated when any row is bad)")
    return p


def _check_range(value: float | None, option: str, bounds: tuple[float, float]) -> None:
    if value is not None and not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
        raise UsageError(f"{option} {value:g} is outside the plausible range {bounds[0]:g}-{bounds[1]:g}")


def check_args(args: argparse.Namespace) -> None:
    """Everything checkable without the model; fills defaults (num, seed, ``sampling`` from
    ``ecgtwin.pipeline.DEFAULT_SAMPLING``). Raises :class:`UsageError`."""
    if args.complete is None and args.reference is None and args.manifest is None:
        raise UsageError("give --reference RECORD, --manifest FILE.csv or --complete PARTIAL")
    if args.leads is not None and args.complete is None:
        raise UsageError("--leads applies to --complete")
    if args.reconstruction is not None and args.complete is None:
        raise UsageError("--reconstruction applies to --complete")
    if args.regression_start is not None and (args.complete is None or args.reference is None):
        raise UsageError("--regression-start applies to --complete with --reference (the lead map is fitted on it)")
    if args.regression_start is not None and not (math.isfinite(args.regression_start)
                                                  and 0 < args.regression_start <= 1):
        raise UsageError(f"--regression-start must be in (0, 1], got {args.regression_start}")
    if args.reconstruction is not None and not (math.isfinite(args.reconstruction) and args.reconstruction >= 0):
        raise UsageError(f"--reconstruction must be a finite number >= 0, got {args.reconstruction}")
    if args.complete is not None:
        pass  # the target condition is optional: the recorded leads decide
    elif args.manifest is not None:
        given = [f"--{name}" for name in PER_TWIN_OPTIONS if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with --manifest: give them per row "
                         f"(manifest columns {', '.join(n for n in PER_TWIN_OPTIONS if n != 'condition')})")
    elif args.condition is None:
        raise UsageError("--condition is required with --reference (e.g. --condition MI or --condition MI,STTC)")
    elif args.skip_invalid:
        raise UsageError("--skip-invalid applies to --manifest rows")
    if args.edit and args.strength is None:
        raise UsageError("--edit needs --strength S, 0 < S <= 1 (e.g. --strength 0.3)")
    if args.strength is not None and not args.edit:
        raise UsageError("--strength applies to --edit")
    if args.strength is not None and not (math.isfinite(args.strength) and 0 < args.strength <= 1):
        raise UsageError(f"--strength must be in (0, 1], got {args.strength}")
    args.num = 1 if args.num is None else args.num
    args.seed = 0 if args.seed is None else args.seed
    args.offset = 0.0 if args.offset is None else args.offset
    if not (math.isfinite(args.offset) and args.offset >= 0):
        raise UsageError(f"--offset must be a number of seconds >= 0, got {args.offset}")
    for option, value in (("--num", args.num), ("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be at least 1, got {value}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    for option in ("--hr", "--reference-hr"):
        _check_range(getattr(args, option[2:].replace("-", "_")), option, HR_RANGE_BPM)
    for option in ("--age", "--reference-age"):
        _check_range(getattr(args, option[2:].replace("-", "_")), option, AGE_RANGE_YEARS)
    for option in ("--guidance-condition", "--guidance-person"):
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"{option} must be a finite number >= 0, got {value}")
    from ecgtwin.pipeline import COMPLETION_SAMPLING, resolve_sampling

    try:  # completion has its own defaults (reconstruction guidance, no condition guidance)
        args.sampling = resolve_sampling(args.sampler, args.steps, args.guidance_condition, args.guidance_person,
                                         defaults=COMPLETION_SAMPLING if args.complete is not None else None,
                                         spacing=args.spacing)
    except ValueError as exc:
        raise UsageError(f"--sampler/--steps: {exc}") from None
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        raise UsageError(f"--device {args.device!r} is not cpu, cuda or cuda:N")
    from ecgtwin.cli._generate_checks import check_checkpoint_path, check_output_folder

    check_output_folder(Path(args.out).expanduser().resolve())
    check_checkpoint_path(args.checkpoint)


def load_model(checkpoint: str | None, device: str) -> Any:
    """``ecgtwin.api.TwinModel.load`` (the bundled model when ``checkpoint`` is None); tests replace this hook."""
    from ecgtwin.api import TwinModel

    return TwinModel.load(checkpoint, device=device)


def _load_checked(loader: Callable[[str | None, str], Any], args: argparse.Namespace) -> Any:
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {args.device}: no CUDA device is available (use --device cpu)")
    try:
        return loader(args.checkpoint, args.device)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # FileNotFoundError is an OSError
        what = args.checkpoint or "the bundled model"
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise UsageError(f"cannot load {what}: {message}") from None


def _requests(args: argparse.Namespace) -> Any:
    """The run's requests (:class:`~ecgtwin.io.manifest.RequestManifest`), every reference checked (no model yet)."""
    from ecgtwin.cli import _generate_checks as checks
    from ecgtwin.io.manifest import TwinRequest, parse_request_manifest

    if args.manifest is not None:
        try:
            requests = parse_request_manifest(args.manifest)
        except ValueError as exc:  # ECGInputError names the file
            raise UsageError(str(exc)) from None
    else:
        requests = checks.command_line_requests(TwinRequest(
            reference=Path(args.reference).expanduser(), conditions=args.condition, hr=args.hr, age=args.age,
            sex=args.sex, num=args.num, seed=args.seed, offset=args.offset, rhythm=args.rhythm))
    checks.precheck_references(requests)
    return requests


def _run(args: argparse.Namespace, loader: Callable[[str | None, str], Any]) -> int:
    from ecgtwin.runtime import prepare_process

    try:
        threads = prepare_process(args.threads)  # before torch is imported
    except ValueError as exc:
        raise UsageError(f"--threads: {exc}") from None
    check_args(args)
    if args.complete is not None:
        from ecgtwin.cli import _generate_complete as completion

        leads = completion.check_completion_args(args)
        return completion.run_completion(args, _load_checked(loader, args), leads)
    from ecgtwin.cli import _generate_batch as batch
    from ecgtwin.cli import _generate_checks as checks
    from ecgtwin.io.manifest import OutputManifest
    from ecgtwin.io.wfdb_io import ECGInputError

    out_dir = Path(args.out).expanduser().resolve()  # absolute: the same paths however --out was given
    requests = _requests(args)
    checks.settle(requests, args.skip_invalid, out_dir)  # every row and reference problem so far, before the model
    try:
        manifest = OutputManifest(out_dir)
    except ECGInputError as exc:
        raise UsageError(f"--out: {exc}") from None
    model = _load_checked(loader, args)
    from ecgtwin.api import TwinSpec

    sampling = batch.RunSampling(args.sampling, args.batch_size, args.strength if args.edit else None)
    ref_labels = None
    if args.reference_condition is not None:
        ref_labels = checks.canonical_labels(args.reference_condition, model.vocabulary, "--reference-condition")
    reference_options = batch.ReferenceOptions(ref_labels, args.reference_hr, args.reference_age, args.reference_sex)
    plan = batch.prepare_jobs(requests, model, manifest, sampling, reference_options, TwinSpec,
                              overwrite=args.overwrite, plot=args.plot)
    checks.settle(requests, args.skip_invalid, out_dir, final=True)
    batch.check_settings_match(plan.done, manifest, sampling, model.checkpoint_hash)
    print_estimate(plan, model, sampling, args, threads)
    try:
        summary = batch.run_plan(plan, model, manifest, sampling, plot=args.plot, progress=not args.no_progress)
    except Exception:
        print(f"generate-ecg: stopped by an error; finished twins are kept in {manifest.out_dir}, "
              "rerun the same command to resume", file=sys.stderr)
        raise
    print(summary.report(sampling, model.checkpoint_hash, threads))
    if summary.interrupted:
        left = len(plan.pending) - summary.written
        print(f"generate-ecg: interrupted, {left} twin(s) not generated; rerun the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def print_estimate(plan: Any, model: Any, sampling: Any, args: argparse.Namespace, threads: int) -> None:
    """Before a run of more than one batch: how long (one sampler step timed) and how much disk it will take."""
    n = len(plan.pending)
    if n <= sampling.batch_size:
        return
    seconds = model.estimate_seconds(n, sampling.options, sampling.batch_size)
    per_twin_bytes = model.length * 12 * 2 + 2048 + (150_000 if args.plot else 0)  # 16-bit .dat, .hea, PNG
    hours, rest = divmod(int(seconds), 3600)
    took = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
    print(f"generate-ecg: {n} twin(s) to generate: about {took} ({seconds / n:.2f} s per twin on {args.device}, "
          f"{threads} CPU thread(s), {sampling.sampler} {sampling.steps} steps) and about "
          f"{n * per_twin_bytes / 1e9:.2f} GB in {Path(args.out).expanduser().resolve()}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, model_loader: Callable[[str | None, str], Any] | None = None) -> int:
    """Entry point of ``generate-ecg``; returns the exit code (2 = bad input, found before generating).

    ``model_loader(checkpoint, device)`` replaces :func:`load_model` (tests inject a fake ``TwinModel``).
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or an argparse error (2, message already printed)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return _run(args, model_loader or load_model)
    except UsageError as exc:
        print(f"generate-ecg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
