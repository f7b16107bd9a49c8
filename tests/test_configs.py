"""The shipped YAML configs train through ``ecgtwin fit`` on the bundled sample (a few real steps each)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecgtwin.cli.main import main
from ecgtwin.training.classifier_module import load_classifier
from ecgtwin.training.generator_module import load_generator
from ecgtwin.training.ibe_module import load_ibe

REPO = Path(__file__).resolve().parent.parent


def _fit(config: str, tmp: Path, name: str, *overrides: str) -> Path:
    rc = main(["fit", "--config", str(REPO / "configs" / config), "--config", str(REPO / "configs/data/sample.yaml"),
               "--data.init_args.root", str(REPO / "data/ptbxl_sample"), "--data.init_args.cache_dir", str(tmp / "cache"),
               "--data.init_args.batch_size", "8", "--trainer.max_steps", "3", "--trainer.limit_val_batches", "1",
               "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp / name),
               "--trainer.logger.init_args.save_dir", str(tmp / "logs"), *overrides])
    assert rc == 0
    checkpoints = sorted((tmp / "logs").glob(f"*/version_*/checkpoints/last.ckpt"))
    assert checkpoints, f"no checkpoint written for {config}"
    return max(checkpoints, key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def ibe_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ibe")
    return _fit("ibe.yaml", tmp, "ibe", "--model.init_args.net_config.dim", "32", "--model.init_args.net_config.depth", "1")


def test_ibe_config_fits_and_reloads_weights_only(ibe_checkpoint: Path) -> None:
    raw = torch.load(ibe_checkpoint, weights_only=True)
    assert raw["global_step"] == 3 and raw["ECGDataModule"]["vocabulary"]["names"] == ["CD", "HYP", "MI", "NORM", "STTC"]
    net = load_ibe(ibe_checkpoint)
    z = net(torch.randn(2, 12, 1000), torch.zeros(2, 5), torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))
    assert z.shape == (2, 256)


def test_generator_config_fits_on_a_frozen_ibe_and_reloads(ibe_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = _fit("generator.yaml", tmp_path, "gen", "--model.init_args.ibe_checkpoint", str(ibe_checkpoint),
                "--model.init_args.channels", "8", "--model.init_args.blocks_per_level", "1")
    module = load_generator(ckpt)  # rebuilds the IBE from the config stored in the checkpoint
    frozen = load_ibe(ibe_checkpoint)
    for name, value in frozen.state_dict().items():  # the generator trained on exactly that IBE, unchanged
        torch.testing.assert_close(module.ibe.state_dict()[name], value)
    assert module.net.attention_levels == (2, 3)


def test_classifier_config_fits_and_reloads(tmp_path: Path) -> None:
    ckpt = _fit("classifier.yaml", tmp_path, "clf", "--model.init_args.widths", "[8, 8, 16, 16]")
    net = load_classifier(ckpt)
    assert net(torch.randn(2, 12, 1000)).shape == (2, 5)
