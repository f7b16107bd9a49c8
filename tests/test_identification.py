"""Identification metrics, probe, raw baseline and the embedding plot on constructed data with known answers."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest
import torch

from ecgtwin.eval.identification import (
    chance_level,
    identification_accuracy,
    identification_report,
    linear_probe_auroc,
    pair_split_records,
    positive_negative_cosine,
    raw_signal_embedding,
    silhouette_by_patient,
)


def clustered(n_patients: int, per_patient: int, dim: int = 16, noise: float = 0.01, seed: int = 0):
    """Embeddings that are tight clusters around one random direction per patient."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_patients, dim))
    patients = np.repeat(np.arange(n_patients), per_patient)
    return centres[patients] + noise * rng.normal(size=(len(patients), dim)), patients


def test_perfect_embeddings_identify_everyone() -> None:
    x, p = clustered(30, 2)
    out = identification_accuracy(x, x, p, p, ks=(1, 5))
    assert out["top1"] == 1.0 and out["top5"] == 1.0 and out["n_queries"] == 60


def test_random_embeddings_are_near_chance() -> None:
    rng = np.random.default_rng(1)
    p = np.repeat(np.arange(200), 2)
    x = rng.normal(size=(400, 32))
    out = identification_accuracy(x, x, p, p, ks=(1, 5))
    chance = chance_level(p, p, ks=(1, 5), same_set=True)
    assert chance["top1"] == pytest.approx(1 / 399) and chance["top5"] == pytest.approx(5 / 399)
    assert out["top1"] < 0.02 and out["top5"] < 0.05


def test_self_is_excluded_and_hand_ranking() -> None:
    # query 0 (patient A) is most similar to itself, then to patient B, then to its partner.
    g = np.array([[1.0, 0.0], [0.9, 0.1], [0.6, 0.8], [0.0, 1.0]])
    p = np.array([0, 1, 0, 2])
    ids = np.array([10, 11, 12, 13])
    out = identification_accuracy(g[:1], g, p[:1], p, ks=(1, 2, 3), query_ids=ids[:1], gallery_ids=ids)
    assert (out["top1"], out["top2"], out["top3"]) == (0.0, 1.0, 1.0)
    # without ids and with a different query set nothing is excluded: the query itself (same record) is found
    out = identification_accuracy(g[:1], g, p[:1], p, ks=(1,))
    assert out["top1"] == 1.0


def test_ties_count_against_the_query() -> None:
    x = np.ones((6, 4))  # collapsed encoder
    p = np.repeat(np.arange(3), 2)
    assert identification_accuracy(x, x, p, p, ks=(1,))["top1"] == 0.0


def test_queries_without_partner_are_skipped() -> None:
    x, p = clustered(5, 2)
    p = p.copy()
    p[0] = 99  # patient 99 has one record; its old partner now has none either
    out = identification_accuracy(x, x, p, p, ks=(1,))
    assert out["n_queries"] == 8 and out["top1"] == 1.0
    assert np.isnan(identification_accuracy(x[:1], x[:1], p[:1], p[:1])["top1"])


def test_chance_level_formula() -> None:
    # one query with 2 partners among 10 candidates: P(hit@3) = 1 - C(8,3)/C(10,3)
    qp = np.array([0])
    gp = np.array([0, 0] + list(range(1, 9)))
    out = chance_level(qp, gp, ks=(1, 3))
    assert out["top1"] == pytest.approx(0.2)
    assert out["top3"] == pytest.approx(1 - comb(8, 3) / comb(10, 3))
    with pytest.raises(ValueError, match="both"):
        chance_level(qp, gp, query_ids=np.array([5]))


def test_accuracy_accepts_torch_and_rejects_bad_shapes() -> None:
    x, p = clustered(4, 2)
    t = torch.as_tensor(x, dtype=torch.float32)
    assert identification_accuracy(t, t, torch.as_tensor(p), torch.as_tensor(p))["top1"] == 1.0
    with pytest.raises(ValueError, match="patient ids"):
        identification_accuracy(x, x, p[:-1], p)
    with pytest.raises(ValueError, match="NaN"):
        identification_accuracy(np.full_like(x, np.nan), x, p, p)
    with pytest.raises(ValueError, match="both"):
        identification_accuracy(x, x, p, p, query_ids=np.arange(8))


def test_positive_negative_cosine() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    p = np.array([0, 0, 1, 1])
    out = positive_negative_cosine(x, p)
    assert out == {"positive": pytest.approx(1.0), "negative": pytest.approx(0.0), "gap": pytest.approx(1.0)}


