"""UNet1D with the AdaX injector: shapes, attention placement, zero-init, condition routing, errors."""
from __future__ import annotations

import pytest
import torch

from ecgtwin.models.adax import ConditionCrossAttention, masked_mean
from ecgtwin.models.embeddings import TimestepEmbedding, timestep_embedding
from ecgtwin.models.unet import UNet1D, auto_attention_levels, level_lengths

V = 5
MODES = ("adax", "adanorm_only", "xattn_only")


def tiny(mode: str = "adax", **kw) -> UNet1D:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    args = dict(channels=16, channel_mults=(1, 2), signal_length=200, max_attention_tokens=100, base_dim=8,
                cond_dim=16, heads=2, mode=mode)
    args.update(kw)
    return UNet1D(V, **args)


def unzero(net: UNet1D) -> UNet1D:
    """Give every zero-initialised parameter random values (a 'trained' net whose conditions matter)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            if torch.count_nonzero(p) == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def condition(b: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "labels": (torch.rand(b, V, generator=g) < 0.5).float(),
        "demographics": torch.randn(b, 3, generator=g),
        "demographics_mask": torch.ones(b, 3, dtype=torch.bool),
    }


def test_timestep_embedding() -> None:
    emb = timestep_embedding(torch.tensor([0, 1, 999]), 9)
    assert emb.shape == (3, 9)
    assert torch.allclose(emb[0, :4], torch.ones(4)) and torch.allclose(emb[0, 4:8], torch.zeros(4))  # cos 0, sin 0
    assert not torch.allclose(emb[1], emb[2])
    assert TimestepEmbedding(32, frequency_dim=16)(torch.tensor([3.5, 7.0])).shape == (2, 32)
    with pytest.raises(ValueError, match="1-D"):
        timestep_embedding(torch.zeros(2, 2), 8)


def test_shapes_full_length_and_attention_only_at_short_levels() -> None:
    net = UNet1D(V, channels=8, channel_mults=(1, 2, 2, 4), blocks_per_level=1, base_dim=8, cond_dim=16, heads=2)
    assert net.attention_levels == (2, 3)  # 1000 -> 500 -> 250 -> 125 tokens; <= 250 only
    seen: list[int] = []
    for m in net.modules():
        if isinstance(m, ConditionCrossAttention):
            m.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[-1]))
    x = torch.randn(2, 12, 1000)
    out = net(x, torch.tensor([0, 999]), torch.randn(2, 8), **condition(2, 0))
    assert out.shape == (2, 12, 1000)
    assert seen and max(seen) <= 250 and set(seen) == {250, 125}


@pytest.mark.parametrize("length", [200, 199, 203, 57])
def test_odd_lengths_are_padded_and_cropped(length: int) -> None:
    net = tiny(channel_mults=(1, 2, 2))  # needs a multiple of 4
    out = net(torch.randn(2, 12, length), torch.tensor([10, 20]), torch.randn(2, 8), **condition(2, 0))
    assert out.shape == (2, 12, length)


def test_auto_attention_levels() -> None:
    assert auto_attention_levels(1000, 4, 250) == [2, 3]
    assert auto_attention_levels(5000, 4, 250) == []
    assert auto_attention_levels(999, 4, 250) == [2, 3]  # padded to 1000
    assert level_lengths(999, 4) == [1000, 500, 250, 125]


@pytest.mark.parametrize("mode", ["adax", "xattn_only"])
def test_cross_attention_modes_refuse_a_net_without_attention(mode: str) -> None:
    """(1, 2) at L=1000 has levels of 1000 and 500 tokens > 250: the condition tokens would reach nothing."""
    small = dict(channels=8, blocks_per_level=1, signal_length=1000, base_dim=8, cond_dim=16, heads=2, mode=mode)
    expected = (rf"mode='{mode}' .*silently ignored.*level lengths \[1000, 500\] .*2 levels, "
                r"all above max_attention_tokens=250\. Add levels to channel_mults \(e\.g\. 3 levels instead of 2\) "
                r"or raise max_attention_tokens to at least 500")
    with pytest.raises(ValueError, match=expected):
        UNet1D(V, channel_mults=(1, 2), max_attention_tokens=250, **small)
    with pytest.raises(ValueError, match=r"attention_levels is empty\. Pass at least one level in 0\.\.1"):
        UNet1D(V, channel_mults=(1, 2), attention_levels=(), **small)
    # both suggested fixes build, with attention exactly where the message says it would be
    assert UNet1D(V, channel_mults=(1, 2, 2), max_attention_tokens=250, **small).attention_levels == (2,)
    assert UNet1D(V, channel_mults=(1, 2), max_attention_tokens=500, **small).attention_levels == (1,)


def test_adanorm_only_needs_no_attention_and_still_carries_conditions() -> None:
    net = unzero(UNet1D(V, channels=8, channel_mults=(1, 2), blocks_per_level=1, signal_length=1000,
                        max_attention_tokens=250, base_dim=8, cond_dim=16, heads=2, mode="adanorm_only")).eval()
    assert net.attention_levels == ()
    assert not any(isinstance(m, ConditionCrossAttention) for m in net.modules())
    x, t, cond = torch.randn(1, 12, 1000), torch.tensor([300]), condition(1, 1)
    other = dict(cond, labels=1.0 - cond["labels"])
    assert not torch.allclose(net(x, t, None, **cond), net(x, t, None, **other), atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_fresh_model_ignores_conditions_but_not_the_signal(mode: str) -> None:
    net = tiny(mode)
    x, t = torch.randn(3, 12, 200), torch.tensor([5, 500, 900])
    out_a = net(x, t, torch.randn(3, 8), **condition(3, 1))
    out_b = net(x, t, torch.randn(3, 8), **condition(3, 2), drop_base=torch.tensor([True, False, True]))
    out_c = net(x, t, None, **condition(3, 3), drop_condition=torch.ones(3, dtype=torch.bool))
    assert torch.equal(out_a, out_b) and torch.equal(out_a, out_c)
    assert not torch.allclose(net(x + 1.0, t, None, **condition(3, 1)), out_a)
    assert out_a.abs().mean() > 1e-3  # not a trivially zero network


@pytest.mark.parametrize("mode", MODES)
def test_every_pathway_carries_its_condition_once_trained(mode: str) -> None:
    net = unzero(tiny(mode)).eval()
    x, t = torch.randn(2, 12, 200), torch.tensor([100, 600])
    base, cond = torch.randn(2, 8), condition(2, 1)
    ref = net(x, t, base, **cond)
    assert not torch.allclose(ref, net(x, t, base + 1.0, **cond), atol=1e-4)  # base vector matters
    other = dict(cond, labels=1.0 - cond["labels"])
    assert not torch.allclose(ref, net(x, t, base, **other), atol=1e-4)  # labels matter
    assert not torch.allclose(ref, net(x, t + 200, base, **cond), atol=1e-4)  # time matters
    # a dropped base vector is the learned null vector, per row
    dropped = net(x, t, base, **cond, drop_base=torch.tensor([True, False]))
    assert torch.allclose(dropped[0], net(x, t, None, **cond)[0], atol=1e-6)
    assert torch.allclose(dropped[1], ref[1], atol=1e-6)
    # a dropped condition is the same as "nothing known"
    empty = {"labels": torch.zeros(2, V), "demographics": torch.zeros(2, 3),
             "demographics_mask": torch.zeros(2, 3, dtype=torch.bool)}
    assert torch.allclose(net(x, t, base, **cond, drop_condition=torch.ones(2, dtype=torch.bool)),
                          net(x, t, base, **empty), atol=1e-6)


def test_population_model_has_no_base_vector() -> None:
    net = tiny(use_base_vector=False)
    assert not hasattr(net.conditioner, "null_base")
    assert net(torch.randn(1, 12, 200), 3, None, **condition(1, 0)).shape == (1, 12, 200)
    with pytest.raises(ValueError, match="use_base_vector=False"):
        net(torch.randn(1, 12, 200), 3, torch.randn(1, 8), **condition(1, 0))


def test_masked_mean() -> None:
    tokens = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert masked_mean(tokens, torch.tensor([[True, True, False]])).item() == 2.0


def test_bad_inputs_have_clear_errors() -> None:
    net = tiny()
    x, t = torch.randn(2, 12, 200), torch.tensor([1, 2])
    with pytest.raises(ValueError, match=r"x must be \(B, 12, L\)"):
        net(torch.randn(2, 11, 200), t, None, **condition(2, 0))
    with pytest.raises(ValueError, match="base_vector must be"):
        net(x, t, torch.randn(2, 7), **condition(2, 0))
    with pytest.raises(ValueError, match="labels must be"):
        net(x, t, None, torch.zeros(2, V + 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="t must be"):
        net(x, torch.tensor([1, 2, 3]), None, **condition(2, 0))
    with pytest.raises(ValueError, match="batch size"):
        net(x, t, None, **condition(3, 0))
    with pytest.raises(ValueError, match="mode must be"):
        tiny("film")
    with pytest.raises(ValueError, match="xattn_only"):
        tiny("xattn_only", max_attention_tokens=10)
    with pytest.raises(ValueError, match="out of range"):
        tiny(attention_levels=(5,))
    with pytest.raises(ValueError, match="divisible"):
        tiny(heads=3)


def test_rotary_scores_depend_on_relative_position_only() -> None:
    from ecgtwin.models.attention import rotate_positions

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)
    n = 40
    rq, rk = rotate_positions(q.expand(1, 1, n, 16)), rotate_positions(k.expand(1, 1, n, 16))  # (1, 1, N, d)
    scores = (rq @ rk.transpose(-1, -2))[0, 0]  # (N, N): the same vectors everywhere, so only m - n can matter
    for offset in (-7, 0, 3, 12):
        diagonal = torch.diagonal(scores, offset)
        torch.testing.assert_close(diagonal, diagonal[:1].expand_as(diagonal), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(torch.diagonal(scores, 0)[:1], torch.diagonal(scores, 10)[:1], atol=1e-3)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1).expand(1, 1, n), atol=1e-5, rtol=1e-5)  # rotations
    with pytest.raises(ValueError, match="even"):
        rotate_positions(torch.zeros(1, 4, 5))


def test_rotary_attention_sees_order_and_the_flag_round_trips() -> None:
    from ecgtwin.models.attention import CrossAttention

    torch.manual_seed(0)
    x = torch.randn(2, 30, 32)  # (B, N, dim)
    perm = torch.randperm(30)
    plain, rotary = CrossAttention(32, heads=4), CrossAttention(32, heads=4, rotary=True)
    rotary.load_state_dict(plain.state_dict())  # same weights: no extra parameters
    torch.testing.assert_close(plain(x[:, perm]), plain(x)[:, perm], atol=1e-5, rtol=1e-5)  # order-blind
    assert not torch.allclose(rotary(x[:, perm]), rotary(x)[:, perm], atol=1e-3)  # sees positions
    with pytest.raises(ValueError, match="self-attention"):
        CrossAttention(32, context_dim=16, rotary=True)
    net = UNet1D(num_labels=3, in_leads=8, channels=8, signal_length=200, rotary_attention=True)
    assert UNet1D(**net.config).config["rotary_attention"] is True
    old = {k: v for k, v in net.config.items() if k != "rotary_attention"}  # a checkpoint from before the flag
    assert UNet1D(**old).config["rotary_attention"] is False
    assert net(torch.randn(2, 8, 200), torch.tensor([3, 500])).shape == (2, 8, 200)
