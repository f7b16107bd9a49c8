"""One place for the default sampler, steps and guidance: ``ecgtwin.pipeline.DEFAULT_SAMPLING`` (API, CLI, demo, notebook)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb

import ecgtwin.api
import ecgtwin.pipeline as pipeline
from ecgtwin.api import TwinModel, TwinSpec
from ecgtwin.cli.main import main as ecgtwin_main
from ecgtwin.io.wfdb_io import read_reference
from ecgtwin.pipeline import SAMPLER_DEFAULT_STEPS, SamplingOptions, resolve_sampling

from bundles import tiny_bundle

PATCHED = SamplingOptions("ddim", 3, 1.5, 0.5)
RECORD = "records100/01000/01495_lr"


@pytest.fixture()
def patched_defaults(monkeypatch: pytest.MonkeyPatch) -> SamplingOptions:
    monkeypatch.setattr(pipeline, "DEFAULT_SAMPLING", PATCHED)
    return PATCHED


def spy_sampling(monkeypatch: pytest.MonkeyPatch, module: object) -> list[SamplingOptions]:
    """Record the SamplingOptions each ``module.sample_twins`` call gets (the call still runs)."""
    seen: list[SamplingOptions] = []
    real = module.sample_twins  # type: ignore[attr-defined]

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(args[6])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "sample_twins", spy)
    return seen


def test_resolve_sampling_fills_only_what_is_missing(patched_defaults: SamplingOptions) -> None:
    assert resolve_sampling() == PATCHED
    assert resolve_sampling(steps=9, guidance_person=2.0) == SamplingOptions("ddim", 9, 1.5, 2.0)
    other = resolve_sampling(sampler="ddpm")  # the default steps belong to the default sampler
    assert (other.sampler, other.num_steps, other.guidance_condition) == ("ddpm", SAMPLER_DEFAULT_STEPS["ddpm"], 1.5)
    with pytest.raises(ValueError, match="sampler must be one of"):
        resolve_sampling(sampler="euler")


def test_api_generate_uses_the_defaults(patched_defaults: SamplingOptions, sample_root: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = spy_sampling(monkeypatch, ecgtwin.api)
    model = TwinModel.load(tiny_bundle(sample_root, tmp_path))
    spec = TwinSpec(read_reference(sample_root / RECORD).signal, ["MI"])
    twins = model.generate([spec], progress=False)
    assert seen == [PATCHED]
    np.testing.assert_array_equal(twins, model.generate([spec], options=PATCHED, progress=False))
    model.generate([spec], steps=2, progress=False)
    assert seen[-1] == SamplingOptions("ddim", 2, 1.5, 0.5)


def test_demo_and_generate_ecg_use_the_defaults(patched_defaults: SamplingOptions, sample_root: Path,
                                                tmp_path: Path) -> None:
    bundle = tiny_bundle(sample_root, tmp_path)
    out = tmp_path / "demo"
    assert ecgtwin_main(["demo", "--checkpoint", str(bundle), "--out", str(out), "--num", "1",
                         "--conditions", "MI"]) == 0
    comments = dict(c.split(": ", 1) for c in wfdb.rdheader(str(next(out.glob("*.hea")).with_suffix(""))).comments)
    assert (comments["sampler"], comments["steps"]) == ("ddim", "3")
    assert (comments["guidance_condition"], comments["guidance_person"]) == ("1.5", "0.5")


def test_no_other_default_sampler_settings_in_the_generation_path() -> None:
    """The CLI, demo and notebook builder name no sampler default of their own."""
    root = Path(__file__).resolve().parent.parent
    for path in ("ecgtwin/cli/generate.py", "ecgtwin/cli/demo.py", "ecgtwin/api.py", "scripts/build_notebook.py"):
        text = (root / path).read_text()
        assert "default=\"dpmpp_2m\"" not in text and "DEFAULT_STEPS" not in text and "\"ddpm\", 250" not in text, path


def test_completion_has_its_own_defaults(patched_defaults: SamplingOptions, sample_root: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Lead completion samples with COMPLETION_SAMPLING (reconstruction guidance, no condition guidance), not with
    the twins' default; a setting given by the caller replaces only itself."""
    import ecgtwin.editing

    seen = spy_sampling(monkeypatch, ecgtwin.editing)
    monkeypatch.setattr(pipeline, "COMPLETION_SAMPLING", SamplingOptions("ddim", 2, 1.0, 1.0, reconstruction=4.0))
    monkeypatch.setattr(ecgtwin.editing, "COMPLETION_SAMPLING", pipeline.COMPLETION_SAMPLING)
    model = TwinModel.load(tiny_bundle(sample_root, tmp_path))
    partial = read_reference(sample_root / RECORD).signal[:2]  # (2, L): leads I and II
    model.complete(partial, ["I", "II"], progress=False)
    assert seen[-1] == SamplingOptions("ddim", 2, 1.0, 1.0, reconstruction=4.0)
    model.complete(partial, ["I", "II"], progress=False, options=resolve_sampling(steps=3))
    assert seen[-1] == SamplingOptions("ddim", 3, 1.5, 0.5)  # an explicit options object is used as given


