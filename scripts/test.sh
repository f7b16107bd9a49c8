#!/usr/bin/env bash
# The project's test command: install, then run the test suite (GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=${WANDB_MODE:-offline} MPLBACKEND=Agg
exec "${PYTHON:-python3}" -m pytest -q "$@"
