"""Benchmark ``optimize()`` on a large random netlist against the code the IR issue started from.

The baseline is ``compile/passes.py`` as of commit ``5ab221d`` (read with ``git show``, so it
runs unchanged) on a netlist class whose ``level`` is the per-gate Python loop
(``Netlist._level_by_loop``, what ``level`` was then). The new variant is today's ``optimize()``:
whole-array levels, the shared cached :attr:`Netlist.schedule` and the rewritten passes. Runs are
interleaved (baseline, new, baseline, ...), one thread, and both variants must optimize to the
same netlist (same sha256). No torch: the netlist is drawn with numpy.

    python bench/optimize.py [--layers 6 --width 80000 --rounds 5]
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from functools import cached_property  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lgn.compile.netlist import Netlist  # noqa: E402
from lgn.compile.passes import optimize  # noqa: E402

#: The commit before the IR issue's work on levels and passes.
BASELINE_COMMIT = "5ab221d"


class LoopLevelNetlist(Netlist):
    """A Netlist whose ``level`` is the per-gate loop (``replace`` keeps the class)."""

    @cached_property
    def level(self) -> np.ndarray:
        return self._level_by_loop()


def baseline_optimize(commit: str = BASELINE_COMMIT):
    """``optimize`` of ``compile/passes.py`` at ``commit``, loaded from git into lgn.compile."""
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(["git", "show", f"{commit}:compile/passes.py"], cwd=repo,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench/optimize.py: cannot read the baseline passes of commit {commit} "
                 f"(git show: {done.stderr.strip()[:200]})")
    module = types.ModuleType(f"lgn.compile._passes_{commit}")
    module.__package__ = "lgn.compile"
    exec(compile(done.stdout, f"{commit}:compile/passes.py", "exec"), module.__dict__)
    return module.optimize


def random_layered(cls, num_inputs: int, layers: int, width: int, classes: int = 10, seed: int = 0):
    """A dense random network: each layer's gates read two random nodes of the layer below."""
    rng = np.random.default_rng(seed)
    below, next_id = np.arange(2, 2 + num_inputs), 2 + num_inputs
    op, a, b = [], [], []
    for _ in range(layers):
        op.append(rng.integers(0, 16, width))
        a.append(rng.choice(below, width))
        b.append(rng.choice(below, width))
        below, next_id = np.arange(next_id, next_id + width), next_id + width
    return cls(num_inputs, np.concatenate(op), np.concatenate(a), np.concatenate(b), below,
               num_classes=classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=784)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=80_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base_name = f"baseline ({BASELINE_COMMIT}, loop levels)"
    variants = {base_name: (LoopLevelNetlist, baseline_optimize()),
                "lgn (this tree)": (Netlist, optimize)}
    times = {name: [] for name in variants}
    digests = set()
    for _ in range(args.rounds):
        for name, (cls, run) in variants.items():
            net = random_layered(cls, args.inputs, args.layers, args.width)
            start = time.perf_counter()
            small = run(net)
            times[name].append(time.perf_counter() - start)
            digests.add(small.sha256)
    assert len(digests) == 1, "the two variants optimized to different netlists"
    print(f"optimize(), {args.inputs} inputs -> {args.layers} x {args.width:,} random gates "
          f"({net.num_gates:,} -> {small.num_gates:,}), 1 thread, {args.rounds} interleaved rounds, "
          f"load {os.getloadavg()[0]:.2f}")
    base = statistics.median(times[base_name])
    print(f"{'variant':34} {'median s':>9} {'rounds':>36} {'speed-up':>9}")
    for name, values in times.items():
        spread = " ".join(f"{v:.3f}" for v in values)
        median = statistics.median(values)
        print(f"{name:34} {median:9.3f} {spread:>36} {base / median:8.2f}x")
    print("same optimized netlist from both variants: yes")


if __name__ == "__main__":
    main()
