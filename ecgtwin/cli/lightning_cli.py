"""LightningCLI wiring for ``ecgtwin fit/validate/test/predict``.

Models and data modules are chosen in YAML (``class_path``/``init_args``), so
the same command trains the IBE, the generator and the reference classifier.
The label-vocabulary size is linked from the data module to the model.
"""
from __future__ import annotations

from lightning.pytorch.cli import LightningCLI


class EcgTwinCLI(LightningCLI):
    """LightningCLI that links ``data.num_labels`` into ``model.init_args.num_labels``."""

    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.link_arguments("data.num_labels", "model.init_args.num_labels", apply_on="instantiate")


def run_lightning_cli(args: list[str]) -> EcgTwinCLI:
    """Run the LightningCLI on ``args`` (e.g. ``["fit", "--config", "configs/ibe.yaml"]``)."""
    return EcgTwinCLI(
        model_class=None,
        datamodule_class=None,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"parser_mode": "omegaconf"},
    )
