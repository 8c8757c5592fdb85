#!/usr/bin/env bash
# The main job, from a fresh machine: set up, train a logic gate network on scikit-learn's digits,
# then compile it to C and Verilog and check that PyTorch, the packed executor, the compiled C
# and the simulated Verilog (Verilator; iverilog when Verilator is missing) all give the same
# predictions on the whole test set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v verilator >/dev/null; then
    bash scripts/system-deps.sh   # C compiler, Verilator, iverilog, ... (as root on Debian/Ubuntu)
fi
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
.venv/bin/lgn train --dataset digits --out runs/digits/model.pt "$@"
.venv/bin/lgn check runs/digits/model.pt --out runs/digits
