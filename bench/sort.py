"""Benchmark lgn.sort: the permutation kernel against the previous one and the dense product.

Variants of the relaxed permutation ``P`` (same swap weights, bitonic or odd-even, cauchy,
float32, CPU):

- ``lgn``: ``_mixing.mix`` as shipped: when the batch's largest state exceeds a cache-sized
  chunk, stage by stage, each stage in chunks of items x columns, tiled layers mixed on strided
  views, ``lo - hi`` of their inputs recomputed within a stage for backward (``mix_tiled``);
  below that, the first kernel (``mix_whole_batch``).
- ``baseline``: the previous ``mix``: ``mix_chunked`` (partners gathered, whole states
  recomputed within a stage) above a chunk, ``mix_whole_batch`` below.
- ``dense``: one ``(n, n)`` matrix product per layer (small sizes only).

``P`` of ``lgn`` must equal the baseline's to 1e-5 (checked on every row).

Two tables:

1. Forward + backward of ``soft_sort``'s ``P`` (``relaxed_network`` then the kernel; loss
   ``sum(P * W)``). The variants alternate run by run in one process, so load from other
   processes hits them alike; each column is the median wall time (and the median CPU time of
   this process, which load inflates less), with the largest differences of ``P`` and of the
   input gradient from the baseline.
2. Peak memory of forward + backward with the ranking loss (BCE against the true order), each in
   a fresh process: the resident-set high-water mark (``VmHWM``, reset through
   ``/proc/self/clear_refs`` after imports and inputs; ``getrusage`` elsewhere) minus the
   resident set then (``growth``), and the whole process's peak.

Usage: ``python bench/sort.py [--threads 1] [--quick] [--repeats 5] [--network bitonic]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from lgn.sort import _mixing, ranking_loss, relaxed_network, sorting_network  # noqa: E402

SIGMOID, STEEPNESS = "cauchy", 10.0


def _previous_mix(w, plan, init=None):
    """``_mixing.mix`` before ``mix_tiled``: the same dispatch to the previous chunked kernel."""
    largest = max((step.cost for step in plan.steps), default=0)
    if w.device.type == "cpu" and w.shape[0] * largest > _mixing.CPU_CHUNK_ELEMENTS:
        return _mixing.mix_chunked(w, plan, init)
    return _mixing.mix_whole_batch(w, plan, init)


KERNELS = {"lgn": _mixing.mix, "baseline": _previous_mix}


def _inputs(n: int, batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n, generator=gen), torch.randn(batch, n, n, generator=gen)


def _permutation(x: torch.Tensor, network: str, method: str) -> torch.Tensor:
    net = sorting_network(network, x.shape[-1])
    _, w = relaxed_network(x, net, SIGMOID, STEEPNESS)
    if method == "dense":
        return _mixing.reference_permutation(w, net)
    return KERNELS[method](w, _mixing.full_plan(net, x.device))


def _forward_backward(x, weight, network, method):
    x = x.clone().requires_grad_()
    perm = _permutation(x, network, method)
    (perm * weight).sum().backward()
    return perm.detach(), x.grad


def speed_table(network: str, configs, dense_limit: int, repeats: int) -> None:
    print(f"\nforward + backward of P ({network}, {SIGMOID}, float32, {torch.get_num_threads()} thread(s)); "
          f"median of {repeats} alternating runs: wall ms (CPU ms)")
    print(f"{'n':>5} {'batch':>5} {'lgn':>17} {'baseline':>17} {'ratio':>6} {'dense':>17} "
          f"{'max|dP|':>8} {'max|dgrad|':>10}")
    for n, batch in configs:
        x, weight = _inputs(n, batch)
        depth = sorting_network(network, n).depth
        methods = ["lgn", "baseline"]
        if 2 * depth * batch * n * n <= dense_limit:  # the dense product keeps two (B, n, n) per layer
            methods.append("dense")
        times = {m: [] for m in methods}
        results = {}
        for m in methods:
            _forward_backward(x[:1], weight[:1], network, m)  # warm-up: plans, allocator
        for r in range(repeats if n < 1024 or batch < 32 else max(3, repeats // 2)):
            for m in (methods if r % 2 == 0 else methods[::-1]):
                if m == "dense" and r and n >= 256:
                    continue  # seconds to a minute per run: once is enough
                wall, cpu = time.perf_counter(), time.process_time()
                results[m] = _forward_backward(x, weight, network, m)
                times[m].append((time.perf_counter() - wall, time.process_time() - cpu))
        med = {m: (1e3 * statistics.median(t for t, _ in ts), 1e3 * statistics.median(c for _, c in ts))
               for m, ts in times.items()}
        cell = {m: f"{w:.1f} ({c:.1f})" for m, (w, c) in med.items()}
        perm, grad = results["lgn"]
        base_perm, base_grad = results["baseline"]
        if not (perm - base_perm).abs().max() <= 1e-5:
            raise SystemExit(f"n={n} batch={batch}: P differs from the baseline by more than 1e-5")
        dense = cell.get("dense", "skipped")
        print(f"{n:>5} {batch:>5} {cell['lgn']:>17} {cell['baseline']:>17} "
              f"{med['baseline'][0] / med['lgn'][0]:>5.2f}x {dense:>17} "
              f"{(perm - base_perm).abs().max():>8.1e} {(grad - base_grad).abs().max():>10.1e}", flush=True)
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(n: int, batch: int, network: str, method: str) -> None:
    """Run in a fresh process: print resident memory before and at the peak of fwd + bwd."""
    loss = ranking_loss
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n, generator=gen)
    order = torch.argsort(torch.randn(batch, n, generator=gen))
    _permutation(torch.randn(1, 4), network, method)  # import-time and first-call allocations
    try:  # Linux: reset the high-water mark to the current RSS, then read VmHWM afterwards.
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        base = _status_bytes("VmRSS")
        x.requires_grad_()
        loss(_permutation(x, network, method), order).backward()
        peak = _status_bytes("VmHWM")
    except OSError:  # elsewhere: max RSS of this process (includes the startup peak)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        x.requires_grad_()
        loss(_permutation(x, network, method), order).backward()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"base": base, "peak": peak}))


def memory_table(network: str, configs) -> None:
    print(f"\npeak memory of forward + backward with the ranking loss ({network}), fresh process per row")
    print(f"{'n':>5} {'batch':>5} {'method':>8} {'P MiB':>6} {'growth MiB':>11} {'x P':>6} {'process peak MiB':>17}")
    for n, batch, method in configs:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), str(batch), method,
                              "--network", network, "--threads", str(torch.get_num_threads())],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        size = batch * n * n * 4
        growth = result["peak"] - result["base"]
        print(f"{n:>5} {batch:>5} {method:>8} {size / 2**20:>6.0f} {growth / 2**20:>11.0f} "
              f"{growth / size:>5.1f}x {result['peak'] / 2**20:>17.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--network", default="bitonic", choices=("bitonic", "odd_even"))
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dense-limit-gib", type=float, default=1.0,
                        help="skip the dense product when it would keep more than this")
    parser.add_argument("--memory-child", nargs=3, metavar=("N", "BATCH", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        n, batch, method = args.memory_child
        _memory_child(int(n), int(batch), args.network, method)
        return
    limit = int(args.dense_limit_gib * 2**30 / 4)
    if args.quick:
        speed_table(args.network, [(16, 32), (64, 32), (256, 4)], limit, args.repeats)
        memory_table(args.network, [(256, 4, "lgn"), (256, 4, "baseline")])
        return
    if args.network == "bitonic":
        speed_table(args.network, [(16, 32), (64, 32), (256, 32), (1024, 32), (1024, 4)], limit, args.repeats)
        memory_table(args.network, [(256, 32, "lgn"), (256, 32, "baseline"), (1024, 32, "lgn"),
                                    (1024, 32, "baseline")])
    else:  # n layers of dense states: n = 256 is already as much work as bitonic at 1024
        speed_table(args.network, [(16, 32), (64, 32), (128, 32), (256, 32), (256, 4)], limit, args.repeats)
        memory_table(args.network, [(256, 32, "lgn"), (256, 32, "baseline")])


if __name__ == "__main__":
    main()
