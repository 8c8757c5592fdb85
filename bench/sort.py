"""Benchmark lgn.sort: row-mixing permutation kernel vs one dense matrix product per layer.

Prints two tables (bitonic network, cauchy sigmoid, CPU, float32):

1. Time of forward + backward of the relaxed permutation ``P`` (loss ``sum(P * W)``) for the
   fast kernel and the dense baseline measured in the same run, their ratio and the largest
   difference of ``P`` and of the input gradient between them. Times are the best of 5 runs
   (the dense baseline runs once for n >= 256, where one run takes seconds to a minute).
2. Peak memory of forward + backward with the ranking loss (BCE against the true order), each
   configuration in a fresh subprocess: the resident-set high-water mark (``VmHWM``, reset via
   ``/proc/self/clear_refs`` after imports and inputs; ``getrusage`` max RSS elsewhere) minus
   the resident set at that point, printed as a multiple of the size of one ``P``. This counts
   everything torch allocates: the loss, autograd buffers and allocator slack.

Usage: ``python bench/sort.py [--threads 1] [--quick]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from lgn.sort import ranking_loss, relaxed_network, sorting_network
from lgn.sort import _mixing

NETWORK, SIGMOID, STEEPNESS = "bitonic", "cauchy", 10.0


def _inputs(n: int, batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, generator=gen)
    weight = torch.randn(batch, n, n, generator=gen)
    return x, weight


def _permutation(x: torch.Tensor, method: str):
    net = sorting_network(NETWORK, x.shape[-1])
    _, w = relaxed_network(x, net, SIGMOID, STEEPNESS)
    if method == "fast":
        return _mixing.mix(w, _mixing.full_plan(net, x.device))
    return _mixing.reference_permutation(w, net)


def _forward_backward(x, weight, method):
    x = x.clone().requires_grad_()
    perm = _permutation(x, method)
    (perm * weight).sum().backward()
    return perm.detach(), x.grad


def _time(x, weight, method, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        perm, grad = _forward_backward(x, weight, method)
        best = min(best, time.perf_counter() - start)
    return best, perm, grad


def speed_table(configs, dense_limit: int, repeats: int) -> None:
    print(f"\nforward + backward of P ({NETWORK}, {SIGMOID}, float32, {torch.get_num_threads()} thread(s))")
    print(f"{'n':>6} {'batch':>6} {'layers':>6} {'fast ms':>10} {'dense ms':>10} {'ratio':>8} "
          f"{'max|dP|':>9} {'max|dgrad|':>10}")
    for n, batch in configs:
        x, weight = _inputs(n, batch)
        _forward_backward(x[:1], weight[:1], "fast")  # warm-up: plan construction, allocator
        fast, perm, grad = _time(x, weight, "fast", repeats)
        layers = sorting_network(NETWORK, n).depth
        row = f"{n:>6} {batch:>6} {layers:>6} {fast * 1e3:>10.1f}"
        # The dense baseline keeps two (B, n, n) tensors per layer for its backward pass.
        if 2 * layers * batch * n * n <= dense_limit:
            dense, dense_perm, dense_grad = _time(x, weight, "dense", 1 if n >= 256 else repeats)
            row += (f" {dense * 1e3:>10.1f} {dense / fast:>7.1f}x {(perm - dense_perm).abs().max():>9.1e}"
                    f" {(grad - dense_grad).abs().max():>10.1e}")
        else:
            gib = 8 * layers * batch * n * n / 2**30
            row += f" {'skipped':>10} {'':>8} {'':>9} {'':>10}  (dense needs {gib:.0f} GiB)"
        print(row, flush=True)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(n: int, batch: int, method: str) -> None:
    """Run in a fresh process: print resident memory before and at the peak of fwd + bwd."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n, generator=gen)
    order = torch.argsort(torch.randn(batch, n, generator=gen))
    _permutation(torch.randn(1, 4), method)  # import-time and first-call allocations
    try:  # Linux: reset the high-water mark to the current RSS, then read VmHWM afterwards.
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        base = _status_bytes("VmRSS")
        x.requires_grad_()
        ranking_loss(_permutation(x, method), order).backward()
        peak = _status_bytes("VmHWM")
    except OSError:  # elsewhere: max RSS of this process (includes the startup peak)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        x.requires_grad_()
        ranking_loss(_permutation(x, method), order).backward()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"base": base, "peak": peak}))


def memory_table(configs) -> None:
    print("\npeak memory of forward + backward with ranking_loss, fresh process per row "
          "(resident high-water mark minus resident set before the call)")
    print(f"{'n':>6} {'batch':>6} {'method':>7} {'P MiB':>8} {'peak growth MiB':>16} {'x P':>7} "
          f"{'whole process x P':>18}")
    for n, batch, method in configs:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), str(batch), method,
                              "--threads", str(torch.get_num_threads())],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        size = batch * n * n * 4
        growth = result["peak"] - result["base"]
        print(f"{n:>6} {batch:>6} {method:>7} {size / 2**20:>8.0f} {growth / 2**20:>16.0f} "
              f"{growth / size:>6.1f}x {result['peak'] / size:>17.1f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--dense-limit-gib", type=float, default=4.0,
                        help="skip the dense baseline when it would keep more than this")
    parser.add_argument("--memory-child", nargs=3, metavar=("N", "BATCH", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        n, batch, method = args.memory_child
        _memory_child(int(n), int(batch), method)
        return
    limit = int(args.dense_limit_gib * 2**30 / 4)
    if args.quick:
        speed_table([(16, 32), (64, 32), (256, 4)], limit, repeats=3)
        memory_table([(256, 4, "fast"), (256, 4, "dense")])
        return
    speed_table([(16, 32), (64, 32), (256, 32), (1024, 32), (1024, 4)], limit, repeats=5)
    memory_table([(256, 32, "fast"), (256, 32, "dense"), (1024, 32, "fast")])


if __name__ == "__main__":
    main()
