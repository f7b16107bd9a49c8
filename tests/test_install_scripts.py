"""scripts/setup.sh, scripts/test.sh: a project virtual environment, never the system interpreter (issue 12).

The scripts run for real against a stub ``python3`` that records every call, so the test is fast and installs
nothing; the real install in a fresh clone is checked by hand (docs/INSTALL_CHECKS.md).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STUB = """#!/usr/bin/env bash
echo "$0 $*" >> "$LOG"
if [[ "$1" == "-m" && "$2" == "venv" ]]; then mkdir -p "$3/bin"; cp "$STUB_PY" "$3/bin/python"; touch "$3/bin/activate"; fi
if [[ "$1" == "-c" ]]; then echo stub; fi
exit 0
"""


@pytest.fixture()
def sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the scripts in an empty project folder, and an environment whose python3 is the stub."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "scripts", project / "scripts", ignore=shutil.ignore_patterns("*.py"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"
    stub.write_text(STUB)
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHON", "TORCH_SPEC", "EXTRAS")}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", LOG=str(tmp_path / "calls.log"), STUB_PY=str(stub))
    return project, env


def calls(env: dict[str, str]) -> list[str]:
    return Path(env["LOG"]).read_text().splitlines()


def test_setup_creates_and_uses_a_project_venv(sandbox: tuple[Path, dict[str, str]]) -> None:
    project, env = sandbox
    subprocess.run(["bash", "scripts/setup.sh"], cwd=project, env=env, check=True, capture_output=True)
    venv_python = f"{project}/.venv/bin/python"
    log = calls(env)
    assert log[0].endswith("python3 -m venv .venv")  # the only call of the system interpreter
    assert f"{venv_python} -m pip install -q torch==2.13.0" in log
    assert f"{venv_python} -m pip install -q -e .[dev]" in log
    assert all(line.startswith(venv_python) for line in log[1:])
    env["TORCH_SPEC"] = "torch>=2.1"  # still overridable; the existing .venv is reused
    subprocess.run(["bash", "scripts/setup.sh"], cwd=project, env=env, check=True, capture_output=True)
    assert f"{venv_python} -m pip install -q torch>=2.1" in calls(env)
    assert sum("-m venv" in line for line in calls(env)) == 1


def test_an_active_virtual_environment_is_used_and_linked(sandbox: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    project, env = sandbox
    active = tmp_path / "myenv"
    (active / "bin").mkdir(parents=True)
    shutil.copy(env["STUB_PY"], active / "bin" / "python")
    env["VIRTUAL_ENV"] = str(active)
    subprocess.run(["bash", "scripts/setup.sh"], cwd=project, env=env, check=True, capture_output=True)
    log = calls(env)
    assert not any("-m venv" in line for line in log)
    assert f"{active}/bin/python -m pip install -q -e .[dev]" in log
    assert (project / ".venv").resolve() == active.resolve()  # `source .venv/bin/activate` works as written


def test_test_script_runs_pytest_with_the_same_environment(sandbox: tuple[Path, dict[str, str]]) -> None:
    project, env = sandbox
    subprocess.run(["bash", "scripts/test.sh", "-k", "nothing"], cwd=project, env=env, check=True, capture_output=True)
    assert calls(env)[-1] == f"{project}/.venv/bin/python -m pytest -q -k nothing"
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def test_readme_commands_are_the_ones_checked() -> None:
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/setup.sh && source .venv/bin/activate && ecgtwin demo" in readme
    assert "\nbash scripts/test.sh\n" in readme
