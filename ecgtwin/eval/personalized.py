"""Personalised diagnosis with twins: the downstream protocol of ECGTwin (Lai et al. 2025, arXiv 2508.02720).

Per test patient with two or more ECGs, the FIRST ECG (earliest recording) is
the reference and the LATER ECGs are the test set. The model generates twins
of the first ECG under each target condition (by default every label of the
vocabulary alone: the normal one and each abnormal one), ``per_condition`` of
each, with the reference's own HR, age and sex. A copy of the population
classifier is fine-tuned per patient (:func:`~ecgtwin.eval.classifier_fit.fine_tune`)
and scores that patient's later ECGs. Arms (columns of the report):

* ``none``: the population classifier as is ("without twins");
* ``first_ecg``: fine-tuned on the real first ECG alone (with its own labels), the
  control that separates "seeing this patient" from "seeing twins";
* ``twin``: fine-tuned on the twins ("with twins");
* ``population``: fine-tuned on twins of the population model (no person), when given.

Accuracy (per label), exact match, macro-F1 and macro-AUROC are pooled over all
later ECGs; each arm's difference to ``none`` gets a 95% paired bootstrap CI
that resamples whole patients.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.data.datasets import patient_records
from ecgtwin.eval.classifier_fit import binary_metrics, fine_tune, paired_bootstrap, predict_logits
from ecgtwin.eval.harness_data import GenerateFn, condition_of, plain_generate, split_dataset

FINETUNE_BATCH = 32
"""Records per fine-tuning step (a patient's whole twin set at the defaults: 5 conditions x 2)."""


@dataclass
class PatientSeries:
    """P patients of a split, each with a first ECG and M_p later ECGs (M = sum M_p rows)."""

    patient_id: np.ndarray
    """(P,)"""
    first: np.ndarray
    """(P, 12, L) mV, each patient's earliest ECG."""
    first_labels: np.ndarray
    """(P, V) multi-hot."""
    first_record: np.ndarray
    """(P,) record ids."""
    later: np.ndarray
    """(M, 12, L) mV, the later ECGs of all patients."""
    later_labels: np.ndarray
    """(M, V) multi-hot."""
    owner: np.ndarray
    """(M,) row of ``first`` (the patient) of every later ECG."""
    first_meta: dict[str, np.ndarray] = field(default_factory=dict)
    """``hr`` (bpm), ``age`` (years), ``sex`` (0/1) of the first ECGs; NaN = unknown."""

    def __len__(self) -> int:
        return len(self.first)


def select_patients(datamodule: object, max_patients: int | None = None, seed: int = 0,
                    split: str = "test") -> PatientSeries:
    """The split's patients with >= 2 ECGs (a seeded random ``max_patients`` of them when given).

    Records are in :func:`~ecgtwin.data.datasets.patient_records` order (as the harness pairs).
    """
    if max_patients is not None and max_patients < 1:
        raise ValueError(f"max_patients must be >= 1 or None, got {max_patients}")
    dataset = split_dataset(datamodule, split)
    records = getattr(dataset, "records", dataset)
    groups = [g for g in patient_records(records.metadata, records.rows) if len(g) >= 2]
    if not groups:
        raise ValueError(f"the {split} split of {getattr(datamodule, 'root', '?')} has no patient with two or more ECGs")
    if max_patients is not None and max_patients < len(groups):
        keep = np.sort(np.random.default_rng(seed).choice(len(groups), max_patients, replace=False))
        groups = [groups[i] for i in keep]
    first_rows = np.array([g[0] for g in groups])  # (P,) cache rows
    later_rows = np.concatenate([g[1:] for g in groups])  # (M,)
    owner = np.concatenate([np.full(len(g) - 1, i) for i, g in enumerate(groups)])  # (M,)
    meta = records.metadata
    return PatientSeries(
        patient_id=records.patient_ids[first_rows], first=np.asarray(records.signals[first_rows], dtype=np.float32),
        first_labels=records.labels[first_rows], first_record=records.record_ids[first_rows],
        later=np.asarray(records.signals[later_rows], dtype=np.float32), later_labels=records.labels[later_rows],
        owner=owner, first_meta={k: meta[k].to_numpy(dtype=np.float64)[first_rows] for k in ("hr", "age", "sex")},
    )


def default_conditions(names: Sequence[str]) -> list[list[str]]:
    """Every label of the vocabulary alone: the normal one and each abnormal one."""
    return [[name] for name in names]


def personal_specs(model: TwinModel, series: PatientSeries, conditions: Sequence[Sequence[str]],
                   per_condition: int = 2, seed: int = 0) -> tuple[list[TwinSpec], np.ndarray, np.ndarray]:
    """Specs of every patient's twins: ``(specs, labels (T, V), patient row (T,))``, T = P * K * per_condition.

    The twin of patient ``i``, condition ``k``, draw ``j`` uses seed ``seed + (i * K + k) * per_condition + j``.
    """
    if per_condition < 1 or not conditions:
        raise ValueError(f"need at least one condition and per_condition >= 1, got {len(conditions)} and {per_condition}")
    specs, labels, owner = [], [], []
    k_total = len(conditions)
    for i in range(len(series)):
        ref = condition_of(model, series.first_labels, series.first_meta, i)
        for k, condition in enumerate(conditions):
            for j in range(per_condition):
                specs.append(TwinSpec(reference=series.first[i], labels=list(condition), hr=ref["hr"], age=ref["age"],  # type: ignore[arg-type]
                                      sex=ref["sex"], seed=seed + (i * k_total + k) * per_condition + j,  # type: ignore[arg-type]
                                      reference_labels=ref["labels"], reference_hr=ref["hr"],  # type: ignore[arg-type]
                                      reference_age=ref["age"], reference_sex=ref["sex"],  # type: ignore[arg-type]
                                      preprocessed=True))
                labels.append(model.vocabulary.encode_names(list(condition)))
                owner.append(i)
    return specs, np.stack(labels).astype(np.float32), np.asarray(owner)  # (T, V), (T,)


def personalized_logits(classifier: Any, series: PatientSeries, training_sets: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                        steps: int = 10, lr: float = 1e-4, seed: int = 0, progress: bool = False) -> dict[str, np.ndarray]:
    """Logits (M, V) of the later ECGs per arm: ``"none"`` plus one per training set.

    ``training_sets[arm] = (signals (T, 12, L), labels (T, V), patient row (T,))``: each patient's
    classifier is fine-tuned on its own rows only.
    """
    from tqdm.auto import tqdm

    out = {"none": predict_logits(classifier, series.later)}
    for arm, (signals, labels, owner) in training_sets.items():
        logits = np.zeros_like(out["none"])
        for i in tqdm(range(len(series)), desc=f"fine-tune ({arm})", unit="patient", disable=not progress):
            mine, later = owner == i, series.owner == i
            tuned = fine_tune(classifier, signals[mine], labels[mine], steps=steps, lr=lr, batch_size=FINETUNE_BATCH, seed=seed + i)
            logits[later] = predict_logits(tuned, series.later[later])
        out[arm] = logits
    return out


def personalized_section(models: Mapping[str, TwinModel], classifier: Any, series: PatientSeries,
                         conditions: Sequence[Sequence[str]] | None = None, per_condition: int = 2, steps: int = 10,
                         lr: float = 1e-4, n_boot: int = 200, seed: int = 0,
                         generate_kwargs: Mapping[str, Any] | None = None, progress: bool = False,
                         label_columns: np.ndarray | None = None, generate: GenerateFn | None = None) -> dict[str, Any]:
    """The report section ``{arm: {accuracy, exact_match, macro_f1, macro_auroc, n, delta_*...}}`` and its settings.

    ``models``: ``{"twin": personalised model, ["population": population model]}``; every model
    generates from the same specs. ``label_columns``: the generator-vocabulary columns the classifier scores, in
    its order (:func:`~ecgtwin.eval.harness_data.classifier_columns`; default all): the default conditions are
    those labels alone, and the labels the classifier is fine-tuned and scored on are cut to them.
    ``generate(method, model, specs)`` -> twins; default ``model.generate(specs, **generate_kwargs)``.
    """
    if "twin" not in models:
        raise ValueError("personalized_section needs the personalised model under 'twin'")
    vocabulary = list(models["twin"].vocabulary.names)
    cols = np.arange(len(vocabulary)) if label_columns is None else np.asarray(label_columns)
    names = [vocabulary[i] for i in cols]
    conditions = default_conditions(names) if conditions is None else [list(c) for c in conditions]
    generate = generate or plain_generate(generate_kwargs)
    specs, labels, owner = personal_specs(models["twin"], series, conditions, per_condition, seed)  # labels (T, V)
    labels = labels[:, cols]  # (T, C) the classifier's columns
    series = replace(series, first_labels=series.first_labels[:, cols], later_labels=series.later_labels[:, cols])
    sets = {"first_ecg": (series.first, series.first_labels.astype(np.float32), np.arange(len(series)))}
    for name, model in models.items():
        sets[name] = (generate(name, model, specs), labels, owner)  # (T, 12, L)
    logits = personalized_logits(classifier, series, sets, steps=steps, lr=lr, seed=seed, progress=progress)
    section: dict[str, dict[str, float]] = {}
    for arm, arm_logits in logits.items():
        row = binary_metrics(series.later_labels, arm_logits)
        if arm != "none":
            deltas = paired_bootstrap(series.owner, series.later_labels, logits["none"], arm_logits, n_boot=n_boot, seed=seed)
            for metric, (delta, low, high) in deltas.items():
                row |= {f"delta_{metric}": delta, f"delta_{metric}_low": low, f"delta_{metric}_high": high}
        section[arm] = row
    settings = {"patients": len(series), "later_ecgs": int(len(series.later)), "conditions": conditions,
                "twins_per_condition": per_condition, "twins": len(specs), "finetune_steps": steps, "finetune_lr": lr,
                "finetune_batch": FINETUNE_BATCH, "batchnorm": "frozen"}
    return {"metrics": section, "settings": settings,
            "positives_later": {n: int(v) for n, v in zip(names, series.later_labels.sum(axis=0))},
            "auroc_labels": int(sum(0 < v < len(series.later) for v in series.later_labels.sum(axis=0))),
            "note": (f"{len(series)} patients: twins of each first ECG under {len(conditions)} conditions x {per_condition}; "
                     f"each patient's copy of the classifier fine-tuned {steps} Adam steps (lr {lr:g}, batch {FINETUNE_BATCH}, "
                     f"BatchNorm frozen) and scored on the {len(series.later)} later ECGs; delta = arm - none, 95% CI "
                     f"from {n_boot} patient-level paired bootstrap resamples.")}
