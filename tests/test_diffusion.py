"""VP schedule, v-loss, two-scale guidance, samplers (exactness on a Gaussian toy problem), EMA."""
from __future__ import annotations

import math

import pytest
import torch

from ecgtwin.diffusion.ema import EMA
from ecgtwin.diffusion.guidance import GuidedDenoiser, guidance_weights
from ecgtwin.diffusion.samplers import NoiseSource, ddim, ddpm_ancestral, dpmpp_2m, dpmpp_2m_sde
from ecgtwin.diffusion.schedule import VPSchedule, cosine_alphas_cumprod, diffusion_loss
from ecgtwin.models.unet import UNet1D

SCHEDULE = VPSchedule(1000)
V = 4


def trained_tiny_net(leads: int = 12, length: int = 64, channels: int = 16) -> UNet1D:
    """A tiny net with its zero-initialised projections randomised, so every condition matters."""
    torch.manual_seed(0)
    net = UNet1D(V, leads, channels=channels, channel_mults=(1, 2), signal_length=length, max_attention_tokens=length,
                 base_dim=8, cond_dim=16, heads=2)
    with torch.no_grad():
        for p in net.parameters():
            if torch.count_nonzero(p) == 0:
                p.normal_(0, 0.3)
    return net.eval()


def condition(b: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(b)
    return {"labels": (torch.rand(b, V, generator=g) < 0.5).float(), "demographics": torch.randn(b, 3, generator=g),
            "demographics_mask": torch.ones(b, 3, dtype=torch.bool)}


# --------------------------------------------------------------------------- schedule
def test_cosine_schedule_values() -> None:
    abar = SCHEDULE.alphas_cumprod
    assert abar.shape == (1000,) and torch.all(abar[1:] < abar[:-1]) and 0.9999 < abar[0] <= 1 and abar[-1] < 1e-6
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731  Nichol & Dhariwal Eq. 17
    assert abar[499].item() == pytest.approx(f(500 / 1000) / f(0), rel=1e-9)
    assert torch.allclose(SCHEDULE.alphas**2 + SCHEDULE.sigmas**2, torch.ones(1000, dtype=torch.float64))
    assert torch.equal(cosine_alphas_cumprod(1000), abar)


def test_v_conversions_are_exact_inverses() -> None:
    x0, noise = torch.randn(4, 12, 50), torch.randn(4, 12, 50)
    t = torch.tensor([0, 10, 500, 999])
    x_t, v = SCHEDULE.q_sample(x0, t, noise), SCHEDULE.v_target(x0, t, noise)
    assert torch.allclose(SCHEDULE.predict_x0(x_t, t, v), x0, atol=1e-5)
    assert torch.allclose(SCHEDULE.predict_eps(x_t, t, v), noise, atol=1e-5)
    alpha, sigma = SCHEDULE.alpha_sigma(t)
    assert torch.allclose(v[1], (alpha[1] * noise[1] - sigma[1] * x0[1]).float())


def test_schedule_rejects_bad_timesteps() -> None:
    with pytest.raises(ValueError, match=r"\[0, 999\]"):
        SCHEDULE.alpha_sigma(torch.tensor([1000]))
    with pytest.raises(ValueError, match="integer"):
        SCHEDULE.alpha_sigma(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="steps"):
        SCHEDULE.sampling_timesteps(0)
    with pytest.raises(ValueError, match="spacing"):
        SCHEDULE.sampling_timesteps(5, "log")


@pytest.mark.parametrize("steps", [1, 2, 4, 25, 50, 999, 1000])
def test_sampling_grids(steps: int) -> None:
    assert SCHEDULE.sampling_timesteps(4, "trailing") == [999, 666, 333, 0]
    assert SCHEDULE.sampling_timesteps(4, "quadratic") == [999, 444, 111, 0]
    for spacing in ("quadratic", "trailing"):
        grid = SCHEDULE.sampling_timesteps(steps, spacing)
        assert len(grid) == steps and grid[0] == 999 and all(a > b for a, b in zip(grid, grid[1:]))
        assert steps == 1 or grid[-1] == 0
    assert SCHEDULE.sampling_timesteps(1000) == list(range(999, -1, -1))


def test_diffusion_loss() -> None:
    x0, noise = torch.randn(64, 12, 20), torch.randn(64, 12, 20)
    t = SCHEDULE.sample_timesteps(64, generator=torch.Generator().manual_seed(0))
    oracle = lambda x_t, t_: SCHEDULE.v_target(x0, t_, noise)  # noqa: E731
    assert diffusion_loss(oracle, SCHEDULE, x0, t, noise).item() < 1e-10
    zero = lambda x_t, t_: torch.zeros_like(x_t)  # noqa: E731  loss = E[v^2] = alpha^2 + sigma^2 = 1 for unit data
    assert diffusion_loss(zero, SCHEDULE, x0, t, noise).item() == pytest.approx(1.0, abs=0.05)
    weighted = diffusion_loss(zero, SCHEDULE, x0, t, noise, min_snr_gamma=5.0)
    snr = SCHEDULE.snr(t)
    v = SCHEDULE.v_target(x0, t, noise)
    expected = (v.pow(2).flatten(1).mean(1) * (snr.clamp(max=5.0) / (snr + 1)).float()).mean()
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        diffusion_loss(zero, SCHEDULE, x0, t, noise[:, :, :5])


@pytest.mark.parametrize(("timestep", "shift", "weight"), [
    (999, 0.0, 0.0),      # Min-SNR: at SNR ~ 0 the weight vanishes
    (999, 1.0, 1.0),      # shifted: the plain v-loss weight
    (0, 0.0, None),       # low noise: both capped at gamma / (SNR + 1)
    (0, 1.0, None),
])
def test_min_snr_weight_at_both_ends(timestep: int, shift: float, weight: float | None) -> None:
    """One sample at a known noise level: the loss of a zero network is E[v^2] times the weight."""
    x0, noise = torch.randn(1, 12, 4000), torch.randn(1, 12, 4000)
    t = torch.tensor([timestep])
    zero = lambda x_t, t_: torch.zeros_like(x_t)  # noqa: E731
    plain = diffusion_loss(zero, SCHEDULE, x0, t, noise).item()
    weighted = diffusion_loss(zero, SCHEDULE, x0, t, noise, min_snr_gamma=5.0, min_snr_shift=shift).item()
    snr = float(SCHEDULE.snr(t))
    expected = 5.0 / (snr + 1) if weight is None else weight
    assert snr > 1000 if timestep == 0 else snr < 1e-3
    assert weighted == pytest.approx(plain * expected, rel=1e-4, abs=1e-6)


def test_shifted_min_snr_is_the_v_loss_below_gamma_minus_one() -> None:
    t = torch.arange(0, 1000, 4)  # (250,) every noise level of the schedule, in steps of 4
    x0, noise = torch.randn(len(t), 12, 20), torch.randn(len(t), 12, 20)
    snr = SCHEDULE.snr(t)
    zero = lambda x_t, t_: torch.zeros_like(x_t)  # noqa: E731
    low_noise = snr > 4.0
    v2 = SCHEDULE.v_target(x0, t, noise).pow(2).flatten(1).mean(1)  # (B,)
    expected = (v2 * torch.where(low_noise, 5.0 / (snr + 1), torch.ones_like(snr)).float()).mean()
    got = diffusion_loss(zero, SCHEDULE, x0, t, noise, min_snr_gamma=5.0, min_snr_shift=1.0)
    assert low_noise.any() and (~low_noise).any()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


# --------------------------------------------------------------------------- guidance
def test_guidance_weights() -> None:
    assert guidance_weights(1, 1, True) == {(True, True): 1.0}
    assert guidance_weights(0, 0, True) == {(False, False): 1.0}
    assert guidance_weights(2, 3, True) == {(False, False): -1.0, (True, False): -1.0, (True, True): 3.0}
    assert guidance_weights(5, 2, False) == {(False, False): -1.0, (False, True): 2.0}  # s_p is moot


def test_guidance_reduces_exactly_and_combines_linearly() -> None:
    net = trained_tiny_net()
    x, t, base, cond = torch.randn(3, 12, 64), torch.tensor([3, 400, 900]), torch.randn(3, 8), condition(3)
    ones = torch.ones(3, dtype=torch.bool)
    with torch.no_grad():
        u_bc = net(x, t, base, **cond)
        u_b0 = net(x, t, base, **cond, drop_condition=ones)
        u_00 = net(x, t, base, **cond, drop_condition=ones, drop_base=ones)
        plain = GuidedDenoiser(net, base_vector=base, guidance_person=1.0, guidance_condition=1.0, **cond)
        assert torch.equal(plain(x, t), u_bc) and plain.nfe == 1 and plain.evaluations == 1
        uncond = GuidedDenoiser(net, base_vector=base, guidance_person=0.0, guidance_condition=0.0, **cond)
        assert torch.equal(uncond(x, t), u_00) and uncond.evaluations == 1
        guided = GuidedDenoiser(net, base_vector=base, guidance_person=1.5, guidance_condition=2.5, **cond)
        expected = u_00 + 1.5 * (u_b0 - u_00) + 2.5 * (u_bc - u_b0)
        assert torch.allclose(guided(x, t), expected, atol=1e-5) and guided.nfe == 1 and guided.evaluations == 3
        assert not torch.allclose(u_bc, u_b0, atol=1e-4) and not torch.allclose(u_b0, u_00, atol=1e-4)


# --------------------------------------------------------------------------- samplers
MU = torch.linspace(-1.0, 1.0, 12)[:, None]  # per-lead mean (12, 1)
STD = 0.3


def gaussian_denoiser(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact v = a E[eps|x_t] - s E[x0|x_t] for x0 ~ N(MU, STD^2) per element (Gaussian posterior)."""
    alpha, sigma = (c.float()[:, None, None] for c in SCHEDULE.alpha_sigma(t))  # (B, 1, 1)
    var = alpha**2 * STD**2 + sigma**2
    resid = x_t - alpha * MU
    x0_hat = MU + alpha * STD**2 / var * resid
    eps_hat = sigma / var * resid
    return alpha * eps_hat - sigma * x0_hat


@pytest.mark.parametrize(("sampler", "steps", "std_rtol"), [(ddpm_ancestral, 1000, 0.02), (ddim, 50, 0.04),
                                                           (dpmpp_2m, 25, 0.02), (dpmpp_2m_sde, 50, 0.03),
                                                           (ddpm_ancestral, 100, 0.04),
                                                           (lambda *a, steps, **k: ddpm_ancestral(*a, steps=steps, resample=2, **k), 250, 0.02)])
def test_samplers_recover_the_data_distribution(sampler, steps: int, std_rtol: float) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return gaussian_denoiser(x, t)

    result = sampler(denoiser, SCHEDULE, (16, 12, 250), NoiseSource(range(16)), steps=steps)
    assert result.nfe == len(calls) and result.nfe in (steps, steps + (steps - 1))  # RePaint x2: 2 calls a step
    mean = result.x0.mean(dim=(0, 2))  # (12,) per-lead means, 4000 draws each: se 0.005
    assert torch.allclose(mean, MU[:, 0], atol=0.02), mean
    std = (result.x0 - MU).std()  # 48000 draws: se 0.3 %
    assert std.item() == pytest.approx(STD, rel=std_rtol)


def test_ddim_eta1_is_ddpm_and_eta0_is_deterministic_given_x_T() -> None:
    a = ddim(gaussian_denoiser, SCHEDULE, (2, 12, 30), NoiseSource([1, 2]), steps=20, eta=1.0).x0
    b = ddpm_ancestral(gaussian_denoiser, SCHEDULE, (2, 12, 30), NoiseSource([1, 2]), steps=20).x0
    c = ddim(gaussian_denoiser, SCHEDULE, (2, 12, 30), NoiseSource([1, 2]), steps=20, eta=0.0).x0
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("sampler", [ddpm_ancestral, ddim, dpmpp_2m, dpmpp_2m_sde])
def test_each_sample_depends_on_its_seed_alone(sampler) -> None:  # type: ignore[no-untyped-def]
    net = trained_tiny_net()
    cond = condition(3)
    base = torch.randn(3, 8)

    def run(rows: list[int], seeds: list[int]) -> torch.Tensor:
        sub = {k: v[rows] for k, v in cond.items()}
        denoiser = GuidedDenoiser(net, base_vector=base[rows], guidance_person=1.0, guidance_condition=2.0, **sub)
        return sampler(denoiser, SCHEDULE, (len(rows), 12, 64), NoiseSource(seeds), steps=5).x0

    full = run([0, 1, 2], [10, 11, 12])
    assert torch.equal(full, run([0, 1, 2], [10, 11, 12]))  # deterministic
    alone = run([2], [12])
    assert torch.allclose(full[2], alone[0], atol=1e-5)  # batch composition does not matter
    swapped = run([2, 0], [12, 10])
    assert torch.allclose(swapped[1], full[0], atol=1e-5)
    assert not torch.allclose(run([2], [13])[0], alone[0], atol=1e-3)  # another seed, another twin


def test_noise_source() -> None:
    a, b = NoiseSource([7, 8]).randn((3,)), NoiseSource([8]).randn((3,))
    assert a.shape == (2, 3) and torch.equal(a[1], b[0]) and not torch.equal(a[0], a[1])
    with pytest.raises(ValueError, match="at least one seed"):
        NoiseSource([])
    with pytest.raises(ValueError, match="number of seeds"):
        dpmpp_2m(gaussian_denoiser, SCHEDULE, (3, 12, 10), NoiseSource([1, 2]), steps=2)


# --------------------------------------------------------------------------- EMA
def test_ema_update_warmup_and_state_dict() -> None:
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    start = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, 0.1 * start + 0.9 * model.weight)
    for _ in range(200):
        ema.update(model)
    assert ema.current_decay() == 0.9 and int(ema.num_updates) == 201
    assert torch.allclose(ema.module.weight, model.weight, atol=1e-6)
    assert not any(p.requires_grad for p in ema.parameters())
    clone = EMA(torch.nn.Linear(2, 1), decay=0.9)
    clone.load_state_dict(ema.state_dict())
    assert torch.equal(clone.module.weight, ema.module.weight) and int(clone.num_updates) == 201
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_guidance_interval_uses_the_plain_conditional_model_outside() -> None:
    from ecgtwin.pipeline import SamplingOptions

    net = trained_tiny_net()
    cond = condition(2)
    base = torch.randn(2, 8)
    x, t = torch.randn(2, 12, 64), torch.full((2,), 500)
    plain = GuidedDenoiser(net, base_vector=base, **cond)  # s = 1/1: u(b, c)
    guided = GuidedDenoiser(net, base_vector=base, guidance_person=2.0, guidance_condition=3.0, **cond)
    outside = GuidedDenoiser(net, base_vector=base, guidance_person=2.0, guidance_condition=3.0,
                             guidance_active=lambda step: False, **cond)
    inside = GuidedDenoiser(net, base_vector=base, guidance_person=2.0, guidance_condition=3.0,
                            guidance_active=lambda step: True, **cond)
    assert torch.allclose(outside(x, t), plain(x, t)) and outside.evaluations == 1
    assert torch.allclose(inside(x, t), guided(x, t)) and inside.evaluations == 3
    assert not torch.allclose(guided(x, t), plain(x, t), atol=1e-4)
    active = SamplingOptions(guidance_interval=(0.2, 0.9)).guidance_active(SCHEDULE)
    sigmas = SCHEDULE.sigmas
    assert all(active(t_) == (0.2 <= float(sigmas[t_]) <= 0.9) for t_ in range(0, 1000, 7))
    assert active(999) is False and active(0) is False
    with pytest.raises(ValueError, match="guidance_interval"):
        SamplingOptions(guidance_interval=(0.5, 0.2))
