"""The testbench in Verilator and iverilog through lgn.hdl.verilator: agreement with the packed
executor, mismatch counting, the auto choice and its fallback, clear errors, the CLI options."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import corrupt_first_five_vectors, random_netlist
from hypothesis import given
from hypothesis import strategies as st
from strategies import examples, features_for, netlists

from lgn.cli import main
from lgn.compile import formats
from lgn.hdl import HDLError, ToolFailedError, ToolMissingError, export
from lgn.hdl import verilator as hdl_verilator
from lgn.hdl.verilator import choose_simulator, simulate_testbench
from lgn.tools import find_tool

needs_verilator = pytest.mark.needs_tool("verilator")
needs_both = pytest.mark.needs_tool("verilator", "iverilog", "vvp")


def installed_only(monkeypatch, *names):
    """Make :mod:`lgn.hdl.verilator` see only the programs ``names``."""
    monkeypatch.setattr(hdl_verilator, "find_tool", lambda name: find_tool(name) if name in names else None)


@needs_both
@examples(3)
@given(data=st.data(), net=netlists(max_inputs=16, max_gates=50, max_classes=6,
                                    max_outputs_per_class=12),
       pipeline=st.sampled_from([0, 2]), raw=st.booleans())
def test_both_simulators_agree_with_the_packed_executor(tmp_path_factory, data, net, pipeline, raw):
    # The testbench's expected values are lgn.compile.packed.run's; 0 mismatches in a simulator
    # means its results equal the packed executor's on every drawn vector.
    raw = raw and net.encoding is not None
    source = net if raw else net.replace(encoding=None)
    inputs = data.draw(features_for(source, min_rows=1, max_rows=60))
    design, testbench, _ = export(net, tmp_path_factory.mktemp("v"), name="dut", pipeline=pipeline,
                                  features=inputs, raw_features=raw)
    for simulator in ("verilator", "iverilog"):
        assert simulate_testbench(testbench, design, simulator) == (simulator, 0)


@pytest.mark.slow
@needs_both
def test_digits_model_in_both_simulators(tmp_path, digits_netlist):
    # A trained net (constants, repeated outputs in the popcounts: the case Verilator 5.006
    # folds wrongly without -fno-const-bit-op-tree), pipelined, 1000 vectors.
    net, x, _ = digits_netlist
    features = np.concatenate([x] * (1000 // len(x) + 1))[:1000]
    design, testbench, _ = export(net, tmp_path, name="digits", pipeline=2, features=features)
    assert simulate_testbench(testbench, design, "verilator") == ("verilator", 0)
    assert simulate_testbench(testbench, design, "iverilog") == ("iverilog", 0)


@needs_both
def test_both_simulators_count_the_same_mismatches(tmp_path, rng):
    net = random_netlist(rng, 8, 40, 3, 4)
    design, testbench, _ = export(net, tmp_path, name="broken", pipeline=1, vectors=200)
    corrupt_first_five_vectors(testbench)
    assert simulate_testbench(testbench, design, "verilator") == ("verilator", 5)
    assert simulate_testbench(testbench, design, "iverilog") == ("iverilog", 5)


@needs_verilator
def test_auto_prefers_verilator():
    assert choose_simulator("auto") == "verilator"
    assert choose_simulator() == "verilator"


@pytest.mark.needs_tool("iverilog", "vvp")
def test_auto_falls_back_to_iverilog_without_verilator(tmp_path, rng, monkeypatch):
    installed_only(monkeypatch, "iverilog", "vvp")
    assert choose_simulator("auto") == "iverilog"
    net = random_netlist(rng, 8, 30, 3, 4)
    design, testbench, _ = export(net, tmp_path, name="m", vectors=50)
    assert simulate_testbench(testbench, design) == ("iverilog", 0)
    with pytest.raises(ToolMissingError, match="verilator not found.*apt install verilator"):
        simulate_testbench(testbench, design, "verilator")


def test_missing_simulators_are_clear_errors(tmp_path, monkeypatch):
    installed_only(monkeypatch)
    with pytest.raises(ToolMissingError, match="neither verilator nor iverilog found"):
        choose_simulator("auto")
    with pytest.raises(ToolMissingError, match="iverilog not found.*Icarus Verilog"):
        choose_simulator("iverilog")
    installed_only(monkeypatch, "iverilog")
    with pytest.raises(ToolMissingError, match="vvp not found"):
        simulate_testbench(tmp_path / "tb.v", tmp_path / "m.v", "iverilog")
    with pytest.raises(HDLError, match="unknown simulator 'modelsim'"):
        choose_simulator("modelsim")


@needs_verilator
def test_verilator_build_failure_is_one_clear_line(tmp_path, rng):
    net = random_netlist(rng, 8, 30, 3, 4)
    design, testbench, _ = export(net, tmp_path, name="m", vectors=20)
    design.write_text(design.read_text().replace("endmodule", "", 1))
    with pytest.raises(ToolFailedError, match=r"verilator --binary on .*m_tb\.v failed: .*Error") as info:
        simulate_testbench(testbench, design, "verilator")
    assert "\n" not in str(info.value)


@needs_verilator
def test_verilator_past_its_timeout_is_a_clear_error(tmp_path, rng):
    net = random_netlist(rng, 8, 30, 3, 4)
    design, testbench, _ = export(net, tmp_path, name="slow", vectors=20)
    with pytest.raises(ToolFailedError, match=r"slow_tb\.v did not finish within 0 s"):
        simulate_testbench(testbench, design, "verilator", timeout=0.01)


@pytest.fixture
def small_netlist_file(tmp_path, rng):
    path = tmp_path / "net.npz"
    formats.save(random_netlist(rng, 10, 60, 3, 4, encoding=True), path)
    return path


@pytest.mark.parametrize("simulator", [
    pytest.param("verilator", marks=needs_verilator),
    pytest.param("iverilog", marks=pytest.mark.needs_tool("iverilog", "vvp")),
])
def test_export_simulate_from_the_cli(tmp_path, small_netlist_file, simulator):
    result = CliRunner().invoke(main, ["export", str(small_netlist_file), "--target", "verilog",
                                       "-o", str(tmp_path / "v"), "--vectors", "50", "--simulate",
                                       "--simulator", simulator])
    assert result.exit_code == 0, result.output
    assert re.search(rf"^{simulator}: model_tb\.v: 0 mismatches \(", result.output, re.M), result.output


@needs_verilator
def test_export_simulate_fails_on_a_mismatch(tmp_path, small_netlist_file, monkeypatch):
    monkeypatch.setattr("lgn.hdl.verilator.run_verilator", lambda *args, **kwargs: 3)
    result = CliRunner().invoke(main, ["export", str(small_netlist_file), "--target", "verilog",
                                       "-o", str(tmp_path / "v"), "--vectors", "20", "--simulate"])
    assert result.exit_code == 1 and "verilator: model_tb.v: 3 mismatches" in result.output, result.output


def test_simulate_needs_the_verilog_target(tmp_path, small_netlist_file):
    result = CliRunner().invoke(main, ["export", str(small_netlist_file), "--target", "c",
                                       "-o", str(tmp_path / "c"), "--simulate"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--simulate runs the Verilog testbench: it needs --target verilog, not c" in result.output
