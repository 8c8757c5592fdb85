"""Benchmark the C back end against a naive emission of the same network (difflogic style).

Prints three tables:

1. throughput from raw uint8 features to classes (encoder included), one thread, per style and
   word width, against the naive emission (one 64-bit ``const`` expression per gate in one
   function, a per-bit encoder loop and a per-bit output count, as the original difflogic
   compiler emits), all compiled with the same flags;
2. compile time at ``-O2`` per style against the naive emission;
3. flash (``.text + .rodata`` from ``arm-none-eabi-size``, ``-Os``, Cortex-M4) per style for a
   digits-sized model.

Usage::

    python bench/c.py                      # Fashion-MNIST-sized random-init net, 6 x 8000 gates
    python bench/c.py --model runs/fashion-mnist/model.pt --flash-model runs/digits/model.pt
                                           # trained models on their test sets
    python bench/c.py --netlist fmnist.npz # a netlist file, random uint8 features
    python bench/c.py --quick              # a small net, for a smoke run
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import resource  # noqa: E402
import ctypes  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _models import small_digits_netlist  # noqa: E402
from _timing import best_time  # noqa: E402
import torch  # noqa: E402

from lgn.compile import c, packed  # noqa: E402
from lgn.compile.lower import lower  # noqa: E402
from lgn.compile.passes import optimize  # noqa: E402
from lgn.nn import LogicNet, Thermometer, gates  # noqa: E402

torch.set_num_threads(1)

NAIVE_EXPR = {
    gates.FALSE: "0", gates.AND: "{a} & {b}", gates.A_AND_NOT_B: "{a} & ~{b}", gates.A: "{a}",
    gates.NOT_A_AND_B: "~{a} & {b}", gates.B: "{b}", gates.XOR: "{a} ^ {b}", gates.OR: "{a} | {b}",
    gates.NOR: "~({a} | {b})", gates.XNOR: "~({a} ^ {b})", gates.NOT_B: "~{b}",
    gates.B_IMPLIES_A: "{a} | ~{b}", gates.NOT_A: "~{a}", gates.A_IMPLIES_B: "~{a} | {b}",
    gates.NAND: "~({a} & {b})", gates.TRUE: "~0",
}


def naive_source(net) -> str:
    """The difflogic-style emission: one function, one ``const long long`` per gate."""
    def ref(node: int) -> str:
        if node < 2:
            return "0LL" if node == 0 else "~0LL"
        if node < net.first_gate:
            return f"inp[{node - 2}]"
        return f"v{node - net.first_gate}"

    enc = net.encoding
    lines = [
        "#include <stddef.h>", "#include <stdint.h>",
        f"static const int feature[{net.num_inputs}] = {{{', '.join(map(str, enc.feature))}}};",
        f"static const int threshold[{net.num_inputs}] = "
        f"{{{', '.join(str(int(np.floor(t))) for t in enc.threshold)}}};",
        "static void logic_gate_net(const long long *inp, long long *out) {",
    ]
    for g in range(net.num_gates):
        expr = NAIVE_EXPR[int(net.op[g])].format(a=ref(int(net.a[g])), b=ref(int(net.b[g])))
        lines.append(f"    const long long v{g} = {expr};")
    lines += [f"    out[{i}] = {ref(int(o))};" for i, o in enumerate(net.outputs)]
    lines += [
        "}",
        "void naive_predict(const uint8_t *x, size_t n, int *classes) {",
        f"    long long inp[{max(net.num_inputs, 1)}], out[{net.outputs.shape[0]}];",
        "    size_t start, s, i, c;",
        "    for (start = 0; start < n; start += 64) {",
        "        size_t m = n - start < 64 ? n - start : 64;",
        f"        for (i = 0; i < {net.num_inputs}; ++i) {{",
        "            unsigned long long w = 0;",
        f"            for (s = 0; s < m; ++s) w |= (unsigned long long)(x[(start + s) * {enc.num_features}"
        " + feature[i]] > threshold[i]) << s;",
        "            inp[i] = (long long)w;",
        "        }",
        "        logic_gate_net(inp, out);",
        "        for (s = 0; s < m; ++s) {",
        "            int best = 0, best_score = -1;",
        f"            for (c = 0; c < {net.num_classes}; ++c) {{",
        "                int score = 0;",
        f"                for (i = 0; i < {net.outputs_per_class}; ++i)",
        f"                    score += (int)(((unsigned long long)out[c * {net.outputs_per_class} + i] >> s) & 1);",
        "                if (score > best_score) { best_score = score; best = (int)c; }",
        "            }",
        "            classes[start + s] = best;",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def compile_seconds(cc: str, source: Path, flags) -> tuple[float, float]:
    """Compile ``source``; return (CPU seconds of the compiler, wall seconds).

    CPU time is the robust number on a shared machine; wall time includes waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([cc, "-std=c99", *flags, "-c", str(source), "-o", str(source.with_suffix(".o"))],
                   check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def fmnist_like(layers: int, width: int):
    torch.manual_seed(0)
    model = LogicNet(Thermometer.uniform(784, 2, 0, 255), 10, layers=layers, width=width,
                     feature_dtype="uint8", seed=0).eval()
    return lower(model, meta={"bench": "random-init"})


def throughput(net, x, cc, flags, configs, repeats, work: Path):
    """Naive emission of ``net`` as is; lgn's styles of ``optimize(net)``, as ``lgn export`` does."""
    rows = []
    naive_c = work / "naive.c"
    naive_c.write_text(naive_source(net))
    start = time.perf_counter()
    lib = c.compile_shared(naive_c, work / "libnaive.so", cc, flags)
    naive_build = time.perf_counter() - start
    naive = ctypes.CDLL(str(lib)).naive_predict
    naive.argtypes, naive.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p], None
    out = np.empty(len(x), dtype=np.intc)
    t_naive = best_time(lambda: naive(x.ctypes.data, len(x), out.ctypes.data), repeats)
    expected = packed.predict(net, net.encoding.encode(x))
    assert (out == expected).all(), "naive emission disagrees with the packed executor"
    rows.append(("naive (difflogic)", 64, naive_build, len(x) / t_naive, 1.0))
    optimized = optimize(net)
    for style, word_bits in configs:
        start = time.perf_counter()
        model = c.build(optimized, style=style, word_bits=word_bits, cc=cc, cflags=flags)
        build_s = time.perf_counter() - start
        predictions = model.predict(x)
        assert (predictions == expected).all(), f"{style}/{word_bits} disagrees with packed"
        t = best_time(lambda: model.predict(x), repeats)
        rows.append((style, word_bits, build_s, len(x) / t, t_naive / t))
    return rows


