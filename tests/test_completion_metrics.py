"""Lead-regression baseline and completion scores: known answers on synthetic lead mixtures."""
from __future__ import annotations

import numpy as np
import pytest

from ecgtwin.constants import LEADS
from ecgtwin.eval.completion import LeadRegression, lead_scores, pearson_per_record, personal_regression
from ecgtwin.leads import derive_leads


def test_regression_recovers_a_known_linear_lead_mixture_exactly() -> None:
    rng = np.random.default_rng(0)
    given = ("I", "II", "V2")
    mixing = rng.standard_normal((12, 3))  # every lead a fixed mixture of the three recorded ones, plus an offset
    offset = rng.standard_normal((12, 1))
    source = rng.standard_normal((40, 3, 100))
    records = np.einsum("lk,nkt->nlt", mixing, source) + offset  # (40, 12, 100)
    rows = [LEADS.index(g) for g in given]
    records[:, rows] = source  # the recorded leads are the sources themselves
    model = LeadRegression(given).fit(records[:30])
    predicted = model.predict(records[30:, rows])
    np.testing.assert_allclose(predicted, records[30:], atol=1e-4)  # float32 output
    scores = lead_scores(predicted, records[30:].astype(np.float32))
    assert all(s["r"] > 0.99999 and s["rmse_mV"] < 1e-4 for s in scores.values())


def test_personal_regression_recovers_each_persons_own_mixture() -> None:
    rng = np.random.default_rng(2)
    given = ("I", "II")
    rows = [LEADS.index(g) for g in given]
    mixing = rng.standard_normal((6, 12, 2))  # a different heart-axis geometry for each of 6 persons
    earlier = np.einsum("plk,pkt->plt", mixing, rng.standard_normal((6, 2, 100)))  # (6, 12, 100)
    later = np.einsum("plk,pkt->plt", mixing, rng.standard_normal((6, 2, 100)))  # same persons, other beats
    personal = personal_regression(given, earlier, later[:, rows])
    np.testing.assert_allclose(personal, later, atol=1e-4)  # each person's own map, learned from one record
    population = LeadRegression(given).fit(earlier).predict(later[:, rows])
    assert np.abs(population - later).max() > 0.1  # one map for all cannot
    with pytest.raises(ValueError, match="one earlier"):
        personal_regression(given, earlier[:5], later[:, rows])


def test_limb_leads_from_i_and_ii_follow_the_lead_laws() -> None:
    rng = np.random.default_rng(1)
    records = derive_leads(rng.standard_normal((20, 8, 50)))
    rows = [LEADS.index("I"), LEADS.index("II")]
    predicted = LeadRegression(("I", "II")).fit(records).predict(records[:, rows])
    for lead in ("III", "aVR", "aVL", "aVF"):
        np.testing.assert_allclose(predicted[:, LEADS.index(lead)], records[:, LEADS.index(lead)], atol=1e-5)


def test_pearson_and_scores_known_values() -> None:
    t = np.linspace(0, 1, 200)
    a = np.sin(2 * np.pi * 3 * t)
    assert pearson_per_record(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson_per_record(a, -a) == pytest.approx(-1.0)
    assert np.isnan(pearson_per_record(a, np.ones_like(a)))
    real = np.zeros((2, 12, 200)) + a
    recon = real + 0.1
    scores = lead_scores(recon, real, ["V1"])
    assert scores["V1"]["r"] == pytest.approx(1.0) and scores["V1"]["rmse_mV"] == pytest.approx(0.1)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="given leads"):
        LeadRegression(("X",))
    with pytest.raises(RuntimeError, match="fit"):
        LeadRegression(("I",)).predict(np.zeros((1, 1, 10)))
    with pytest.raises(ValueError, match=r"\(N, 12, L\)"):
        lead_scores(np.zeros((1, 8, 10)), np.zeros((1, 8, 10)))
