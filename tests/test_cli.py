"""The ``ecgtwin`` command: fast help, dispatch, clear errors."""
from __future__ import annotations

import subprocess
import sys
import time

from ecgtwin.cli.main import main


def test_help_is_fast_and_does_not_import_lightning() -> None:
    code = (
        "import sys, time; t=time.time(); from ecgtwin.cli.main import main; rc=main(['--help']); "
        "assert rc == 0; assert 'lightning' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules); "
        "print(time.time()-t)"
    )
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: ecgtwin COMMAND" in out.stdout
    assert time.time() - start < 5.0


def test_unknown_command_is_an_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ecgtwin ")
