"""CUDA timings for issue 15 (run by bench/gpu.sh): training step, packed executor, sorting.

1. The W1 training step (784 -> 6 x 8000 -> GroupSum(10), forward + backward + Adam) at batch
   128 and 1024, both parametrizations: ``lgn`` (LogicNet as shipped) against ``baseline`` (the
   first, batch-major kernel), alternating step by step; median ms and peak device memory.
2. The packed executor (``lgn.compile.packed.run``) on device tensors: the lowered W1 net on
   random bits, checked equal to the numpy executor on the CPU; samples per second.
3. ``soft_sort``'s ``P`` at n = 1024, batch 32, bitonic, float32, forward + backward (loss
   ``sum(P * W)``): ``mix`` as shipped, the chunked and the whole-batch kernels; same P checked.

Without a GPU (or with ``--dry-run``) the same code runs on the CPU at small sizes, so every
path is exercised; the figures then mean nothing.

    python bench/gpu.py [--dry-run]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from train import forward_of, w1_model  # noqa: E402  (bench/ is on sys.path)

from lgn.compile import packed  # noqa: E402
from lgn.compile.lower import lower  # noqa: E402
from lgn.sort import _mixing, relaxed_network, sorting_network  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f}" if device.type == "cuda" else "-"


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return 1e3 * (time.perf_counter() - start)


def train_table(device: torch.device, batches, width: int, steps: int) -> None:
    print(f"\ntraining step on {device}: 784 -> 6 x {width} -> GroupSum(10), median of {steps} steps, "
          f"alternating; peak memory allocated per variant (MiB)")
    print(f"{'param':<6} {'batch':>5} {'baseline ms':>12} {'lgn ms':>8} {'ratio':>6} {'baseline MiB':>13} "
          f"{'lgn MiB':>8} {'max |d loss|':>12}")
    gen = torch.Generator().manual_seed(0)
    for parametrization in ("gates", "table"):
        for batch in batches:
            x = torch.randint(0, 256, (batch, 784), generator=gen).float().to(device)
            y = torch.randint(0, 10, (batch,), generator=gen).to(device)
            runs = {}
            for variant in ("baseline", "lgn"):
                model, opt = w1_model(6, width, parametrization, device)
                forward = forward_of(variant, model)
                losses = []

                def step(forward=forward, opt=opt, losses=losses):
                    loss = torch.nn.functional.cross_entropy(forward(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(loss.detach())

                runs[variant] = (step, losses, [])
            for variant, (step, _, _) in runs.items():  # warm-up, then peak memory of one step
                step()
                _peak_reset(device)
                step()
                runs[variant][2].append(_peak_mib(device))
            times = {v: [] for v in runs}
            for i in range(steps):
                for variant in (("baseline", "lgn") if i % 2 == 0 else ("lgn", "baseline")):
                    times[variant].append(_timed(runs[variant][0], device))
            base, new = (statistics.median(times[v]) for v in ("baseline", "lgn"))
            gap = max(abs(a - b).item() for a, b in zip(runs["baseline"][1], runs["lgn"][1]))
            print(f"{parametrization:<6} {batch:>5} {base:>12.2f} {new:>8.2f} {base / new:>5.2f}x "
                  f"{runs['baseline'][2][0]:>13} {runs['lgn'][2][0]:>8} {gap:>12.1e}", flush=True)


def packed_table(device: torch.device, width: int, samples: int, repeats: int) -> None:
    model, _ = w1_model(6, width, "gates")
    model.eval()
    netlist = lower(model)
    gen = torch.Generator().manual_seed(1)
    bits = (torch.rand(samples, netlist.num_inputs, generator=gen) > 0.5)
    start = time.perf_counter()
    want = packed.run(netlist, bits.numpy())
    cpu_s = time.perf_counter() - start
    on_device = bits.to(device)
    got = packed.run(netlist, on_device)  # warm-up
    best = min(_timed(lambda: packed.run(netlist, on_device), device) for _ in range(repeats)) / 1e3
    same = np.array_equal(got.cpu().numpy(), want)
    print(f"\npacked executor, lowered W1 net ({netlist.num_gates} gates), {samples} samples: "
          f"{device} tensors {samples / best:,.0f} samples/s (best of {repeats}), numpy on the CPU "
          f"{samples / cpu_s:,.0f} samples/s; same scores: {same}")
    if not same:
        raise SystemExit("packed executor: device tensors and numpy disagree")


def sort_table(device: torch.device, n: int, batch: int, repeats: int) -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(batch, n, generator=gen).to(device)
    weight = torch.randn(batch, n, n, generator=gen).to(device)
    net = sorting_network("bitonic", n)
    kernels = {"mix": _mixing.mix, "chunked": _mixing.mix_chunked, "whole-batch": _mixing.mix_whole_batch}
    print(f"\nsoft_sort P on {device}: n = {n}, batch {batch}, bitonic, float32, forward + backward, "
          f"median of {repeats}")
    print(f"{'kernel':<12} {'ms':>9} {'peak MiB':>9} {'max|dP| vs mix':>15}")
    reference = None
    for name, kernel in kernels.items():
        def run(kernel=kernel):
            xg = x.clone().requires_grad_()
            _, w = relaxed_network(xg, net)
            perm = kernel(w, _mixing.full_plan(net, device))
            (perm * weight).sum().backward()
            return perm.detach()

        run()
        _peak_reset(device)
        perm = run()
        peak = _peak_mib(device)
        ms = statistics.median(_timed(run, device) for _ in range(repeats))
        reference = perm if reference is None else reference
        print(f"{name:<12} {ms:>9.1f} {peak:>9} {(perm - reference).abs().max().item():>15.1e}", flush=True)
        del perm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, small sizes: exercise every path")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if cuda else " (dry run: figures mean nothing)")
          + f", {torch.get_num_threads()} CPU threads")
    if cuda:
        train_table(device, (128, 1024), 8000, 20)
        packed_table(device, 8000, 1 << 16, 5)
        sort_table(device, 1024, 32, 5)
    else:
        train_table(device, (128, 256), 800, 3)
        packed_table(device, 800, 4096, 2)
        sort_table(device, 256, 4, 2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
