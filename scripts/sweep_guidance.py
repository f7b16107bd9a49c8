"""Guidance-scale sweep on the VALIDATION fold: core evaluation sections per (s_c, s_p), one table.

Runs ``ecgtwin evaluate`` on fold 7 of the shared pack (test fold 8 is never
read: it only fills the data module's third split slot) for each guidance
setting and prints fidelity, controllability and consistency side by side.

  python scripts/sweep_guidance.py --settings 1,1 2,1 3,1 4,1 6,1 2,2 3,2
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

COLUMNS = (("FD", "fidelity", "fd"), ("recall", "fidelity", "recall"), ("target AUROC", "auroc", "macro_auroc"),
           ("HR MAE", "hr", "mae"), ("id top-1", "consistency", "id_top1"), ("IBE cosine", "consistency", "cosine_mean"),
           ("QT median (ms)", "clinical", "qt_ms_median"))


def value(report: dict, section: str, key: str) -> float:
    if section in ("auroc", "hr"):
        return report["controllability"][section]["twin"][key]
    return report[section]["twin"][key]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="../shared/data/ptbxl100")
    p.add_argument("--classifier", default="ecgtwin/assets/classifier_ptbxl100.ckpt")
    p.add_argument("--settings", nargs="+", default=["1,1", "2,1", "3,1", "4,1", "6,1", "2,2", "3,2"],
                   help="guidance_condition,guidance_person pairs")
    p.add_argument("--max-pairs", type=int, default=120)
    p.add_argument("--out", default="outputs/guidance_fold7")
    args = p.parse_args()
    rows = []
    for setting in args.settings:
        s_c, s_p = (float(v) for v in setting.split(","))
        out = Path(args.out) / f"c{s_c:g}_p{s_p:g}"
        if not (out / "report.json").is_file():
            cmd = ["ecgtwin", "evaluate", "--data-root", args.data_root, "--train-folds", "1-6", "--val-folds", "8",
                   "--test-folds", "7", "--classifier", args.classifier, "--max-pairs", str(args.max_pairs),
                   "--guidance-condition", str(s_c), "--guidance-person", str(s_p), "--max-clinical", "16",
                   "--n-boot", "100", "--out", str(out), "--quiet"]
            print("$", " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        report = json.loads((out / "report.json").read_text())
        rows.append((s_c, s_p, [value(report, section, key) for _, section, key in COLUMNS]))
    print("| s_c | s_p | " + " | ".join(name for name, _, _ in COLUMNS) + " |")
    print("|---:|---:|" + "---:|" * len(COLUMNS))
    for s_c, s_p, values in rows:
        print(f"| {s_c:g} | {s_p:g} | " + " | ".join(f"{v:.3g}" for v in values) + " |")


if __name__ == "__main__":
    main()
