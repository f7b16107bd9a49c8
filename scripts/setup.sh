#!/usr/bin/env bash
# Install ecgtwin and its dependencies into the current Python environment.
#   TORCH_SPEC  torch requirement (default torch==2.13.0, whose CPU wheel is cached on the
#               project machines; GPU users: TORCH_SPEC="torch>=2.1" with their CUDA index)
#   EXTRAS      pip extras to install (default dev: pytest + notebook runner)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-dev}
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m pip install -q "$TORCH_SPEC"
"$PY" -m pip install -q -e ".[${EXTRAS}]"
echo "ecgtwin installed ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
