# Sourced by scripts/setup.sh and scripts/test.sh: sets PY, the Python of the environment ecgtwin lives in.
# Never the system interpreter: an active virtual environment ($VIRTUAL_ENV) is used as it is; otherwise the
# project environment .venv is created (with ${PYTHON:-python3} -m venv) and used. The venv's pip reads the same
# pip configuration as the interpreter that made it (pip.conf, PIP_* variables), so it finds the same wheels.
if [[ -n "${VIRTUAL_ENV:-}" && -x "${VIRTUAL_ENV}/bin/python" ]]; then
  PY="${VIRTUAL_ENV}/bin/python"
  if [[ ! -e .venv ]]; then
    ln -s "${VIRTUAL_ENV}" .venv  # so that `source .venv/bin/activate` in the README works here too
  elif [[ "$(cd .venv && pwd -P)" != "$(cd "${VIRTUAL_ENV}" && pwd -P)" ]]; then
    echo "note: using the active environment ${VIRTUAL_ENV}; .venv is another one (activate ${VIRTUAL_ENV} instead)" >&2
  fi
else
  if [[ ! -x .venv/bin/python ]]; then
    "${PYTHON:-python3}" -m venv .venv || {
      echo "error: could not create the virtual environment .venv with ${PYTHON:-python3} -m venv" >&2
      echo "       (Debian/Ubuntu: apt install python3-venv; or activate an environment of your own first)" >&2
      exit 1
    }
  fi
  PY="$(pwd)/.venv/bin/python"
fi
