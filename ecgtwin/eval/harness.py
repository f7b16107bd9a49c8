"""Evaluation harness: twins of the test split's same-patient pairs, scored next to their baselines.

For every test pair (reference, target) of one patient the model generates the
twin of the REFERENCE under the TARGET's condition (labels, HR, age, sex). Four
sections, each with the baselines beside every number (see
:mod:`ecgtwin.eval.harness_metrics`): twin | copy-the-reference | population
model (optional) | real.

* fidelity / diversity at one matched size n for every arm (:mod:`ecgtwin.eval.fidelity`):
  FD and KID with bootstrap CIs, k-NN precision/recall (k=3) against held-out real
  targets, in the classifier's penultimate feature space (or standardized
  :func:`~ecgtwin.eval.metrics.simple_ecg_features` without a classifier);
* personal consistency: IBE cosine of twin vs its reference, patient
  identification of twins among the real targets (top-1/top-5 vs chance);
* controllability: classifier macro-AUROC for the target labels (bootstrap CI),
  HR MAE target vs measured, and a subset generated at extreme HR targets;
* realism (:mod:`ecgtwin.eval.realism`): limb-lead residuals, amplitude and noise ratios,
  RR regularity, spurious beats, inter-lead correlation error, a classifier two-sample
  test and rhythm control;
* clinical validity: PR/QRS/QT distributions, Einthoven/Goldberger residuals.

:func:`evaluate` returns a JSON-ready dict and writes ``report.json``,
``report.md`` and PNGs (:mod:`ecgtwin.eval.report`). Each section reaches the report
as soon as it finishes; the twins and the arms they were compared with are saved
as ``twins.npz``, and rerunning the same command skips finished sections
(:mod:`ecgtwin.eval.harness_store`).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.pipeline import resolve_sampling
from ecgtwin.eval.classifier_fit import predict_logits
from ecgtwin.eval.clinical import heart_rates
from ecgtwin.eval.fidelity import matched_fidelity_section, matched_rows
from ecgtwin.eval.harness_data import (GenerateFn, PairArrays, check_compatible, classifier_columns, encoding_specs,
                                      select_pairs, split_arrays, twin_specs)
from ecgtwin.eval.harness_metrics import (auroc_section, clinical_section, consistency_section, extreme_hr_section,
                                          feature_space, hr_section)
from ecgtwin.eval.harness_store import SectionStore, run_key
from ecgtwin.eval.identification import identification_report
from ecgtwin.eval.metrics import simple_ecg_features, standardize_features
from ecgtwin.eval.privacy import plot_closest_pairs, privacy_section, spectrum_embedding
from ecgtwin.eval.realism import realism_section
from ecgtwin.eval.report import to_jsonable, write_report


def base_vectors_of(model: TwinModel, signals: np.ndarray, labels: np.ndarray, meta: dict[str, np.ndarray]) -> np.ndarray:
    """IBE base vectors (N, D) of ``signals`` encoded with their own condition (labels, HR, age, sex)."""
    return model.base_vectors(encoding_specs(model, signals, labels, meta))


def two_sample_features(signals: dict[str, np.ndarray], real: np.ndarray, fs: float, feats: dict[str, np.ndarray],
                        real_feats: np.ndarray, with_classifier: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of the two-sample test: standardized handcrafted features, plus the classifier's (z-scored with the
    real targets' statistics) when the fidelity space is the classifier's. Returns ``({method: (P, F)}, (P, F))``."""
    names = list(signals)
    real_z, *rest = standardize_features(simple_ecg_features(real, fs), *(simple_ecg_features(signals[k], fs) for k in names))
    if with_classifier:
        real_c, *rest_c = standardize_features(real_feats, *(feats[k] for k in names))
        real_z = np.concatenate([real_z, real_c], axis=1)  # (P, F_simple + F_classifier)
        rest = [np.concatenate([a, b], axis=1) for a, b in zip(rest, rest_c)]
    return dict(zip(names, rest)), real_z


