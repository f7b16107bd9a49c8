"""The ``ecgtwin`` command.

``ecgtwin fit|validate|test|predict --config configs/X.yaml`` is a LightningCLI;
``ecgtwin prepare`` builds the data cache and prints a summary; ``ecgtwin demo``
is the main job (twins of a bundled patient); ``ecgtwin evaluate`` runs the
evaluation harness. Heavy imports (torch, lightning) happen only inside the
sub-command that needs them, so ``ecgtwin --help`` answers at once.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

HELP = """usage: ecgtwin COMMAND [options]

Personalised 12-lead ECG digital twins (ECGTwin, arXiv 2508.02720).

commands:
  fit        train a model:            ecgtwin fit --config configs/ibe.yaml
  validate   run the validation loop:  ecgtwin validate --config ... --ckpt_path ...
  test       evaluate a checkpoint:    ecgtwin test --config configs/ibe.yaml --ckpt_path CKPT
  predict    LightningCLI predict
  prepare    build the data cache and print a summary of the dataset
  demo       the main job: twins of a bundled patient under two target conditions
  evaluate   the evaluation harness (fidelity, consistency, controllability, ...)

Run `ecgtwin COMMAND --help` for the options of one command.
`generate-ecg --help` generates twins from your own reference record.
"""


def _lightning_cli(argv: Sequence[str]) -> None:
    os.environ.setdefault("WANDB_MODE", "offline")  # never hang on the network
    from ecgtwin.cli.lightning_cli import run_lightning_cli

    run_lightning_cli(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ecgtwin`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(HELP)
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("-V", "--version"):
        from ecgtwin import __version__

        print(f"ecgtwin {__version__}")
        return 0
    if command in LIGHTNING_COMMANDS:
        _lightning_cli([command, *rest])
        return 0
    if command == "prepare":
        from ecgtwin.cli.prepare import main as prepare_main

        return prepare_main(rest)
    if command == "demo":
        from ecgtwin.cli.demo import main as demo_main

        return demo_main(rest)
    if command == "evaluate":
        from ecgtwin.cli.evaluate import main as evaluate_main

        return evaluate_main(rest)
    print(f"ecgtwin: unknown command {command!r}\n\n{HELP}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
