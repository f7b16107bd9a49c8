#!/usr/bin/env bash
# The project's test command: install (scripts/setup.sh, into .venv or the active virtual environment), then run
# the test suite with that environment's Python (GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/_venv.sh
export WANDB_MODE=${WANDB_MODE:-offline} MPLBACKEND=Agg
exec "$PY" -m pytest -q "$@"
