"""The emitted Verilog: iverilog runs of the generated testbench, verilator lint, file layout."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import corrupt_first_five_vectors, random_netlist, require_tool
from hypothesis import given
from hypothesis import strategies as st
from ladder import verilog_mismatches
from strategies import examples, features_for, netlists

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import C, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lgn.hdl import (HDLError, ToolFailedError, ToolMissingError, export, latency, lint, run_testbench,
                     to_verilog)
from lgn.hdl import sim as hdl_sim
from lgn.hdl.tools import run_tool
from lgn.hdl.verilog import component_verilog

needs_iverilog = pytest.mark.needs_tool("iverilog", "vvp")
needs_verilator = pytest.mark.needs_tool("verilator")


@needs_iverilog
@pytest.mark.parametrize("pipeline", [0, 1, 3])
def test_digits_testbench_passes(tmp_path, digits_netlist, pipeline):
    net, x, _ = digits_netlist
    features = np.concatenate([x] * (1000 // len(x) + 1))[:1000]
    design, testbench, report = export(net, tmp_path, name="digits", pipeline=pipeline,
                                       features=features)
    assert [p.name for p in (design, testbench, report)] == ["digits.v", "digits_tb.v",
                                                             "digits_report.txt"]
    assert run_testbench(testbench, design) == 0
    assert f"latency {latency(net, pipeline)}" in report.read_text()


@needs_iverilog
@pytest.mark.parametrize("pipeline", [0, 2])
@pytest.mark.parametrize("encoding", [False, True])
def test_random_netlist_testbench_passes(tmp_path, rng, pipeline, encoding):
    net = random_netlist(rng, 12, 80, 4, 5, encoding=encoding)
    design, testbench, _ = export(net, tmp_path, name="rand", pipeline=pipeline, vectors=1000)
    assert run_testbench(testbench, design) == 0


def drawn_inputs(data, net, raw: bool, max_rows: int) -> np.ndarray:
    source = net if raw else net.replace(encoding=None)
    return data.draw(features_for(source, min_rows=1, max_rows=max_rows))


@examples(14)
@given(data=st.data(), net=netlists(max_inputs=16, max_gates=50, max_classes=8,
                                    max_outputs_per_class=16),
       pipeline=st.sampled_from([0, 0, 1, 2, 5]), raw=st.booleans())
def test_iverilog_runs_of_drawn_netlists(data, net, pipeline, raw):
    # Combinational and pipelined; raw features of every type (comparators) or input bits.
    raw = raw and net.encoding is not None
    assert verilog_mismatches(net, drawn_inputs(data, net, raw, 60), pipeline, raw, "iverilog") == 0


@examples(4)
@given(data=st.data(), net=netlists(max_inputs=16, max_gates=40, max_classes=6,
                                    max_outputs_per_class=12),
       pipeline=st.sampled_from([0, 2]), raw=st.booleans())
def test_verilator_runs_of_drawn_netlists(data, net, pipeline, raw):
    raw = raw and net.encoding is not None
    inputs = drawn_inputs(data, net, raw, 60)
    assert verilog_mismatches(net, inputs, pipeline, raw, "verilator") == 0


@pytest.mark.slow
@examples(40)
@given(data=st.data(), net=netlists(max_inputs=40, max_gates=120, max_classes=12,
                                    max_outputs_per_class=40),
       pipeline=st.integers(0, 6), raw=st.booleans(),
       simulator=st.sampled_from(["iverilog", "verilator"]))
def test_simulators_on_larger_drawn_netlists(data, net, pipeline, raw, simulator):
    raw = raw and net.encoding is not None
    assert verilog_mismatches(net, drawn_inputs(data, net, raw, 200), pipeline, raw, simulator) == 0


@needs_iverilog
def test_testbench_counts_mismatches(tmp_path, rng):
    net = random_netlist(rng, 8, 40, 3, 4)
    design, testbench, _ = export(net, tmp_path, name="broken", pipeline=1, vectors=200)
    corrupt_first_five_vectors(testbench)
    assert run_testbench(testbench, design) == 5


@needs_verilator
@pytest.mark.parametrize("pipeline", [0, 3])
def test_verilator_lint_clean(tmp_path, digits_netlist, pipeline):
    net, _, _ = digits_netlist
    path = tmp_path / "digits.v"
    path.write_text(to_verilog(net, "digits", pipeline))
    lint(path)


@needs_verilator
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_verilator_lint_clean_encoders(tmp_path, rng, dtype):
    from lgn.compile.netlist import ThermometerEncoding

    net = random_netlist(rng, 12, 40, 3, 4)
    net = net.replace(encoding=ThermometerEncoding(3, rng.integers(0, 3, 12),
                                                   rng.uniform(-50, 50, 12), dtype))
    path = tmp_path / "m.v"
    path.write_text(to_verilog(net, "m", 2))
    lint(path)


def test_one_module_with_documented_ports(digits_netlist):
    net, _, _ = digits_netlist
    text = to_verilog(net, "small", pipeline=2)
    assert re.findall(r"^module (\S+)\(", text, re.M) == ["small_net"]
    header = re.search(r"^module small_net\(([^)]*)\)", text, re.M)[1]
    assert set(header.replace(" ", "").split(",")) == {
        "clk", "rst", "features", "in_valid", "in_ready", "out_valid", "out_ready",
        "out_class", "out_scores"}
    assert re.search(r"input \[511:0\] features;", text)
    assert re.search(r"output \[3:0\] out_class;", text)
    combinational = to_verilog(net, "small", pipeline=0)
    assert "clk" not in re.search(r"^module small_net\(([^)]*)\)", combinational, re.M)[1]


def test_export_rejects_bad_test_vectors(tmp_path, digits_netlist):
    net, x, _ = digits_netlist
    with pytest.raises(HDLError, match="shape"):
        export(net, tmp_path, features=x[:, :10])


def test_missing_iverilog_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(hdl_sim, "find_tool", lambda name: None)
    with pytest.raises(ToolMissingError, match="iverilog"):
        run_testbench(tmp_path / "tb.v", tmp_path / "m.v")


@needs_iverilog
def test_simulation_past_its_timeout_is_a_clear_error(tmp_path, digits_netlist):
    net, x, _ = digits_netlist
    design, testbench, _ = export(net, tmp_path, name="slow", features=x)
    with pytest.raises(ToolFailedError, match=r"slow_tb.v did not finish within 0 s"):
        run_testbench(testbench, design, timeout=0.01)


class _NarrowParts(wiring.Component):
    """What trips ``verilator -Wall`` in Amaranth's own Verilog: an adder of narrower operands,
    and a LUT-style table lookup (``bit_select`` of a constant)."""

    def __init__(self):
        super().__init__({"a": In(2), "b": In(1), "index": In(6), "total": Out(3), "lut": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.total.eq(self.a + self.b),
                     self.lut.eq(C(0x0123_4567_89AB_CDEF, 64).bit_select(self.index, 1))]
        return m


@needs_verilator
def test_amaranth_still_needs_the_lint_fixes(tmp_path):
    # When this fails, Amaranth's public Verilog lints clean: drop lgn.hdl.verilog.lint_fixes.
    path = tmp_path / "narrow.v"
    path.write_text(amaranth_verilog.convert(_NarrowParts(), name="narrow", emit_src=False,
                                             strip_internal_attrs=True))
    done = run_tool([require_tool("verilator"), "--lint-only", "-Wall", str(path)], "verilator")
    assert done.returncode and "%Warning-WIDTH" in done.stderr, done.stderr
    assert len(re.findall("%Warning-WIDTH", done.stderr)) == 2, done.stderr  # the adder, the LUT
    path.write_text(component_verilog(_NarrowParts(), "narrow"))
    lint(path)
    text = path.read_text()
    assert "{ 1'h0, a } + { 2'h0, b }" in text
    assert re.search(r"wire \[63:0\] (\S+) = 64'h0123456789abcdef;\s+assign lut = \1\[index \+: 1\];",
                     text)
