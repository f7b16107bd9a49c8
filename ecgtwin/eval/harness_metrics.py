"""Section metrics of the evaluation harness: pure functions on arrays, one ``{method: {metric: value}}`` per section.

Methods compared side by side: ``twin`` (the model), ``copy`` (copy-the-reference:
the reference ECG returned unchanged, the no-generation baseline), ``population``
(a model without the person's base vector, when given) and ``real`` (real
targets / real-vs-real, the ceiling). A metric that cannot be computed on the
given data (too few samples, no informative class) is NaN, never a crash.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ecgtwin.eval.clinical import INTERVALS, einthoven_residual, goldberger_residual, hr_mae, interval_distributions
from ecgtwin.eval.identification import chance_level, identification_accuracy
from ecgtwin.eval.metrics import (bootstrap_ci, frechet_distance, knn_precision_recall, macro_auroc, mmd_rbf, rfid,
                                  simple_ecg_features, standardize_features)

NAN = float("nan")


def _safe(fn: Callable[[], float]) -> float:
    """``fn()``, NaN when the data cannot support the metric (too few rows, degenerate sets)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn())
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
        return NAN


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (cosine = dot product)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------- fidelity / diversity
def classifier_features(classifier: object, signals: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Penultimate features (N, F) of an :class:`~ecgtwin.eval.classifier.ECGClassifier` in eval mode."""
    from ecgtwin.eval.classifier_fit import batched_outputs

    return batched_outputs(classifier, signals, "features", batch_size)  # type: ignore[arg-type]


def feature_space(signals: Mapping[str, np.ndarray], real: np.ndarray, classifier: object | None,
                  fs: float) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
    """``(space name, {method: features}, real features)``: classifier penultimate layer, else
    handcrafted :func:`simple_ecg_features` z-scored with the real targets' statistics."""
    if classifier is not None:
        return ("classifier penultimate", {k: classifier_features(classifier, v) for k, v in signals.items()},
                classifier_features(classifier, real))
    names = list(signals)
    real_z, *others = standardize_features(simple_ecg_features(real, fs), *(simple_ecg_features(signals[k], fs) for k in names))
    return "standardized simple_ecg_features", dict(zip(names, others)), real_z


def fidelity_metrics(fake: np.ndarray, real: np.ndarray, k: int = 3, seed: int = 0) -> dict[str, float]:
    """FID, rFID, k-NN precision/recall and MMD of ``fake`` (N, F) against ``real`` (M, F), at whatever sizes given.

    The harness compares arms at one matched size instead (:func:`ecgtwin.eval.fidelity.matched_fidelity_section`).
    """
    pr = {"precision": NAN, "recall": NAN}
    try:
        pr = knn_precision_recall(real, fake, k=k)
    except ValueError:
        pass
    return {"fid": _safe(lambda: frechet_distance(fake, real)), "rfid": _safe(lambda: rfid(fake, real, seed=seed)),
            "precision": pr["precision"], "recall": pr["recall"], "mmd": _safe(lambda: mmd_rbf(fake, real)),
            "n": float(len(fake))}


# ---------------------------------------------------------------- personal consistency
def consistency_section(z: Mapping[str, np.ndarray], z_reference: np.ndarray, z_target: np.ndarray,
                        patient_id: np.ndarray, reference_record: np.ndarray, target_record: np.ndarray,
                        ks: tuple[int, ...] = (1, 5)) -> dict[str, dict[str, float]]:
    """IBE cosine to the reference and patient identification among the real targets.

    ``z``: base vectors (P, D) per generated method (row i = twin of pair i); ``copy`` is the
    reference itself and ``real`` the real target. ``other_patients``: mean cosine of the reference
    to the real targets of other patients. Identification: each query ranks the distinct real target
    records by cosine; a hit is a record of its own patient (``copy`` = the real reference as query).
    Every query, twin or copy, excludes its own SOURCE reference record from the candidates (a reference
    that is also another pair's target): twins identical to their references score exactly what ``copy`` scores.
    """
    ref = unit_rows(z_reference)
    tgt = unit_rows(z_target)
    _, first = np.unique(target_record, return_index=True)
    gallery, gallery_patient, gallery_ids = tgt[first], patient_id[first], target_record[first]
    # every query carries the id of its SOURCE record (the reference a twin was made from, the reference itself for
    # copy): that record is no candidate, so a twin that merely copied its reference cannot hit through it
    queries = {**{k: (unit_rows(v), reference_record) for k, v in z.items()}, "copy": (ref, reference_record)}
    out: dict[str, dict[str, float]] = {}
    for name, (q, ids) in queries.items():
        cos = (q * ref).sum(axis=1)  # (P,) cosine to the own reference
        ident = identification_accuracy(q, gallery, patient_id, gallery_patient, ks, ids, gallery_ids)
        out[name] = {"cosine_mean": float(cos.mean()), "cosine_std": float(cos.std()),
                     **{f"id_top{k}": ident[f"top{k}"] for k in ks}}
    other = patient_id[:, None] != patient_id[None, :]  # (P, P) pairs of different patients
    sims = ref @ tgt.T  # (P, P) reference i vs target j
    per_ref = np.where(other.any(axis=1), (sims * other).sum(axis=1) / np.maximum(other.sum(axis=1), 1), np.nan)
    real_cos = (tgt * ref).sum(axis=1)  # (P,)
    out["real"] = {"cosine_mean": float(real_cos.mean()), "cosine_std": float(real_cos.std())}
    out["other_patients"] = {"cosine_mean": float(np.nanmean(per_ref)) if np.isfinite(per_ref).any() else NAN,
                             "cosine_std": float(np.nanstd(per_ref)) if np.isfinite(per_ref).any() else NAN}
    chance = chance_level(patient_id, gallery_patient, ks, reference_record, gallery_ids)
    out["chance"] = {f"id_top{k}": chance[f"top{k}"] for k in ks}
    return out


# ---------------------------------------------------------------- controllability
def auroc_section(logits: Mapping[str, np.ndarray], target_labels: np.ndarray, n_boot: int = 200,
                  seed: int = 0) -> dict[str, dict[str, float]]:
    """Macro-AUROC (with a bootstrap 95% CI) of the classifier for the TARGET labels, per method."""
    out = {}
    for name, scores in logits.items():
        try:
            point, low, high = bootstrap_ci(macro_auroc, target_labels, scores, n_boot=n_boot, seed=seed)
        except ValueError:
            point = low = high = NAN
        out[name] = {"macro_auroc": point, "ci_low": low, "ci_high": high}
    return out


def hr_section(target_hr: np.ndarray, measured: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """HR MAE (bpm) between the requested target HR and the HR measured on each method's ECGs."""
    return {name: hr_mae(target_hr, hr) for name, hr in measured.items()}


def extreme_hr_section(measured: Mapping[str, Mapping[float, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per method and extreme target HR: MAE, mean measured HR and detections (``{method: {hr: measured}}``)."""
    out: dict[str, dict[str, float]] = {}
    for name, by_target in measured.items():
        row: dict[str, float] = {}
        for target, hr in by_target.items():
            res = hr_mae(np.full(len(hr), target), hr)
            row[f"mae_{target:g}"] = res["mae"]
            row[f"mean_{target:g}"] = float(np.nanmean(hr)) if np.isfinite(hr).any() else NAN
            row[f"n_{target:g}"] = res["n"]
        out[name] = row
    return out


# ---------------------------------------------------------------- clinical validity
def clinical_section(signals: Mapping[str, np.ndarray], fs: float) -> tuple[dict[str, dict[str, float]], dict[str, pd.DataFrame]]:
    """PR/QRS/QT median and IQR (ms), detection rate, Einthoven and Goldberger residuals (mV) per method.

    Returns the section and the per-record interval tables (for histograms).
    """
    out, tables = {}, {}
    for name, x in signals.items():
        table = interval_distributions(x, fs)  # (N, 3) ms, NaN where delineation failed
        row: dict[str, float] = {}
        for key in INTERVALS:
            values = table[key].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            q25, med, q75 = np.percentile(values, [25, 50, 75]) if len(values) else (NAN, NAN, NAN)
            row.update({f"{key}_median": float(med), f"{key}_q25": float(q25), f"{key}_q75": float(q75),
                        f"{key}_detected": len(values) / max(len(x), 1)})
        row["einthoven_mV"] = float(np.mean(einthoven_residual(x)))  # mean |III - (II - I)|
        row["goldberger_mV"] = float(np.mean(goldberger_residual(x)))  # mean |aVR + aVL + aVF|
        row["n"] = float(len(x))
        out[name], tables[name] = row, table
    return out, tables
