"""ecgtwin: personalised 12-lead ECG digital twins (ECGTwin, Lai et al. 2025, arXiv 2508.02720).

Importing the package is cheap: heavy modules (torch, lightning, wfdb) load
only where they are used.
"""
from __future__ import annotations

from ecgtwin.constants import DEFAULT_FS, DEFAULT_LENGTH, LEADS, N_LEADS, UNITS

__version__ = "0.1.0"
__all__ = ["LEADS", "N_LEADS", "UNITS", "DEFAULT_FS", "DEFAULT_LENGTH", "__version__"]
