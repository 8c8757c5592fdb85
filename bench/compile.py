"""Benchmark the compile stack: packed executor vs the PyTorch forward, optimize(), and scale.

Prints one table. Everything runs on ONE thread (torch.set_num_threads(1); numpy's bitwise
kernels are single-threaded). Rows:

- packed executor (``lgn.compile.packed.run``, input bits to class scores) on the netlist, before
  and after ``optimize()``, against the discretized PyTorch forward (``model.eval()``) of a model
  of the same shape, all measured here on the same inputs;
- gates removed by ``optimize()``: only meaningful for a trained netlist (a randomly initialised
  network loses most of its gates too: 6 in 16 random gates are constants, wires or NOTs, and
  whatever reads only those folds away after them);
- lowering + optimization time and peak resident memory (VmHWM of a fresh child process) for a
  large network.

Usage::

    python bench/compile.py                      # random-init LogicNet, 784 -> 6 x 8000
    python bench/compile.py --model runs/fashion-mnist/model.pt   # a checkpoint, on its test set
    python bench/compile.py --netlist model.npz  # a trained netlist saved by lgn.compile.formats.save

``bench/compile_train_fmnist.py`` trains such a netlist on Fashion-MNIST in a few minutes.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _timing import best_time  # noqa: E402
import torch  # noqa: E402

from lgn.compile import formats, packed  # noqa: E402
from lgn.compile.lower import lower  # noqa: E402
from lgn.compile.passes import optimize  # noqa: E402
from lgn.nn import LogicNet, Thermometer  # noqa: E402


def model_like(num_features: int, layers: int, width: int, seed: int = 0) -> LogicNet:
    return LogicNet(Thermometer.uniform(num_features, 1, 0, 255), 10, layers=layers, width=width,
                    seed=seed).eval()


def scale_child(layers: int, width: int) -> None:
    """Build, lower and optimize a large random network; print timings and peak RSS as JSON."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = model_like(784, layers, width)
    built = time.perf_counter()
    net = lower(model)
    lowered = time.perf_counter()
    small = optimize(net)
    done = time.perf_counter()
    print(json.dumps({
        "gates": net.num_gates, "optimized_gates": small.num_gates, "build_s": built - start,
        "lower_s": lowered - built, "optimize_s": done - lowered,
        "max_rss_mb": peak_rss_mb(),
    }))


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    Linux's ``VmHWM`` belongs to this process image alone; ``ru_maxrss`` would carry over the
    parent's peak across fork + exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a training checkpoint: its own model, netlist and test set")
    parser.add_argument("--netlist", help="a trained netlist .npz (lgn.compile.formats.save)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--torch-samples", type=int, default=10_000,
                        help="samples for the (slow) PyTorch baseline; throughput is per sample")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale-layers", type=int, default=8)
    parser.add_argument("--scale-width", type=int, default=50_000)
    parser.add_argument("--scale-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        return scale_child(args.scale_layers, args.scale_width)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    if args.model:
        from lgn.io import load_for_eval

        setup = load_for_eval(args.model)
        model, net = setup.file.model.eval(), setup.file.netlist
        raw = setup.features[: args.samples]
        source = f"{args.model}: the trained model and {len(raw):,} test samples of {setup.data.name}"
    elif args.netlist:
        net = formats.load(args.netlist)
        # The forward's cost depends on the shape only: a random model of that shape is the baseline.
        model = model_like(net.num_inputs, args.layers, args.width)
        source = (f"{args.netlist}; PyTorch baseline: a random-init LogicNet {net.num_inputs} -> "
                  f"{args.layers} x {args.width} (pass the trained shape with --layers/--width)")
    else:
        model = model_like(784, args.layers, args.width)
        net = lower(model)
        source = (f"random-init LogicNet 784 -> {args.layers} x {args.width} "
                  "(its gate reduction says nothing about a trained model)")
    if args.model:
        bits = net.encoding.encode(raw)
    elif net.encoding is not None:
        raw = rng.integers(0, 256, (args.samples, net.encoding.num_features))  # uint8-like pixels
        bits = net.encoding.encode(raw.astype(net.encoding.dtype))
    else:
        bits = rng.integers(0, 2, (args.samples, net.num_inputs)).astype(bool)
    features = rng.integers(0, 256, (args.samples, model.encoder.num_features)).astype(np.float32)
    if not args.netlist:  # the very same inputs for both
        features = raw.astype(np.float32)
        bits = bits[: len(features)]

    start = time.perf_counter()
    small = optimize(net)
    optimize_s = time.perf_counter() - start
    np.testing.assert_array_equal(packed.run(small, bits[:1000]), packed.run(net, bits[:1000]))

    x = torch.from_numpy(features[: args.torch_samples])
    with torch.no_grad():
        torch_s = best_time(lambda: model(x), max(1, args.repeats // 2)) / len(x)
    packed_s = best_time(lambda: packed.run(net, bits), args.repeats) / len(bits)
    small_s = best_time(lambda: packed.run(small, bits), args.repeats) / len(bits)
    encoded_s = None
    if net.encoding is not None:
        raw_features = raw.astype(net.encoding.dtype)
        encoded_s = best_time(lambda: packed.run(small, net.encoding.encode(raw_features)),
                              args.repeats) / len(bits)
    if not args.netlist:  # the packed scores are the model's scores times tau, on every sample
        with torch.no_grad():
            expected = (model(x) * model.tau).round().numpy().astype(np.int64)
        np.testing.assert_array_equal(packed.run(net, bits[: len(expected)]), expected)
        np.testing.assert_array_equal(packed.predict(small, bits[: len(expected)]), expected.argmax(1))

    child = subprocess.run(
        [sys.executable, __file__, "--scale-child", "--scale-layers", str(args.scale_layers),
         "--scale-width", str(args.scale_width)], capture_output=True, text=True, check=True)
    scale = json.loads(child.stdout)

    def speed(name: str, seconds_per_sample: float) -> tuple:
        return (name + ", samples/s", f"{1 / seconds_per_sample:,.0f}", f"{1 / torch_s:,.0f}",
                f"{torch_s / seconds_per_sample:,.1f}x")

    scale_s = scale["lower_s"] + scale["optimize_s"]
    removed = 100 * (1 - small.num_gates / max(net.num_gates, 1))
    rows = [
        ("PyTorch eval forward, samples/s", f"{1 / torch_s:,.0f}", "baseline", "1.0x"),
        speed("packed.run", packed_s),
        speed("packed.run after optimize()", small_s),
        *([speed("encode raw features + packed.run after optimize()", encoded_s)] if encoded_s else []),
        ("gates before -> after optimize()", f"{net.num_gates:,} -> {small.num_gates:,}",
         f"{removed:.1f}% removed", ""),
        ("optimize() time, s", f"{optimize_s:.2f}", "", ""),
        (f"scale: 784 -> {args.scale_layers} x {args.scale_width:,} gates, lower + optimize, s",
         f"{scale_s:.2f}", "target 30", f"{scale_s / 30:.2f}x"),
        ("scale: peak memory (VmHWM incl. torch), MiB", f"{scale['max_rss_mb']:,.0f}", "target 4096",
         f"{scale['max_rss_mb'] / 4096:.2f}x"),
        ("scale: gates before -> after optimize()",
         f"{scale['gates']:,} -> {scale['optimized_gates']:,}", "", ""),
    ]
    print(f"netlist: {source}")
    print(f"{net!r}; {len(bits):,} samples for packed, {len(x):,} for PyTorch; "
          f"threads: torch {torch.get_num_threads()}, numpy 1 (bitwise ufuncs are single-threaded)")
    table = [("what", "value", "baseline", "ratio")] + rows
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        print("  ".join(cells))


if __name__ == "__main__":
    main()
