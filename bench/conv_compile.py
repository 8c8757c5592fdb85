"""Compiling unrolled convolutions: C emit and build time of ~4 M-gate netlists, Verilog export time.

1. C: a random-init conv model on CIFAR-sized images (3x32x32, 3-bit thermometer: two
   ``conv(256, k=3, p=1, d=3)``, OR pooling, a wide dense layer; ~4.0 M gates once unrolled) and
   a random-init dense net with the same number of gates are lowered, emitted in the default
   (levelized) style and compiled with ``-O2`` into a shared library; then their raw uint8 ->
   class throughput is measured (one thread). The baseline is the emitter (``compile/c/plan.py``,
   ``emit.py`` and the ``templates/c_*.j2``) of commit ``BASELINE_COMMIT``, read with ``git show``
   and run in this process on the same netlists, interleaved with today's. A Fashion-MNIST-sized
   random-init net (6 x 8000 gates) gives the run-time comparison at a mid size.
2. Verilog (with ``--model``): ``lgn export MODEL --target verilog`` end to end (load, lower,
   optimize, Amaranth, Yosys, testbench), against ``--baseline`` (e.g. the dense preset's model).

    python bench/conv_compile.py [--gates 4000000] [--no-baseline] [--model runs/fmnist-conv/model.pt
                                  --baseline runs/fmnist-dense/model.pt] [--skip c,mid,verilog]
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
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import jinja2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lgn.compile import c  # noqa: E402
from lgn.compile.lower import lower  # noqa: E402
from lgn.nn import LogicNet, Thermometer, spec  # noqa: E402

torch.set_num_threads(1)

CONV = "thermo(3, uniform) conv(256, k=3, p=1, d=3) conv(256, k=3, p=1, d=3) orpool(2) flatten dense({width})"
#: The emitter before issue 13 (decimal index tables, a Python loop per gate).
BASELINE_COMMIT = "f05d8ce"
REPO = Path(__file__).resolve().parent.parent


def conv_netlist(gates: int):
    """A random-init conv netlist of CIFAR-sized images with ``gates`` gates (the dense tail fills up)."""
    shape = (3, 32, 32)
    fixed = spec.parse(CONV.format(width=10)).resolve(3072, 10, shape, 3, "uniform").num_gates(3072, 3, shape) - 10
    width = max(10, (gates - fixed) // 10 * 10)
    arch = spec.parse(CONV.format(width=width)).to_json()
    config = {"arch": arch, "num_classes": 10, "image_shape": list(shape), "feature_dtype": "uint8", "seed": 0}
    return lower(spec.build(config, Thermometer.uniform(3072, 3, 0, 255)).eval()), spec.parse(CONV.format(width=width))


def dense_netlist(gates: int, layers: int = 8, features: int = 784):
    torch.manual_seed(0)
    model = LogicNet(Thermometer.uniform(features, 2, 0, 255), 10, layers=layers,
                     width=gates // layers // 10 * 10, feature_dtype="uint8", seed=0)
    return lower(model.eval())


def _git_show(spec_: str) -> str:
    done = subprocess.run(["git", "show", spec_], cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench/conv_compile.py: cannot read {spec_} (git show: {done.stderr.strip()[:200]})")
    return done.stdout


def baseline_emit(commit: str = BASELINE_COMMIT):
    """``emit`` of ``compile/c`` at ``commit`` with that commit's templates, loaded from git."""
    package = f"lgn.compile._c_{commit}"
    sys.modules[package] = types.ModuleType(package)
    sys.modules[package].__path__ = []
    modules = {}
    for name in ("plan", "emit"):
        module = types.ModuleType(f"{package}.{name}")
        module.__package__ = package
        sys.modules[module.__name__] = module
        exec(compile(_git_show(f"{commit}:compile/c/{name}.py"), f"{commit}:compile/c/{name}.py", "exec"),
             module.__dict__)
        modules[name] = module
    names = subprocess.run(["git", "ls-tree", "--name-only", commit, "templates/"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    sources = {Path(n).name: _git_show(f"{commit}:{n}") for n in names if Path(n).name.startswith("c_")}
    env = jinja2.Environment(loader=jinja2.DictLoader(sources), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             autoescape=False)
    modules["emit"]._environment = lambda: env
    return modules["emit"].emit


def build_timed(emit, netlist, cc: str, work: Path):
    """Emit, write and compile ``netlist`` at -O2 into a shared library: (emit CPU s, emit wall s,
    compiler CPU s, compiler wall s, source MB, CModel)."""
    cpu, start = time.process_time(), time.perf_counter()
    sources = emit(netlist, name="model")
    work.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (work / name).write_text(text)
    emit_cpu, emit_wall = time.process_time() - cpu, time.perf_counter() - start
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    library = c.compile_shared(work / "model.c", work / "libmodel.so", cc, ("-O2",))
    cc_wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cc_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    size = sum(map(len, sources.values())) / 1e6
    return emit_cpu, emit_wall, cc_cpu, cc_wall, size, c.CModel(library, netlist, "model", 64)


def cpu_seconds(fn) -> float:
    """CPU seconds of one ``fn()`` (this process; on a loaded machine wall time mostly waits)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def samples_per_second(models: dict, x: np.ndarray, repeats: int) -> dict:
    """Raw uint8 -> class throughput of each model per CPU second (fastest of ``repeats``, the
    models interleaved); all must agree."""
    first = next(iter(models.values())).predict(x)
    for name, model in models.items():
        if not np.array_equal(model.predict(x), first):
            sys.exit(f"bench/conv_compile.py: {name} predicts differently")
    best = {name: float("inf") for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            best[name] = min(best[name], cpu_seconds(lambda: model.predict(x)))
    return {name: x.shape[0] / t for name, t in best.items()}


def export_seconds(model: str, work: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lgn.cli", "export", model, "--target", "verilog", "-o", str(work)],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def c_section(nets, cc: str, work: Path, with_baseline: bool, samples: int, repeats: int, title: str):
    emits = {"today": c.emit}
    if with_baseline:
        emits = {f"{BASELINE_COMMIT}": baseline_emit(), **emits}
    print(f"{title}: emit (Python, files written) + build at -O2 -shared ({cc}), levelized style, "
          f"word 64; throughput raw uint8 -> class, 1 thread, {samples} random samples, per CPU second, "
          f"best of {repeats}")
    print(f"{'netlist':<8} {'gates':>10} {'emitter':<8} {'emit cpu':>8} {'emit wall':>9} {'cc cpu':>7} "
          f"{'cc wall':>7} {'total wall':>10} {'C MB':>6} {'samples/s':>11}")
    rng = np.random.default_rng(0)
    for label, net in nets:
        rows, models = {}, {}
        for name, emit in emits.items():
            *row, models[name] = build_timed(emit, net, cc, work / f"{label}-{name}")
            rows[name] = row
        x = rng.integers(0, 256, (samples, net.encoding.num_features)).astype(np.uint8)
        speed = samples_per_second(models, x, repeats)
        for name, (emit_cpu, emit_wall, cc_cpu, cc_wall, size) in rows.items():
            print(f"{label:<8} {net.num_gates:>10,} {name:<8} {emit_cpu:8.1f} {emit_wall:9.1f} {cc_cpu:7.1f} "
                  f"{cc_wall:7.1f} {emit_wall + cc_wall:10.1f} {size:6.1f} {speed[name]:11,.0f}")
        for model in models.values():
            del model
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=4_000_000)
    parser.add_argument("--no-baseline", action="store_true", help=f"skip the emitter of {BASELINE_COMMIT}")
    parser.add_argument("--model", help="a trained conv checkpoint: time its Verilog export")
    parser.add_argument("--baseline", help="the checkpoint to compare the Verilog export against")
    parser.add_argument("--skip", default="", help="comma list of sections to skip: c, mid, verilog")
    parser.add_argument("--cc", default=None)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="lgn-conv-bench-"))
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())}; torch threads 1")
    try:
        cc = c.find_compiler(args.cc)
        if "mid" not in skip:
            c_section([("dense", dense_netlist(48_000, layers=6))], cc, work, not args.no_baseline,
                      100_000, 7, "Fashion-MNIST-sized random net (6 x 8000 gates)")
        if "c" not in skip:
            conv, arch = conv_netlist(args.gates)
            dense = dense_netlist(conv.num_gates)
            c_section([("dense", dense), ("conv", conv)], cc, work, not args.no_baseline, 4096, 3,
                      f"{args.gates:,}-gate netlists (conv: {arch})")
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
