"""Text summary of a prepared dataset (printed by ``ecgtwin prepare`` and the main job)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ecgtwin.constants import UNITS
from ecgtwin.data.cache import ECGCache
from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
from ecgtwin.data.preprocess import PreprocessConfig


def _stats(values: np.ndarray, unit: str) -> str:
    known = values[np.isfinite(values)]
    if known.size == 0:
        return f"unknown for all {values.size}"
    return f"{known.mean():.1f} ± {known.std():.1f} {unit} (range {known.min():.0f}-{known.max():.0f}; known {known.size}/{values.size})"


def _pairs(patient_ids: np.ndarray) -> int:
    counts = np.unique(patient_ids, return_counts=True)[1]
    return int((counts * (counts - 1) // 2).sum())  # n(n-1)/2 ordered pairs per patient


def describe_data(
    source: str,
    root: str,
    cache: ECGCache,
    rows: Mapping[str, np.ndarray],
    folds: Mapping[str, Sequence[int]],
    vocabulary: LabelVocabulary,
    normalizer: DemographicsNormalizer,
    config: PreprocessConfig,
) -> str:
    meta: pd.DataFrame = cache.metadata
    manifest = cache.manifest
    hp = "off" if config.highpass_hz is None else f"{config.highpass_hz:g} Hz"
    lines = [
        f"ECG data: {source} at {root}",
        f"  cache {cache.path} ({'re-used' if cache.reused else 'built'}; build took {manifest['build_seconds']:.1f} s)",
        f"  signals: {len(meta)} records x 12 leads x {config.length} samples ({config.fs:g} Hz, {config.seconds:g} s, {UNITS}, high-pass {hp})",
    ]
    skipped = manifest["skipped"]
    if skipped:
        reasons = Counter(s["reason"] for s in skipped)
        lines.append(f"  skipped: {len(skipped)} corrupt/missing records ({'; '.join(f'{r}: {n}' for r, n in reasons.most_common(5))})")
    else:
        lines.append("  skipped: none")
    if manifest.get("n_records_with_zeroed_leads"):
        lines.append(f"  records with missing leads set to zero: {manifest['n_records_with_zeroed_leads']}")
    lines.append(f"  labels: {vocabulary.level} ({len(vocabulary)}), likelihood >= {vocabulary.threshold:g}")
    shown = list(vocabulary.names[:12])
    header = f"  {'split':<6}{'folds':<18}{'records':>8}{'patients':>9}{'pairs':>7}  " + " ".join(f"{n:>6}" for n in shown) + "  (none)"
    lines.append(header + (" ..." if len(vocabulary) > 12 else ""))
    for name, r in rows.items():
        part = meta.iloc[r]
        encoded = np.stack([vocabulary.encode(d) for d in part["labels"]]) if len(part) else np.zeros((0, len(vocabulary)))  # (n, V)
        counts = " ".join(f"{int(c):>6}" for c in encoded.sum(0)[: len(shown)])
        fold_text = ",".join(map(str, folds[name]))
        lines.append(
            f"  {name:<6}{fold_text:<18}{len(part):>8}{part['patient_id'].nunique():>9}{_pairs(part['patient_id'].to_numpy()):>7}  "
            f"{counts}  {int((encoded.sum(1) == 0).sum()):>6}"
        )
    lines.append(f"  HR:  {_stats(meta['hr'].to_numpy(float), 'bpm')}; sources {dict(Counter(meta['hr_source']))}")
    lines.append(f"  age: {_stats(meta['age'].to_numpy(float), 'y')}")
    sex = meta["sex"].to_numpy(float)
    lines.append(f"  sex: {int((sex == 0).sum())} male, {int((sex == 1).sum())} female, {int(np.isnan(sex).sum())} unknown")
    lines.append(f"  normaliser (train): {normalizer!r}")
    return "\n".join(lines)