def compile_times(net, cc, work: Path, styles, with_naive=True):
    rows = []
    base = None
    if with_naive:
        naive_c = work / "naive_o2.c"
        naive_c.write_text(naive_source(net))
        base, wall = compile_seconds(cc, naive_c, ["-O2"])
        rows.append(("naive (difflogic)", net.num_gates, base, wall, 1.0))
    for style in styles:
        source = c.export(net, work / f"ct_{style}", name="model", style=style, word_bits=64)[1]
        cpu, wall = compile_seconds(cc, source, ["-O2"])
        rows.append((style, net.num_gates, cpu, wall, cpu / base if base else float("nan")))
    return rows


def flash(net, work: Path):
    net = optimize(net)
    cc, size = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-size")
    if not (cc and size):
        return []
    rows = []
    for style in c.STYLES:
        source = c.export(net, work / f"arm_{style}", name="model", style=style, word_bits=32)[1]
        obj = source.with_suffix(".o")
        subprocess.run([cc, "-std=c99", "-Os", "-mcpu=cortex-m4", "-mthumb", "-ffreestanding", "-c",
                        str(source), "-o", str(obj)], check=True)
        text = subprocess.run([size, "-A", str(obj)], check=True, capture_output=True, text=True).stdout
        sections = {ln.split()[0]: int(ln.split()[1]) for ln in text.splitlines()[2:] if len(ln.split()) >= 2
                    and ln.split()[1].isdigit()}
        total = sum(v for k, v in sections.items() if k.startswith((".text", ".rodata")))
        rows.append((style, net.num_gates, total, total / net.num_gates))
    return rows


