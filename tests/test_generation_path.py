"""The generation path (API, generate-ecg, demo) is a plain pipeline: no ``ecgtwin.training`` import, ``.ckpt`` still loads."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgtwin.pipeline import SamplingOptions
from ecgtwin.api import DEFAULT_BUNDLE, TwinModel, TwinSpec
from ecgtwin.bundle import GENERATOR_CHECKPOINT_KEY
from ecgtwin.data.conditions import DemographicsNormalizer, LabelVocabulary
from ecgtwin.io.wfdb_io import read_reference
from ecgtwin.models.ibe import IndividualBaseExtractor
from ecgtwin.training.checkpoints import load_weights_only as old_import
from ecgtwin.training.generator_module import CHECKPOINT_KEY, GeneratorModule
from ecgtwin.weights import load_weights_only

from bundles import TINY_UNET, tiny_bundle

REPO = Path(__file__).resolve().parent.parent
RECORD = "records100/01000/01495_lr"
_TRAINING_FREE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("ecgtwin.training", "lightning")))))
"""


def modules_loaded_by(body: str) -> list[str]:
    """Run ``body`` in a fresh interpreter; return the ``ecgtwin.training*`` / ``lightning*`` modules it imported."""
    result = subprocess.run([sys.executable, "-c", _TRAINING_FREE.format(body=body)], capture_output=True, text=True,
                            cwd=REPO, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not DEFAULT_BUNDLE.is_file(), reason="bundled model not present")
def test_api_loads_the_bundled_model_and_generates_without_training_code(sample_root: Path) -> None:
    body = (f"from ecgtwin.api import TwinModel, TwinSpec\nfrom ecgtwin.io.wfdb_io import read_reference\n"
            f"m = TwinModel.load()\nref = read_reference({str(sample_root / RECORD)!r}).signal\n"
            f"assert m.generate([TwinSpec(ref, ['MI'], seed=0)], steps=2, progress=False).shape == (1, 12, 1000)")
    assert modules_loaded_by(body) == []


def test_generate_ecg_main_imports_no_training_code(sample_root: Path, tmp_path: Path) -> None:
    bundle = tiny_bundle(sample_root, tmp_path)
    argv = ["--reference", str(sample_root / RECORD), "--condition", "MI", "--steps", "2", "--checkpoint", str(bundle),
            "--out", str(tmp_path / "out"), "--no-progress", "--plot"]
    body = f"from ecgtwin.cli.generate import main\nassert main({argv!r}) == 0"
    assert modules_loaded_by(body) == []
    assert len(list((tmp_path / "out").glob("*.hea"))) == 1


def test_demo_imports_no_training_code(sample_root: Path, tmp_path: Path) -> None:
    bundle = tiny_bundle(sample_root, tmp_path)
    argv = ["demo", "--checkpoint", str(bundle), "--num", "1", "--steps", "2", "--out", str(tmp_path / "demo")]
    body = f"from ecgtwin.cli.main import main\nassert main({argv!r}) == 0"
    assert modules_loaded_by(body) == []


def test_weights_loader_moved_with_a_re_export_and_the_same_checkpoint_key(tmp_path: Path) -> None:
    assert old_import is load_weights_only and GENERATOR_CHECKPOINT_KEY == CHECKPOINT_KEY
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_weights_only(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        TwinModel.load(tmp_path)


def test_lightning_checkpoint_loads_through_the_plain_pipeline(sample_root: Path, tmp_path: Path) -> None:
    """A ``.ckpt`` as Lightning writes it (state dict with EMA + IBE, hyper-parameters, data-module state)."""
    torch.manual_seed(0)
    vocab = LabelVocabulary.from_root(sample_root, "superclass")
    ibe = IndividualBaseExtractor(len(vocab), dim=32, depth=1, heads=2, patch=16, base_dim=16, cond_dim=16)
    module = GeneratorModule(len(vocab), ibe=ibe, **TINY_UNET)
    with torch.no_grad():
        for p in module.ema.module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
            "ECGDataModule": {"vocabulary": vocab.to_dict(), "normalizer": DemographicsNormalizer().to_dict()},
            "datamodule_hyper_parameters": {"fs": 100, "seconds": 10.0, "highpass_hz": 0.5},
            "global_step": 1234, "epoch": 5}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "generator.ckpt")

    model = TwinModel.load(tmp_path / "generator.ckpt")
    assert model.provenance["global_step"] == 1234 and model.provenance["epoch"] == 5  # bundles say how far it trained
    assert model.personalised and model.vocabulary == vocab and model.signal_scale == module.hparams.signal_scale
    reference = read_reference(sample_root / RECORD).signal
    specs = [TwinSpec(reference, ["MI"], hr=80, seed=3)]
    twins = model.generate(specs, progress=False,  # the module's sampler on the default (quadratic) grid
                           options=SamplingOptions("dpmpp_2m", 3, guidance_condition=2.0, guidance_person=1.5))
    batch, unknown = model._reference_batch(specs)
    condition = model._to_batch([model.encode_condition(["MI"], 80, None, None)])
    expected = module.eval().sample(condition, [3], base_vector=module.base_vectors(batch, drop=unknown), steps=3,
                                    guidance_condition=2.0, guidance_person=1.5)
    np.testing.assert_allclose(twins, expected.numpy(), atol=1e-5)  # the LightningModule's own sampler agrees
    body = f"from ecgtwin.api import TwinModel\nTwinModel.load({str(tmp_path / 'generator.ckpt')!r})"
    assert modules_loaded_by(body) == []
