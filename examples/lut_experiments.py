"""Train small LUT-k / learned-connectivity classifiers (for choosing the ``--arch lut`` presets).

A plain training loop over :mod:`lgn.nn.lut` and :mod:`lgn.nn.connectivity` (the CLI does not
know these layers yet). ``--arch`` is a comma list of layers:

    lut6:512        512 LUT-6 nodes, random fixed wiring (``lutK:N``, K = 1..6)
    llut6:512:8     512 LUT-6 nodes, each input learned among 8 candidates (``:all`` = all inputs)
    gate:8000       8000 two-input table gates (LogicLayer), random wiring
    lgate:8000:16   8000 two-input table gates with learned wiring among 16 candidates

The last layer's width must be a multiple of the classes (GroupSum head). Prints the discretized
test accuracy per epoch, the live node count (nodes whose output reaches the head through inputs
their table really reads) and, for two-input models, the gate count after ``optimize()``.

    python examples/lut_experiments.py --dataset digits --arch llut6:600:all,llut6:200:16 --tau 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import lgn.data  # noqa: E402
from lgn.nn import GroupSum, LogicLayer  # noqa: E402
from lgn.nn.connectivity import (LearnedLogicLayer, LearnedLutLayer, regrow_all,  # noqa: E402
                                 set_temperature, temperature_at)
from lgn.nn.lut import LutLayer  # noqa: E402


def build_layers(arch: str, in_dim: int, generator: torch.Generator,
                 selection: str = "softmax") -> list[nn.Module]:
    layers = []
    for token in arch.split(","):
        kind, *fields = token.split(":")
        width = int(fields[0])
        if kind.startswith("llut"):
            m = in_dim if fields[1] == "all" else min(int(fields[1]), in_dim)
            layers.append(LearnedLutLayer(in_dim, width, k=int(kind[4:]), candidates=m, selection=selection,
                                          generator=generator))
        elif kind.startswith("lut"):
            layers.append(LutLayer(in_dim, width, k=int(kind[3:]), connections="unique", generator=generator))
        elif kind == "lgate":
            m = in_dim if fields[1] == "all" else min(int(fields[1]), in_dim)
            layers.append(LearnedLogicLayer(in_dim, width, candidates=m, parametrization="table",
                                            selection=selection, generator=generator))
        elif kind == "gate":
            layers.append(LogicLayer(in_dim, width, connections="unique", parametrization="table",
                                     init="residual", generator=generator))
        else:
            raise SystemExit(f"--arch: unknown layer {token!r}")
        in_dim = width
    return layers


class Model(nn.Module):
    def __init__(self, encoder, layers, num_classes, tau):
        super().__init__()
        self.encoder, self.layers = encoder, nn.ModuleList(layers)
        self.num_classes, self.tau = num_classes, tau
        self.group_sum = GroupSum(num_classes, tau)

    def forward(self, x):
        h = self.encoder(x)
        for layer in self.layers:
            h = layer(h)
        return self.group_sum(h)


def sources_and_tables(layer):
    """(inputs (N, k), truth-table words or None, k) of a discretized layer."""
    if isinstance(layer, (LearnedLutLayer, LearnedLogicLayer)):
        layer = layer.to_fixed()
    if isinstance(layer, LutLayer):
        return layer.inputs.numpy(), layer.truth_tables(), layer.k
    return torch.stack([layer.idx_b, layer.idx_a], 1).numpy(), None, 2


def live_nodes(model) -> list[int]:
    """Per layer, the nodes whose value reaches the outputs through inputs their table depends on."""
    info = [sources_and_tables(layer) for layer in model.layers]
    live = np.ones(model.layers[-1].out_dim, dtype=bool)
    counts = []
    for layer, (inputs, words, k) in zip(reversed(model.layers), reversed(info)):
        counts.append(int(live.sum()))
        needed = np.zeros(layer.in_dim, dtype=bool)
        for j in range(k):
            reads = np.ones(len(inputs), dtype=bool)
            if words is not None:  # does the table change when input j flips?
                patterns = np.arange(1 << k, dtype=np.uint64)
                bits = (words[:, None] >> patterns[None]) & np.uint64(1)
                flipped = (words[:, None] >> (patterns ^ np.uint64(1 << j))[None]) & np.uint64(1)
                reads = (bits != flipped).any(1)
            needed[inputs[live & reads, j]] = True
        live = needed
    counts.append(int(live.sum()))  # input bits (thermometer comparators) used
    return counts[::-1]


@torch.no_grad()
def accuracy(model, x, y, relaxed=False):
    model.train(relaxed)
    correct = sum(int((model(x[i:i + 2048]).argmax(1) == y[i:i + 2048]).sum()) for i in range(0, len(x), 2048))
    return correct / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--bits", type=int, default=None, help="thermometer thresholds per feature")
    parser.add_argument("--tau", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--temp-start", type=float, default=1.0)
    parser.add_argument("--temp-end", type=float, default=0.05)
    parser.add_argument("--regrow-every", type=int, default=0, help="steps between regrow_all (0 = never)")
    parser.add_argument("--selection", default="softmax", choices=["softmax", "gumbel"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = lgn.data.load(args.dataset)
    encoding = data.encoding if args.bits is None else dataclasses.replace(data.encoding, bits=args.bits)
    encoder = encoding.thermometer(data.x_train)
    generator = torch.Generator().manual_seed(args.seed)
    in_dim = encoder.num_features * encoder.num_bits
    layers = build_layers(args.arch, in_dim, generator, args.selection)
    model = Model(encoder, layers, int(data.num_classes), args.tau)
    x_train = torch.as_tensor(data.x_train, dtype=torch.float32)
    y_train = torch.as_tensor(data.y_train, dtype=torch.int64)
    x_test = torch.as_tensor(data.x_test, dtype=torch.float32)
    y_test = torch.as_tensor(data.y_test, dtype=torch.int64)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = -(-len(x_train) // args.batch)
    total = args.epochs * steps_per_epoch
    step, start, best = 0, time.time(), 0.0
    print(f"{args.dataset}  arch {args.arch}  input bits {in_dim}  tau {args.tau}  lr {args.lr}  "
          f"batch {args.batch}  epochs {args.epochs}  selection {args.selection}  seed {args.seed}", flush=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(x_train), generator=generator)
        for i in range(steps_per_epoch):
            lr = 0.5 * args.lr * (1 + np.cos(np.pi * step / total))
            for group in optimizer.param_groups:
                group["lr"] = lr
            set_temperature(model, temperature_at(step, total, args.temp_start, args.temp_end))
            idx = perm[i * args.batch:(i + 1) * args.batch]
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if args.regrow_every and step % args.regrow_every == 0 and step < 0.8 * total:
                regrow_all(model, 0.25, optimizer, generator)
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            discrete = accuracy(model, x_test, y_test)
            relaxed = accuracy(model, x_test, y_test, relaxed=True)
            best = max(best, discrete)
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}  test relaxed {relaxed:.2%}  discrete {discrete:.2%}"
                  f"  {time.time() - start:.0f}s", flush=True)
    counts = live_nodes(model)
    print(f"final discrete test accuracy {discrete:.2%} (best seen {best:.2%}); nodes per layer "
          f"{[layer.out_dim for layer in model.layers]}; live: input bits {counts[0]}, nodes {counts[1:]} "
          f"(total {sum(counts[1:])}); training {time.time() - start:.0f}s", flush=True)
    if all(isinstance(layer, (LogicLayer, LearnedLogicLayer)) for layer in model.layers):
        from lgn.compile.lower import lower
        from lgn.compile.passes import optimize

        fixed = Model(encoder, [layer.to_fixed() if isinstance(layer, LearnedLogicLayer) else layer
                                for layer in model.layers], model.num_classes, args.tau)
        fixed.feature_dtype = data.feature_dtype
        netlist = lower(fixed.eval())
        print(f"two-input gates: lowered {len(netlist.op)}, after optimize() {len(optimize(netlist).op)}",
              flush=True)


if __name__ == "__main__":
    main()
