"""Realism of twins on a fixed set of VALIDATION pairs: one row per (model, sampling setting).

What ``scripts/bench_sampling.py`` (settings side by side) and ``scripts/bench_steps.py`` (checkpoints of one
run side by side: the curve over training steps) measure. Every row is taken on the same seeded fold-7
same-patient pairs with the same per-twin seeds, so rows differ only by the model or the setting. The test
fold is never read.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.eval.clinical import heart_rates, interval_distributions
from ecgtwin.eval.fidelity import matched_rows
from ecgtwin.eval.harness_data import PairArrays, datamodule_for, select_pairs, twin_specs
from ecgtwin.eval.metrics import frechet_distance, simple_ecg_features, standardize_features, wilson_interval
from ecgtwin.eval.realism import REGULAR_CV, has_short_rr, realism_section, rr_cv
from ecgtwin.pipeline import SamplingOptions, format_sampling

BENCH_SPLIT = {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [7], "test_folds": [8]}
"""The shared pack's split: the bench reads the validation fold (7) only."""

COLUMNS = (("limb_residual_mV", "limb resid. mV", "{:.1e}"), ("amplitude_ratio", "amp. ratio", "{:.2f}"),
           ("noise_ratio_35_50Hz", "noise ratio", "{:.2f}"), ("rr_regular", "RR regular [95% CI]", None),
           ("spurious", "spurious [95% CI]", None), ("correlation_error", "corr. err", "{:.3f}"),
           ("c2st_auroc", "2-sample AUROC [95% CI]", None), ("target_auroc", "target AUROC [95% CI]", None),
           ("qt_ratio", "QT ratio", "{:.2f}"), ("hr_mae_bpm", "HR MAE", "{:.1f}"), ("fd_handcrafted", "FD hand.", "{:.1f}"))
"""(key, heading, format) of the realism columns of a bench row; format ``None``: a share or AUROC with its CI."""


@dataclass
class BenchPairs:
    """The fixed validation pairs of a bench and what every row is compared with."""

    pairs: PairArrays
    specs: list[TwinSpec]
    fs: int
    label_names: list[str]
    real_features: np.ndarray  # (P, F) handcrafted features of the real targets
    halves: tuple[np.ndarray, np.ndarray]  # patient-disjoint halves A, B of the pairs (matched_rows)
    target_short: np.ndarray  # (P,) 1 where the real target has an RR < 0.3 s, NaN where unmeasured
    real_qt_ms: float  # median QT of the real targets
    label_auroc: Callable[[np.ndarray], tuple[float, float, float]] | None = None
    real: dict[str, Any] = field(default_factory=dict)  # the real targets' own row (shares, floor of the FD)

    @property
    def target_hr(self) -> np.ndarray:
        return np.array([s.hr if s.hr is not None else np.nan for s in self.specs])  # (P,) bpm


def prepare_pairs(model: TwinModel, root: str, n: int, classifier: str | None = None, seed: int = 0) -> BenchPairs:
    """``n`` seeded fold-7 pairs of the pack at ``root`` (the same for every model of one vocabulary)."""
    dm = datamodule_for(model, root, BENCH_SPLIT, progress=False)
    pairs = select_pairs(dm, n, seed=seed, split="val")  # fold 7 only
    specs = twin_specs(model, pairs)
    fs = model.fs
    real_feats = simple_ecg_features(pairs.target, fs)
    half_a, half_b = matched_rows(pairs.patient_id, 0, (pairs.target_record, pairs.reference_record))
    bench = BenchPairs(pairs, specs, fs, list(model.vocabulary.names), real_feats, (half_a, half_b),
                       has_short_rr(pairs.target, fs), median_qt_ms(pairs.target, fs))
    if classifier:
        bench.label_auroc = target_label_auroc(classifier, model, pairs.target_labels)
    floor = frechet_distance(*standardize_features(real_feats[half_b], real_feats[half_a]))
    bench.real = {**rhythm_shares(pairs.target, None, fs), "fd_handcrafted": floor, "qt_ms": bench.real_qt_ms}
    if bench.label_auroc is not None:
        bench.real["target_auroc"] = bench.label_auroc(pairs.target)
    return bench


def measure(model: TwinModel, bench: BenchPairs, options: SamplingOptions, batch_size: int = 16) -> dict[str, Any]:
    """One bench row: ``setting``, network ``evals`` and ``seconds`` per twin, then every key of :data:`COLUMNS`."""
    start = time.perf_counter()
    twins = model.generate(bench.specs, batch_size=batch_size, progress=False, options=options)  # (P, 12, L)
    seconds = (time.perf_counter() - start) / len(bench.specs)
    pairs, fs = bench.pairs, bench.fs
    row: dict[str, Any] = realism_section({"twin": twins}, pairs.target, fs, pairs.target_labels, bench.label_names,
                                          pairs.patient_id, n_boot=500)["twin"]
    row.update(rhythm_shares(twins, bench.target_short, fs))
    if bench.label_auroc is not None:
        row["target_auroc"] = bench.label_auroc(twins)
    half_a, half_b = bench.halves
    row["fd_handcrafted"] = frechet_distance(*standardize_features(bench.real_features[half_b],
                                                                   simple_ecg_features(twins, fs)[half_a]))
    row["hr_mae_bpm"] = float(np.nanmean(np.abs(heart_rates(twins, fs) - bench.target_hr)))
    row["qt_ms"] = median_qt_ms(twins, fs)
    row["qt_ratio"] = row["qt_ms"] / bench.real_qt_ms
    return {"setting": format_sampling(options), "evals": evaluations_per_twin(options, model), "seconds": seconds,
            **row}


