"""Where bundled files live (repo checkout or installed package)."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BUNDLED_SAMPLE = REPO_DIR / "data" / "ptbxl_sample"
"""Small real PTB-XL sample shipped with the repository (see data/README.md)."""
SHARED_PTBXL = REPO_DIR.parent / "shared" / "data" / "ptbxl100"
"""The shared PTB-XL folds 1-8 pack beside a project checkout (absent on a user's machine)."""
ASSETS_DIR = PACKAGE_DIR / "assets"
"""Bundled trained checkpoints (IBE + generator + classifier)."""
DEMO_REFERENCE = ASSETS_DIR / "demo" / "01495_lr"
"""The demo's reference record, package data so ``ecgtwin demo`` runs from a wheel install too (PTB-XL ecg_id 1495)."""
BUNDLED_CLASSIFIER = ASSETS_DIR / "classifier_ptbxl100.ckpt"
"""The reference classifier of the evaluation report (package data)."""

SAMPLE_SPLIT: dict[str, list[int]] = {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [7], "test_folds": [8]}
"""Patient-disjoint split used for data without the official folds 9-10 (bundled sample, shared pack)."""
FULL_PTBXL_SPLIT: dict[str, list[int]] = {"train_folds": [1, 2, 3, 4, 5, 6, 7, 8], "val_folds": [9], "test_folds": [10]}
"""PTB-XL's recommended split (Wagner et al. 2020): folds 9 and 10 are human-validated."""
