"""Training-step cost of a LUT-6 layer against a two-input layer with the same number of nodes.

One layer (``--inputs`` -> ``--nodes``) + GroupSum(10) + cross entropy, forward + backward (also
into the layer's input, as for a hidden layer) + Adam, 1 thread by default. Variants:

    gate2       lgn.nn.LogicLayer, parametrization='table' (the baseline: 4 logits per node)
    lut6        lgn.nn.lut.LutLayer(k=6) with its fused C kernel (lgn/nn/kernels.c): one block of
                samples per vector register, the backward recomputing its block's forward
    lut6-torch  the same layer on its torch path (LGN_KERNEL=torch, the previous kernel):
                matrix product over 3 inputs + 3 lerp rounds, chunked custom autograd
    wired6      lgn.nn.connectivity.LearnedLutLayer(k=6, candidates=16): the LUT-6 layer whose
                inputs each learn their source among 16 (fused selection + LUT kernels)
    wired6-torch  the same learned-wiring layer on the torch paths of both
    lut6-halve  alternative: the same 6 rounds of halving (``t0 + x (t1 - t0)``, last input
                first) in a chunked custom autograd whose backward recomputes the rounds
    lut6-lerp   alternative: autograd through 6 rounds of lerp halving the 64-entry tables
    lut6-naive  alternative: autograd through the 64 pattern products (lut_layer_reference)

Each variant runs in a fresh subprocess (its peak RSS is its own), ``--rounds`` times
alternating with the others (the slow alternatives once, at the first batch size), on a
machine other jobs may share: the table gives the fastest
step's process CPU time (the figure least disturbed by other load; 1 thread) and the median wall
time, the ratio of CPU times to gate2, and the peak RSS.

    python bench/lut.py [--threads 1] [--batch 128 256] [--nodes 8000] [--inputs 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _timing import current_rss_kb

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VARIANTS = ("gate2", "lut6", "lut6-torch", "wired6", "wired6-torch", "lut6-halve", "lut6-lerp", "lut6-naive")
ALTERNATIVES = ("lut6-lerp", "lut6-naive")


def lerp_tree(x, inputs, table):
    """The LUT expectation by k rounds of lerp on the gathered inputs, through plain autograd."""
    import torch

    level = table.expand(x.shape[0], -1, -1)  # (B, nodes, 2^k)
    for j in range(inputs.shape[1] - 1, -1, -1):
        h = level.shape[-1] // 2
        level = torch.lerp(level[..., :h], level[..., h:], x[:, inputs[:, j]].unsqueeze(-1))
    return level.squeeze(-1)


def halving(x, inputs, table, chunk_elements: int = 1 << 18):
    """The LUT expectation by successive halving in a hand-written autograd function (chunked)."""
    import torch

    class Halve(torch.autograd.Function):
        @staticmethod
        def forward(ctx, xT, table):
            ctx.save_for_backward(xT, table)
            return torch.cat([_rounds(xT, table[s:e], inputs[s:e])[-1] for s, e in _spans()]).squeeze(1)

        @staticmethod
        def backward(ctx, grad):
            xT, table = ctx.saved_tensors
            grad_xT, grad_table = torch.zeros_like(xT), torch.empty_like(table)
            k = inputs.shape[1]
            for s, e in _spans():
                rounds, xs = _rounds(xT, table[s:e], inputs[s:e]), xT[inputs[s:e].t()].unsqueeze(2)
                g, grad_xs = grad[s:e].unsqueeze(1), torch.empty_like(xs)
                for m in range(k - 1, 0, -1):  # round m + 1 = lerp of the halves of round m by x_j
                    j, level = k - 1 - m, rounds[m - 1]
                    h = level.shape[1] // 2
                    grad_xs[j] = (g * (level[:, h:] - level[:, :h])).sum(1, keepdim=True)
                    high = g * xs[j]
                    g = torch.cat([g - high, high], dim=1)
                h = table.shape[1] // 2
                grad_xs[k - 1] = torch.bmm((table[s:e, h:] - table[s:e, :h]).unsqueeze(1), g)
                high = torch.bmm(g, xs[k - 1].transpose(1, 2)).squeeze(2)
                grad_table[s:e, h:], grad_table[s:e, :h] = high, g.sum(2) - high
                grad_xT.index_add_(0, inputs[s:e].t().reshape(-1), grad_xs.flatten(0, 2))
            return grad_xT, grad_table

    def _rounds(xT, t, fanins):
        xs = xT[fanins.t()].unsqueeze(2)  # (k, c, 1, B)
        h = t.shape[1] // 2
        level = torch.addcmul(t[:, :h, None], (t[:, h:] - t[:, :h])[:, :, None], xs[-1])
        levels = [level]
        for j in range(xs.shape[0] - 2, -1, -1):
            h = level.shape[1] // 2
            levels.append(level := torch.lerp(level[:, :h], level[:, h:], xs[j]))
        return levels

    def _spans():
        step = max(1, chunk_elements // (x.shape[0] * table.shape[1] // 2))
        return [(s, min(s + step, len(inputs))) for s in range(0, len(inputs), step)]

    return Halve.apply(x.t().contiguous(), table).t()


def measure(variant: str, args) -> dict:
    import resource
    import time

    import torch

    from lgn.nn import GroupSum, LogicLayer
    from lgn.nn import lut
    from lgn.nn.connectivity import LearnedLutLayer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lut._native.KERNEL = "torch" if variant.endswith("-torch") else "native"
    if variant == "gate2":
        layer = LogicLayer(args.inputs, args.nodes, parametrization="table")
    elif variant.startswith("wired6"):
        layer = LearnedLutLayer(args.inputs, args.nodes, k=6, candidates=16)
    else:
        layer = lut.LutLayer(args.inputs, args.nodes, k=6)
        if variant not in ("lut6", "lut6-torch"):
            relaxed = {"lut6-halve": halving, "lut6-lerp": lerp_tree}.get(variant, lut.lut_layer_reference)
            layer.forward = lambda x: relaxed(x, layer.inputs, lut.lut_table(layer.weights))
    head = GroupSum(10, tau=10.0)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.01)
    x = torch.rand(args.batch, args.inputs, requires_grad=True)
    y = torch.randint(0, 10, (args.batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(head(layer(x)), y)
        optimizer.zero_grad()
        x.grad = None
        loss.backward()
        optimizer.step()

    base_rss = current_rss_kb()
    step()  # warm-up: allocates Adam state (and builds the fused kernel, or takes it from its cache)
    cpu, wall = [], []
    for _ in range(args.alt_steps if variant in ALTERNATIVES else args.steps):
        c, w = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    wall.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"cpu_ms": 1e3 * min(cpu), "wall_ms": 1e3 * wall[len(wall) // 2], "peak_mb": peak / 1024,
            "train_mb": (peak - base_rss) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--alt-steps", type=int, default=2, help="steps for the slow alternatives")
    parser.add_argument("--rounds", type=int, default=3, help="subprocess runs per fast variant")
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--nodes", type=int, default=8000)
    parser.add_argument("--inputs", type=int, default=2048)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        args.batch = args.batch[0]
        print(json.dumps(measure(args.variant, args)))
        return
    print(f"LUT-6 vs two-input layer: {args.inputs} inputs -> {args.nodes} nodes -> GroupSum(10), "
          f"forward + backward + Adam, {args.threads} thread(s)")
    print(f"{'batch':>5}  {'variant':<12} {'cpu ms':>8} {'wall ms':>8} {'ratio':>6} {'peak MB':>8} {'train MB':>9}")
    for batch in args.batch:
        results = {}
        for round_ in range(args.rounds):
            for variant in args.variants:
                if variant in ALTERNATIVES and (round_ or batch != args.batch[0]):
                    continue  # slow and memory-hungry: once, at the first batch size
                cmd = [sys.executable, __file__, "--variant", variant, f"--batch={batch}"] + [
                    f"--{k.replace('_', '-')}={getattr(args, k)}"
                    for k in ("threads", "steps", "alt_steps", "nodes", "inputs")]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                best = results.setdefault(variant, r)
                if r["cpu_ms"] < best["cpu_ms"]:
                    results[variant] = {**r, "peak_mb": max(r["peak_mb"], best["peak_mb"]),
                                        "train_mb": max(r["train_mb"], best["train_mb"])}
        base = results.get("gate2", {}).get("cpu_ms")
        for variant, r in results.items():
            ratio = f"{r['cpu_ms'] / base:6.2f}" if base else "     -"
            print(f"{batch:5d}  {variant:<12} {r['cpu_ms']:8.1f} {r['wall_ms']:8.1f} {ratio} "
                  f"{r['peak_mb']:8.0f} {r['train_mb']:9.0f}")


if __name__ == "__main__":
    main()