def table(title, header, rows, fmt):
    print(f"\n{title}")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(f.format(v) for f, v in zip(fmt, row)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a checkpoint or netlist file: benchmark it on its dataset's test set")
    parser.add_argument("--flash-model", help="checkpoint or netlist for the flash table [a small digits net]")
    parser.add_argument("--netlist", help="a netlist .npz (lgn.compile.formats.load); default: random-init")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--cc", default=None)
    parser.add_argument("--flags", default="-O2 -march=native", help="flags of the throughput builds")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a small net (6 x 800 gates)")
    parser.add_argument("--big-gates", type=int, default=400_000,
                        help="gates of the compile-time test of the default style (0: skip)")
    parser.add_argument("--skip", default="", help="comma list of sections to skip: speed,compile,flash")
    args = parser.parse_args(argv)
    cc = c.find_compiler(args.cc)
    skip = set(filter(None, args.skip.split(",")))
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    rng = np.random.default_rng(0)
    x = None
    if args.model:
        from lgn.io import load_for_eval

        setup = load_for_eval(args.model)
        net = setup.file.netlist
        x = np.ascontiguousarray(setup.features[: args.samples].astype(net.encoding.dtype))
        source = f"{args.model}, {len(x)} test samples of {setup.data.name}"
    elif args.netlist:
        from lgn.compile import formats

        net = formats.load(args.netlist)
        source = f"{args.netlist}, random uint8 features"
    else:
        net = fmnist_like(6, 800 if args.quick else 8000)
        source = "random-init LogicNet, random uint8 features"
    if x is None:
        x = rng.integers(0, 256, (args.samples, net.encoding.num_features), dtype=np.uint8)
    print(f"netlist: {net!r} ({source}); lgn kernels run optimize(net) "
          f"({optimize(net).num_gates} gates), the naive emission the raw net")
    print(f"compiler: {version}; one thread; torch threads {torch.get_num_threads()}")
    work = Path(tempfile.mkdtemp(prefix="lgn_bench_c_"))
    try:
        if "speed" not in skip:
            configs = [("levelized", w) for w in (64, 128, 256, 512)] + [
                ("unrolled", 64), ("unrolled", 256), ("unrolled", 512), ("table", 64)]
            rows = throughput(net, x, cc, args.flags.split(), configs, args.repeats, work)
            table(f"Throughput, raw uint8 -> class, {len(x)} samples, flags {args.flags}",
                  ["kernel", "word bits", "build s", "samples/s", "x naive"], rows,
                  ["{}", "{}", "{:.1f}", "{:,.0f}", "{:.2f}"])
        if "compile" not in skip:
            rows = compile_times(net, cc, work, c.STYLES)
            if args.big_gates:
                layers = 8
                big = fmnist_like(layers, args.big_gates // layers)
                rows += compile_times(big, cc, work / "big", [c.DEFAULT_STYLE], with_naive=False)
            table("Compile time, -O2, word 64 (ratio of CPU times: to the naive emission of the same net)",
                  ["kernel", "gates", "cpu s", "wall s", "/ naive"], rows,
                  ["{}", "{}", "{:.1f}", "{:.1f}", "{:.3f}"])
        if "flash" not in skip:
            if args.flash_model:
                from lgn.io import load_model_file

                flash_net, flash_name = load_model_file(args.flash_model).netlist, args.flash_model
            else:
                flash_net, flash_name = small_digits_netlist(), "digits model (64 x 3 bits -> 2 x 600 gates)"
            rows = flash(flash_net, work)
            table(f"Flash, {flash_name}, optimized, -Os, Cortex-M4, word 32; bytes per optimized gate",
                  ["kernel", "gates", ".text+.rodata bytes", "bytes/gate"], rows,
                  ["{}", "{}", "{}", "{:.2f}"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
