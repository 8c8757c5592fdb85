"""Training-step speed and peak memory of LogicNet: today's kernel against the first one.

The W1 net, 784 inputs (1-bit thermometer of 28x28 pixels) -> 6 x 8000 gates -> GroupSum(10),
forward + cross-entropy + backward + Adam on CPU, for each parametrization, batch size and
thread count asked for. Variants:

- ``baseline``: the first kernel, kept in the library as ``logic_layer_batch_major``
  (batch-major activations, gathers along the last dimension, ``zeros_like + index_add_``).
- ``lgn``: ``LogicNet`` as shipped (feature-major activations, chunked cache-sized kernel).
- ``naive``: the 16-gate formula ``logic_layer_reference`` (opt in with ``--variants``; slow).

``--blocks`` adds the step time of other blocks, each a net of its own on the same batch
(28x28 images, 1-bit thermometer, 10 classes), timed in the same processes, interleaved with the
variants: ``lut`` is one layer of 2000 6-input LUTs (``lgn.nn.LutLayer``), ``conv`` one
``LogicConv2d`` block of 40 depth-3 trees over 3x3 windows at stride 2 (54,880 gates, about as
many as the dense net's 48,000) followed by a 2x2 OR pool. They have no baseline here (their ratio column is empty); bench/lut.py and
bench/conv.py compare their kernels.

Timing: one fresh process per setting and round holds both models (same seed, same weights)
and alternates their steps (ABBA order), so load from other processes on a shared machine
hits both alike; the table reports the median over all timed steps of all rounds, the spread
(lowest and highest per-round median) and the ratio of the medians. Memory: one fresh process
per setting and variant runs two steps; ``peak MB`` is its maximum resident set, ``train MB``
that peak minus the resident set once model, optimizer and batch exist.

    python bench/train.py [--batch 128 1024] [--threads 1 2] [--parametrization gates table]
                          [--rounds 3] [--steps 10] [--variants baseline lgn] [--blocks lut conv]

About 6 minutes for one parametrization on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _timing import current_rss_kb

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (in the children)

VARIANTS = ("baseline", "lgn", "naive")
#: The other blocks ``--blocks`` times, as model specs (see lgn.nn.spec).
BLOCKS = {
    "lut": "thermo(1) lut(2000, k=6) groupsum",
    "conv": "thermo(1) conv(40, k=3, s=2, p=1, d=3) orpool(2) flatten groupsum",
}


def w1_model(layers: int, width: int, parametrization: str, device="cpu"):
    """The W1 net (784 -> layers x width -> GroupSum(10)) and its Adam optimizer."""
    import torch

    from lgn.nn import LogicNet, Thermometer

    model = LogicNet(Thermometer.uniform(784, 1, 0, 255), 10, layers=layers, width=width,
                     tau=30, parametrization=parametrization, seed=0).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=0.01)


def block_model(block: str, parametrization: str):
    """The net of ``BLOCKS[block]`` on 28x28 images and its Adam optimizer."""
    import torch

    from lgn.nn import Thermometer
    from lgn.nn.spec import build

    config = dict(arch=BLOCKS[block], num_classes=10, image_shape=(1, 28, 28), parametrization=parametrization,
                  seed=0)
    model = build(config, Thermometer.uniform(784, 1, 0, 255))
    return model, torch.optim.Adam(model.parameters(), lr=0.01)


def forward_of(variant: str, model):
    """The forward pass of ``variant`` over ``model``'s parameters."""
    from lgn.nn import functional as F

    if variant == "lgn":
        return model

    def forward(x):
        h = model.encoder(x)
        for layer in model.layers:
            if variant == "baseline":
                h = F.logic_layer_batch_major(layer._inputs(h), layer.idx_a, layer.idx_b, layer.coefficients())
            elif layer.parametrization == "gates":
                h = F.logic_layer_reference(h, layer.idx_a, layer.idx_b, layer.weights)
            else:
                raise SystemExit("the naive variant exists for parametrization 'gates' only")
        return model.group_sum(h)

    return forward