def test_silhouette() -> None:
    x, p = clustered(6, 3)
    assert silhouette_by_patient(x, p) > 0.9
    rng = np.random.default_rng(0)
    # random clusters: no structure (many tiny clusters push the score below 0)
    assert silhouette_by_patient(rng.normal(size=(60, 16)), np.repeat(np.arange(20), 3)) < 0.05
    singles = np.arange(5)
    assert np.isnan(silhouette_by_patient(rng.normal(size=(5, 4)), singles))


def test_linear_probe_detects_label_information() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) > 0.5).astype(float)
    informative = np.concatenate([y * 2.0 + 0.3 * rng.normal(size=y.shape), rng.normal(size=(200, 5))], axis=1)
    noise = rng.normal(size=(200, 8))
    assert linear_probe_auroc(informative[:100], y[:100], informative[100:], y[100:]) > 0.95
    assert abs(linear_probe_auroc(noise[:100], y[:100], noise[100:], y[100:]) - 0.5) < 0.15
    y_const = y.copy()
    y_const[:, 1] = 0  # a class without positives is skipped, the others still count
    assert linear_probe_auroc(informative[:100], y_const[:100], informative[100:], y_const[100:]) > 0.95
    assert np.isnan(linear_probe_auroc(noise[:10], np.zeros((10, 3)), noise[10:20], np.zeros((10, 3))))


def test_raw_signal_embedding() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 12, 1000)).astype(np.float32)
    emb = raw_signal_embedding(s)
    assert emb.shape == (3, 12 * 250) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # invariant to per-lead gain and offset (z-normalisation)
    scaled = s * rng.uniform(0.5, 2.0, size=(3, 12, 1)) + 0.7
    assert np.allclose(raw_signal_embedding(scaled), emb, atol=1e-4)
    short = raw_signal_embedding(s[:, :, :100])
    assert short.shape == (3, 1200)
    with pytest.raises(ValueError, match="NaN"):
        raw_signal_embedding(np.full((1, 12, 100), np.nan))
    with pytest.raises(ValueError, match="dimensions"):
        raw_signal_embedding(s[0])


def test_pair_split_records_deduplicates_by_record_id() -> None:
    # patient 1 has records 100, 101, 102 in pairs (100,101), (100,102), (101,102); patient 2 one pair
    rec = {100: [1, 0], 101: [0, 1], 102: [-1, 0], 200: [0, -1], 201: [0.1, -1]}
    r_ref, r_tgt = np.array([100, 100, 101, 200]), np.array([101, 102, 102, 201])
    z = lambda ids: np.array([rec[i] for i in ids], dtype=float)  # noqa: E731
    p_ref, p_tgt = np.array([1, 1, 1, 2]), np.array([1, 1, 1, 2])
    sets = pair_split_records(z(r_ref), z(r_tgt), p_ref, p_tgt, r_ref, r_tgt)
    assert sets["query_ids"].tolist() == [100, 101, 200]
    assert sets["gallery_ids"].tolist() == [100, 101, 102, 200, 201]
    np.testing.assert_allclose(sets["gallery"], z(sets["gallery_ids"]))
    report = identification_report(z(r_ref), z(r_tgt), p_ref, p_tgt, r_ref, r_tgt, ks=(1,))
    # 100 -> best partner 101 (cos 0) vs impostors 200 (cos 0) and 201 (cos ~0.1): tie + higher -> miss
    # 101 -> 100 (0) vs 200 (-1), 201 (-0.99): hit; 200 -> 201: hit
    assert report["n_queries"] == 3 and report["top1"] == pytest.approx(2 / 3)
    assert {"chance_top1", "cos_positive", "cos_negative", "cos_gap", "silhouette"} <= set(report)


def test_plot_embeddings_writes_png(tmp_path) -> None:
    from ecgtwin.viz.embeddings import plot_embeddings

    x, p = clustered(25, 3, noise=0.1)
    x = np.concatenate([x, np.zeros((1, 16)) + 1.0])  # a single-record patient is left out
    p = np.concatenate([p, [999]])
    out = plot_embeddings(torch.as_tensor(x), p, tmp_path / "sub" / "tsne.png", max_patients=20)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least 3"):
        plot_embeddings(x[:2], np.array([0, 1]), tmp_path / "x.png")
    with pytest.raises(ValueError, match="patient_ids"):
        plot_embeddings(x, p[:-1], tmp_path / "x.png")
