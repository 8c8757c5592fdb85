"""Simulating the emitted testbench: Verilator (compiled C++, fast on large nets), iverilog the fallback.

iverilog interprets the design event by event: 1,000 vectors through the 18k-gate Fashion-MNIST
model take it about ten minutes. Verilator translates the same two files to C++ once and runs
them as a program; compiling dominates, so the C++ is built without optimization.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from lgn.tools import find_tool

from .errors import HDLError, ToolFailedError, ToolMissingError
from .sim import run_testbench
from .tools import output_tail, run_tool, tool_failed

__all__ = ["SIMULATORS", "VERILATOR_FLAGS", "choose_simulator", "run_verilator", "simulate_testbench"]

#: The ``simulator`` choices: ``auto`` is Verilator when it is installed, else iverilog.
SIMULATORS = ("auto", "verilator", "iverilog")

#: Verilator options for the testbench, chosen for the time to a result (translation + C++
#: compile + run) rather than for simulation speed.
VERILATOR_FLAGS = (
    "--binary",                   # = --main --exe --build --timing (the testbench's clock is #5)
    "--x-assign", "fast", "--x-initial", "fast",
    # Verilator 5.006 (Debian 12) folds XOR trees over bits of one vector mixed with constants
    # wrongly (popcounts of repeated or constant gate outputs; its issues #4059, #4837, #5186);
    # iverilog, Amaranth and Yosys agree with the reference on the same files. Kept even where
    # the netlist has no constants left: it costs nothing measurable.
    "-fno-const-bit-op-tree",
    "-Wno-fatal", "-Wno-lint", "-Wno-style",  # the testbench's blocking assignments, widths
    # g++ at -O0: the program runs for well under a second, its compile for a minute.
    "-MAKEFLAGS", "OPT_FAST=-O0", "-MAKEFLAGS", "OPT_SLOW=-O0", "-MAKEFLAGS", "OPT_GLOBAL=-O0",
)

#: The programs each simulator runs, and where to get them.
_PROGRAMS = {"verilator": (("verilator",), "Verilator (apt install verilator)"),
             "iverilog": (("iverilog", "vvp"), "Icarus Verilog (apt install iverilog)")}

_RESULT = re.compile(r"lgn_tb: vectors=(\d+) mismatches=(\d+)")


def choose_simulator(simulator: str = "auto") -> str:
    """The simulator that ``simulator`` names here: ``"verilator"`` or ``"iverilog"``.

    ``"auto"`` picks Verilator when it is found (on ``PATH`` or beside the running Python), else
    iverilog; naming one that is missing raises :class:`ToolMissingError`.
    """
    if simulator not in SIMULATORS:
        raise HDLError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    for name in (("verilator", "iverilog") if simulator == "auto" else (simulator,)):
        programs, package = _PROGRAMS[name]
        missing = [program for program in programs if find_tool(program) is None]
        if not missing:
            return name
    where = f"on PATH or beside {sys.executable}"
    if simulator == "auto":
        raise ToolMissingError(f"neither verilator nor iverilog found ({where}): "
                               "apt install verilator (or iverilog)")
    raise ToolMissingError(f"{missing[0]} not found ({where}): install {package}")


def run_verilator(testbench, design, timeout: float | None = None, jobs: int = 2) -> int:
    """Build a testbench written by :func:`~lgn.hdl.verilog.export` with Verilator and run it.

    Returns the number of mismatches it reports, like :func:`~lgn.hdl.sim.run_testbench` does
    for iverilog; raises :class:`ToolMissingError` without Verilator and :class:`ToolFailedError`
    when the build fails or the testbench does not finish (within ``timeout`` seconds per step,
    when given). ``jobs`` C++ files compile at once.
    """
    choose_simulator("verilator")
    verilator = find_tool("verilator")
    testbench, design = Path(testbench), Path(design)
    with tempfile.TemporaryDirectory(prefix="lgn_verilator_") as tmp:
        obj = Path(tmp) / "obj"
        command = [verilator, *VERILATOR_FLAGS, "--build-jobs", str(max(1, jobs)),
                   "--top-module", testbench.stem, "--Mdir", str(obj), "-o", "tb",
                   str(testbench), str(design)]
        built = run_tool(command, f"verilator on {testbench}", timeout)
        if built.returncode or not (obj / "tb").is_file():
            raise tool_failed(f"verilator --binary on {testbench}", built)
        ran = run_tool([str(obj / "tb")], f"the simulation of {testbench}", timeout, cwd=tmp)
    found = _RESULT.findall(ran.stdout)
    if ran.returncode or not found:
        tail = output_tail(ran.stdout + ran.stderr) or f"exit status {ran.returncode}, no output"
        raise ToolFailedError(f"testbench {testbench} did not finish: {tail}")
    return int(found[-1][1])


def simulate_testbench(testbench, design, simulator: str = "auto",
                       timeout: float | None = None) -> tuple[str, int]:
    """Run the self-checking testbench of :func:`~lgn.hdl.verilog.export` in a simulator.

    Parameters
    ----------
    testbench, design : path
        ``NAME_tb.v`` and ``NAME.v``.
    simulator : {"auto", "verilator", "iverilog"}
        ``auto``: Verilator when installed, else iverilog (see :func:`choose_simulator`).
    timeout : float or None
        Seconds per step (build, run) before :class:`ToolFailedError`.

    Returns
    -------
    simulator : str
        The one that ran (``"verilator"`` or ``"iverilog"``).
    mismatches : int
        Wrong, missing and stalled results the testbench counted; 0 when the Verilog agrees
        with the packed executor on every vector.
    """
    chosen = choose_simulator(simulator)
    if chosen == "verilator":
        return chosen, run_verilator(testbench, design, timeout)
    return chosen, run_testbench(testbench, design, timeout)
