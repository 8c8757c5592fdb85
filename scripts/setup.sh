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
# The peer libraries tests/test_peers.py compares conversions against (lgn.compile.peers).
# TorchLogix's declared dependencies (torchvision, torch-geometric, rich) are not imported by its
# layers: install it alone. difflogic's setup.py builds a CUDA extension and, on a CPU torch, fails
# even to report its metadata; a stand-in torch.utils.cpp_extension (for that setup.py only) marks
# the extension optional, so pip installs the pure-Python package, and a placeholder
# difflogic_cuda module satisfies its import (the implementation='python' layers never call it).
.venv/bin/python -m pip install -q --no-deps torchlogix==0.1.1
if ! .venv/bin/python -c "import difflogic" 2>/dev/null; then
    shim=$(mktemp -d)
    mkdir -p "$shim/torch/utils"
    touch "$shim/torch/__init__.py" "$shim/torch/utils/__init__.py"
    cat > "$shim/torch/utils/cpp_extension.py" <<'PY'
from setuptools import Extension
from setuptools.command.build_ext import build_ext as BuildExtension


def CUDAExtension(name, sources, *args, **kwargs):
    return Extension(name, sources, optional=True)
PY
    .venv/bin/python -m pip install -q setuptools wheel  # the build without isolation uses the venv's
    PYTHONPATH="$shim" .venv/bin/python -m pip install -q --no-deps --no-build-isolation difflogic==0.1.0
    rm -rf "$shim"
    purelib=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    cat > "$purelib/difflogic_cuda.py" <<'PY'
"""Placeholder for difflogic's CUDA extension, not built here (no CUDA toolkit): difflogic imports
it when loaded, and its implementation='python' layers never call it."""


def __getattr__(name):
    raise ImportError(f"difflogic_cuda.{name}: difflogic's CUDA extension is not built "
                      "(lgn's scripts/setup.sh installs its pure-Python path: implementation='python')")
PY
fi
