#!/usr/bin/env bash
# Install everything (scripts/setup.sh), then run the test suite. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m slow` for the long tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
exec .venv/bin/python -m pytest -n 2 -q "$@"
