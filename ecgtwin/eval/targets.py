"""The realism targets of a model release, checked against an ``ecgtwin evaluate`` report (report.json).

Each :class:`Target` reads one figure of the twins from the report, the bounds it must lie within (fixed, or
relative to the real targets or to the population model of the same report) and says whether it is met and,
if not, by how much it misses (the distance to the nearest bound, in the figure's units). The default
:data:`RELEASE_TARGETS` are those of the v2 model (issue 10): lead laws, amplitude, noise, rhythm, QT, heart
rate, two-sample test, diversity, label control, identification and train-on-synthetic.

    python scripts/report_targets.py --report docs/eval_ptbxl100_v2/report.json \\
        --baseline v1=docs/eval_ptbxl100/report.json
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecgtwin.constants import LEADS

Report = Mapping[str, Any]


def lookup(report: Report, path: Sequence[str]) -> float:
    """The number at ``report[path[0]][path[1]]...``; NaN when a key is missing or the value is null."""
    value: object = report
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return float("nan")
        value = value[key]
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def _path(*keys: str) -> Callable[[Report], float]:
    return lambda report: lookup(report, keys)


def _lead_ratios(report: Report, method: str = "twin") -> list[float]:
    return [lookup(report, ("realism", method, f"amplitude_ratio_{lead}")) for lead in LEADS]


def _fixed(lo: float = -math.inf, hi: float = math.inf) -> Callable[[Report], tuple[float, float]]:
    return lambda report: (lo, hi)


@dataclass(frozen=True)
class Target:
    """One release target: ``value(report)`` must lie in ``bounds(report) = (lo, hi)`` (inclusive)."""

    name: str
    goal: str
    value: Callable[[Report], float]
    bounds: Callable[[Report], tuple[float, float]]
    real: Callable[[Report], float] | None = None
    """The same figure for real ECGs, shown beside (None: not defined)."""
    fmt: str = "{:.3g}"
    strict: bool = False
    """True: the value must lie strictly inside the bounds (e.g. "under 5%")."""

    def check(self, report: Report) -> dict[str, Any]:
        """``{"value", "lo", "hi", "real", "met", "distance"}``; distance = 0 when met, NaN when not measured."""
        value = self.value(report)
        lo, hi = self.bounds(report)
        measured = not (math.isnan(value) or math.isnan(lo) or math.isnan(hi))
        distance = max(lo - value, value - hi, 0.0) if measured else float("nan")
        met = measured and (lo < value < hi if self.strict else distance == 0.0)
        return {"value": value, "lo": lo, "hi": hi, "real": float("nan") if self.real is None else self.real(report),
                "met": bool(met), "distance": distance}


RELEASE_TARGETS: tuple[Target, ...] = (
    Target("limb-lead residual (mV RMS)", "<= 1e-4", _path("realism", "twin", "limb_residual_mV"), _fixed(hi=1e-4),
           _path("realism", "real", "limb_residual_mV"), "{:.1e}"),
    Target("amplitude ratio, lowest lead", ">= 0.9", lambda r: min(_lead_ratios(r)), _fixed(lo=0.9),
           lambda r: min(_lead_ratios(r, "real")), "{:.2f}"),
    Target("amplitude ratio, highest lead", "<= 1.1", lambda r: max(_lead_ratios(r)), _fixed(hi=1.1),
           lambda r: max(_lead_ratios(r, "real")), "{:.2f}"),
    Target("35-50 Hz noise ratio", "<= 1.2", _path("realism", "twin", "noise_ratio_35_50Hz"), _fixed(hi=1.2),
           _path("realism", "real", "noise_ratio_35_50Hz"), "{:.2f}"),
    Target("share with regular RR", "real +- 0.10", _path("realism", "twin", "rr_regular_share"),
           lambda r: (lookup(r, ("realism", "real", "rr_regular_share")) - 0.10,
                      lookup(r, ("realism", "real", "rr_regular_share")) + 0.10),
           _path("realism", "real", "rr_regular_share"), "{:.2f}"),
    Target("spurious-beat share", "< 0.05", _path("realism", "twin", "spurious_beat_share"), _fixed(hi=0.05),
           None, "{:.3f}", strict=True),
    Target("QT median (ms)", "real +- 10%", _path("clinical", "twin", "qt_ms_median"),
           lambda r: (0.9 * lookup(r, ("clinical", "real", "qt_ms_median")),
                      1.1 * lookup(r, ("clinical", "real", "qt_ms_median"))),
           _path("clinical", "real", "qt_ms_median"), "{:.0f}"),
    Target("HR MAE (bpm)", "<= 3", _path("controllability", "hr", "twin", "mae"), _fixed(hi=3.0),
           _path("controllability", "hr", "real", "mae"), "{:.1f}"),
    Target("HR MAE at 45 bpm", "<= 6", _path("controllability", "extreme_hr", "twin", "mae_45"), _fixed(hi=6.0),
           None, "{:.1f}"),
    Target("HR MAE at 140 bpm", "<= 6", _path("controllability", "extreme_hr", "twin", "mae_140"), _fixed(hi=6.0),
           None, "{:.1f}"),
    Target("two-sample AUROC", "<= 0.75", _path("realism", "twin", "c2st_auroc"), _fixed(hi=0.75),
           _path("realism", "real", "c2st_auroc"), "{:.3f}"),
    Target("k-NN recall", ">= 0.5", _path("fidelity", "twin", "recall"), _fixed(lo=0.5),
           _path("fidelity", "real", "recall"), "{:.2f}"),
    Target("target-label macro-AUROC", ">= 0.80", _path("controllability", "auroc", "twin", "macro_auroc"),
           _fixed(lo=0.80), _path("controllability", "auroc", "real", "macro_auroc"), "{:.3f}"),
    Target("identification top-1", ">= 3x population", _path("consistency", "twin", "id_top1"),
           lambda r: (3.0 * lookup(r, ("consistency", "population", "id_top1")), math.inf), None, "{:.3f}"),
    Target("TSTR macro-AUROC", ">= 0.85", _path("downstream", "metrics", "twin", "macro_auroc"), _fixed(lo=0.85),
           _path("downstream", "metrics", "real_matched", "macro_auroc"), "{:.3f}"),
)
"""Issue 10's targets (fold 8, all pairs, the default sampler and guidance). The amplitude ratio is checked per
lead (all 12 within 0.9-1.1); ``real`` beside the rhythm, amplitude, noise and two-sample figures is one
patient-disjoint half of the real targets against the other, beside TSTR the real-trained classifier on as many
real records as twins."""


def targets_table(report: Report, baselines: Mapping[str, Report] | None = None,
                  targets: Sequence[Target] = RELEASE_TARGETS, name: str = "this model") -> str:
    """A markdown table: target, goal, each baseline's value, this report's value, real, met, distance."""
    baselines = dict(baselines or {})
    header = ["target", "goal", *baselines, name, "real", "met", "distance"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def show(fmt: str, x: float) -> str:
        return "–" if math.isnan(x) else fmt.format(x)

    results = [target.check(report) for target in targets]
    for target, result in zip(targets, results):
        cells = [target.name, target.goal, *(show(target.fmt, target.value(b)) for b in baselines.values()),
                 show(target.fmt, result["value"]), show(target.fmt, result["real"]),
                 "–" if math.isnan(result["distance"]) else ("yes" if result["met"] else "**no**"),
                 "" if result["met"] or math.isnan(result["distance"]) else show(target.fmt, result["distance"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{sum(r['met'] for r in results)} of {len(results)} targets met.")
    return "\n".join(lines)