def _stepper(variant: str, args, parametrization: str):
    import torch

    if variant in BLOCKS:
        model, opt = block_model(variant, parametrization)
        forward = model
    else:
        model, opt = w1_model(args.layers, args.width, parametrization)
        forward = forward_of(variant, model)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (args.batch[0], 784), generator=gen).float()
    y = torch.randint(0, 10, (args.batch[0],), generator=gen)

    def step():
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _time_child(args) -> dict:
    """Alternate the steps of all variants (ABBA ...) and return each one's step times in ms."""
    import time

    import torch

    torch.set_num_threads(args.threads[0])
    steps = {v: _stepper(v, args, args.parametrization[0]) for v in args.variants}
    for step in steps.values():
        step()  # warm-up: Adam state, allocator
    times = {v: [] for v in args.variants}
    for i in range(args.steps):
        order = list(args.variants) if i % 2 == 0 else list(reversed(args.variants))
        for variant in order:
            start = time.perf_counter()
            steps[variant]()
            times[variant].append(1e3 * (time.perf_counter() - start))
    return {"threads": torch.get_num_threads(), "times": times}


def _memory_child(args) -> dict:
    import resource

    import torch

    torch.set_num_threads(args.threads[0])
    step = _stepper(args.variants[0], args, args.parametrization[0])
    base_kb = current_rss_kb()  # model, optimizer and batch exist; no step has run
    step()
    step()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mb": peak_kb / 1024, "train_mb": (peak_kb - base_kb) / 1024}


def _child(args, role: str, variants, threads: int, batch: int, parametrization: str) -> dict:
    steps = max(4, -(-args.steps * 128 // batch)) if batch > 128 else args.steps
    cmd = [sys.executable, __file__, "--child", role, "--variants", *variants, "--threads", str(threads),
           "--batch", str(batch), "--parametrization", parametrization, "--steps", str(steps),
           "--layers", str(args.layers), "--width", str(args.width)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--parametrization", nargs="+", default=["gates", "table"], choices=("gates", "table"))
    parser.add_argument("--variants", nargs="+", default=["baseline", "lgn"], choices=(*VARIANTS, *BLOCKS))
    parser.add_argument("--blocks", nargs="*", default=[], choices=tuple(BLOCKS),
                        help="also time these blocks' nets (no baseline)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh timing processes per setting")
    parser.add_argument("--steps", type=int, default=10,
                        help="timed steps per variant and round at batch 128 (larger batches: "
                             "proportionally fewer, at least 4)")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--child", choices=("time", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((_time_child if args.child == "time" else _memory_child)(args)))
        return
    first = args.variants[0]
    timed = [*args.variants, *[b for b in args.blocks if b not in args.variants]]
    settings = [(p, b, t) for p in args.parametrization for b in args.batch for t in args.threads]
    rounds = {s: [] for s in settings}
    for r in range(args.rounds):  # rounds outermost: a burst of load spreads over all settings
        for s in settings:
            p, b, t = s
            rounds[s].append(_child(args, "time", timed, t, b, p))
    print(f"training step: 784 -> {args.layers} x {args.width} -> GroupSum(10), forward + backward + Adam, "
          f"CPU ({os.cpu_count()} cores seen), OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"median ms/step over {args.rounds} rounds x {args.steps} steps (batch > 128: fewer), variants "
          f"interleaved step by step; "
          f"[lowest, highest] per-round median; ratio = {first} / variant")
    header = f"{'param':<6} {'batch':>5} {'thr':>3} {'variant':<9} {'ms/step':>8} {'spread':>17} {'ratio':>7}"
    print(header + f" {'ratio spread':>14} {'peak MB':>8} {'train MB':>9}")
    if args.blocks:
        print("blocks: " + "; ".join(f"{b} = {BLOCKS[b]}" for b in args.blocks))
    for s in settings:
        p, b, t = s
        results = rounds[s]
        threads = {res["threads"] for res in results}
        assert threads == {t}, f"asked for {t} threads, torch ran {threads}"
        for variant in timed:
            memory = _child(args, "memory", [variant], t, b, p)
            pooled = [x for res in results for x in res["times"][variant]]
            per_round = [_median(res["times"][variant]) for res in results]
            if variant in args.variants:
                ratios = [_median(res["times"][first]) / _median(res["times"][variant]) for res in results]
                ratio = _median([x for res in results for x in res["times"][first]]) / _median(pooled)
                ratio_text = f"{ratio:6.2f}x {f'[{min(ratios):.2f}, {max(ratios):.2f}]':>14}"
            else:  # a block: no baseline in this bench
                ratio_text = f"{'-':>7} {'-':>14}"
            print(f"{p:<6} {b:>5} {t:>3} {variant:<9} {_median(pooled):8.1f} "
                  f"{f'[{min(per_round):.1f}, {max(per_round):.1f}]':>17} {ratio_text} "
                  f"{memory['peak_mb']:8.0f} {memory['train_mb']:9.0f}", flush=True)


if __name__ == "__main__":
    main()
