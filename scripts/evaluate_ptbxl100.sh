#!/usr/bin/env bash
# Full evaluation of the bundled model on the shared PTB-XL pack (test fold 8; train 1-6, val 7).
# Uses the bundled reference classifier; to retrain it instead (then set CLASSIFIER=...):
#   ecgtwin fit --config configs/classifier.yaml --config configs/data/ptbxl100.yaml
#   cp runs/classifier/version_N/checkpoints/clf-*.ckpt runs/classifier_ptbxl100/best.ckpt   # the best val/macro_auroc
# Every section runs: the core metrics with the null-base population baseline, the personalised-diagnosis
# protocol (fine-tuning settings chosen on fold 7 by scripts/tune_personalized.py) and TSTR / TRTS /
# real + synthetic on the benchmark protocol. About an hour on 2 CPU cores (10,500 twins, 6 classifiers).
# The population column is the separately trained population model (POPULATION, same data, recipe and budget
# as the personal model, trained by the command in models/README.md); POPULATION=null-base uses the personal
# model's learned null base vector instead.
# Sampling: ecgtwin.pipeline.DEFAULT_SAMPLING unless given (the v1 report: --sampler dpmpp_2m --steps 25
# --guidance-condition 1 --guidance-person 1).
# Sections are stored as they finish (OUT/sections, twins chunk by chunk): rerun the same command to resume.
# PERSONALIZED=0 / DOWNSTREAM=0 leave that section out for now (a later run with it reuses the rest).
# THREADS=N fixes the CPU threads (default: the CPUs idle at the start; set it when another job just ended).
# Usage: scripts/evaluate_ptbxl100.sh [extra `ecgtwin evaluate` options, e.g. --max-pairs 200]
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=../shared/data/ptbxl100
CHECKPOINT=${CHECKPOINT:-ecgtwin/assets/ecgtwin_ptbxl100.pt}
POPULATION=${POPULATION:-models/population_ptbxl100_v2.pt}   # v1 bundle: models/population_ptbxl100_v1.pt
CLASSIFIER=${CLASSIFIER:-ecgtwin/assets/classifier_ptbxl100.ckpt}   # bundled reference classifier (folds 1-6, selected on 7)
OUT=${OUT:-docs/eval_ptbxl100_v2}   # the v1 report: OUT=docs/eval_ptbxl100
optional=()
[[ "${PERSONALIZED:-1}" == 1 ]] && optional+=(--personalized)
[[ "${DOWNSTREAM:-1}" == 1 ]] && optional+=(--downstream)
[[ -n "${THREADS:-}" ]] && optional+=(--threads "$THREADS")
if [[ "$POPULATION" == null-base ]]; then
  population=(--population-null-base)
else
  population=(--population-checkpoint "$POPULATION")
fi

for f in "$DATA/ptbxl_database.csv" "$CHECKPOINT" "$CLASSIFIER" ${population[1]:+"${population[1]}"}; do
  if [[ ! -f "$f" ]]; then
    echo "evaluate_ptbxl100.sh: missing $f (see the comment at the top of this script)" >&2
    exit 2
  fi
done

ecgtwin evaluate \
  --checkpoint "$CHECKPOINT" \
  --data-root "$DATA" \
  --train-folds 1-6 --val-folds 7 --test-folds 8 \
  --classifier "$CLASSIFIER" \
  "${population[@]}" \
  "${optional[@]}" \
  --out "$OUT" \
  "$@"
echo "report: $OUT/report.md"
