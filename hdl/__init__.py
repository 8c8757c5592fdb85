"""Amaranth hardware for netlists: gate core, popcount, argmax, pipelining, Verilog, synthesis.

One entry function per job: :func:`export` writes the Verilog module, its self-checking
testbench and a report; :func:`synth` reports LUTs, flip-flops, carry cells, logic depth and
(iCE40) Fmax. The Amaranth components compose into other Amaranth designs. Two-input gates,
k-input LUT nodes (one table lookup each) and class score offsets are compiled natively; the
sorting-network twin is :mod:`lgn.hdl.sorter`. Nothing here imports torch.
"""

from .argmax import Argmax
from .core import NetlistCore
from .encoder import ThermometerEncoder
from .errors import (DeviceTooSmallError, HDLError, InvalidNameError, ToolFailedError,
                     ToolMissingError, UnknownTargetError)
from .popcount import PopCount
from .sim import lint, run_testbench, simulate
from .stream import Classifier, latency
from .synth import SynthReport, synth
from .verilog import Design, describe, export, sanitize_name, to_verilog

__all__ = [
    "export", "to_verilog", "describe", "Design", "sanitize_name", "synth", "SynthReport", "simulate",
    "run_testbench", "lint", "latency", "Classifier", "NetlistCore", "PopCount", "Argmax",
    "ThermometerEncoder", "HDLError", "InvalidNameError", "UnknownTargetError",
    "DeviceTooSmallError", "ToolMissingError", "ToolFailedError",
]
