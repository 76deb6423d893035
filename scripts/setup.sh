#!/usr/bin/env bash
# Create .venv and install midilm with everything its tests and web app need.
# GPU users: create .venv and install the torch build for your hardware first
# (https://pytorch.org/get-started/locally/); this script keeps a torch it finds.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # a CPU build; a bare `torch` requirement would pull a multi-GB CUDA build
  .venv/bin/pip install --quiet "torch==2.13.0"
fi
.venv/bin/pip install --quiet -e ".[app,tensorboard,onnx,dev]"
.venv/bin/midilm --version
