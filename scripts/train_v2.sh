#!/usr/bin/env bash
# Train the v2 generator on the shared PTB-XL pack (folds 1-6; fold 7 validation), resumable.
#
#   bash scripts/train_v2.sh                 # first call starts, every later call resumes from the last checkpoint
#   MAX_STEPS=20000 bash scripts/train_v2.sh # train further
#   WARM_START=ecgtwin/assets/ecgtwin_ptbxl100.pt MAX_STEPS=8000 bash scripts/train_v2.sh
#                                            # runs/ lost: start from a committed v2 bundle (its EMA weights and
#                                            # its IBE; optimiser state and step count start afresh)
#   POPULATION=1 bash scripts/train_v2.sh    # the population model of the report: same recipe, data and budget,
#                                            # no base vector (no IBE stage), progress in runs/population_v2
#   bash scripts/train_v2.sh --model.init_args.min_snr_shift 1   # extra arguments go to `ecgtwin fit`
#   THREADS=1 ...                            # two single-thread runs side by side train ~25% more steps per hour
#                                            # in total than one 2-thread run, and do not stall beside other work
#
# Stage 1, the IBE on the same vocabulary (5 superclasses + 12 rhythm statements), runs first when
# $IBE does not exist yet (about 10 min on 2 cores). Progress: $RUN/version_*/ (metrics.csv; checkpoints/last.ckpt
# every 100 steps and step*.ckpt snapshots every 935 steps). Each call resumes from the newest last.ckpt.
# Bundle the result with
#   python scripts/make_bundle.py --generator "$(ls -t runs/gen_v2/version_*/checkpoints/last.ckpt | head -n 1)" --out BUNDLE.pt
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-../shared/data/ptbxl100}
IBE=${IBE:-runs/ibe_v2/best.ckpt}
POPULATION=${POPULATION:-0}
if [ "$POPULATION" = 1 ]; then RUN=${RUN:-runs/population_v2}; else RUN=${RUN:-runs/gen_v2}; fi
IBE_EPOCHS=${IBE_EPOCHS:-10}
MAX_STEPS=${MAX_STEPS:-12000}
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS WANDB_MODE=${WANDB_MODE:-offline}
data=(--config configs/data/ptbxl100.yaml --data.init_args.root "$ROOT" --data.init_args.label_set superclass_rhythm
      --data.init_args.batch_size 32 --data.init_args.progress false)
resume=()
last=$(ls -t "$RUN"/version_*/checkpoints/last.ckpt 2>/dev/null | head -n 1 || true)
warm=()
mkdir -p "$RUN"
if [ -z "$last" ] && [ -n "${WARM_START:-}" ]; then
  echo "$WARM_START" > "$RUN/warm_start.txt"  # later resumes rebuild the IBE architecture from the same bundle
fi
if [ -f "$RUN/warm_start.txt" ]; then
  echo "== warm start from $(cat "$RUN/warm_start.txt") (its IBE included)"
  warm=(--model.init_args.init_from "$(cat "$RUN/warm_start.txt")")
elif [ "$POPULATION" = 1 ]; then
  :  # no IBE: the population model never sees a reference
elif [ ! -f "$IBE" ]; then
  echo "== IBE (stage 1) -> $IBE"
  ibe_run="$(dirname "$IBE")"
  ecgtwin fit --config configs/ibe.yaml "${data[@]}" --trainer.max_epochs "$IBE_EPOCHS" \
      --trainer.default_root_dir "$ibe_run" --trainer.logger.init_args.save_dir "$(dirname "$ibe_run")" \
      --trainer.logger.init_args.name "$(basename "$ibe_run")"
  best=$(ls -t "$ibe_run"/version_*/checkpoints/ibe-*.ckpt | head -n 1)
  mkdir -p "$(dirname "$IBE")" && cp "$best" "$IBE"
fi
[ -n "$last" ] && resume=(--ckpt_path "$last") && echo "== resuming $last"
if [ "$POPULATION" = 1 ]; then warm+=(--model.init_args.use_base_vector false)
elif [ ${#warm[@]} -eq 0 ]; then warm=(--model.init_args.ibe_checkpoint "$IBE"); fi
# a new seed for every sitting: a resumed run must not replay the examples, noise levels and dropout masks of step 0
SEED=$(find "$RUN" -maxdepth 1 -name 'version_*' -type d | wc -l)
echo "== generator v2 (population=$POPULATION) -> $RUN (max_steps $MAX_STEPS, seed $SEED)"
exec ecgtwin fit --config configs/generator_v2.yaml "${data[@]}" --data.init_args.personal_share 0.6 \
    --seed_everything "$SEED" --data.init_args.seed "$SEED" \
    "${warm[@]}" --trainer.max_steps "$MAX_STEPS" --trainer.default_root_dir "$RUN" \
    --trainer.logger.init_args.save_dir "$(dirname "$RUN")" --trainer.logger.init_args.name "$(basename "$RUN")" "${resume[@]}" "$@"
