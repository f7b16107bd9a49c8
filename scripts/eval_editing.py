"""Measure editing and personal lead completion on one fold (tune on 7, report on 8), tables and figures.

Completion: for each same-patient pair of the fold, the TARGET's recorded leads (lead I; I + II; the six limb
leads) are given and the other leads reconstructed by
  (a) personal completion: the reference (the patient's earlier ECG) gives the person,
  (b) population completion: no reference (learned null base vector),
  (c) linear regression from the given leads, fitted on the train folds,
  (d) copy: the earlier ECG's own leads,
  (e) personal regression: the linear map of (c) fitted on the patient's earlier ECG alone.
Per missing lead: median Pearson r over records and RMSE (mV) against the real target; the mean precordial r
difference personal - each other arm with a 95% paired bootstrap CI over patients.

Editing: each pair's REFERENCE edited under the TARGET's condition at several strengths (0: the recording
itself, the baseline every edit starts from): RMSE to the recording,
target-label macro-AUROC (reference classifier), HR MAE against the target HR, identification top-1 among
the fold's real targets (own source record excluded); a figure of one ECG edited at 3 strengths.

    python scripts/eval_editing.py --fold 7 --out outputs/editing_fold7          # tuning
    python scripts/eval_editing.py --fold 7 --sampler ddpm --steps 100 --resample 4 --parts completion \
        --out outputs/editing_fold7_repaint                                       # tuning: + RePaint resampling
    python scripts/eval_editing.py --fold 8 --out docs/editing                    # report

Writes editing_completion.json, report.md (tables) and figures into --out. Each stage (a given-lead set, an editing
strength) is kept in --out/sections/ as it finishes; rerunning the same command computes only the rest (--fresh:
recompute all).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ecgtwin.api import TwinModel
from ecgtwin.constants import LEADS
from ecgtwin.editing import complete_leads, edit_ecgs
from ecgtwin.eval.completion import LeadRegression, lead_scores, pearson_per_record, personal_regression
from ecgtwin.eval.editing_report import (PRECORDIAL, completion_markdown, editing_markdown, plot_completion_example,
                                         plot_completion_r, plot_editing_curve, plot_edits)
from ecgtwin.eval.harness_data import datamodule_for, select_pairs, split_arrays, twin_specs
from ecgtwin.eval.harness_store import SectionStore, run_key
from ecgtwin.eval.metrics import bootstrap_ci
from ecgtwin.eval.report import from_jsonable
from ecgtwin.io.wfdb_io import file_sha256
from ecgtwin.pipeline import COMPLETION_SAMPLING, resolve_regression_start, resolve_sampling

STAGE_VERSION = 2
"""Part of every stored stage's key: bump it when the completion or editing method or their measures change, so
stages of the older code are not reused."""
GIVEN = {"I": ("I",), "I+II": ("I", "II"), "limb leads": ("I", "II", "III", "aVR", "aVL", "aVF")}
STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
"""Editing strengths measured; 0 is the recording itself (no generation), the row every edit starts from."""


def slug(given: str) -> str:
    """A file-name form of a given-lead set's name ("I+II" -> "I_II")."""
    return given.replace(" ", "_").replace("+", "_")


def example_figure(given: str) -> str:
    """File name of the completion example figure of one given-lead set."""
    return f"completion_example_{slug(given)}.png"


