"""Compiling unrolled convolutions: C build time of a ~4 M-gate conv netlist, Verilog export time.

1. C: a random-init conv model on CIFAR-sized images (3x32x32, 3-bit thermometer: two
   ``conv(256, k=3, p=1, d=3)``, OR pooling, a wide dense layer; ~4.0 M gates once unrolled) is
   lowered and emitted in the default (levelized) style, then compiled with ``-O2``; the
   baseline is a random-init dense net with the same number of gates, compiled in the same run.
2. Verilog (with ``--model``): ``lgn export MODEL --target verilog`` end to end (load, lower,
   optimize, Amaranth, Yosys, testbench), against ``--baseline`` (e.g. the dense preset's model).

    python bench/conv_compile.py [--gates 4000000] [--model runs/fmnist-conv/model.pt
                                  --baseline runs/fmnist-dense/model.pt] [--skip c]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from lgn.compile import c  # noqa: E402
from lgn.compile.lower import lower  # noqa: E402
from lgn.nn import LogicNet, Thermometer, spec  # noqa: E402

CONV = "thermo(3, uniform) conv(256, k=3, p=1, d=3) conv(256, k=3, p=1, d=3) orpool(2) flatten dense({width})"


def conv_netlist(gates: int):
    """A random-init conv netlist of CIFAR-sized images with ``gates`` gates (the dense tail fills up)."""
    shape = (3, 32, 32)
    fixed = spec.parse(CONV.format(width=10)).resolve(3072, 10, shape, 3, "uniform").num_gates(3072, 3, shape) - 10
    width = max(10, (gates - fixed) // 10 * 10)
    arch = spec.parse(CONV.format(width=width)).to_json()
    config = {"arch": arch, "num_classes": 10, "image_shape": list(shape), "feature_dtype": "uint8", "seed": 0}
    return lower(spec.build(config, Thermometer.uniform(3072, 3, 0, 255)).eval()), spec.parse(CONV.format(width=width))


def dense_netlist(gates: int):
    layers = 8
    torch.manual_seed(0)
    model = LogicNet(Thermometer.uniform(784, 2, 0, 255), 10, layers=layers, width=gates // layers // 10 * 10,
                     feature_dtype="uint8", seed=0)
    return lower(model.eval())


def build_seconds(netlist, cc: str, work: Path) -> tuple[float, float, float]:
    """(emit seconds, compiler CPU seconds, compiler wall seconds) of ``netlist`` at -O2."""
    start = time.perf_counter()
    sources = c.emit(netlist, name="model")
    emit = time.perf_counter() - start
    work.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (work / name).write_text(text)
    source = work / next(name for name in sources if name.endswith(".c"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([cc, "-std=c99", "-O2", "-c", str(source), "-o", str(source.with_suffix(".o"))], check=True,
                   cwd=work)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return emit, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def export_seconds(model: str, work: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lgn.cli", "export", model, "--target", "verilog", "-o", str(work)],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=4_000_000)
    parser.add_argument("--model", help="a trained conv checkpoint: time its Verilog export")
    parser.add_argument("--baseline", help="the checkpoint to compare the Verilog export against")
    parser.add_argument("--skip", default="", help="comma list of sections to skip: c, verilog")
    parser.add_argument("--cc", default=None)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="lgn-conv-bench-"))
    try:
        if "c" not in skip:
            cc = c.find_compiler(args.cc)
            conv, arch = conv_netlist(args.gates)
            dense = dense_netlist(conv.num_gates)
            print(f"C build at -O2 ({cc}), levelized style, word 64; conv: {arch}")
            print(f"{'netlist':<8} {'gates':>10} {'emit s':>7} {'cc cpu s':>9} {'cc wall s':>10} {'cpu x dense':>12}")
            rows = [(name, net.num_gates, *build_seconds(net, cc, work / name))
                    for name, net in (("dense", dense), ("conv", conv))]
            for name, gates, emit, cpu, wall in rows:
                print(f"{name:<8} {gates:>10,} {emit:7.1f} {cpu:9.1f} {wall:10.1f} {cpu / rows[0][3]:12.2f}")
        if "verilog" not in skip and args.model:
            print("lgn export --target verilog (load, lower, optimize, Amaranth, Yosys, testbench), wall seconds")
            models = [("conv", args.model)] + ([("baseline", args.baseline)] if args.baseline else [])
            times = {name: export_seconds(path, work / f"v-{name}") for name, path in models}
            for name, path in models:
                ratio = f"{times[name] / times['baseline']:.2f}x baseline" if "baseline" in times else ""
                print(f"{name:<9} {times[name]:8.1f} s  {ratio}  {path}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
