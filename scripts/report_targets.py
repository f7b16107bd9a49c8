"""Issue 10's release targets against an `ecgtwin evaluate` report, beside earlier reports (markdown table).

    python scripts/report_targets.py --report docs/eval_ptbxl100_v2/report.json \
        --baseline v1=docs/eval_ptbxl100/report.json --out docs/eval_ptbxl100_v2/targets.md

Each row: the target, the goal, each baseline's figure, this report's figure, the real ECGs' figure where one
is defined, whether it is met and, when not, the distance to the goal (ecgtwin/eval/targets.py).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecgtwin.eval.targets import targets_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", type=Path, required=True, help="report.json of the model checked")
    p.add_argument("--name", default="this model", help="its column header")
    p.add_argument("--baseline", nargs="*", default=[], metavar="NAME=REPORT_JSON", help="columns shown beside")
    p.add_argument("--out", type=Path, help="also write the table here")
    args = p.parse_args()
    baselines = {}
    for item in args.baseline:
        name, sep, path = item.partition("=")
        if not sep or not name:
            p.error(f"--baseline wants NAME=REPORT_JSON, got {item!r}")
        baselines[name] = json.loads(Path(path).read_text())
    if not args.report.is_file():
        p.error(f"no report at {args.report}")
    table = targets_table(json.loads(args.report.read_text()), baselines, name=args.name)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
