"""Benchmark the hardware back end: export time and memory, LUTs after synthesis, iCE40 Fmax.

Prints three tables:

1. Verilog export of random LogicNet-shaped netlists (48k and 400k gates, uint8 thermometer
   inputs): wall time and peak memory of ``lgn.hdl.export`` (each run in a fresh process), against
   a naive Amaranth elaboration with one statement per gate (same run, 48k gates only: it takes
   minutes).
2. LUTs after ``synth_xilinx`` (LUT6) and ``synth_ice40`` (LUT4) for the digits model (or
   ``--netlist PATH``), exported by lgn with and without ``lgn.compile.passes.optimize`` (when
   importable), against a naive Verilog with one ``assign`` per gate of the unoptimised netlist,
   synthesised by the same Yosys flow.
3. Fmax on iCE40 (nextpnr estimate) for the same model, combinational and pipelined.

Usage: ``python bench/hdl.py [--netlist PATH] [--skip-export] [--skip-baseline] [--skip-synth]``.
Single-threaded tools (Yosys and nextpnr via YoWASP, Amaranth in CPython).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _models import small_digits_netlist  # noqa: E402
from lgn.compile.netlist import Netlist, ThermometerEncoding  # noqa: E402
from lgn.nn import gates  # noqa: E402

# (gates per layer, layers): 6 x 8000 = 48k gates, 8 x 50000 = 400k gates
SHAPES = {48_000: (8_000, 6), 400_000: (50_000, 8)}
EXPORT_LIMIT_S = {48_000: 20, 400_000: 180}
MEMORY_LIMIT_MB = 4096


def layered_netlist(width: int, layers: int, seed: int = 0) -> Netlist:
    """A random netlist shaped like a LogicNet on Fashion-MNIST (784 features x 3 thresholds)."""
    rng = np.random.default_rng(seed)
    thresholds_per_feature, features, classes = 3, 784, 10
    inputs = features * thresholds_per_feature
    a, b, ops = [], [], []
    previous, next_id = 2 + np.arange(inputs), 2 + inputs
    for _ in range(layers):
        a.append(rng.choice(previous, width))
        b.append(rng.choice(previous, width))
        ops.append(rng.integers(0, 16, width))
        previous, next_id = next_id + np.arange(width), next_id + width
    encoding = ThermometerEncoding(
        features, np.repeat(np.arange(features), thresholds_per_feature),
        np.tile([63.5, 127.5, 191.5], features), "uint8")
    return Netlist(inputs, np.concatenate(ops), np.concatenate(a), np.concatenate(b), previous,
                   num_classes=classes, encoding=encoding)


def naive_amaranth_verilog(netlist: Netlist) -> str:
    """Baseline elaboration: one Amaranth statement per gate (input bits in, output bits out)."""
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal

    m = Module()
    bits = Signal(netlist.num_inputs)
    node = [Signal(name=f"n{i}") for i in range(netlist.num_nodes)]
    m.d.comb += [node[0].eq(0), node[1].eq(1)]
    m.d.comb += [node[2 + i].eq(bits[i]) for i in range(netlist.num_inputs)]
    for g, (op, x, y) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        m.d.comb += node[netlist.first_gate + g].eq(_NAIVE_OPS[op](node[x], node[y]))
    outputs = Signal(len(netlist.outputs))
    m.d.comb += [outputs[j].eq(node[n]) for j, n in enumerate(netlist.outputs.tolist())]
    return verilog.convert(m, ports=[bits, outputs], emit_src=False)


_NAIVE_OPS = {
    gates.FALSE: lambda a, b: 0, gates.AND: lambda a, b: a & b,
    gates.A_AND_NOT_B: lambda a, b: a & ~b, gates.A: lambda a, b: a,
    gates.NOT_A_AND_B: lambda a, b: ~a & b, gates.B: lambda a, b: b,
    gates.XOR: lambda a, b: a ^ b, gates.OR: lambda a, b: a | b,
    gates.NOR: lambda a, b: ~(a | b), gates.XNOR: lambda a, b: ~(a ^ b),
    gates.NOT_B: lambda a, b: ~b, gates.B_IMPLIES_A: lambda a, b: a | ~b,
    gates.NOT_A: lambda a, b: ~a, gates.A_IMPLIES_B: lambda a, b: ~a | b,
    gates.NAND: lambda a, b: ~(a & b), gates.TRUE: lambda a, b: 1,
}

_VERILOG_OPS = ("1'b0", "{a} & {b}", "{a} & ~{b}", "{a}", "~{a} & {b}", "{b}", "{a} ^ {b}",
                "{a} | {b}", "~({a} | {b})", "~({a} ^ {b})", "~{b}", "{a} | ~{b}", "~{a}",
                "~{a} | {b}", "~({a} & {b})", "1'b1")


def naive_verilog(netlist: Netlist, name: str) -> str:
    """Baseline Verilog: one ``assign`` per gate, a plain sum per class, a sequential argmax.

    Same ports and function as lgn's combinational export (uint8/int features or input bits).
    """
    enc = netlist.encoding
    classes, k = netlist.num_classes, netlist.outputs_per_class
    score_w, class_w = k.bit_length(), max(1, (classes - 1).bit_length())
    lines = []
    if enc is not None and enc.dtype in ("uint8", "uint16"):
        w = 8 if enc.dtype == "uint8" else 16
        port = f"input [{enc.num_features * w - 1}:0] features"
        inputs = [f"features[{f * w} +: {w}] > {w}'d{max(0, int(np.floor(t)))}"
                  for f, t in zip(enc.feature.tolist(), enc.threshold.tolist())]
    else:
        port = f"input [{netlist.num_inputs - 1}:0] bits"
        inputs = [f"bits[{i}]" for i in range(netlist.num_inputs)]
    lines.append(f"module {name}({port}, output reg [{class_w - 1}:0] out_class, "
                 f"output [{classes * score_w - 1}:0] out_scores);")
    lines.append(f"  wire [{netlist.num_nodes - 1}:0] n;")
    lines += ["  assign n[0] = 1'b0;", "  assign n[1] = 1'b1;"]
    lines += [f"  assign n[{2 + i}] = {expr};" for i, expr in enumerate(inputs)]
    for g, (op, x, y) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        expr = _VERILOG_OPS[op].format(a=f"n[{x}]", b=f"n[{y}]")
        lines.append(f"  assign n[{netlist.first_gate + g}] = {expr};")
    for c, group in enumerate(netlist.groups.tolist()):
        # A running sum, one assign per output: a long `a + b + ...` expression would nest as
        # deep as the group is wide and exhaust Yosys's parser stack (wasm) at 800 outputs.
        lines.append(f"  wire [{score_w - 1}:0] s{c}_0 = {score_w}'d0 + n[{group[0]}];")
        for j, i in enumerate(group[1:], 1):
            lines.append(f"  wire [{score_w - 1}:0] s{c}_{j} = s{c}_{j - 1} + n[{i}];")
        lines.append(f"  wire [{score_w - 1}:0] s{c} = s{c}_{len(group) - 1};")
        lines.append(f"  assign out_scores[{c * score_w} +: {score_w}] = s{c};")
    lines.append(f"  reg [{score_w - 1}:0] best;")
    lines.append("  always @* begin")
    lines.append(f"    best = s0; out_class = {class_w}'d0;")
    for c in range(1, classes):
        lines.append(f"    if (s{c} > best) begin best = s{c}; out_class = {class_w}'d{c}; end")
    lines += ["  end", "endmodule", ""]
    return "\n".join(lines)


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (Amaranth's Yosys)."""
    return sum(getattr(resource.getrusage(who), field) for who in
               (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for field in ("ru_utime", "ru_stime"))


def _measure(job) -> None:
    """Run ``job()`` once; print wall and CPU seconds and peak memory (MB) as JSON."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    job()
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    peak = max(resource.getrusage(who).ru_maxrss for who in
               (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps({"seconds": wall, "cpu": cpu, "peak_mb": peak}))


def child_export(total: int) -> None:
    """Time one export of a ``total``-gate netlist in this (fresh) process."""
    from lgn.hdl import export

    net = layered_netlist(*SHAPES[total])
    with tempfile.TemporaryDirectory() as tmp:
        _measure(lambda: export(net, tmp, name="bench", pipeline=2, vectors=100))


def child_naive(total: int) -> None:
    """Time the per-gate Amaranth baseline on a ``total``-gate netlist."""
    net = layered_netlist(*SHAPES[total])
    _measure(lambda: naive_amaranth_verilog(net))


def in_child(kind: str, total: int) -> dict:
    done = subprocess.run([sys.executable, __file__, f"--child-{kind}", str(total)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_table(skip_baseline: bool) -> None:
    print("## Verilog export (pipeline=2, 100 test vectors; fresh process each)\n")
    print("| gates | lgn export s (CPU s) | peak MB | limit s (on CPU s) | naive per-gate Amaranth s (CPU s) "
          "| speed-up (CPU) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for total in SHAPES:
        ours = in_child("export", total)
        naive = None if skip_baseline or total > 48_000 else in_child("naive", total)
        # judged on CPU seconds: wall time on a shared, oversubscribed machine measures the others
        ok = "ok" if ours["cpu"] <= EXPORT_LIMIT_S[total] and ours["peak_mb"] <= MEMORY_LIMIT_MB \
            else "OVER"
        base = f"{naive['seconds']:.1f} ({naive['cpu']:.1f})" if naive else "-"
        ratio = f"{naive['cpu'] / ours['cpu']:.1f}x" if naive else "-"
        print(f"| {total} | {ours['seconds']:.1f} ({ours['cpu']:.1f}) | {ours['peak_mb']:.0f} | "
              f"{EXPORT_LIMIT_S[total]} ({ok}) | {base} | {ratio} |")
    print()


def synth_table(net: Netlist, label: str, all_popcounts: bool, targets) -> None:
    from lgn.hdl import synth
    from lgn.hdl.synth import _summarize, _synthesize  # the same Yosys flow for the baseline

    # (title, netlist or None for the naive baseline, popcount group per target)
    variants = [("naive assign-per-gate", None, None), ("lgn, target default popcount", net, None)]
    if all_popcounts:
        variants += [("lgn, adder-tree popcount", net, 0), ("lgn, 6-bit compressor popcount", net, 6)]
    try:
        from lgn.compile.passes import optimize
    except ImportError:
        print("(lgn.compile.passes.optimize not importable: optimised rows omitted)\n")
    else:
        variants.append(("lgn + optimize(), target default popcount", optimize(net), None))
    print(f"## Synthesis of {label} ({net.num_gates} gates, {net.depth} levels; combinational)\n")
    print("| design | gates | xilinx LUTs | vs naive | xilinx depth | ice40 LUT4 | vs naive | "
          "ice40 carry | ice40 depth |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = {}
    for title, variant, group in variants:
        row = {}
        for target in targets:
            if variant is None:
                with tempfile.TemporaryDirectory() as tmp:
                    mapped = _synthesize(naive_verilog(net, "naive"), "naive", target, Path(tmp),
                                         3600)
                _, _, luts, _, carry, depth = _summarize(mapped, "naive")
            else:
                report = synth(variant, target, name="bench", pipeline=0, place_and_route=False,
                               popcount_group=group)
                luts, carry, depth = report.luts, report.carry_cells, report.logic_depth
            row[target] = (luts, carry, depth)
        if variant is None:
            base = row
        gates_count = net.num_gates if variant is None else variant.num_gates
        x, i = row.get("xilinx", ("-",) * 3), row.get("ice40", ("-",) * 3)
        ratio = lambda t: f"{row[t][0] / base[t][0]:.2f}" if t in row else "-"  # noqa: E731
        print(f"| {title} | {gates_count} | {x[0]} | {ratio('xilinx')} | {x[2]} | "
              f"{i[0]} | {ratio('ice40')} | {i[1]} | {i[2]} |", flush=True)
    print()


def fmax_table(net: Netlist, label: str) -> None:
    from lgn.hdl import synth

    print(f"## iCE40 place and route of {label} (nextpnr-ice40 estimate, pin harness)\n")
    print("| pipeline | latency cycles | LUT4 | flip-flops | device | Fmax MHz | vs pipeline=0 |")
    print("| ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    first = None
    for pipeline in (0, 2, 1):
        report = synth(net, "ice40", name="bench", pipeline=pipeline)
        if report.fmax_mhz is None:
            print(f"| {pipeline} | {report.latency} | {report.luts} | {report.flip_flops} | - | "
                  f"- ({report.note}) | - |")
            continue
        first = first or report.fmax_mhz
        print(f"| {pipeline} | {report.latency} | {report.luts} | {report.flip_flops} | "
              f"{report.device} | {report.fmax_mhz:.1f} | {report.fmax_mhz / first:.2f}x |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netlist", type=Path, help="netlist .npz (lgn.compile.formats.load)")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the slow naive export")
    parser.add_argument("--skip-synth", action="store_true")
    parser.add_argument("--skip-fmax", action="store_true")
    parser.add_argument("--all-popcounts", action="store_true", help="also each popcount variant")
    parser.add_argument("--targets", default="xilinx,ice40", help="comma list of synthesis targets")
    parser.add_argument("--child-export", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-naive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        return child_export(args.child_export)
    if args.child_naive:
        return child_naive(args.child_naive)
    print(f"# lgn.hdl benchmark ({os.cpu_count()} cores visible; every tool single-threaded)\n")
    if not args.skip_export:
        export_table(args.skip_baseline)
    if args.skip_synth and args.skip_fmax:
        return
    if args.netlist:
        from lgn.compile.formats import load

        net, label = load(args.netlist), args.netlist.name
    else:
        net, label = small_digits_netlist(), "the digits model"
    if not args.skip_synth:
        synth_table(net, label, args.all_popcounts, args.targets.split(","))
    if not args.skip_fmax:
        fmax_table(net, label)


if __name__ == "__main__":
    main()
