#!/usr/bin/env bash
# Install ecgtwin and its dependencies into the project virtual environment .venv (created if missing), or into
# the virtual environment that is active; never into the system interpreter (scripts/_venv.sh).
#   PYTHON      interpreter that creates .venv (default python3)
#   TORCH_SPEC  torch requirement (default torch==2.13.0, whose CPU wheel is cached on the
#               project machines; GPU users: TORCH_SPEC="torch>=2.1" with their CUDA index)
#   EXTRAS      pip extras to install (default dev: pytest + notebook runner)
# Then: source .venv/bin/activate   (README: bash scripts/setup.sh && source .venv/bin/activate && ecgtwin demo)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-dev}
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m pip install -q "$TORCH_SPEC"
"$PY" -m pip install -q -e ".[${EXTRAS}]"
echo "ecgtwin installed in $("$PY" -c 'import sys; print(sys.prefix)') ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
echo "activate it with: source .venv/bin/activate"
