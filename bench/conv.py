"""Training cost of one logic convolution block: gather vs unfold, and against a dense LogicLayer.

For each block shape, forward + backward at batch 128 (default) of

- ``gather``: :class:`lgn.nn.LogicConv2d` (its leaves gathered straight from the input, the way
  it trains) followed by :class:`lgn.nn.OrPool2d`;
- ``unfold``: the same block through a materialized ``unfold`` of the input
  (:func:`lgn.nn.functional.logic_conv2d_unfold`);
- ``dense``: the baseline, one :class:`lgn.nn.LogicLayer` over the flattened input with as many
  gates as the block's trees evaluate (``H_out * W_out * channels * (2**depth - 1)``).

Each variant runs in a fresh subprocess so that its peak RSS is its own; the table gives the
median time, the ratio to ``dense`` and the training peak memory (peak RSS above the process
with the layer and batch built). With ``--rounds R`` the three variants run in turn R times
(interleaved, so that a loaded machine slows them alike) and the table keeps each variant's
fastest round.

    python bench/conv.py [--threads 1] [--batch 128] [--steps 5] [--rounds 1] [--block NAME]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

#: (name, in_channels, size, out_channels, kernel, stride, padding, depth, pool window)
BLOCKS = [
    ("fmnist conv1", 3, 28, 32, 3, 1, 1, 3, 2),
    ("fmnist conv2", 32, 14, 64, 3, 1, 1, 3, 2),
    ("cifar conv1", 9, 32, 64, 3, 1, 1, 3, 2),
    ("stride 2, d=2", 16, 28, 64, 3, 2, 1, 2, 0),
]
VARIANTS = ("gather", "unfold", "dense")


def _current_rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def measure(variant: str, block: tuple, args) -> dict:
    import resource
    import time

    import torch

    from lgn.nn import LogicConv2d, LogicLayer, OrPool2d
    from lgn.nn import functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    _, c_in, size, c_out, k, s, p, d, window = block
    conv = LogicConv2d(c_in, c_out, k, s, p, d, parametrization="table", init="residual")
    out_h, out_w = conv.output_size(size, size)
    gates = out_h * out_w * conv.gates_per_position
    pool = OrPool2d(window) if window else torch.nn.Identity()
    x = torch.rand(args.batch, c_in, size, size, requires_grad=True)
    if variant == "dense":
        layer = LogicLayer(c_in * size * size, gates, parametrization="table", init="residual")
        flat = x.detach().flatten(1).requires_grad_()

        def forward():
            return layer(flat)
    elif variant == "gather":
        def forward():
            return pool(conv(x))
    else:
        patch = F.conv_patch_index(conv.leaf_channel, conv.leaf_row, conv.leaf_col, k)

        def forward():
            return pool(F.logic_conv2d_unfold(x, patch, conv.coefficients(), k, s, p))

    def step():
        forward().sum().backward()

    base_rss = _current_rss_kb()
    step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"ms": 1e3 * times[len(times) // 2], "train_mb": (peak - base_rss) / 1024, "gates": gates}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--block", action="append", choices=[b[0] for b in BLOCKS],
                        help="only this block (repeatable) [all]")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, index = args.child
        print(json.dumps(measure(variant, BLOCKS[int(index)], args)))
        return
    print(f"forward + backward of one block, batch {args.batch}, {args.threads} thread(s), median of {args.steps}, "
          f"best of {args.rounds} interleaved round(s); dense: a LogicLayer with as many gates as the block's trees; "
          f"load average {open('/proc/loadavg').read().split()[0]}")
    print(f"{'block':<16} {'gates':>8} {'variant':<7} {'ms':>9} {'x dense':>8} {'train peak MB':>14}")
    for index, block in enumerate(BLOCKS):
        if args.block and block[0] not in args.block:
            continue
        results = {}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                cmd = [sys.executable, __file__, "--child", variant, str(index), f"--threads={args.threads}",
                       f"--batch={args.batch}", f"--steps={args.steps}"]
                run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                if variant not in results or run["ms"] < results[variant]["ms"]:
                    results[variant] = run
        name, c_in, size, c_out, k, s, p, d, window = block
        label = f"{c_in}x{size}x{size}->{c_out}, k{k} s{s} p{p} d{d}" + (f", orpool {window}" if window else "")
        print(f"{name:<16} {results['dense']['gates']:>8,}   ({label})")
        for variant in VARIANTS:
            r = results[variant]
            print(f"{'':<16} {'':>8} {variant:<7} {r['ms']:9.1f} {r['ms'] / results['dense']['ms']:8.2f} "
                  f"{r['train_mb']:14.0f}")
    print(f"load average at the end {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