def privacy_spaces(signals: dict[str, np.ndarray], real: np.ndarray, train: np.ndarray, fs: float,
                   classifier: Any | None) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, bool]]:
    """The privacy section's spaces: aligned signals, magnitude spectra and features (handcrafted, plus the
    classifier's when given; z-scored with the TRAINING records' statistics). See :func:`privacy_section`."""
    names = list(signals)
    spectra = {k: spectrum_embedding(v) for k, v in signals.items()}
    train_f, real_f, *rest = standardize_features(simple_ecg_features(train, fs), simple_ecg_features(real, fs),
                                                  *(simple_ecg_features(signals[k], fs) for k in names))
    if classifier is not None:
        from ecgtwin.eval.harness_metrics import classifier_features

        train_c, real_c, *rest_c = standardize_features(classifier_features(classifier, train),
                                                        classifier_features(classifier, real),
                                                        *(classifier_features(classifier, signals[k]) for k in names))
        train_f, real_f = np.concatenate([train_f, train_c], axis=1), np.concatenate([real_f, real_c], axis=1)  # (N, F + C)
        rest = [np.concatenate([a, b], axis=1) for a, b in zip(rest, rest_c)]
    return {"signal": (dict(signals), real, train, True),
            "spectrum": (spectra, spectrum_embedding(real), spectrum_embedding(train), True),
            "features": (dict(zip(names, rest)), real_f, train_f, False)}


def _subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or a seeded random ``limit`` of them."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _settings(model: TwinModel, datamodule: Any, pairs: PairArrays, population_model: TwinModel | None,
              options: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "checkpoint": str(model.checkpoint_path), "checkpoint_hash": model.checkpoint_hash,
        "population_checkpoint": None if population_model is None else population_model.description,
        "population_checkpoint_hash": None if population_model is None else population_model.checkpoint_hash,
        "data_root": str(getattr(datamodule, "root", "?")), "folds": dict(getattr(datamodule, "folds", {})),
        "n_pairs": len(pairs), "n_patients": int(len(np.unique(pairs.patient_id))),
        "fs": model.fs, "length": model.length, "labels": list(model.vocabulary.names), **options, **(extra or {}),
    }


