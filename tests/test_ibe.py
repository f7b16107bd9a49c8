"""Individual Base Extractor network and CLIP loss."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecgtwin.models.ibe import IndividualBaseExtractor, sinusoidal_positions
from ecgtwin.models.losses import ClipLoss

V = 5  # label vocabulary size


def tiny_ibe(**kwargs: object) -> IndividualBaseExtractor:
    torch.manual_seed(0)
    args = dict(num_labels=V, dim=32, depth=1, heads=2, base_dim=16, cond_dim=16, condition_dropout=0.0)
    args.update(kwargs)
    return IndividualBaseExtractor(**args).eval()


def condition(b: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "labels": (torch.rand(b, V, generator=g) > 0.5).float(),
        "demographics": torch.randn(b, 3, generator=g),
        "demographics_mask": torch.ones(b, 3, dtype=torch.bool),
    }


def signal(b: int, length: int = 200, seed: int = 2) -> torch.Tensor:
    return torch.randn(b, 12, length, generator=torch.Generator().manual_seed(seed)) * 0.5  # (B, 12, L) mV


# ---- network ------------------------------------------------------------------------------------
def test_base_vector_shape_and_unit_norm() -> None:
    net = tiny_ibe()
    z = net(signal(3), **condition(3))
    assert z.shape == (3, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))


@pytest.mark.parametrize("length,patch", [(1000, 8), (5000, 40)])
def test_token_count_at_100_and_500_hz(length: int, patch: int) -> None:
    net = tiny_ibe(patch=patch)
    tokens = net.stem(torch.zeros(1, 12, length))  # (1, N, dim)
    assert tokens.shape[1] == net.num_tokens(length) == 125 <= 250
    assert net.num_tokens(1003) == net.stem(torch.zeros(1, 12, 1003)).shape[1]  # formula holds off-multiple


def test_any_length_works_and_positions_are_sinusoidal() -> None:
    net = tiny_ibe()
    for length in (64, 333, 1000):
        assert net(signal(2, length), **condition(2)).shape == (2, 16)
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8)
    assert pe[3, 0] == pytest.approx(math.sin(3.0)) and pe[3, 4] == pytest.approx(math.cos(3.0))


def test_condition_changes_output_unless_dropped() -> None:
    net = tiny_ibe()
    x = signal(2)
    c1, c2 = condition(2, seed=1), condition(2, seed=7)
    assert not torch.allclose(net(x, **c1), net(x, **c2))
    drop = torch.ones(2, dtype=torch.bool)
    torch.testing.assert_close(net(x, **c1, drop=drop), net(x, **c2, drop=drop))
    # unknown condition (None) is the null-token path; unknown demographics alone only mask those tokens
    torch.testing.assert_close(net(x), net(x, **c1, drop=drop))
    no_demo = net(x, labels=c1["labels"])
    unmasked = dict(c1, demographics_mask=torch.zeros(2, 3, dtype=torch.bool))
    torch.testing.assert_close(no_demo, net(x, **unmasked))
    assert not torch.allclose(no_demo, net(x))
    # partial drop: only row 0 becomes independent of the condition
    part = torch.tensor([True, False])
    a, b = net(x, **c1, drop=part), net(x, **c2, drop=part)
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[1], b[1])


def test_without_subtraction_has_no_condition_pathway() -> None:
    net = tiny_ibe(subtract_condition=False)
    assert net.tokenizer is None
    assert not any("cond" in name or "tokenizer" in name for name, _ in net.named_parameters())
    x = signal(2)
    torch.testing.assert_close(net(x, **condition(2, 1)), net(x, **condition(2, 9)))
    torch.testing.assert_close(net(x), net(x, **condition(2, 1)))


def test_subtraction_sign() -> None:
    """The cross-attention output is subtracted: flipping it to addition changes the result accordingly."""
    net = tiny_ibe()
    layer = net.layers[0]
    x = torch.randn(2, 7, 32)
    tokens, mask = net.tokenizer(**condition(2))
    out = layer(x, tokens, mask)
    h = x + layer.self_attn(layer.norm_self(x))
    expected_h = h - layer.cond_attn(layer.norm_cond(h), tokens, mask)
    torch.testing.assert_close(out, expected_h + layer.mlp(layer.norm_mlp(expected_h)))


def test_condition_dropout_only_in_training() -> None:
    net = tiny_ibe(condition_dropout=1.0)
    x = signal(2)
    c1, c2 = condition(2, 1), condition(2, 9)
    assert not torch.allclose(net(x, **c1), net(x, **c2))  # eval: no dropout
    net.train()
    torch.testing.assert_close(net(x, **c1), net(x, **c2))  # train with p=1: always null
    forced = torch.zeros(2, dtype=torch.bool)
    assert not torch.allclose(net(x, **c1, drop=forced), net(x, **c2, drop=forced))  # explicit drop wins


def test_deterministic_with_seed() -> None:
    a, b = tiny_ibe(dropout=0.1).train(), tiny_ibe(dropout=0.1).train()
    x, c = signal(2), condition(2)
    torch.manual_seed(3)
    za = a(x, **c)
    torch.manual_seed(3)
    zb = b(x, **c)
    torch.testing.assert_close(za, zb)
    torch.manual_seed(4)
    assert not torch.allclose(za, b(x, **c))  # dropout really is random


def test_gradients_reach_every_parameter() -> None:
    net = tiny_ibe()
    net(signal(2), **condition(2)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # the null token is always a valid context token, so the condition pathway trains end to end too
    assert missing == []


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"signal": torch.zeros(2, 11, 200)}, "lead"),
        ({"signal": torch.zeros(12, 200)}, "lead"),
        ({"signal": torch.full((2, 12, 200), float("nan"))}, "NaN"),
        ({"signal": torch.full((2, 12, 200), float("inf"))}, "NaN or inf"),
        ({"signal": torch.zeros(2, 12, 4)}, "shorter"),
        ({"labels": torch.zeros(2, V + 1)}, "num_labels"),
        ({"demographics": torch.zeros(2, 2)}, "demographics"),
        ({"drop": torch.zeros(3, dtype=torch.bool)}, "drop"),
    ],
)
def test_bad_inputs_are_rejected(bad: dict[str, torch.Tensor], message: str) -> None:
    net = tiny_ibe()
    args = {"signal": signal(2), **condition(2)}
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        net(**args)


def test_bad_construction_is_rejected() -> None:
    with pytest.raises(ValueError, match="patch"):
        IndividualBaseExtractor(V, patch=6)
    with pytest.raises(ValueError, match="num_labels"):
        IndividualBaseExtractor(0)
    with pytest.raises(ValueError, match="condition_dropout"):
        IndividualBaseExtractor(V, condition_dropout=1.5)


def test_config_rebuilds_identical_network() -> None:
    net = tiny_ibe(patch=12, subtract_condition=False)
    clone = IndividualBaseExtractor(**net.config).eval()
    clone.load_state_dict(net.state_dict())
    x, c = signal(2), condition(2)
    torch.testing.assert_close(clone(x, **c), net(x, **c))


# ---- CLIP loss ----------------------------------------------------------------------------------
def test_clip_loss_initial_and_clamped_temperature() -> None:
    loss = ClipLoss()
    assert loss.temperature.item() == pytest.approx(0.07)
    assert loss.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)  # exp(10) > 100
    assert loss.scale.item() == pytest.approx(100.0)
    assert loss.temperature.item() == pytest.approx(0.01)


def test_clip_loss_matches_manual_cross_entropy() -> None:
    torch.manual_seed(0)
    r, t = F.normalize(torch.randn(6, 8), dim=1), F.normalize(torch.randn(6, 8), dim=1)
    loss_fn = ClipLoss(init_temperature=0.2)
    logits = (r @ t.T) / 0.2
    manual_rows = -torch.stack([logits[i].log_softmax(0)[i] for i in range(6)]).mean()
    manual_cols = -torch.stack([logits[:, j].log_softmax(0)[j] for j in range(6)]).mean()
    assert loss_fn(r, t).item() == pytest.approx(0.5 * (manual_rows + manual_cols).item(), rel=1e-5)
    torch.testing.assert_close(loss_fn.logits(r, t), logits)


def test_clip_loss_identical_vs_permuted_embeddings() -> None:
    z = torch.eye(8)  # orthonormal embeddings
    loss_fn = ClipLoss(init_temperature=0.01)
    assert loss_fn(z, z).item() < 1e-6
    permuted = z[torch.roll(torch.arange(8), 1)]
    assert loss_fn(z, permuted).item() > 50.0  # every positive is scored 100 below a negative


def test_clip_loss_masks_same_patient_negatives() -> None:
    torch.manual_seed(1)
    z = F.normalize(torch.randn(4, 8), dim=1)
    # pairs 0 and 1 belong to the same patient: their cross entries are not negatives
    patients = torch.tensor([7, 7, 8, 9])
    loss_fn = ClipLoss(init_temperature=0.5)
    logits = loss_fn.logits(z, z, patients)
    assert torch.isinf(logits[0, 1]) and torch.isinf(logits[1, 0])
    assert torch.isfinite(logits.diagonal()).all() and torch.isfinite(logits[2:, :]).all()
    # equal to the loss with those entries removed by hand
    full = (z @ z.T) / 0.5
    row0 = -(full[0, 0] - torch.logsumexp(full[0, [0, 2, 3]], 0))
    unmasked = loss_fn(z, z)
    masked = loss_fn(z, z, patients)
    assert masked.item() < unmasked.item()
    assert F.cross_entropy(logits, torch.arange(4), reduction="none")[0].item() == pytest.approx(row0.item(), rel=1e-5)


def test_clip_loss_rejects_bad_shapes() -> None:
    loss_fn = ClipLoss()
    with pytest.raises(ValueError, match="equal shape"):
        loss_fn(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="patient_ids"):
        loss_fn(torch.ones(3, 4), torch.ones(3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="init_temperature"):
        ClipLoss(init_temperature=0.0)


def test_clip_temperature_is_learned() -> None:
    loss_fn = ClipLoss()
    z = torch.eye(4)
    loss_fn(z, z).backward()
    assert loss_fn.logit_scale.grad is not None and loss_fn.logit_scale.grad.item() < 0  # sharper helps here
