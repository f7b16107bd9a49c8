"""Editing (SDEdit) and lead completion (null-space projection) through the generation pipeline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgtwin.constants import INDEPENDENT_LEADS, LEADS
from ecgtwin.diffusion.inpainting import MeasurementDenoiser, range_projector
from ecgtwin.diffusion.samplers import SAMPLERS
from ecgtwin.diffusion.schedule import VPSchedule
from ecgtwin.leads import derive_leads, lead_law_residual
from ecgtwin.models.unet import UNet1D
from tests.test_diffusion import V, trained_tiny_net
from ecgtwin.pipeline import KnownLeads, SamplingOptions, edit_start_step, sample_twins

L, SCALE = 200, 0.5
SCHEDULE = VPSchedule(1000)


def tiny_net(leads: int) -> UNet1D:
    return trained_tiny_net(leads, L, channels=8)


def condition(b: int) -> dict[str, torch.Tensor]:
    return {"labels": torch.zeros(b, V), "demographics": torch.zeros(b, 3)}


def recording(b: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return derive_leads(0.3 * torch.randn(b, 8, L, generator=g))  # (B, 12, L) mV, lawful


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("given", [("I",), ("I", "II"), ("I", "II", "III", "aVR", "aVL", "aVF"), ("II", "V2", "V5")])
def test_completion_keeps_the_given_leads_and_the_lead_laws(sampler: str, given: tuple[str, ...]) -> None:
    net, rec = tiny_net(8), recording()
    rows = [LEADS.index(name) for name in given]
    known = KnownLeads(given, rec[:, rows])
    out = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], torch.randn(2, 8),
                       SamplingOptions(sampler, 6, 2.0, 1.5), length=L, known=known)
    assert torch.allclose(out[:, rows], rec[:, rows], atol=2e-6)  # kept (far below 16-bit resolution, 1 uV)
    assert float(lead_law_residual(out).max()) < 1e-6
    missing = [i for i in range(12) if i not in rows and LEADS[i].startswith("V")]
    assert float((out[:, missing] - rec[:, missing]).abs().max()) > 1e-3  # the others are generated, not copied


@pytest.mark.parametrize("options", [SamplingOptions("dpmpp_2m", 5), SamplingOptions("dpmpp_2m", 5, reconstruction=16.0)])
def test_six_lawful_limb_leads_complete_as_i_and_ii(options: SamplingOptions) -> None:
    """For an 8-lead network the four derived limb leads are linear in I and II: given lawful limb leads, the
    completion from all six equals the completion from I + II (projection and reconstruction guidance alike),
    which is why the fold-7 and fold-8 tables show the two rows level."""
    net, rec = tiny_net(8), recording()
    limb = ("I", "II", "III", "aVR", "aVL", "aVF")
    outs = [sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], torch.randn(2, 8, generator=torch.Generator().manual_seed(1)),
                         options, length=L, known=KnownLeads(given, rec[:, [LEADS.index(g) for g in given]]))
            for given in (("I", "II"), limb)]
    assert torch.allclose(outs[0], outs[1], atol=1e-4)
    assert float((outs[0] - rec).abs().max()) > 1e-3  # and not a copy of the recording


def test_completion_with_a_twelve_lead_network_and_inconsistent_limb_leads() -> None:
    rec = recording()
    noisy = rec.clone()
    noisy[:, LEADS.index("III")] += 0.001  # recorded limb leads that break Einthoven's law by 1 uV
    given = ("I", "II", "III")
    rows = [LEADS.index(n) for n in given]
    out = sample_twins(tiny_net(8), SCHEDULE, SCALE, condition(2), [0, 1], None, SamplingOptions("ddim", 4),
                       length=L, known=KnownLeads(given, noisy[:, rows]))
    assert float((out[:, rows] - noisy[:, rows]).abs().max()) < 1e-3  # least squares: within the recording error
    out12 = sample_twins(tiny_net(12), SCHEDULE, SCALE, condition(2), [0, 1], None, SamplingOptions("ddim", 4),
                         length=L, known=KnownLeads(given, noisy[:, rows]))
    assert float((out12[:, rows] - noisy[:, rows]).abs().max()) < 1e-3  # a 12-lead network: least squares too ...
    assert float(lead_law_residual(out12).max()) < 1e-6  # ... and its completions obey the limb-lead laws


def test_measurement_denoiser_projection_is_exact() -> None:
    h = torch.tensor([[1.0, 0.0, 0.0], [1.0, -1.0, 0.0]])
    y = torch.randn(3, 2, 5, dtype=torch.float64)
    wrapped = MeasurementDenoiser(lambda x, t: torch.zeros_like(x), SCHEDULE, h, y)
    x0 = wrapped.project(torch.randn(3, 3, 5, dtype=torch.float64))
    assert torch.allclose(torch.einsum("kc,bcl->bkl", h.double(), x0), y)
    assert torch.allclose(range_projector(h) @ h.double() @ range_projector(h), range_projector(h))
    with pytest.raises(ValueError, match="measurements"):
        MeasurementDenoiser(lambda x, t: x, SCHEDULE, h, torch.zeros(3, 3, 5))


def test_reconstruction_mismatch_is_the_least_norm_correction() -> None:
    x0 = torch.randn(2, 3, 5, dtype=torch.float64)
    y = torch.randn(2, 2, 5, dtype=torch.float64)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    unit = MeasurementDenoiser(zero, SCHEDULE, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), y)
    assert torch.allclose(unit.mismatch(x0), (y - x0[:, :2]).pow(2).sum())  # recorded = generated: ||y - Hx||^2
    # a redundant row (lead 0 recorded twice) does not change the pull when the recording is consistent
    twice = MeasurementDenoiser(zero, SCHEDULE, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
                                torch.cat([y, y[:, :1]], dim=1))
    assert torch.allclose(twice.mismatch(x0), unit.mismatch(x0))
    # a scaled measurement (2 x lead 0) asks for the same correction of lead 0
    scaled = MeasurementDenoiser(zero, SCHEDULE, torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
                                 torch.stack([2 * y[:, 0], y[:, 1]], dim=1))
    assert torch.allclose(scaled.mismatch(x0), unit.mismatch(x0))


@pytest.mark.parametrize("given", [("I",), ("I", "II"), ("I", "II", "III", "aVR", "aVL", "aVF"), ("V2",)])
def test_a_twelve_lead_network_is_pulled_as_an_eight_lead_one(given: tuple[str, ...]) -> None:
    """With the lead-law basis, the mismatch of a lawful prediction is that of the 8 independent leads."""
    from ecgtwin.leads import lead_law_matrix

    basis = torch.tensor(lead_law_matrix())  # (12, 8)
    rows = [LEADS.index(g) for g in given]
    h12 = torch.eye(12, dtype=torch.float64)[rows]  # (k, 12): the recorded leads
    x0 = recording(2, seed=3).double()  # (2, 12, L) lawful
    y = recording(2, seed=4).double()[:, rows]
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    twelve = MeasurementDenoiser(zero, SCHEDULE, h12, y, basis=basis)
    eight = MeasurementDenoiser(zero, SCHEDULE, h12 @ basis, y)  # the same measurement of the 8 generated leads
    x8 = x0[:, [LEADS.index(n) for n in INDEPENDENT_LEADS]]  # (2, 8, L)
    assert torch.allclose(twelve.mismatch(x0), eight.mismatch(x8))
    independent = given in (("I",), ("I", "II"), ("V2",))  # each recorded lead one generated lead: ||y - Hx||^2
    if independent:
        assert torch.allclose(twelve.mismatch(x0), (y - x0[:, rows]).pow(2).sum())


def test_editing_strength_zero_returns_the_recording_and_one_is_a_twin() -> None:
    net, rec = tiny_net(8), recording()
    base = torch.randn(2, 8)
    opts = SamplingOptions("ddpm", 20)
    tiny = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], base, opts, length=L, edit=rec, strength=1e-4)
    assert torch.equal(tiny, rec)
    twin = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], base, opts, length=L)
    full = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], base, opts, length=L, edit=rec, strength=1.0)
    assert torch.equal(full, twin)
    distances = [float((sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], base, opts, length=L, edit=rec,
                                     strength=s) - rec).pow(2).mean().sqrt()) for s in (0.02, 0.3, 0.8)]
    assert distances[0] < distances[1] < distances[2]  # closer to the recording at lower strength
    again = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], base, opts, length=L, edit=rec, strength=0.3)
    same = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], base, opts, length=L, edit=rec, strength=0.3)
    assert torch.equal(again, same)  # same seed, same edit
    assert float(lead_law_residual(again).max()) < 1e-6


def test_edit_start_steps_and_bad_input() -> None:
    assert edit_start_step(1.0, SCHEDULE) == 999 and edit_start_step(0.5, SCHEDULE) == 500
    assert edit_start_step(1e-4, SCHEDULE) is None
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="strength"):
            edit_start_step(bad, SCHEDULE)
    with pytest.raises(ValueError, match="twice"):
        KnownLeads(("I", "I"), torch.zeros(1, 2, L))
    with pytest.raises(ValueError, match="between 1 and 11"):
        KnownLeads(LEADS, torch.zeros(1, 12, L))
    with pytest.raises(ValueError, match="unknown lead"):
        KnownLeads(("X",), torch.zeros(1, 1, L))
    with pytest.raises(ValueError, match="edit"):
        sample_twins(tiny_net(8), SCHEDULE, SCALE, condition(2), [0, 1], None, SamplingOptions("ddim", 2), length=L,
                     edit=torch.zeros(2, 8, L))


def test_completion_with_repaint_resampling_keeps_the_leads() -> None:
    net, rec = tiny_net(8), recording()
    rows = [LEADS.index("I"), LEADS.index("V3")]
    out = sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], torch.randn(2, 8),
                       SamplingOptions("ddpm", 6, resample=3), length=L, known=KnownLeads(("I", "V3"), rec[:, rows]))
    assert torch.allclose(out[:, rows], rec[:, rows], atol=2e-6)
    with pytest.raises(ValueError, match="resample"):
        SamplingOptions("dpmpp_2m", 6, resample=2)
    with pytest.raises(ValueError, match="resample"):
        SamplingOptions("ddpm", 6, resample=0)


def test_reconstruction_guidance_keeps_the_leads_and_moves_the_free_ones() -> None:
    net, rec = tiny_net(8), recording()
    given = ("I", "II")
    known = KnownLeads(given, rec[:, [LEADS.index(n) for n in given]])
    outs = {w: sample_twins(net, SCHEDULE, SCALE, condition(2), [0, 1], torch.randn(2, 8), SamplingOptions("ddim", 8, reconstruction=w),
                            L, known=known) for w in (0.0, 5.0)}
    for out in outs.values():
        torch.testing.assert_close(out[:, [0, 1]], rec[:, [0, 1]], atol=1e-5, rtol=0)  # kept exactly
        assert float(lead_law_residual(out).max()) < 1e-5
    assert float((outs[5.0] - outs[0.0]).abs().max()) > 1e-3  # the guidance acts on the free leads
    with pytest.raises(ValueError, match="reconstruction"):
        SamplingOptions("ddim", 8, reconstruction=-1.0)