def test_the_shipped_completion_default_is_the_documented_one() -> None:
    """docs/EDITING.md states the completion default; it must be COMPLETION_SAMPLING."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "EDITING.md").read_text()
    options = pipeline.COMPLETION_SAMPLING
    assert (options.guidance_condition, options.guidance_person) == (1.0, 1.0)  # no target condition by default
    assert (f"Default: `{options.sampler}` {options.num_steps} steps ({options.spacing} grid), no guidance (1/1), "
            f"reconstruction guidance `w = {options.reconstruction:g}`") in " ".join(text.split())
    assert (f"starts from the lead map fitted on it at strength `{pipeline.COMPLETION_REGRESSION_START:g}`"
            in " ".join(text.split()))


def test_spacing_reaches_the_sampler_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """SamplingOptions.spacing chooses the timestep grid the sampler walks; unknown names are refused."""
    from ecgtwin.diffusion.schedule import VPSchedule

    schedule = VPSchedule()
    grids: list[list[int]] = []
    real = VPSchedule.sampling_timesteps

    def spy(self, steps, spacing="quadratic", t_max=None):  # type: ignore[no-untyped-def]
        grids.append(real(self, steps, spacing, t_max))
        return grids[-1]

    monkeypatch.setattr(VPSchedule, "sampling_timesteps", spy)
    net = lambda x, t, **kw: torch.zeros_like(x)  # noqa: E731
    net.parameters = lambda: iter([torch.zeros(1)])  # type: ignore[attr-defined]
    condition = {"labels": torch.zeros(1, 3), "demographics": torch.zeros(1, 3)}
    for spacing in ("quadratic", "trailing"):
        pipeline.sample_twins(net, schedule, 0.5, condition, [0], None,
                              SamplingOptions("ddim", 4, spacing=spacing), length=16)
    assert grids[0] == real(schedule, 4, "quadratic") and grids[1] == real(schedule, 4, "trailing")
    assert grids[0] != grids[1] and grids[1] == [999, 666, 333, 0]
    with pytest.raises(ValueError, match="spacing must be one of"):
        SamplingOptions(spacing="cosine")
    assert resolve_sampling(spacing="trailing").spacing == "trailing"


def test_compact_setting_strings() -> None:
    from ecgtwin.pipeline import COMPLETION_SAMPLING, format_sampling, parse_sampling

    assert parse_sampling("ddpm:100:3:2") == SamplingOptions("ddpm", 100, 3.0, 2.0)
    assert parse_sampling("dpmpp_2m_sde:50:3:1:0.2-1:trailing") == SamplingOptions(
        "dpmpp_2m_sde", 50, 3.0, 1.0, guidance_interval=(0.2, 1.0), spacing="trailing")
    with pytest.raises(ValueError, match="bad setting"):
        parse_sampling("ddpm:100")
    for text in ("ddpm:100:3:2", "dpmpp_2m_sde:50:3:1:0.2-1:trailing", "dpmpp_2m:25:1.5:1"):
        assert format_sampling(parse_sampling(text)) == text
    with pytest.raises(ValueError, match="compact form"):
        format_sampling(COMPLETION_SAMPLING)  # reconstruction guidance has no compact form


@pytest.mark.parametrize("doc", ["README.md", "docs/GENERATOR.md", "docs/MODEL_CARD.md"])
def test_the_docs_state_the_default_sampling(doc: str) -> None:
    """Each user-facing doc names the default in the compact form, and it is the one the code uses."""
    import re

    from ecgtwin.pipeline import DEFAULT_SAMPLING, format_sampling

    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    stated = re.findall(r"[Dd]efault sampling: `([^`]+)`", text)
    assert stated, f"{doc} does not state the default sampling as 'Default sampling: `...`'"
    assert set(stated) == {format_sampling(DEFAULT_SAMPLING)}, f"{doc} states {stated}, the code uses {DEFAULT_SAMPLING}"

