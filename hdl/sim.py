"""Simulation: the Amaranth classifier in Amaranth's simulator, the emitted Verilog in iverilog."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from lgn.compile.netlist import Netlist
from lgn.tools import find_tool

from .encoder import pack_rows, port_words
from .errors import HDLError, ToolFailedError, ToolMissingError
from .popcount import MAX_GROUP
from .stream import Classifier
from .tools import output_tail, run_tool, tool_failed

__all__ = ["simulate", "run_testbench", "lint"]


def _packed_inputs(netlist: Netlist, top: Classifier, inputs) -> list[int]:
    """Each sample as the integer the input port carries."""
    inputs = np.asarray(inputs)
    width = netlist.encoding.num_features if top.raw_features else netlist.num_inputs
    if inputs.ndim != 2 or inputs.shape[1] != width:
        what = "features" if top.raw_features else "bits"
        raise HDLError(f"{what} have shape {inputs.shape}, expected (N, {width})")
    return pack_rows(*port_words(netlist.encoding if top.raw_features else None, inputs))


def simulate(netlist: Netlist, inputs, pipeline: int = 0, raw_features: bool | None = None,
             stall_seed: int | None = None,
             popcount_group: int = MAX_GROUP) -> tuple[np.ndarray, np.ndarray]:
    """Run the :class:`~lgn.hdl.stream.Classifier` in Amaranth's simulator.

    Parameters
    ----------
    inputs : array
        ``(N, num_features)`` raw features, or ``(N, num_inputs)`` bits (see ``raw_features``).
    stall_seed : int or None
        Drive ``in_valid``/``out_ready`` randomly with this seed (exercises back-pressure);
        ``None`` keeps both high.

    Returns
    -------
    classes : ndarray (N,), scores : ndarray (N, num_classes)
        In input order; compare with :func:`lgn.compile.packed.run`.
    """
    top = Classifier(netlist, pipeline, raw_features, popcount_group)
    samples = _packed_inputs(netlist, top, inputs)
    port = top.inputs
    width, count = top.score_width, netlist.num_classes
    rng = np.random.default_rng(stall_seed)
    results: list[tuple[int, int]] = []
    sim = Simulator(top)
    clocked = top.latency > 0
    if clocked:
        sim.add_clock(1e-6)

    async def bench(ctx):
        sent = 0
        while len(results) < len(samples):
            noisy = stall_seed is not None
            valid = sent < len(samples) and (not noisy or rng.random() < 0.7)
            ctx.set(top.in_valid, int(valid))
            ctx.set(port, samples[min(sent, len(samples) - 1)])
            ctx.set(top.out_ready, int(not noisy or rng.random() < 0.7))
            if ctx.get(top.out_valid) and ctx.get(top.out_ready):
                results.append((ctx.get(top.out_class), ctx.get(top.out_scores.as_value())))
            if valid and ctx.get(top.in_ready):
                sent += 1
            if clocked:
                await ctx.tick()
            else:
                await ctx.delay(1e-6)

    sim.add_testbench(bench)
    sim.run()
    classes = np.array([c for c, _ in results], dtype=np.int64)
    scores = np.array([[(s >> (c * width)) & ((1 << width) - 1) for c in range(count)]
                       for _, s in results], dtype=np.int64).reshape(len(results), count)
    if top.score_shape.signed:  # two's complement fields
        scores = np.where(scores >= 1 << (width - 1), scores - (1 << width), scores)
    return classes, scores


def _tool(name: str, package: str) -> str:
    path = find_tool(name)
    if path is None:
        raise ToolMissingError(f"{name} not found (on PATH or beside {sys.executable}): install {package}")
    return path


def run_testbench(testbench, design, timeout: float | None = None) -> int:
    """Compile and run a testbench written by :func:`~lgn.hdl.verilog.export` with iverilog.

    Returns the number of mismatches it reports (wrong, missing and stalled results); raises
    :class:`ToolMissingError` without iverilog and :class:`ToolFailedError` if it does not finish
    (within ``timeout`` seconds per step, when given: iverilog needs about 10 minutes for 1000
    vectors through 20,000 gates).
    """
    iverilog = _tool("iverilog", "Icarus Verilog (apt install iverilog)")
    vvp = _tool("vvp", "Icarus Verilog (apt install iverilog)")
    with tempfile.TemporaryDirectory(prefix="lgn_iverilog_") as tmp:
        binary = str(Path(tmp) / "tb.vvp")
        built = run_tool([iverilog, "-g2005", "-o", binary, str(testbench), str(design)],
                         f"iverilog on {testbench}", timeout)
        if built.returncode:
            raise tool_failed(f"iverilog on {testbench}", built)
        ran = run_tool([vvp, "-n", binary], f"the simulation of {testbench}", timeout)
    found = re.findall(r"lgn_tb: vectors=(\d+) mismatches=(\d+)", ran.stdout)
    if ran.returncode or not found:
        tail = output_tail(ran.stdout + ran.stderr) or f"exit status {ran.returncode}, no output"
        raise ToolFailedError(f"testbench {testbench} did not finish: {tail}")
    return int(found[-1][1])


def lint(design, timeout: float = 600) -> str:
    """Run ``verilator --lint-only -Wall`` on a Verilog file; return its output, raise if it fails."""
    verilator = _tool("verilator", "Verilator (apt install verilator)")
    done = run_tool([verilator, "--lint-only", "-Wall", str(design)], f"verilator --lint-only {design}",
                    timeout)
    if done.returncode:
        raise tool_failed(f"verilator --lint-only -Wall {design}", done)
    return done.stdout + done.stderr

