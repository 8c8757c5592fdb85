"""Packed executor on a LUT-6 netlist: native LUT evaluation against the decomposed netlist.

A random netlist of ``--layers`` layers of ``--width`` LUT-6 nodes (random tables, fan-ins from
the layer below) over ``--inputs`` input bits, ``--classes`` classes of the last layer's nodes,
class offsets; ``--samples`` random input rows. Rows, interleaved, fastest of ``--repeats``:

    native          packed.run on the LUT netlist (LUT-6 steps evaluated from the tables)
    decomposed      packed.run on luts.decompose(net), decomposed once beforehand
    decompose+run   luts.decompose(net) then packed.run, per call (what packed.run did before)

numpy only, so one thread; the scores of all rows are checked equal first.

    python bench/packed_lut.py [--layers 4] [--width 2000] [--inputs 256] [--samples 20000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lgn.compile import luts, packed  # noqa: E402
from lgn.compile.netlist import LUT_OP, Netlist  # noqa: E402


def lut6_netlist(rng: np.random.Generator, inputs: int, layers: int, width: int, classes: int) -> Netlist:
    """Layers of LUT-6 nodes with random tables, each reading 6 distinct nodes of the layer below."""
    first, below = 2 + inputs, np.arange(2, 2 + inputs)
    fanins = []
    for layer in range(layers):
        picks = np.stack([rng.choice(below, 6, replace=False) for _ in range(width)])
        fanins.append(picks)
        below = first + layer * width + np.arange(width)
    fanin = np.concatenate(fanins)
    tables = rng.integers(0, 2**63, len(fanin), dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, len(fanin), dtype=np.uint64)
    outputs = below[: width - width % classes]
    return Netlist(inputs, np.full(len(fanin), LUT_OP), fanin[:, 0], fanin[:, 5], outputs,
                   num_classes=classes, lut_fanin=fanin, lut_arity=np.full(len(fanin), 6),
                   lut_table=tables, offsets=rng.integers(-3, 4, classes))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    net = lut6_netlist(rng, args.inputs, args.layers, args.width, args.classes)
    plain = luts.decompose(net)
    bits = rng.integers(0, 2, (args.samples, args.inputs)).astype(bool)
    rows = {
        "native": lambda: packed.run(net, bits),
        "decomposed": lambda: packed.run(plain, bits),
        "decompose+run": lambda: packed.run(luts.decompose(net), bits),
    }
    expected = rows["native"]()  # also builds and caches the schedules
    for name, fn in rows.items():
        assert np.array_equal(fn(), expected), name
    times = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, fn in rows.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    print(f"packed.run, {net.num_gates} LUT-6 nodes ({plain.num_gates} two-input gates decomposed), "
          f"{args.samples} samples, 1 thread (numpy), load average {os.getloadavg()[0]:.1f}")
    base = min(times["native"])
    print(f"{'path':<14} {'cpu ms':>8} {'vs native':>10}")
    for name, t in times.items():
        print(f"{name:<14} {1e3 * min(t):8.1f} {min(t) / base:9.2f}x")


if __name__ == "__main__":
    main()
