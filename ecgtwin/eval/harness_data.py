"""Test-split pairs of the evaluation harness: arrays of references/targets and the TwinSpecs built from them.

Every same-patient pair ``(reference, target)`` of the test split (reference
recorded earlier) becomes one twin: the REFERENCE's person under the TARGET's
condition (labels, HR, age, sex). HR, age and sex are read in physical units
from the cache metadata (no inverse normalisation needed); values outside the
model's accepted ranges (e.g. PTB-XL's age 300 = "over 89") count as unknown.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.constants import AGE_RANGE_YEARS, HR_RANGE_BPM
from ecgtwin.data.conditions import LabelVocabulary

SEX_NAMES = {0.0: "M", 1.0: "F"}

# ``generate(method, model, specs)`` -> twins (N, 12, L): how the harness stages turn specs into twins (plainly,
# or chunk by chunk through the resumable store: SectionStore.generated)
GenerateFn = Callable[[str, TwinModel, Sequence[TwinSpec]], np.ndarray]


def plain_generate(generate_kwargs: Mapping[str, object] | None = None) -> GenerateFn:
    """``model.generate(specs, **generate_kwargs)``, ignoring the method name (no storage)."""
    kwargs = dict(generate_kwargs or {})
    return lambda method, model, specs: model.generate(specs, **kwargs)  # type: ignore[arg-type]


@dataclass
class PairArrays:
    """The selected test pairs, one row per pair (P pairs)."""

    reference: np.ndarray
    """(P, 12, L) mV, reference records."""
    target: np.ndarray
    """(P, 12, L) mV, real target records."""
    reference_labels: np.ndarray
    """(P, V) multi-hot."""
    target_labels: np.ndarray
    """(P, V) multi-hot: the condition every twin is asked for."""
    patient_id: np.ndarray
    reference_record: np.ndarray
    target_record: np.ndarray
    reference_meta: dict[str, np.ndarray] = field(default_factory=dict)
    """``hr`` (bpm), ``age`` (years), ``sex`` (0/1) of the references; NaN = unknown."""
    target_meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.reference)


def _known(value: float, bounds: tuple[float, float]) -> float | None:
    return float(value) if math.isfinite(value) and bounds[0] <= value <= bounds[1] else None


def _sex(value: float) -> str | None:
    return SEX_NAMES.get(float(value)) if math.isfinite(value) else None


def datamodule_for(model: TwinModel, root: str, folds: dict[str, list[int]], source: str = "ptbxl",
                   cache_dir: str | None = None, progress: bool = True) -> object:
    """A pair :class:`~ecgtwin.data.datamodule.ECGDataModule` with the model's fs, length, labels and filter.

    ``folds``: ``{"train_folds": [...], "val_folds": [...], "test_folds": [...]}`` (any of them may be empty).
    The data module gets the MODEL's vocabulary and demographics normaliser (those of its bundle), so nothing is
    fitted on the data: a root that holds the test folds only is enough.
    """
    from ecgtwin.data.datamodule import ECGDataModule

    datamodule = ECGDataModule(root=str(root), source=source, cache_dir=cache_dir, fs=model.fs,
                               seconds=model.length / model.fs, label_set=model.vocabulary.level,
                               label_threshold=model.vocabulary.threshold, highpass_hz=model.highpass_hz, pairs=True,
                               progress=progress, **folds)
    datamodule.load_state_dict({"vocabulary": model.vocabulary.to_dict(), "normalizer": model.normalizer.to_dict()})
    return datamodule


def split_dataset(datamodule: object, split: str) -> object:
    """``datamodule.<split>_dataset``, preparing and setting the data module up first when needed."""
    try:
        return getattr(datamodule, f"{split}_dataset")
    except RuntimeError:  # not set up yet
        datamodule.prepare_data()  # type: ignore[attr-defined]
        datamodule.setup("test")  # type: ignore[attr-defined]
        return getattr(datamodule, f"{split}_dataset")


def select_pairs(datamodule: object, max_pairs: int | None = None, seed: int = 0, split: str = "test") -> PairArrays:
    """Arrays of a split's same-patient pairs (a seeded random subset of ``max_pairs`` when given).

    ``datamodule`` is an :class:`~ecgtwin.data.datamodule.ECGDataModule` built with ``pairs=True``;
    it is prepared and set up here when needed.
    """
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1 or None, got {max_pairs}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    pairs_ds = split_dataset(datamodule, split)
    if not hasattr(pairs_ds, "pairs"):
        raise ValueError(f"evaluate needs the {split} split as same-patient pairs: build the ECGDataModule with pairs=True")
    pairs = np.asarray(pairs_ds.pairs)  # (P, 2) cache rows
    if len(pairs) == 0:
        raise ValueError(f"the {split} split (folds {datamodule.folds[split]}) of {datamodule.root} has no same-patient pairs")  # type: ignore[attr-defined]
    if max_pairs is not None and max_pairs < len(pairs):
        pairs = pairs[np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False))]
    records = pairs_ds.records
    meta = records.metadata
    ref_rows, tgt_rows = pairs[:, 0], pairs[:, 1]

    def columns(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {key: meta[key].to_numpy(dtype=np.float64)[rows] for key in ("hr", "age", "sex")}

    return PairArrays(
        reference=np.asarray(records.signals[ref_rows], dtype=np.float32),  # (P, 12, L)
        target=np.asarray(records.signals[tgt_rows], dtype=np.float32),  # (P, 12, L)
        reference_labels=records.labels[ref_rows], target_labels=records.labels[tgt_rows],
        patient_id=records.patient_ids[tgt_rows], reference_record=records.record_ids[ref_rows],
        target_record=records.record_ids[tgt_rows], reference_meta=columns(ref_rows), target_meta=columns(tgt_rows),
    )


def split_arrays(datamodule: object, split: str, max_records: int | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every record of a split (a seeded random ``max_records`` of them when given):
    ``(signals (N, 12, L) mV float32, labels (N, V), patient ids (N,))``; N = 0 for an empty split."""
    dataset = split_dataset(datamodule, split)
    records = getattr(dataset, "records", dataset)
    rows = np.asarray(records.rows)
    if max_records is not None and max_records < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_records, replace=False))
    signals = np.asarray(records.signals[rows], dtype=np.float32) if len(rows) else np.zeros((0, 12, 0), np.float32)
    return signals, records.labels[rows], records.patient_ids[rows]


