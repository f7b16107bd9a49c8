"""Condition encoders: the diagnosis label vocabulary and the demographics normaliser.

Label levels (from PTB-XL's ``scp_statements.csv``, Wagner et al. 2020, Table 3):

* ``"superclass"``: the 5 diagnostic superclasses NORM, MI, STTC, CD, HYP
  (``diagnostic_class`` of statements with ``diagnostic == 1``);
* ``"subclass"``: the 23 diagnostic subclasses (``diagnostic_subclass``);
* ``"all"``: all 71 statements (diagnostic, form and rhythm) by code;
* ``"superclass_rhythm"``: the 5 superclasses, then the 12 rhythm statements
  (SR, AFIB, STACH, SBRAD, SARRH, ...; ``rhythm == 1`` in ``scp_statements.csv``)
  by code, so a condition can ask for a rhythm beside the diagnosis.

Names are sorted alphabetically (within each group for ``"superclass_rhythm"``). A record carries a label when one of its
``scp_codes`` maps to it with likelihood ``>= threshold``. The default
threshold 0 counts every listed statement, as the PTB-XL benchmark
(Strodthoff et al. 2021) does: PTB-XL gives likelihood 0 to statements whose
likelihood was not recorded (all form/rhythm statements), so a positive
threshold would drop those entirely.
"""
from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgtwin.constants import DEMOGRAPHICS

LEVELS: tuple[str, ...] = ("superclass", "subclass", "all", "superclass_rhythm")
DEFAULT_RHYTHM = "SR"
"""Sinus rhythm: the rhythm a twin gets when its condition names none (vocabularies with rhythm labels)."""


