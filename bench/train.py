"""Training-step speed and peak memory: lgn's affine gate layer vs the naive 16-gate formula.

784 inputs -> 6 x 8000 gates -> GroupSum(10), batch 128, forward + backward + Adam on CPU.
Each variant runs in a fresh subprocess so its peak RSS is its own.

    python bench/train.py [--threads 1] [--steps 20] [--layers 6] [--width 8000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _timing import current_rss_kb

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def measure(variant: str, args) -> dict:
    import resource
    import time

    import torch

    from lgn.nn import LogicNet, Thermometer
    from lgn.nn import functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LogicNet(Thermometer.uniform(784, 1, 0, 255), 10, layers=args.layers, width=args.width, tau=30)
    if variant == "naive":
        for layer in model.layers:
            layer.forward = (lambda l: lambda x: F.logic_layer_reference(x, l.idx_a, l.idx_b, l.weights))(layer)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randint(0, 256, (args.batch, 784)).float()
    y = torch.randint(0, 10, (args.batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    base_rss = current_rss_kb()  # model, optimizer and batch exist; no step has run
    step()  # warm-up: allocates Adam state
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"median_ms": 1e3 * times[len(times) // 2], "peak_mb": peak / 1024, "train_mb": (peak - base_rss) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args.variant, args)))
        return
    results = {}
    for variant in ("lgn", "naive"):
        cmd = [sys.executable, __file__, "--variant", variant] + [
            f"--{k}={getattr(args, k)}" for k in ("threads", "steps", "layers", "width", "batch")
        ]
        results[variant] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"training step: 784 -> {args.layers} x {args.width} -> GroupSum(10), batch {args.batch}, "
          f"{args.threads} thread(s), median of {args.steps} steps")
    print(f"{'variant':<8} {'ms/step':>9} {'peak RSS MB':>12} {'training peak MB':>17}")
    for name, r in results.items():
        print(f"{name:<8} {r['median_ms']:9.1f} {r['peak_mb']:12.0f} {r['train_mb']:17.0f}")
    lgn, naive = results["lgn"], results["naive"]
    print(f"speed-up {naive['median_ms'] / lgn['median_ms']:.1f}x; training peak memory (peak RSS above the "
          f"process with model, optimizer and batch built) {lgn['train_mb'] / naive['train_mb']:.2f}x of naive")


if __name__ == "__main__":
    main()
