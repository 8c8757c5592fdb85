"""Benchmark the Verilog check: the emitted testbench in Verilator against iverilog.

Exports a model (optimized, as ``lgn check`` does) with ``--vectors`` test samples of its dataset
in the self-checking testbench, then runs that testbench in both simulators through
:func:`lgn.hdl.verilator.simulate_testbench`, alternating them ``--repeats`` times. Verilator's
time includes translating to C++ and compiling it (g++ -O0, 2 jobs); iverilog's its compile to
vvp and the simulation (one thread). Both must report 0 mismatches.

Usage: ``python bench/verilator.py [--model runs/fashion-mnist/model.pt] [--vectors 1000]
[--iverilog-limit SECONDS]``. With a limit, an iverilog run still going after that many seconds
is stopped and counted as taking at least the limit, so the speed-up printed (marked ``>=``) is
a lower bound measured, not extrapolated.
Wall seconds are the headline (what a user waits); CPU seconds (user + system of the tools)
are shown too, as the steadier figure on a loaded machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/fashion-mnist/model.pt",
                        help="checkpoint or netlist file (its dataset gives the test vectors)")
    parser.add_argument("--vectors", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each simulator, alternating")
    parser.add_argument("--pipeline", type=int, default=0)
    parser.add_argument("--iverilog-limit", type=float, default=None, metavar="SECONDS",
                        help="stop an iverilog run after this many seconds (per step) and report a lower bound")
    args = parser.parse_args()

    from lgn import data as datasets
    from lgn import hdl
    from lgn.compile.passes import optimize
    from lgn.hdl.errors import ToolFailedError
    from lgn.hdl.verilator import VERILATOR_FLAGS, simulate_testbench
    from lgn.io import load_model_file

    file = load_model_file(args.model)
    netlist = optimize(file.netlist)
    features = None
    if file.dataset and netlist.encoding is not None:
        features = datasets.load(file.dataset, file.data_dir, download=False).x_test[:args.vectors]
    with tempfile.TemporaryDirectory(prefix="lgn_bench_verilator_") as tmp:
        start = time.perf_counter()
        paths = hdl.export(netlist, tmp, name="model", pipeline=args.pipeline, features=features,
                           vectors=args.vectors)
        export_s = time.perf_counter() - start
        design, testbench = paths[0], paths[1]
        print(f"{args.model}: {netlist.num_gates} gates after optimize(), depth {netlist.depth}, "
              f"{netlist.num_inputs} input bits, {len(netlist.outputs)} outputs; pipeline {args.pipeline}; "
              f"{args.vectors} vectors ({'test set' if features is not None else 'random'}); "
              f"export {export_s:.1f} s ({design.stat().st_size / 1e6:.1f} MB + testbench "
              f"{testbench.stat().st_size / 1e6:.1f} MB)")
        print(f"verilator flags: {' '.join(VERILATOR_FLAGS)} --build-jobs 2; iverilog -g2005, vvp (1 thread)")
        times: dict[str, list[tuple[float, float]]] = {"verilator": [], "iverilog": []}
        stopped = False  # an iverilog run hit --iverilog-limit: its times are lower bounds
        for repeat in range(args.repeats):
            for simulator in times:
                limit = args.iverilog_limit if simulator == "iverilog" else None
                cpu, start = children_cpu(), time.perf_counter()
                try:
                    used, mismatches = simulate_testbench(testbench, design, simulator, timeout=limit)
                    result = f"{mismatches} mismatches"
                except ToolFailedError as error:
                    if limit is None or "did not finish within" not in str(error):
                        raise
                    used, mismatches, stopped = simulator, 0, True
                    result = f"stopped at the {limit:.0f} s limit"
                wall, cpu = time.perf_counter() - start, children_cpu() - cpu
                assert used == simulator and mismatches == 0, (used, mismatches)
                times[simulator].append((wall, cpu))
                print(f"  run {repeat + 1}: {simulator:<9} {wall:8.1f} s wall {cpu:8.1f} s CPU, "
                      f"{result}", flush=True)

    wall = {name: statistics.median(w for w, _ in runs) for name, runs in times.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in times.items()}
    print()
    print(f"{'simulator':<30} {'wall s':>9} {'CPU s':>9} {'speed-up (wall)':>16} {'(CPU)':>7}")
    bound = ">=" if stopped else ""
    for name, label in (("iverilog", "iverilog (baseline)"), ("verilator", "Verilator, compile included")):
        mark = bound if name == "iverilog" else ""
        speedup_wall, speedup_cpu = wall["iverilog"] / wall[name], cpu["iverilog"] / cpu[name]
        print(f"{label:<30} {mark + f'{wall[name]:.1f}':>9} {mark + f'{cpu[name]:.1f}':>9} "
              f"{bound + f'{speedup_wall:.1f}x':>16} {bound + f'{speedup_cpu:.1f}x':>7}")
    if stopped:
        print(f"(iverilog was stopped at the {args.iverilog_limit:.0f} s limit: its times and the "
              "speed-ups are lower bounds)")
    print(f"(median of {args.repeats}; load average at the end: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
