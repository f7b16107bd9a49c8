"""Single source of truth for ECG layout: lead order, units, sampling rate.

Every array of ECG samples in ecgtwin is shaped ``(..., 12, L)`` with leads in
:data:`LEADS` order, values in millivolts (:data:`UNITS`), sampled at
``fs`` Hz (default :data:`DEFAULT_FS`) for :data:`DEFAULT_SECONDS` seconds.
"""
from __future__ import annotations

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
"""Standard 12-lead order (limb leads, augmented limb leads, precordial leads)."""

N_LEADS: int = len(LEADS)

INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
"""The 8 linearly independent leads: two limb leads and the six precordial leads.

The other four are fixed linear combinations of I and II (:data:`LIMB_LEAD_LAWS`),
because all six limb leads are differences of the same three electrode potentials.
"""
N_INDEPENDENT_LEADS: int = len(INDEPENDENT_LEADS)

LIMB_LEAD_LAWS: dict[str, tuple[float, float]] = {
    "III": (-1.0, 1.0),    # Einthoven:  III = II - I
    "aVR": (-0.5, -0.5),   # Goldberger: aVR = -(I + II) / 2
    "aVL": (1.0, -0.5),    # Goldberger: aVL = I - II / 2
    "aVF": (-0.5, 1.0),    # Goldberger: aVF = II - I / 2
}
"""Derived limb lead -> coefficients ``(a, b)`` of ``a * I + b * II`` (Einthoven 1912; Goldberger 1942)."""
UNITS: str = "mV"
DEFAULT_FS: int = 100
"""Default sampling rate in Hz (PTB-XL ``records100``). 500 Hz is for GPU configs."""
DEFAULT_SECONDS: float = 10.0
DEFAULT_LENGTH: int = int(DEFAULT_FS * DEFAULT_SECONDS)

DEMOGRAPHICS: tuple[str, ...] = ("hr", "age", "sex")
"""Order of the demographic condition channels in ``demographics`` tensors."""

# Physiological plausibility bounds used for validation of user input.
HR_RANGE_BPM: tuple[float, float] = (20.0, 250.0)
AGE_RANGE_YEARS: tuple[float, float] = (0.0, 120.0)
PTBXL_AGE_UNKNOWN: int = 300
"""PTB-XL stores ages above 89 as 300 (privacy rule); treated as unknown age."""


def lead_index(name: str) -> int:
    """Index of a lead by name, case-insensitive (``"avr"`` -> 3)."""
    lowered = {lead.lower(): i for i, lead in enumerate(LEADS)}
    key = name.strip().lower()
    if key not in lowered:
        raise KeyError(f"unknown lead name {name!r}; expected one of {', '.join(LEADS)}")
    return lowered[key]
