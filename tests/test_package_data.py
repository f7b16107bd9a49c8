"""A wheel (``pip install .``, not editable) carries everything generation and evaluation read (issue 12).

Builds the wheel from a copy of the source tree (no build isolation, no download) and lists its files. The full
check, a fresh virtual environment that installs the wheel and then generates and evaluates outside the
repository, takes minutes and is documented in docs/INSTALL_CHECKS.md.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ecgtwin.paths import ASSETS_DIR, BUNDLED_CLASSIFIER, DEMO_REFERENCE

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_holds_the_bundled_model_classifier_and_demo_record(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "data", "docs", "notebooks", "runs",
                                                                 "outputs", "build", "*.egg-info", "__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("ecgtwin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = [p for p in ASSETS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert {BUNDLED_CLASSIFIER, DEMO_REFERENCE.with_suffix(".hea"), DEMO_REFERENCE.with_suffix(".dat")} <= set(needed)
    missing = [str(p.relative_to(REPO)) for p in needed if str(p.relative_to(REPO)) not in names]
    assert not missing, f"package data missing from the wheel: {missing}"
    assert "ecgtwin/cli/generate.py" in names and "ecgtwin/weights.py" in names
