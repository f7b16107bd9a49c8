"""Downstream utility of twins on the benchmark protocol: TSTR, TRTS and real + synthetic training.

Esteban et al. 2017 (TSTR / TRTS) on the PTB-XL benchmark protocol
(Strodthoff et al. 2021): classifiers train on the train folds, are selected on
the real validation folds and are scored on every real record of the test
folds by macro-AUROC with a 95% bootstrap CI.

The synthetic training set holds one twin per same-patient pair of the TRAIN
split (the reference's person under the target's condition, labelled with the
target's labels; a seeded subset of ``max_pairs`` pairs). Every arm trains the
same architecture from scratch with the same recipe and epochs
(:func:`~ecgtwin.eval.classifier_fit.fit_classifier`):

* ``real``: all real train records (TRTR, the reference point);
* ``real_matched``: the real TARGETS of the same train pairs (the records the
  twins imitate: TSTR's size-matched real counterpart);
* ``<method>`` (``twin``, ``population``): synthetic only (TSTR);
* ``real+<method>``: all real train records plus the synthetic set.

TRTS: the ``real`` arm's classifier scores the twins of the test pairs
(labelled with their targets) next to the real targets themselves.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ecgtwin.api import TwinModel
from ecgtwin.eval.classifier_fit import fit_classifier, predict_logits
from ecgtwin.eval.harness_data import GenerateFn, PairArrays, plain_generate, split_dataset, twin_specs
from ecgtwin.eval.metrics import bootstrap_ci, macro_auroc


def split_records(datamodule: object, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Every record of a split: ``(signals (N, 12, L) mV float32, labels (N, V))``."""
    dataset = split_dataset(datamodule, split)
    records = getattr(dataset, "records", dataset)
    return np.asarray(records.signals[records.rows], dtype=np.float32), records.labels[records.rows]


def _scored(labels: np.ndarray, logits: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    point, low, high = bootstrap_ci(macro_auroc, labels, logits, n_boot=n_boot, seed=seed)
    return {"macro_auroc": point, "ci_low": low, "ci_high": high}


def downstream_section(
    models: Mapping[str, TwinModel],
    train_pairs: PairArrays,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    test_twins: Mapping[str, np.ndarray] | None = None,
    test_pairs: PairArrays | None = None,
    architecture: Mapping[str, Any] | None = None,
    epochs: int = 8,
    n_boot: int = 200,
    seed: int = 0,
    generate_kwargs: Mapping[str, Any] | None = None,
    fit_options: Mapping[str, Any] | None = None,
    progress: bool = False,
    label_columns: np.ndarray | None = None,
    generate: GenerateFn | None = None,
) -> dict[str, Any]:
    """``{"metrics": {arm: {...}}, "trts": {...}, "settings": {...}}`` (see the module docstring).

    Args:
        models: ``{method: model}`` generating the synthetic train sets (e.g. twin and population).
        train_pairs: the train split's pairs to turn into twins (:func:`~ecgtwin.eval.harness_data.select_pairs`
            with ``split="train"``).
        train, val, test: ``(signals (N, 12, L), labels (N, V))`` of every record of each split.
        test_twins, test_pairs: twins of the test pairs per method and those pairs (TRTS); optional.
        architecture: :class:`~ecgtwin.eval.classifier.ECGClassifier` arguments (the reference classifier's).
        fit_options: extra :func:`~ecgtwin.eval.classifier_fit.fit_classifier` arguments (batch_size, lr, ...).
        label_columns: the label columns (of the generator's vocabulary, in the classifier's order) every arm is trained
            and scored on (:func:`~ecgtwin.eval.harness_data.classifier_columns`); default all. Twins are still asked
            for the full target condition.
        generate: ``generate(method, model, specs)`` -> twins; default ``model.generate(specs, **generate_kwargs)``
            (the harness passes one that stores them chunk by chunk, :meth:`~ecgtwin.eval.harness_store.SectionStore.generated`).
    """
    generate = generate or plain_generate(generate_kwargs)
    cols = np.arange(train_pairs.target_labels.shape[1]) if label_columns is None else np.asarray(label_columns)
    train, val, test = ((x, y[:, cols]) for x, y in (train, val, test))  # labels (N, C)
    synthetic = {name: generate(name, model, twin_specs(model, train_pairs, seed)) for name, model in models.items()}
    y_synthetic = train_pairs.target_labels[:, cols].astype(np.float32)
    arms: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "real": train, "real_matched": (train_pairs.target, y_synthetic)}
    for name, x in synthetic.items():
        arms[name] = (x, y_synthetic)
        arms[f"real+{name}"] = (np.concatenate([train[0], x]), np.concatenate([train[1], y_synthetic]))  # (N + S, 12, L)
    metrics: dict[str, dict[str, float]] = {}
    trained = {}
    for arm, (x, y) in arms.items():
        net, info = fit_classifier(x, y, val[0], val[1], architecture, epochs=epochs, seed=seed, progress=progress,
                                   desc=f"classifier ({arm})", **dict(fit_options or {}))
        trained[arm] = net
        metrics[arm] = {**_scored(test[1], predict_logits(net, test[0]), n_boot, seed),
                        "val_macro_auroc": info["val_macro_auroc"], "best_epoch": info["best_epoch"], "n_train": info["n_train"]}
    trts: dict[str, dict[str, float]] = {}
    if test_twins and test_pairs is not None:
        test_labels = test_pairs.target_labels[:, cols]  # (P, C)
        trts["real"] = _scored(test_labels, predict_logits(trained["real"], test_pairs.target), n_boot, seed)
        for name, x in test_twins.items():
            trts[name] = _scored(test_labels, predict_logits(trained["real"], x), n_boot, seed)
    settings = {"train_pairs": len(train_pairs), "train_records": int(len(train[0])), "val_records": int(len(val[0])),
                "test_records": int(len(test[0])), "epochs": epochs, "n_boot": n_boot}
    return {"metrics": metrics, "trts": trts, "settings": settings}
