#!/usr/bin/env bash
# Create .venv and install midilm with everything its tests and web app need, saying what it does as it goes.
# torch: a torch already in .venv is kept (GPU users install the build for their hardware first,
# https://pytorch.org/get-started/locally/); otherwise the CPU build from PyTorch's CPU index, so that a
# laptop downloads no CUDA libraries, or from the package index when that index cannot be reached.
# Environment: PYTHON (default python3), TORCH_VERSION (default 2.13.0).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
CPU_INDEX=https://download.pytorch.org/whl/cpu
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

step() { printf '\n== setup %s: %s\n' "$(date +%H:%M:%S)" "$*"; }

cpu_index_reachable() {
  # a short timeout: an unreachable index must cost seconds, not pip's minutes of retries
  .venv/bin/python - "$CPU_INDEX/torch/" <<'PY'
import sys
import urllib.request

try:
    urllib.request.urlopen(sys.argv[1], timeout=5).close()
except Exception:
    sys.exit(1)
PY
}

if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi

if .venv/bin/python -c "import torch" 2>/dev/null; then
  step "keeping the torch found in .venv ($(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
else
  from_cpu_index=""
  if cpu_index_reachable; then
    step "installing torch $TORCH_VERSION for the CPU from $CPU_INDEX (about 200 MB)"
    if "${PIP[@]}" install --timeout 30 --index-url "$CPU_INDEX" "torch==$TORCH_VERSION"; then
      from_cpu_index=yes
    fi
  else
    step "$CPU_INDEX cannot be reached from here"
  fi
  if [ -z "$from_cpu_index" ]; then
    step "installing torch $TORCH_VERSION from the package index"
    "${PIP[@]}" install "torch==$TORCH_VERSION"
  fi
fi

step "installing midilm and its dependencies (music21, symusic, gradio, onnxruntime, the test tools...)"
"${PIP[@]}" install -e ".[app,tensorboard,onnx,dev]"

step "done: $(.venv/bin/midilm --version)"