class LabelVocabulary:
    """Multi-hot encoding of SCP statement dicts ``{code: likelihood}`` at one label level."""

    def __init__(self, names: Sequence[str], code_to_label: Mapping[str, str], level: str, threshold: float = 0.0,
                 rhythm_names: Sequence[str] = ()) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"LabelVocabulary: duplicate label names in {list(names)}")
        unknown = sorted(set(code_to_label.values()) - set(names))
        if unknown:
            raise ValueError(f"LabelVocabulary: codes map to labels {unknown} that are not in names")
        self.names: tuple[str, ...] = tuple(names)
        self.code_to_label: dict[str, str] = dict(code_to_label)
        self.level = level
        self.threshold = float(threshold)
        self._position = {name: i for i, name in enumerate(self.names)}
        missing = sorted(set(rhythm_names) - set(self.names))
        if missing:
            raise ValueError(f"LabelVocabulary: rhythm labels {missing} are not in names")
        self.rhythm_names: tuple[str, ...] = tuple(n for n in self.names if n in set(rhythm_names))
        """The rhythm labels (``"superclass_rhythm"`` vocabularies; empty otherwise)."""

    @classmethod
    def from_statements(cls, statements: pd.DataFrame, level: str = "superclass", threshold: float = 0.0) -> LabelVocabulary:
        """Build from :func:`~ecgtwin.data.ptbxl.load_scp_statements` output."""
        if level not in LEVELS:
            raise ValueError(f"label level {level!r} unknown; expected one of {LEVELS}")
        if level == "all":
            codes = [str(c) for c in statements.index]
            return cls(sorted(codes), {c: c for c in codes}, level, threshold)
        column = "diagnostic_subclass" if level == "subclass" else "diagnostic_class"
        diagnostic = statements[statements["diagnostic"].astype(bool) & statements[column].notna()]
        mapping = {str(code): str(label) for code, label in diagnostic[column].items()}
        names = sorted(set(mapping.values()))
        if level == "superclass_rhythm":
            rhythm = sorted(str(code) for code in statements.index[statements["rhythm"].fillna(0).astype(bool)])
            clash = sorted(set(rhythm) & set(names))
            if clash:
                raise ValueError(f"rhythm codes {clash} clash with diagnostic class names")
            mapping.update({code: code for code in rhythm})
            return cls(names + rhythm, mapping, level, threshold, rhythm)
        return cls(names, mapping, level, threshold)

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], level: str = "superclass", threshold: float = 0.0) -> LabelVocabulary:
        """Build from ``<root>/scp_statements.csv``."""
        from ecgtwin.data.ptbxl import load_scp_statements

        return cls.from_statements(load_scp_statements(root), level, threshold)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def diagnosis_names(self) -> tuple[str, ...]:
        """The labels that are not rhythm statements."""
        rhythm = set(self.rhythm_names)
        return tuple(n for n in self.names if n not in rhythm)

    def __repr__(self) -> str:
        return f"LabelVocabulary(level={self.level!r}, threshold={self.threshold}, names={list(self.names)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelVocabulary) and self.to_dict() == other.to_dict()

    def index(self, name: str) -> int:
        """Position of label ``name``; an unknown name raises ``KeyError`` listing close matches."""
        if name in self._position:
            return self._position[name]
        by_case = [n for n in self.names if n.lower() == str(name).lower()]
        if len(by_case) == 1:
            return self._position[by_case[0]]
        close = difflib.get_close_matches(str(name).upper(), self.names, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known labels: {', '.join(self.names)}"
        raise KeyError(f"unknown label {name!r} at level {self.level!r}{hint}")

    def encode(self, scp_codes: Mapping[str, float]) -> np.ndarray:
        """Multi-hot float32 ``(V,)``: label on if a code maps to it with likelihood >= threshold."""
        out = np.zeros(len(self.names), dtype=np.float32)
        for code, likelihood in scp_codes.items():
            label = self.code_to_label.get(code)
            if label is not None and float(likelihood) >= self.threshold:
                out[self._position[label]] = 1.0
        return out

    def encode_names(self, names: Sequence[str]) -> np.ndarray:
        """Multi-hot float32 ``(V,)`` from label names (e.g. a user's target condition ``["MI"]``)."""
        out = np.zeros(len(self.names), dtype=np.float32)
        for name in names:
            out[self.index(name)] = 1.0
        return out

    def decode(self, multi_hot: np.ndarray, cutoff: float = 0.5) -> list[str]:
        """Names of the labels whose entry exceeds ``cutoff``."""
        values = np.asarray(multi_hot).reshape(-1)  # (V,)
        if values.shape[0] != len(self.names):
            raise ValueError(f"decode: expected {len(self.names)} values, got {values.shape[0]}")
        return [n for n, v in zip(self.names, values) if v > cutoff]

    def to_dict(self) -> dict[str, Any]:
        out = {"level": self.level, "threshold": self.threshold, "names": list(self.names),
               "code_to_label": dict(sorted(self.code_to_label.items()))}
        if self.rhythm_names:
            out["rhythm_names"] = list(self.rhythm_names)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelVocabulary:
        return cls(list(data["names"]), dict(data["code_to_label"]), str(data["level"]), float(data["threshold"]),
                   list(data.get("rhythm_names", ())))


class DemographicsNormalizer:
    """z-score of heart rate and age with train-split statistics; sex passes through (0 male, 1 female).

    ``transform`` returns ``values`` ordered as :data:`~ecgtwin.constants.DEMOGRAPHICS`
    and ``mask`` (True = known); unknown values are 0 with mask False.
    """

    def __init__(self, hr_mean: float = 70.0, hr_std: float = 15.0, age_mean: float = 60.0, age_std: float = 17.0) -> None:
        if not (hr_std > 0 and age_std > 0):
            raise ValueError(f"standard deviations must be positive, got hr_std={hr_std}, age_std={age_std}")
        self.hr_mean, self.hr_std = float(hr_mean), float(hr_std)
        self.age_mean, self.age_std = float(age_mean), float(age_std)

    @classmethod
    def fit(cls, hr: np.ndarray, age: np.ndarray) -> DemographicsNormalizer:
        """Mean/std of the known (finite) values; call on the TRAIN split only."""
        hr, age = np.asarray(hr, dtype=np.float64), np.asarray(age, dtype=np.float64)
        hr, age = hr[np.isfinite(hr)], age[np.isfinite(age)]
        if hr.size < 2 or age.size < 2:
            raise ValueError(f"DemographicsNormalizer.fit needs >= 2 known values, got {hr.size} HR and {age.size} ages")
        return cls(hr.mean(), max(hr.std(), 1e-3), age.mean(), max(age.std(), 1e-3))

    def transform(self, hr: float | np.ndarray, age: float | np.ndarray, sex: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, mask)``, each float32/bool ``(..., 3)`` for broadcastable inputs (NaN = unknown)."""
        hr, age, sex = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (hr, age, sex)))
        raw = np.stack([(hr - self.hr_mean) / self.hr_std, (age - self.age_mean) / self.age_std, sex], axis=-1)  # (..., 3)
        mask = np.isfinite(raw)
        mask[..., 2] &= np.isin(sex, (0.0, 1.0))
        return np.where(mask, raw, 0.0).astype(np.float32), mask

    def inverse_hr(self, z: float | np.ndarray) -> float | np.ndarray:
        """Heart rate in bpm from its normalised value."""
        out = np.asarray(z, dtype=np.float64) * self.hr_std + self.hr_mean
        return float(out) if out.ndim == 0 else out

    def inverse_age(self, z: float | np.ndarray) -> float | np.ndarray:
        """Age in years from its normalised value."""
        out = np.asarray(z, dtype=np.float64) * self.age_std + self.age_mean
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict[str, float]:
        return {"hr_mean": self.hr_mean, "hr_std": self.hr_std, "age_mean": self.age_mean, "age_std": self.age_std}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> DemographicsNormalizer:
        return cls(**{k: float(data[k]) for k in ("hr_mean", "hr_std", "age_mean", "age_std")})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write JSON atomically (temporary file + rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"demographics": list(DEMOGRAPHICS), **self.to_dict()}, indent=2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DemographicsNormalizer:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __repr__(self) -> str:
        return f"DemographicsNormalizer(hr={self.hr_mean:.1f}±{self.hr_std:.1f} bpm, age={self.age_mean:.1f}±{self.age_std:.1f} y)"