def median_qt_ms(signals: np.ndarray, fs: int) -> float:
    """Median over records of the per-record QT (ms, lead II delineation); NaN when none is measured."""
    qt = interval_distributions(signals, fs)["qt_ms"].to_numpy()
    return float(np.nanmedian(qt)) if np.isfinite(qt).any() else float("nan")


def evaluations_per_twin(options: SamplingOptions, model: TwinModel) -> int:
    """Network evaluations per twin (guided steps cost 3, or 2 without a person; steps outside the interval 1)."""
    from ecgtwin.diffusion.guidance import guidance_weights

    per_step = len(guidance_weights(options.guidance_person, options.guidance_condition, model.personalised))
    active = options.guidance_active(model.schedule)
    grid = model.schedule.sampling_timesteps(options.num_steps, options.spacing)
    return sum(per_step if active is None or active(t) else 1 for t in grid)


def target_label_auroc(path: str, model: TwinModel,
                       target_labels: np.ndarray) -> Callable[[np.ndarray], tuple[float, float, float]]:
    """``twins -> (macro-AUROC, low, high)`` of the reference classifier for the targets' labels it knows."""
    from ecgtwin.eval.classifier_fit import predict_logits
    from ecgtwin.eval.harness_data import classifier_columns
    from ecgtwin.eval.metrics import bootstrap_ci, macro_auroc
    from ecgtwin.training.classifier_module import load_classifier

    classifier = load_classifier(path)  # with its label names
    columns = classifier_columns(model.vocabulary, classifier)  # the classifier's labels in the model's vocabulary
    return lambda twins: bootstrap_ci(macro_auroc, target_labels[:, columns], predict_logits(classifier, twins),
                                      n_boot=500)


def rhythm_shares(signals: np.ndarray, target_short: np.ndarray | None, fs: int) -> dict[str, tuple[int, int]]:
    """``(count, n)`` of records with a regular RR (CV < 0.15) among those measured, and (with the targets'
    short-RR flags) of records with a spurious beat among the pairs whose target has none."""
    cv = rr_cv(signals, fs)
    out = {"rr_regular": (int((cv[np.isfinite(cv)] < REGULAR_CV).sum()), int(np.isfinite(cv).sum()))}
    if target_short is not None:
        short = has_short_rr(signals, fs)
        usable = np.isfinite(short) & (target_short == 0.0)
        out["spurious"] = (int(short[usable].sum()), int(usable.sum()))
    return out


def share(row: dict[str, Any], key: str) -> tuple[float, float, float]:
    """``(value, low, high)`` of a bench column: a share with its Wilson 95% CI, an AUROC with its bootstrap CI,
    or a plain number (``low = high = value``); NaN when the row lacks it or measured nothing."""
    if key == "c2st_auroc":
        return row["c2st_auroc"], row["c2st_auroc_low"], row["c2st_auroc_high"]
    value = row.get(key)
    if value is None:
        return (np.nan,) * 3  # type: ignore[return-value]
    if key == "target_auroc":
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    if isinstance(value, (tuple, list)):
        count, n = value
        if n == 0:
            return (np.nan,) * 3  # type: ignore[return-value]
        return (count / n, *wilson_interval(count, n))
    return float(value), float(value), float(value)


def cell(row: dict[str, Any], key: str, fmt: str | None) -> str:
    """A table cell: ``fmt`` of a number, or a share / AUROC with its 95% CI ('-': nothing measured, '': absent)."""
    if fmt is not None:
        return fmt.format(row.get(key, np.nan))
    if key == "target_auroc" and key not in row:
        return ""  # no classifier
    value, low, high = share(row, key)
    if not np.isfinite(value):
        return "-"
    digits = 3 if key == "target_auroc" else 2
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_table(rows: list[dict[str, Any]], real: dict[str, Any], first: str = "setting") -> str:
    """The bench rows as a markdown table, the real targets' own row last."""
    head = [first, "evals/twin", "s/twin"] + [heading for _, heading, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row[first]), str(row["evals"]), f"{row['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells + [cell(row, key, fmt) for key, _, fmt in COLUMNS]) + " |")
    real_cells = {"rr_regular": cell(real, "rr_regular", None), "target_auroc": cell(real, "target_auroc", None),
                  "fd_handcrafted": f"{real['fd_handcrafted']:.1f} (real/real)", "qt_ratio": f"QT {real['qt_ms']:.0f} ms"}
    lines.append("| " + " | ".join(["real targets", "", ""] + [real_cells.get(key, "") for key, _, _ in COLUMNS]) + " |")
    return "\n".join(lines)
