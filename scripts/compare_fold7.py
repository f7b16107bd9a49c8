"""Compare generators (and sampling settings) on the VALIDATION fold 7: one `ecgtwin evaluate` per arm, one table.

Every arm sees the same fold-7 pairs, seeds and sizes (test fold 8 is never read; it only fills the data
module's validation slot). An arm is ``NAME=CHECKPOINT`` or ``NAME=CHECKPOINT@SAMPLER:STEPS:S_C:S_P[:LO-HI][:SPACING]``
(``LO-HI``: guidance only at those VP noise levels; SPACING: ``trailing`` for a uniform timestep grid); without ``@...`` the arm uses DEFAULT_SAMPLING.

    python scripts/compare_fold7.py --arms v1=ecgtwin/assets/ecgtwin_ptbxl100.pt@dpmpp_2m:25:1:1 \\
        v2=runs/gen_v2/version_0/checkpoints/step01870.ckpt@dpmpp_2m:25:1:1 --max-pairs 120

Reports are kept under --out/NAME (reruns reuse finished arms and sections).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ecgtwin.eval.targets import lookup
from ecgtwin.pipeline import parse_sampling

COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("limb resid. (mV)", ("realism", "twin", "limb_residual_mV"), "{:.1e}"),
    ("amp. ratio", ("realism", "twin", "amplitude_ratio"), "{:.2f}"),
    ("noise ratio", ("realism", "twin", "noise_ratio_35_50Hz"), "{:.2f}"),
    ("RR regular", ("realism", "twin", "rr_regular_share"), "{:.2f}"),
    ("spurious", ("realism", "twin", "spurious_beat_share"), "{:.2f}"),
    ("corr. err", ("realism", "twin", "correlation_error"), "{:.3f}"),
    ("2-sample AUROC", ("realism", "twin", "c2st_auroc"), "{:.2f}"),
    ("QT (ms)", ("clinical", "twin", "qt_ms_median"), "{:.0f}"),
    ("FD", ("fidelity", "twin", "fd"), "{:.1f}"),
    ("KID", ("fidelity", "twin", "kid"), "{:.3f}"),
    ("recall", ("fidelity", "twin", "recall"), "{:.2f}"),
    ("target AUROC", ("controllability", "auroc", "twin", "macro_auroc"), "{:.3f}"),
    ("id top-1", ("consistency", "twin", "id_top1"), "{:.3f}"),
    ("HR MAE", ("controllability", "hr", "twin", "mae"), "{:.1f}"),
    ("MAE @45", ("controllability", "extreme_hr", "twin", "mae_45"), "{:.1f}"),
    ("MAE @140", ("controllability", "extreme_hr", "twin", "mae_140"), "{:.1f}"),
)
REAL = {"limb resid. (mV)": ("realism", "real", "limb_residual_mV"), "amp. ratio": ("realism", "real", "amplitude_ratio"),
        "noise ratio": ("realism", "real", "noise_ratio_35_50Hz"), "RR regular": ("realism", "real", "rr_regular_share"),
        "QT (ms)": ("clinical", "real", "qt_ms_median"),
        "FD": ("fidelity", "real", "fd"), "KID": ("fidelity", "real", "kid"), "recall": ("fidelity", "real", "recall"),
        "target AUROC": ("controllability", "auroc", "real", "macro_auroc"),
        "2-sample AUROC": ("realism", "real", "c2st_auroc"), "corr. err": ("realism", "real", "correlation_error")}


def parse_arm(text: str) -> tuple[str, str, list[str]]:
    """``NAME=CKPT[@SAMPLER:STEPS:S_C:S_P[:LO-HI][:SPACING]]`` -> (name, checkpoint, extra evaluate flags)."""
    if "=" not in text:
        raise SystemExit(f"bad arm {text!r}: expected NAME=CHECKPOINT[@SAMPLER:STEPS:S_C:S_P[:LO-HI]]")
    name, rest = text.split("=", 1)
    checkpoint, _, sampling = rest.partition("@")
    flags = []
    if sampling:
        try:
            options = parse_sampling(sampling)
        except ValueError as exc:
            raise SystemExit(f"arm {name}: {exc}") from None
        flags = ["--sampler", options.sampler, "--steps", str(options.num_steps), "--guidance-condition",
                 f"{options.guidance_condition:g}", "--guidance-person", f"{options.guidance_person:g}",
                 "--spacing", options.spacing]
        if options.guidance_interval is not None:
            flags += ["--guidance-interval", *(f"{v:g}" for v in options.guidance_interval)]
    return name, checkpoint, flags


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", nargs="+", required=True)
    p.add_argument("--data-root", default="../shared/data/ptbxl100")
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt")
    p.add_argument("--max-pairs", type=int, default=120)
    p.add_argument("--out", default="outputs/compare_fold7")
    args = p.parse_args()
    rows = []
    for arm in args.arms:
        name, checkpoint, flags = parse_arm(arm)
        out = Path(args.out) / name
        cmd = ["ecgtwin", "evaluate", "--checkpoint", checkpoint, "--data-root", args.data_root, "--train-folds",
               "1-6", "--val-folds", "8", "--test-folds", "7", "--classifier", args.classifier, "--max-pairs",
               str(args.max_pairs), "--max-clinical", "48", "--n-boot", "100", "--skip-privacy", "--out", str(out),
               "--quiet", *flags]
        print("$", " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows.append((name, json.loads((out / "report.json").read_text())))
    first = rows[0][1]["settings"]
    print(f"fold 7, {first.get('n_pairs')} pairs of {first.get('n_patients')} patients; fidelity n = "
          f"{lookup(rows[0][1], ('fidelity', 'twin', 'n')):.0f} per arm")
    print("| arm | " + " | ".join(c[0] for c in COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 1))
    for name, report in rows:
        print(f"| {name} | " + " | ".join(fmt.format(lookup(report, path)) for _, path, fmt in COLUMNS) + " |")
    real = rows[0][1]
    print("| real | " + " | ".join(fmt.format(lookup(real, REAL[col])) if col in REAL else ""
                                   for col, _, fmt in COLUMNS) + " |")


if __name__ == "__main__":
    main()
