#!/usr/bin/env bash
# The CUDA checks of issue 15 in one script: the CUDA tests (tests/test_cuda.py), then the CUDA
# timings of bench/gpu.py (W1 training step at batch 128 and 1024, the packed executor on CUDA
# tensors, lgn.sort at n = 1024). About 3 minutes on an H200 (budget: under 8).
#
#   bash bench/gpu.sh            # on a machine with a GPU
#   bash bench/gpu.sh --dry-run  # anywhere: no GPU needed; the tests skip, the timings run on
#                                # the CPU at small sizes (also what happens when no GPU is found)
#
# Python: $PYTHON, else ./.venv/bin/python, else python3. Where lgn is not importable (a bare
# GPU machine that has torch), this checkout is installed without dependencies into a
# temporary folder first; nothing is downloaded.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1

dry_run=""
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry_run="--dry-run" ;;
        *) echo "bench/gpu.sh: unknown argument '$arg' (expected --dry-run)" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=$repo/.venv/bin/python; else python=$(command -v python3); fi
fi
if ! (cd /tmp && "$python" -c "import lgn.compile.packed, lgn.nn, lgn.sort") 2>/dev/null; then
    site=$(mktemp -d)
    echo "== installing this checkout (no dependencies) into $site"
    "$python" -m pip install -q --no-deps --no-build-isolation --no-index --target "$site" "$repo"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

has_cuda=$("$python" -c "import torch; print(int(torch.cuda.is_available()))")
echo "== python $("$python" -c 'import sys; print(sys.version.split()[0])'), torch" \
     "$("$python" -c 'import torch; print(torch.__version__)'), CUDA available: $has_cuda"
if [ "$has_cuda" = 1 ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
if [ "$has_cuda" = 0 ] && [ -z "$dry_run" ]; then
    echo "== no GPU found: dry run (tests skip, timings on the CPU at small sizes)"
    dry_run="--dry-run"
fi

echo "== CUDA tests"
start=$SECONDS
# From /tmp, so that the installed lgn (not the source folder, which lacks lgn.compile) is imported.
(cd /tmp && "$python" -m pytest -c "$repo/pyproject.toml" --rootdir "$repo" -q -rs -p no:cacheprovider \
    "$repo/tests/test_cuda.py")
echo "   ($((SECONDS - start)) s)"

echo "== timings"
start=$SECONDS
(cd /tmp && "$python" "$repo/bench/gpu.py" $dry_run)
echo "   ($((SECONDS - start)) s)"