def evaluate(
    model: TwinModel,
    datamodule: Any,
    classifier: Any | None,
    out_dir: str | Path,
    max_pairs: int | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    guidance_condition: float | None = None,
    guidance_person: float | None = None,
    seed: int = 0,
    spacing: str | None = None,
    population_model: TwinModel | None = None,
    extreme_hr: tuple[float, ...] = (45.0, 140.0),
    n_extreme: int = 16,
    max_clinical: int | None = 64,
    n_boot: int = 200,
    batch_size: int = 16,
    n_examples: int = 3,
    privacy: bool = True,
    privacy_max_train: int | None = None,
    downstream: bool = False,
    downstream_max_pairs: int | None = None,
    downstream_epochs: int = 8,
    personalized: bool = False,
    personal_max_patients: int | None = None,
    personal_per_condition: int = 2,
    personal_steps: int = 10,
    personal_lr: float = 1e-4,
    settings: dict[str, Any] | None = None,
    progress: bool = True,
    resume: bool = True,
    guidance_interval: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on the test pairs of ``datamodule``; write the report to ``out_dir``; return it.

    Args:
        model: the personalised twin model (needs an IBE).
        datamodule: :class:`~ecgtwin.data.datamodule.ECGDataModule` with ``pairs=True``, the
            model's label set, fs and duration (prepared/set up here if needed).
        classifier: :class:`~ecgtwin.eval.classifier.ECGClassifier` (feature space + AUROC) or ``None``.
        max_pairs: cap on the pairs (seeded random subset); ``None`` = all.
        sampler, steps, guidance_condition, guidance_person, guidance_interval: generation settings
            (:class:`~ecgtwin.pipeline.SamplingOptions`); ``None`` = :data:`~ecgtwin.pipeline.DEFAULT_SAMPLING`.
        population_model: optional model without base vector, generated with the same specs.
        extreme_hr, n_extreme: target HRs (bpm) asked of the first ``n_extreme`` pairs.
        max_clinical: records per method for the (slow) interval delineation; ``None`` = all.
        n_boot: bootstrap resamples of the AUROC CIs.
        privacy, privacy_max_train: the privacy section (:mod:`ecgtwin.eval.privacy`) against the train split's records
            (a seeded subset of ``privacy_max_train``); skipped when the train split is empty.
        downstream, downstream_max_pairs, downstream_epochs: add TSTR / TRTS / real + synthetic on the benchmark
            protocol (:mod:`ecgtwin.eval.downstream`): twins of up to ``downstream_max_pairs`` train pairs.
        personalized, personal_*: add the personalised-diagnosis protocol (:mod:`ecgtwin.eval.personalized`;
            needs ``classifier``): patients, twins per condition, fine-tuning steps and learning rate.
        settings: extra entries for the report's settings (e.g. the classifier checkpoint path).
        resume: reuse the twins (``twins.npz``) and finished sections (``sections/``) an earlier run of the same
            settings left in ``out_dir`` (:mod:`ecgtwin.eval.harness_store`); ``False`` recomputes everything.
    Returns:
        ``{"settings", "fidelity", "consistency", "controllability", "clinical", ["personalized"], ["downstream"], "notes"}`` with
        ``{method: {metric: value}}`` sections, JSON-ready (NaN -> None).
    """
    if not model.personalised:
        raise ValueError("evaluate needs a personalised model (with an IBE); pass a population model as population_model")
    if personalized and classifier is None:
        raise ValueError("the personalised protocol fine-tunes the population classifier: pass a classifier")
    start = time.perf_counter()
    generators = {"twin": model, **({"population": population_model} if population_model is not None else {})}
    pairs = select_pairs(datamodule, max_pairs, seed)
    check_compatible(model, datamodule, pairs)
    if population_model is not None:
        check_compatible(population_model, datamodule, pairs)
    columns = classifier_columns(model.vocabulary, classifier) if classifier is not None else None  # (C,) by name
    sampling = resolve_sampling(sampler, steps, guidance_condition, guidance_person, spacing=spacing)
    if guidance_interval is not None:
        sampling = replace(sampling, guidance_interval=tuple(float(v) for v in guidance_interval))
    gen = dict(options=sampling, batch_size=batch_size, progress=progress)
    rows = np.arange(min(n_extreme, len(pairs)))
    keep = _subsample(len(pairs), max_clinical, seed)
    options = dict(sampler=sampling.sampler, steps=sampling.num_steps, spacing=sampling.spacing,
                   guidance_condition=sampling.guidance_condition,
                   guidance_person=sampling.guidance_person,
                   guidance_interval=None if sampling.guidance_interval is None else list(sampling.guidance_interval),
                   classifier_labels=None if columns is None else [model.vocabulary.names[i] for i in columns],
                   seed=seed, n_boot=n_boot, extreme_hr=list(extreme_hr), n_extreme=len(rows), n_clinical=len(keep))
    report: dict[str, Any] = {"settings": _settings(model, datamodule, pairs, population_model, options, settings)}
    store = SectionStore(out_dir, run_key({**report["settings"], "pairs": pairs.target_record, "resume": 1}), resume)
    notes = ["copy = the reference ECG returned unchanged (no generation); real = real targets or real-vs-real."]
    reused: list[str] = []

    def stored_generate(stage: str, stage_options: dict[str, Any] | None = None) -> GenerateFn:
        """Generation of one stage, stored chunk by chunk (a killed run resumes within the stage)."""
        def generate(method: str, generator: TwinModel, specs: Sequence[TwinSpec]) -> np.ndarray:
            return store.generated(f"{stage}_{method}", len(specs),
                                   lambda rows: generator.generate(list(specs[rows]), **gen), stage_options)
        return generate

    # the twins (and the arms they are compared with), kept beside the report
    stored = store.load_twins()
    if stored is not None:
        signals = {name: stored[name] for name in ("twin", "population") if name in stored}
        reused.append("twins")
    else:
        specs = twin_specs(model, pairs, seed)
        signals = {name: stored_generate("twins")(name, m, specs) for name, m in generators.items()}  # each (P, 12, L)
        store.save_twins({**signals, "copy": pairs.reference, "real": pairs.target, "patient_id": pairs.patient_id,
                          "reference_record": pairs.reference_record, "target_record": pairs.target_record,
                          "target_labels": pairs.target_labels, "label_names": np.array(model.vocabulary.names),
                          "target_hr": pairs.target_meta["hr"]})
    signals = {"twin": signals["twin"], "copy": pairs.reference, **{k: v for k, v in signals.items() if k == "population"}}
    cache: dict[str, Any] = {}

    def features() -> tuple[str, dict[str, np.ndarray], np.ndarray]:
        if "features" not in cache:
            cache["features"] = feature_space(signals, pairs.target, classifier, model.fs)
        return cache["features"]

    def run(name: str, compute: Any, stage_options: dict[str, Any] | None = None) -> dict[str, Any]:
        payload, was_stored = store.stage(name, compute, stage_options)
        if was_stored:
            reused.append(name)
        report.update(payload["sections"])
        notes.extend(payload.get("notes", []))
        write_report(to_jsonable({**report, "notes": notes}), out_dir)  # each section in the report as it finishes
        return payload

    def fidelity_stage() -> dict[str, Any]:
        space, feats, real_feats = features()
        fidelity = matched_fidelity_section(feats, real_feats, pairs.patient_id, k=3, n_boot=n_boot, seed=seed,
                                            distinct=(pairs.target_record, pairs.reference_record))
        n = int(next(iter(fidelity.values()))["n"])
        return {"sections": {"fidelity": fidelity}, "extra": {"feature_space": space, "n_fidelity": n},
                "notes": [f"fidelity in the {space} space at matched n = {n} per arm: the real targets are cut into two "
                          "patient-disjoint halves A and B; every arm (real = the real targets of A) contributes its n "
                          "rows of A and is compared with the same n real targets of B; FD and KID with 95% bootstrap "
                          "CIs, k-NN precision/recall at k = 3."]}

    def consistency_stage() -> dict[str, Any]:
        z_ref = base_vectors_of(model, pairs.reference, pairs.reference_labels, pairs.reference_meta)
        z_tgt = base_vectors_of(model, pairs.target, pairs.target_labels, pairs.target_meta)
        z = {name: base_vectors_of(model, x, pairs.target_labels, pairs.target_meta)
             for name, x in signals.items() if name != "copy"}
        ibe = identification_report(z_ref, z_tgt, pairs.patient_id, pairs.patient_id, pairs.reference_record,
                                    pairs.target_record)
        return {"sections": {"consistency": consistency_section(z, z_ref, z_tgt, pairs.patient_id, pairs.reference_record,
                                                                pairs.target_record),
                             "ibe": {"bundle_ibe": ibe}},
                "notes": ["identification: queries rank the distinct real target records by IBE cosine, each without its "
                          "own source reference record; copy = the real reference as query.",
                          "IBE: the bundle's own extractor; each distinct reference ranks every distinct record of the "
                          "test pairs (references and targets) by cosine, as `ecgtwin test` does for an IBE checkpoint."]}

    def controllability_stage() -> dict[str, Any]:
        measured = {name: heart_rates(x, model.fs) for name, x in signals.items()}
        measured["real"] = heart_rates(pairs.target, model.fs)
        section: dict[str, Any] = {"hr": hr_section(pairs.target_meta["hr"], measured)}
        stage_notes = ["HR MAE of real targets is the measurement floor: the targets' HR comes from the same R-peak "
                       "detector (cache metadata) unless the source provides one."]
        if classifier is not None:
            logits = {name: predict_logits(classifier, x) for name, x in {**signals, "real": pairs.target}.items()}
            section["auroc"] = auroc_section(logits, pairs.target_labels[:, columns], n_boot=n_boot, seed=seed)
        else:
            stage_notes.append("no classifier: controllability AUROC skipped.")
        extreme: dict[str, dict[float, np.ndarray]] = {}
        for name, m in generators.items():
            ext_specs = [s for hr in extreme_hr for s in twin_specs(m, pairs, seed, hr_override=hr, rows=rows)]
            ext = m.generate(ext_specs, **gen) if ext_specs else np.zeros((0, 12, model.length), np.float32)  # (E * n, 12, L)
            hrs = heart_rates(ext, model.fs) if len(ext) else np.zeros(0)
            extreme[name] = {float(hr): hrs[i * len(rows):(i + 1) * len(rows)] for i, hr in enumerate(extreme_hr)}
        section["extreme_hr"] = extreme_hr_section(extreme)
        return {"sections": {"controllability": section}, "notes": stage_notes, "extra": {"measured_hr": measured}}

    def realism_stage() -> dict[str, Any]:
        _, feats, real_feats = features()
        section = realism_section(signals, pairs.target, model.fs, pairs.target_labels, list(model.vocabulary.names),
                                  pairs.patient_id, *two_sample_features(signals, pairs.target, model.fs, feats,
                                                                         real_feats, classifier is not None),
                                  real_rows=matched_rows(pairs.patient_id, seed,
                                                         (pairs.target_record, pairs.reference_record)),
                                  n_boot=n_boot, seed=seed)
        return {"sections": {"realism": section},
                "notes": ["realism: every method against all real targets; real = one patient-disjoint half of the "
                          "targets against the other for amplitude, noise, correlation and the two-sample test (c2st: "
                          "cross-validated AUROC of a logistic regression telling the records from real targets, "
                          "0.5 = indistinguishable)."]}

    def clinical_stage() -> dict[str, Any]:  # delineation is slow: a seeded subsample
        section, tables = clinical_section({**{k: v[keep] for k, v in signals.items()}, "real": pairs.target[keep]},
                                           model.fs)
        return {"sections": {"clinical": section},
                "extra": {"tables": {k: {c: t[c].to_numpy() for c in t.columns} for k, t in tables.items()}}}

    def privacy_stage() -> dict[str, Any]:
        train, train_labels, train_patient = split_arrays(datamodule, "train", privacy_max_train, seed)
        if not len(train):
            return {"sections": {}, "notes": ["privacy: skipped, the train split holds no records."]}
        section, nearest = privacy_section(privacy_spaces(signals, pairs.target, train, model.fs, classifier),
                                           pairs.target_labels, pairs.patient_id, train_labels, train_patient)
        png = plot_closest_pairs(signals["twin"], train, nearest["signal_twin_distance"], nearest["signal_twin_index"],
                                 model.fs, Path(out_dir) / "privacy_closest.png")
        return {"sections": {"privacy": section}, "images": [png.name],
                "notes": [f"privacy: distances to the nearest of {len(train)} training records of other patients in "
                          "aligned signals (RMS mV), magnitude spectra (shift-blind, RMS) and standardized features; "
                          "memorized = nearer a training record than 95% of the real targets are (threshold in the "
                          "real column); same_class: within the training records with the target's labels."]}

    def personalized_stage() -> dict[str, Any]:
        from ecgtwin.eval.personalized import personalized_section, select_patients

        series = select_patients(datamodule, personal_max_patients, seed)
        section = personalized_section(generators, classifier, series, per_condition=personal_per_condition,
                                       steps=personal_steps, lr=personal_lr, n_boot=n_boot, seed=seed,
                                       generate_kwargs=gen, progress=progress, label_columns=columns,
                                       generate=stored_generate("personalized", personal_options))
        return {"sections": {"personalized": section}, "notes": ["personalised: " + section.pop("note")]}

    def downstream_stage() -> dict[str, Any]:
        from ecgtwin.eval.downstream import downstream_section, split_records

        section = downstream_section(
            generators, select_pairs(datamodule, downstream_max_pairs, seed, split="train"),
            split_records(datamodule, "train"), split_records(datamodule, "val"), split_records(datamodule, "test"),
            test_twins={k: v for k, v in signals.items() if k != "copy"}, test_pairs=pairs,
            architecture=getattr(classifier, "config", None), epochs=downstream_epochs, n_boot=n_boot, seed=seed,
            generate_kwargs=gen, progress=progress, label_columns=columns,
            generate=stored_generate("downstream", downstream_options))
        return {"sections": {"downstream": section},
                "notes": ["downstream: every arm is the same classifier trained from scratch for the same epochs, "
                          "selected on the real validation folds and scored on every real test-fold record; TRTS = the "
                          "`real` arm on the test pairs' twins vs their real targets."]}

    personal_options = dict(patients=personal_max_patients, per_condition=personal_per_condition, steps=personal_steps,
                            lr=personal_lr)
    downstream_options = dict(max_pairs=downstream_max_pairs, epochs=downstream_epochs)
    fidelity = run("fidelity", fidelity_stage)
    report["settings"].update(fidelity["extra"])
    run("consistency", consistency_stage)
    controllability = run("controllability", controllability_stage)
    run("realism", realism_stage)
    clinical = run("clinical", clinical_stage)
    images: list[Path] = []
    if privacy:
        images += [Path(out_dir) / name for name in run("privacy", privacy_stage,
                                                        {"privacy_max_train": privacy_max_train}).get("images", [])]
    if personalized:
        run("personalized", personalized_stage, personal_options)
    if downstream:
        run("downstream", downstream_stage, downstream_options)
    if reused:
        notes.append(f"reused from an earlier run of the same command: {', '.join(reused)} (out/sections/, twins.npz).")
    report["settings"]["seconds"] = round(time.perf_counter() - start, 1)
    report = to_jsonable({**report, "notes": notes})
    measured = {k: np.asarray(v, dtype=np.float64) for k, v in controllability["extra"]["measured_hr"].items()}
    tables = {k: pd.DataFrame({c: np.asarray(v, dtype=np.float64) for c, v in t.items()})
              for k, t in clinical["extra"]["tables"].items()}
    write_report(report, out_dir, pairs=pairs, signals=signals, fs=model.fs, target_hr=pairs.target_meta["hr"],
                 measured_hr=measured, interval_tables=tables, n_examples=n_examples, images=images)
    return report