def check_compatible(model: TwinModel, datamodule: object, pairs: PairArrays) -> None:
    """Raise ValueError when the data's vocabulary or signal length differ from the model's."""
    if list(model.vocabulary.names) != list(datamodule.vocabulary.names):  # type: ignore[attr-defined]
        raise ValueError(f"the model's labels {list(model.vocabulary.names)} differ from the data's "
                         f"{list(datamodule.vocabulary.names)} (label_set of the data module?)")  # type: ignore[attr-defined]
    if pairs.reference.shape[-1] != model.length:
        raise ValueError(f"test records have {pairs.reference.shape[-1]} samples but the model generates {model.length} "
                         f"({model.fs} Hz): build the data module with the model's fs and seconds")


def classifier_label_names(path: str | Path) -> list[str] | None:
    """The label names a ClassifierModule checkpoint was trained on (its data module's vocabulary), or ``None``."""
    from ecgtwin.training.classifier_module import checkpoint_label_names
    from ecgtwin.weights import load_weights_only

    return checkpoint_label_names(load_weights_only(path, "classifier checkpoint", "cpu"))  # no network built


def classifier_columns(vocabulary: LabelVocabulary, classifier: object) -> np.ndarray:
    """Columns of the generator's multi-hot labels (V,) that the classifier scores, in the classifier's order (C,).

    Matched BY NAME with ``classifier.label_names`` (set by :func:`ecgtwin.training.classifier_module.load_classifier`): a generator's
    vocabulary may be a superset (e.g. 5 superclasses + 12 rhythm labels for a 5-superclass classifier). A
    classifier without names must have one output per generator label, or one per diagnosis label (non-rhythm).
    Raises ValueError when a classifier label is missing from the generator's vocabulary.
    """
    names = list(vocabulary.names)
    wanted = getattr(classifier, "label_names", None)
    n_out = int(getattr(classifier, "num_labels", len(names)))
    if wanted is None:
        if n_out == len(names):
            return np.arange(len(names))
        if n_out == len(vocabulary.diagnosis_names):
            wanted = list(vocabulary.diagnosis_names)
        else:
            raise ValueError(f"the classifier has {n_out} outputs and no label names; the generator's labels are {names}")
    missing = [n for n in wanted if n not in names]
    if missing or len(wanted) != n_out:
        raise ValueError(f"the classifier's labels {list(wanted)} are not all among the generator's labels {names} "
                         f"(missing {missing})")
    return np.array([names.index(n) for n in wanted], dtype=np.int64)


def condition_of(model: TwinModel, labels: np.ndarray, meta: dict[str, np.ndarray], i: int) -> dict[str, object]:
    """Row ``i`` as TwinSpec condition fields ``labels, hr, age, sex`` in physical units."""
    return {"labels": model.vocabulary.decode(labels[i]), "hr": _known(meta["hr"][i], HR_RANGE_BPM),
            "age": _known(meta["age"][i], AGE_RANGE_YEARS), "sex": _sex(meta["sex"][i])}


def twin_specs(model: TwinModel, pairs: PairArrays, seed: int = 0, hr_override: float | None = None,
               rows: np.ndarray | None = None) -> list[TwinSpec]:
    """One spec per pair: the reference (with its own condition) under the target's condition.

    ``hr_override`` replaces the target HR (extreme-HR controllability); ``rows`` selects pairs.
    Twin ``i`` uses seed ``seed + i`` (``i`` the pair row).
    """
    specs = []
    for i in (range(len(pairs)) if rows is None else rows):
        target = condition_of(model, pairs.target_labels, pairs.target_meta, int(i))
        if hr_override is not None:
            target["hr"] = float(hr_override)
        ref = condition_of(model, pairs.reference_labels, pairs.reference_meta, int(i))
        specs.append(TwinSpec(reference=pairs.reference[i], seed=seed + int(i), reference_labels=ref["labels"],
                              preprocessed=True, rhythm="none",  # the target's own rhythm label, if any, is in its labels
                              reference_hr=ref["hr"], reference_age=ref["age"], reference_sex=ref["sex"],
                              **target))  # type: ignore[arg-type]
    return specs


def encoding_specs(model: TwinModel, signals: np.ndarray, labels: np.ndarray, meta: dict[str, np.ndarray]) -> list[TwinSpec]:
    """Specs that make :meth:`TwinModel.base_vectors` encode ``signals`` (N, 12, L) with their own condition."""
    specs = []
    for i, signal in enumerate(signals):
        cond = condition_of(model, labels, meta, i)
        specs.append(TwinSpec(reference=signal, labels=[], preprocessed=True, reference_labels=cond["labels"],
                              reference_hr=cond["hr"],
                              reference_age=cond["age"], reference_sex=cond["sex"]))  # type: ignore[arg-type]
    return specs
