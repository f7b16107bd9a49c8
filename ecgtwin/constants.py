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


LEAD_ALIASES: dict[str, str] = {
    "di": "I", "dii": "II", "diii": "III",  # Roman numerals with D (Einthoven's "Derivation"), common in Europe
    "d1": "I", "d2": "II", "d3": "III",
}
"""Other spellings of the standard leads (keys as :func:`canonical_lead` normalises them), besides any case of
the :data:`LEADS` names (``AVR``, ``avr``), surrounding spaces (``"V1 "``) and a ``lead``/``lead_`` prefix
(``"Lead II"``). The one list of accepted lead names: readers map every channel through :func:`canonical_lead`."""
_LEAD_KEYS: dict[str, str] = {**{lead.lower(): lead for lead in LEADS}, **LEAD_ALIASES}


def canonical_lead(name: str) -> str | None:
    """The :data:`LEADS` spelling of a channel name (``"DII"`` -> ``"II"``, ``"AVR"`` -> ``"aVR"``), or None."""
    key = "".join(str(name).replace("_", " ").split()).lower()
    if key.startswith("lead") and len(key) > 4:
        key = key[4:]
    return _LEAD_KEYS.get(key)


def lead_index(name: str) -> int:
    """Index of a lead by name, any accepted spelling (``"avr"`` -> 3, ``"DII"`` -> 1)."""
    lead = canonical_lead(name)
    if lead is None:
        raise KeyError(f"unknown lead name {name!r}; expected one of {', '.join(LEADS)} (or an alias: DI, DII, ...)")
    return LEADS.index(lead)


TIMESTEP_SPACINGS: dict[str, float] = {"quadratic": 2.0, "trailing": 1.0}
"""Sampler timestep grids ``t_i = (T-1) u_i^p``, ``u`` uniform in [1, 0]: the power ``p`` of each name
(``quadratic``: more steps at low noise, DDIM's "quad"; ``trailing``: uniform in t, Lin et al. 2024)."""
