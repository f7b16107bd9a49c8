"""The release-target check: values read from a report, fixed and relative bounds, distances, the table."""
from __future__ import annotations

import math

import pytest

from ecgtwin.constants import LEADS
from ecgtwin.eval.targets import RELEASE_TARGETS, Target, lookup, targets_table


def _report(**over: float) -> dict:
    """A report in which every target is met (values chosen by hand), with ``over`` replacing twin figures."""
    ratios = {f"amplitude_ratio_{lead}": 1.0 for lead in LEADS}
    twin = {"limb_residual_mV": 1e-9, "noise_ratio_35_50Hz": 1.1, "rr_regular_share": 0.70,
            "spurious_beat_share": 0.01, "c2st_auroc": 0.7, **ratios}
    twin.update({k: v for k, v in over.items() if k in twin})
    return {
        "realism": {"twin": twin, "real": {"rr_regular_share": 0.76, "c2st_auroc": 0.55, **ratios}},
        "clinical": {"twin": {"qt_ms_median": over.get("qt", 370.0)}, "real": {"qt_ms_median": 380.0}},
        "controllability": {"hr": {"twin": {"mae": 2.0}}, "extreme_hr": {"twin": {"mae_45": 5.0, "mae_140": 5.0}},
                            "auroc": {"twin": {"macro_auroc": 0.85}}},
        "fidelity": {"twin": {"recall": 0.6}},
        "consistency": {"twin": {"id_top1": over.get("id_top1", 0.30)}, "population": {"id_top1": 0.05}},
        "downstream": {"metrics": {"twin": {"macro_auroc": 0.86}}},
    }


def by_name(name: str) -> Target:
    return next(t for t in RELEASE_TARGETS if t.name == name)


def test_lookup_reads_nested_numbers_and_missing_as_nan() -> None:
    assert lookup({"a": {"b": 2}}, ("a", "b")) == 2.0
    assert math.isnan(lookup({"a": {"b": None}}, ("a", "b")))
    assert math.isnan(lookup({"a": 1}, ("a", "b")))


def test_all_met_report_meets_every_target() -> None:
    report = _report()
    assert all(t.check(report)["met"] for t in RELEASE_TARGETS)
    assert f"{len(RELEASE_TARGETS)} of {len(RELEASE_TARGETS)} targets met" in targets_table(report)


def test_distance_to_a_fixed_bound() -> None:
    result = by_name("35-50 Hz noise ratio").check(_report(noise_ratio_35_50Hz=1.5))
    assert not result["met"] and result["distance"] == pytest.approx(0.3)


def test_per_lead_amplitude_uses_the_worst_lead() -> None:
    report = _report(amplitude_ratio_V3=0.6, amplitude_ratio_aVR=1.25)
    low, high = by_name("amplitude ratio, lowest lead").check(report), by_name("amplitude ratio, highest lead").check(report)
    assert low["value"] == pytest.approx(0.6) and low["distance"] == pytest.approx(0.3)
    assert high["value"] == pytest.approx(1.25) and high["distance"] == pytest.approx(0.15)


def test_relative_bounds_follow_the_real_and_population_figures() -> None:
    rr = by_name("share with regular RR")
    assert rr.check(_report(rr_regular_share=0.66))["met"]  # real 0.76 - 0.10
    assert rr.check(_report(rr_regular_share=0.30))["distance"] == pytest.approx(0.36)
    qt = by_name("QT median (ms)")
    assert qt.check(_report(qt=342.0))["met"] and not qt.check(_report(qt=330.0))["met"]  # 0.9 * 380 = 342
    ident = by_name("identification top-1")
    assert not ident.check(_report(id_top1=0.14))["met"]  # 3 x 0.05 = 0.15
    assert ident.check(_report(id_top1=0.14))["distance"] == pytest.approx(0.01)


def test_strict_bound_rejects_the_bound_itself() -> None:
    assert not by_name("spurious-beat share").check(_report(spurious_beat_share=0.05))["met"]
    assert by_name("spurious-beat share").check(_report(spurious_beat_share=0.049))["met"]


def test_missing_section_is_not_met_and_shown_as_a_dash() -> None:
    report = _report()
    del report["downstream"]
    result = by_name("TSTR macro-AUROC").check(report)
    assert not result["met"] and math.isnan(result["distance"])
    row = next(line for line in targets_table(report).splitlines() if line.startswith("| TSTR"))
    assert row.count("–") >= 2


def test_table_shows_baselines_beside() -> None:
    table = targets_table(_report(), {"v1": _report(noise_ratio_35_50Hz=1.5)}, name="v2")
    assert table.splitlines()[0] == "| target | goal | v1 | v2 | real | met | distance |"
    noise = next(line for line in table.splitlines() if line.startswith("| 35-50 Hz"))
    assert "| 1.50 | 1.10 |" in noise
