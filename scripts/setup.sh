#!/usr/bin/env bash
# Install lgn into ./.venv: system packages stay visible, so a torch you already have is kept
# (never downgraded); torch==2.13.0 (a CPU build) is installed only when no torch is importable.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q torch==2.13.0
fi
.venv/bin/python -m pip install -q -e ".[test,tools,plot]"