def precordial_r(recon: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Mean Pearson r over V1-V6 per record (N,)."""
    rows = [LEADS.index(v) for v in PRECORDIAL]
    return np.nanmean(pearson_per_record(recon[:, rows], real[:, rows]), axis=1)


def paired_diff_ci(a: np.ndarray, b: np.ndarray, patient: np.ndarray, n_boot: int = 500) -> tuple[float, float, float]:
    """Mean of a - b with a 95% bootstrap CI resampling whole patients."""
    rng = np.random.default_rng(0)
    ids = np.unique(patient)
    groups = [np.flatnonzero(patient == p) for p in ids]
    diff = a - b
    stats = []
    for _ in range(n_boot):
        rows = np.concatenate([groups[i] for i in rng.integers(0, len(ids), len(ids))])
        stats.append(np.nanmean(diff[rows]))
    return float(np.nanmean(diff)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def completion_part(model: TwinModel, pairs, train: np.ndarray, options, args, out: Path,  # type: ignore[no-untyped-def]
                    store: SectionStore) -> dict:
    results = {}
    seeds = list(range(len(pairs)))
    for name, given in GIVEN.items():
        if name not in args.given:
            continue
        rows = [LEADS.index(g) for g in given]
        partial = pairs.target[:, rows]  # (P, k, L)
        missing = [lead for lead in LEADS if lead not in given]
        arms = {  # each arm's reconstruction (P, 12, L), computed when its stage is not stored yet
            "personal": lambda: complete_leads(model, partial, given, reference=pairs.reference, seeds=seeds,
                                               options=options, batch_size=args.batch_size,
                                               preprocessed=True,  # cache records: filtered already
                                               regression_start=args.regression_start),
            "population": lambda: complete_leads(model, partial, given, reference=None, seeds=seeds, options=options,
                                                 batch_size=args.batch_size, preprocessed=True),
            "regression": lambda: LeadRegression(given).fit(train).predict(partial),
            "personal_regression": lambda: personal_regression(given, pairs.reference, partial),
            "copy": lambda: pairs.reference,
        }
        scored, reused = {}, []
        for arm, reconstruct in arms.items():
            def compute(reconstruct=reconstruct) -> dict:  # type: ignore[no-untyped-def]
                x = reconstruct()
                return {"per_lead": lead_scores(x, pairs.target, missing),
                        "precordial_r": precordial_r(x, pairs.target),  # (P,) for the paired CIs
                        "kept_max_abs_mV": float(np.abs(x[:, rows] - partial).max()),
                        "example": np.round(x[0], 4)}  # (12, L) mV: the figure's record

            personal = {"sampling": repr(options)}
            start = resolve_regression_start(args.regression_start)
            if start < 1.0:  # (absent from pure noise: stages stored before the option stay valid)
                personal["regression_start"] = start
            depends = {"personal": personal, "population": {"sampling": repr(options)},
                       "regression": {"train_records": args.train_records}}.get(arm)  # beyond the run key
            payload, was_stored = store.stage(f"completion_{slug(name)}_{arm}", compute, depends)
            scored[arm] = from_jsonable(payload)
            if was_stored:
                reused.append(arm)
        r_prec = {arm: np.asarray(v["precordial_r"], dtype=np.float64) for arm, v in scored.items()}
        results[name] = {
            "per_lead": {arm: v["per_lead"] for arm, v in scored.items()},
            "precordial_r_mean": {arm: float(np.nanmean(v)) for arm, v in r_prec.items()},
            "personal_minus": {arm: paired_diff_ci(r_prec["personal"], r_prec[arm], pairs.patient_id)
                               for arm in arms if arm != "personal"},
            "kept_max_abs_mV": scored["personal"]["kept_max_abs_mV"],
        }
        example = {arm: np.asarray(v["example"], dtype=np.float32) for arm, v in scored.items()}
        plot_completion_example(pairs.target[0], example, given, model.fs, out / example_figure(name))
        stored_note = f" (stored: {', '.join(reused)})" if reused else ""
        print(f"  completion from {name}{stored_note}: precordial r "
              + ", ".join(f"{a} {v:.3f}" for a, v in results[name]["precordial_r_mean"].items()), flush=True)
    return results


def editing_part(model: TwinModel, pairs, classifier, options, args, out: Path,  # type: ignore[no-untyped-def]
                 store: SectionStore) -> dict:
    from ecgtwin.eval.clinical import heart_rates
    from ecgtwin.eval.harness import base_vectors_of
    from ecgtwin.eval.harness_data import classifier_columns
    from ecgtwin.eval.harness_metrics import consistency_section
    from ecgtwin.eval.metrics import macro_auroc

    specs = twin_specs(model, pairs)
    target_hr = np.array([np.nan if s.hr is None else s.hr for s in specs])
    z_ref = base_vectors_of(model, pairs.reference, pairs.reference_labels, pairs.reference_meta)
    z_tgt = base_vectors_of(model, pairs.target, pairs.target_labels, pairs.target_meta)
    columns = classifier_columns(model.vocabulary, classifier) if classifier is not None else None
    classifier_hash = args.classifier and file_sha256(args.classifier)[:12]
    rows, examples = {}, {}
    for strength in STRENGTHS:
        def compute() -> dict:
            edited = (pairs.reference if strength == 0.0  # (P, 12, L)
                      else edit_ecgs(model, specs, strength, options, batch_size=args.batch_size))
            z = base_vectors_of(model, edited, pairs.target_labels, pairs.target_meta)
            ident = consistency_section({"edit": z}, z_ref, z_tgt, pairs.patient_id, pairs.reference_record,
                                        pairs.target_record)["edit"]
            row = {"rmse_to_recording_mV": float(np.sqrt(np.mean((edited - pairs.reference) ** 2))),
                   "hr_mae_bpm": float(np.nanmean(np.abs(heart_rates(edited, model.fs) - target_hr))),
                   "id_top1": ident["id_top1"], "ibe_cosine": ident["cosine_mean"]}
            if classifier is not None:
                from ecgtwin.eval.classifier_fit import predict_logits

                logits = predict_logits(classifier, edited)
                point, low, high = bootstrap_ci(macro_auroc, pairs.target_labels[:, columns], logits, n_boot=200)
                row.update(target_auroc=point, target_auroc_low=low, target_auroc_high=high)
            return {"row": row, "example": np.round(edited[0], 4)}  # (12, L) mV: the figure's ECG

        stored, reused = store.stage(f"edit_{strength:g}", compute, {"sampling": repr(options),
                                                                      "classifier": classifier_hash})
        stored = from_jsonable(stored)
        rows[strength] = stored["row"]
        examples[strength] = np.asarray(stored["example"], dtype=np.float32)
        print(f"  edit strength {strength:g}{' (stored)' if reused else ''}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in rows[strength].items()), flush=True)
    spec = specs[0]
    title = (f"editing towards {', '.join(spec.labels) or 'no label'}"
             f"{'' if spec.hr is None else f', HR {spec.hr:.0f} bpm'}")
    plot_edits(pairs.reference[0], examples, title, model.fs, out / "edit_strengths.png")
    rows_out = {str(k): v for k, v in rows.items()}
    plot_editing_curve(rows_out, out / "edit_curve.png")
    return rows_out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--fold", type=int, choices=(7, 8), required=True, help="7 = tuning, 8 = the reported fold")
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt")
    p.add_argument("--max-pairs", type=int, default=None)
    p.add_argument("--train-records", type=int, default=2000, help="train records for the regression baseline")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--parts", nargs="+", default=["completion", "editing"], choices=("completion", "editing"))
    p.add_argument("--sampler", default=None, help="default: DEFAULT_SAMPLING for editing, COMPLETION_SAMPLING for completion")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance-condition", type=float, default=None)
    p.add_argument("--guidance-person", type=float, default=None)
    p.add_argument("--resample", type=int, default=1, help="RePaint resampling per step (ddpm/ddim only)")
    p.add_argument("--given", nargs="+", default=list(GIVEN), choices=list(GIVEN), help="recorded-lead sets to complete from")
    p.add_argument("--reconstruction", type=float, default=None,
                   help="reconstruction-guidance weight of completion (default: that of COMPLETION_SAMPLING; 0 = none)")
    p.add_argument("--regression-start", type=float, default=None,
                   help="personal completion starts from the earlier ECG's linear lead map at this SDEdit strength")
    p.add_argument("--out", required=True)
    p.add_argument("--fresh", action="store_true",
                   help="recompute every stage (default: reuse the stages in OUT/sections/ of the same settings)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = TwinModel.load(args.checkpoint)
    other = 8 if args.fold == 7 else 7
    dm = datamodule_for(model, args.root, {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [other],
                                           "test_folds": [args.fold]}, progress=False)
    pairs = select_pairs(dm, args.max_pairs, seed=0, split="test")
    given = (args.sampler, args.steps, args.guidance_condition, args.guidance_person)
    options = resolve_sampling(*given)  # editing: the twins' defaults (DEFAULT_SAMPLING)
    completion_options = replace(resolve_sampling(*given, defaults=COMPLETION_SAMPLING), resample=args.resample)
    if args.reconstruction is not None:
        completion_options = replace(completion_options, reconstruction=args.reconstruction)
    report = {"checkpoint": str(model.checkpoint_path), "fold": args.fold, "n_pairs": len(pairs),
              "n_patients": int(len(np.unique(pairs.patient_id))), "sampling": repr(options),
              "completion_sampling": repr(completion_options),
              "completion_regression_start": resolve_regression_start(args.regression_start)}
    # each stage (one given-lead set, one strength) is stored as it finishes: a rerun of the same settings
    # (model, fold, pairs, sampling, baselines) reuses them, so a long fold-8 run can span sittings
    # each part's stages are keyed by its own settings too (stage options): a new editing sampler keeps the
    # completions, a new completion setting keeps the edits
    key = run_key({"checkpoint_hash": model.checkpoint_hash, "fold": args.fold, "root": args.root,
                   "pairs": [pairs.reference_record, pairs.target_record], "stage_version": STAGE_VERSION})
    store = SectionStore(out, key, resume=not args.fresh)
    if "completion" in args.parts:
        train, _, _ = split_arrays(dm, "train", args.train_records)
        report["completion"] = completion_part(model, pairs, train, completion_options, args, out, store)
        plot_completion_r(report["completion"], out / "completion_r.png")
    if "editing" in args.parts:
        from ecgtwin.training.classifier_module import load_classifier

        classifier = load_classifier(args.classifier) if args.classifier else None  # with its label names
        report["editing"] = editing_part(model, pairs, classifier, options, args, out, store)
    (out / "editing_completion.json").write_text(json.dumps(report, indent=1, default=float))
    write_markdown(report, out / "report.md")
    print(f"wrote {out / 'editing_completion.json'} and {out / 'report.md'}")


def write_markdown(report: dict, path: Path) -> None:
    lines = [f"# Editing and lead completion, fold {report['fold']}", "",
             f"Model: `{report['checkpoint']}`.", "",
             f"Editing sampling: `{report['sampling']}`.", "",
             f"Completion sampling: `{report['completion_sampling']}`; personal completion starts from the earlier "
             f"ECG's lead map at strength {report['completion_regression_start']:g} (1 = from pure noise).", ""]
    if "completion" in report:
        lines += ["## Completion (missing precordial leads)", "",
                  completion_markdown(report["completion"], report["n_pairs"], report["n_patients"]),
                  "![median r per lead](completion_r.png)", ""]
        lines += [f"![example, given {g}]({example_figure(g)})" for g in report["completion"]] + [""]
    if "editing" in report:
        lines += ["## Editing (each pair's reference edited towards the target's condition)", "",
                  f"n = {report['n_pairs']} pairs.", "", editing_markdown(report["editing"]), "",
                  "![editing measures against strength](edit_curve.png)", "",
                  "![one ECG edited at three strengths](edit_strengths.png)", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
