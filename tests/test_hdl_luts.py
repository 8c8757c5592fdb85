"""Native k-input LUT nodes and class score offsets in the hardware back end.

Netlists mixing two-input gates, LUT-1..6 nodes, constant outputs and offsets are drawn here (a
local strategy), simulated in Amaranth and run as Verilog under iverilog, and compared with
:mod:`lgn.compile.reference`; LUT-6 nodes map to one LUT6 each under Yosys ``synth_xilinx``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import examples

from lgn.compile import packed
from lgn.compile import reference as ref
from lgn.compile.netlist import LUT_OP, MAX_LUT_INPUTS, Netlist
from lgn.hdl import describe, export, latency, lint, run_testbench, simulate, to_verilog
from lgn.hdl.core import NetlistCore
from lgn.hdl.stream import class_counts, popcount_stages
from lgn.hdl.popcount import popcount_levels

needs_iverilog = pytest.mark.needs_tool("iverilog", "vvp")
needs_verilator = pytest.mark.needs_tool("verilator")
needs_yosys = pytest.mark.needs_tool("yosys")


def lut_netlist(num_inputs: int, nodes: list, outputs, num_classes: int, offsets=None) -> Netlist:
    """A netlist from ``nodes``: ``(op, a, b)`` two-input gates or ``(table, fanins)`` LUTs."""
    op, a, b, fanin, arity, table = [], [], [], [], [], []
    for node in nodes:
        if len(node) == 3:
            op.append(node[0]), a.append(node[1]), b.append(node[2])
            continue
        word, inputs = node
        op.append(LUT_OP), a.append(inputs[0]), b.append(inputs[-1])
        fanin.append(list(inputs) + [0] * (MAX_LUT_INPUTS - len(inputs)))
        arity.append(len(inputs))
        table.append(word)
    return Netlist(num_inputs, np.array(op, np.uint8), a, b, outputs, num_classes=num_classes,
                   lut_fanin=np.array(fanin, np.int64).reshape(-1, MAX_LUT_INPUTS),
                   lut_arity=np.array(arity, np.uint8), lut_table=np.array(table, np.uint64),
                   offsets=offsets)


@st.composite
def mixed_netlists(draw, max_inputs: int = 10, max_nodes: int = 30, max_classes: int = 5,
                   max_outputs_per_class: int = 8, offsets: bool = True) -> Netlist:
    """Two-input gates and LUT-1..6 nodes over inputs, constants and earlier nodes; outputs may
    repeat nodes and read constants; class offsets (negative ones too) or none."""
    num_inputs = draw(st.integers(1, max_inputs))
    nodes = []
    for g in range(draw(st.integers(0, max_nodes))):
        source = st.integers(0, 1 + num_inputs + g)
        if draw(st.booleans()):
            k = draw(st.integers(1, MAX_LUT_INPUTS))
            word = draw(st.one_of(st.integers(0, (1 << (1 << k)) - 1), st.sampled_from(
                [0, (1 << (1 << k)) - 1, 1 << ((1 << k) - 1)])))
            nodes.append((word, draw(st.lists(source, min_size=k, max_size=k))))
        else:
            nodes.append((draw(st.integers(0, 15)), draw(source), draw(source)))
    num_classes = draw(st.integers(1, max_classes))
    per_class = draw(st.integers(1, max_outputs_per_class))
    num_nodes = 2 + num_inputs + len(nodes)
    outputs = draw(st.lists(st.integers(0, num_nodes - 1), min_size=num_classes * per_class,
                            max_size=num_classes * per_class))
    offset = None
    if offsets and draw(st.booleans()):
        offset = draw(st.lists(st.integers(-6, 9), min_size=num_classes, max_size=num_classes))
    return lut_netlist(num_inputs, nodes, outputs, num_classes, offset)


def input_bits(data, net: Netlist, max_rows: int = 40) -> np.ndarray:
    rows = data.draw(st.integers(1, max_rows))
    seed = data.draw(st.integers(0, 2**32 - 1))
    bits = np.random.default_rng(seed).random((rows, net.num_inputs)) < 0.5
    return np.concatenate([bits, np.zeros((1, net.num_inputs), bool),
                           np.ones((1, net.num_inputs), bool)])


@examples(40)
@given(data=st.data(), net=mixed_netlists(), pipeline=st.integers(0, 3), stalls=st.booleans(),
       group=st.sampled_from([0, 2, 3, 6]))
def test_amaranth_simulation_equals_the_reference(data, net, pipeline, stalls, group):
    net.validate()
    bits = input_bits(data, net)
    classes, scores = simulate(net, bits, pipeline, raw_features=False,
                               stall_seed=5 if stalls else None, popcount_group=group)
    np.testing.assert_array_equal(scores, ref.scores(net, bits))
    np.testing.assert_array_equal(classes, ref.predict(net, bits))


@needs_iverilog
@examples(8)
@given(data=st.data(), net=mixed_netlists(max_nodes=24), pipeline=st.sampled_from([0, 1, 2]))
def test_iverilog_runs_equal_the_reference(tmp_path_factory, data, net, pipeline):
    # The exported testbench checks classes and scores on every vector; its expected values come
    # from the packed executor, checked against the reference here first.
    bits = input_bits(data, net, 30)
    np.testing.assert_array_equal(packed.run(net, bits), ref.scores(net, bits))
    workdir = tmp_path_factory.mktemp("luts")
    design, testbench, _ = export(net, workdir, name="dut", pipeline=pipeline, features=bits,
                                  raw_features=False)
    assert run_testbench(testbench, design) == 0


def test_constants_never_enter_the_popcounts():
    # x0 NOR x1, a FALSE gate and an all-1 LUT; class 0 reads two constant-1s, class 1 a 0.
    net = lut_netlist(2, [(8, 2, 3), (0, 2, 3), (0b1111, [2, 3])], [4, 1, 6, 5, 2, 0, 5, 3],
                      num_classes=2, offsets=[0, -2])
    variable, base = class_counts(net)
    assert [v.tolist() for v in variable] == [[0], [4, 7]]
    assert base.tolist() == [2, -2]
    bits = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], bool)
    classes, scores = simulate(net, bits, 1, raw_features=False)
    np.testing.assert_array_equal(scores, ref.scores(net, bits))
    np.testing.assert_array_equal(classes, ref.predict(net, bits))
    report = describe(net)
    assert "two's complement" in dict((p[0], p[3]) for p in report.ports)["out_scores"]


def test_offsets_cost_no_stage_when_the_tree_has_room():
    # 4 outputs per class, one of them constant 1 in class 0: the offset joins the tree as a leaf.
    net = lut_netlist(3, [(6, 2, 3), (0x96, [2, 3, 4])], [5, 6, 2, 1, 5, 6, 3, 4], 2)
    assert popcount_stages(net, 0) == popcount_levels(4, 0)
    # all four outputs need logic and an offset of 1: 5 leaves need one more adder level
    full = net.replace(outputs=[5, 6, 2, 3, 5, 6, 3, 4], offsets=[1, 0])
    assert popcount_stages(full, 0) == popcount_levels(4, 0) + 1
    assert latency(full, 1, 0) == full.depth + popcount_levels(4, 0) + 1 + 1
    bits = np.random.default_rng(0).random((16, 3)) < 0.5
    for netlist in (net, full):
        for pipeline in (0, 1, 2):
            _, scores = simulate(netlist, bits, pipeline, raw_features=False, popcount_group=0)
            np.testing.assert_array_equal(scores, ref.scores(netlist, bits))


@needs_verilator
def test_lut_netlists_lint_clean(tmp_path):
    rng = np.random.default_rng(3)
    nodes = []
    for g in range(30):
        k = 1 + g % 6
        nodes.append((int(rng.integers(0, 1 << (1 << k), dtype=np.uint64)) if k < 6
                      else int(rng.integers(0, 2**63)) | (1 << 63),
                      rng.integers(0, 8 + g, k).tolist()))
    net = lut_netlist(6, nodes, rng.integers(2, 38, 12), 3, offsets=[2, -1, 0])
    for pipeline in (0, 2):
        path = tmp_path / f"p{pipeline}" / "luts.v"
        path.parent.mkdir()
        path.write_text(to_verilog(net, "luts", pipeline))
        lint(path)


def _depends_on_every_input(table: int, k: int) -> bool:
    rows = 1 << k
    bits = [(table >> r) & 1 for r in range(rows)]
    return all(any(bits[r] != bits[r ^ (1 << j)] for r in range(rows)) for j in range(k))


@needs_yosys
def test_each_lut6_node_maps_to_one_lut6():
    # 40 LUT-6 nodes on the inputs, then 10 LUT-6 nodes on those: every node is a core output, so
    # Yosys synth_xilinx (the flow of lgn synth) keeps each and needs exactly one LUT6 for it.
    from lgn.hdl.synth import _summarize, _synthesize
    from lgn.hdl.verilog import component_verilog
    import tempfile
    from pathlib import Path

    rng = np.random.default_rng(11)
    nodes, first = [], 2 + 24
    while len(nodes) < 50:
        table = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        if not _depends_on_every_input(table, 6):
            continue
        low, high = (2, first) if len(nodes) < 40 else (first, first + 40)
        nodes.append((table, rng.choice(np.arange(low, high), 6, replace=False).tolist()))
    net = lut_netlist(24, nodes, np.arange(first, first + 50), 1)
    with tempfile.TemporaryDirectory() as tmp:
        mapped = _synthesize(component_verilog(NetlistCore(net), "core"), "core", "xilinx",
                             Path(tmp), 600)
    cells, sizes, luts, _, _, depth = _summarize(mapped, "core")
    assert sizes == {6: 50} and luts == 50, cells
    assert depth == 2


@needs_yosys
@pytest.mark.parametrize("offsets", [None, [3, 0, 1]])
def test_the_synthesis_table_lookup_map_keeps_the_function(tmp_path, offsets):
    # lgn synth rewrites every one-bit table lookup (LUT nodes, the popcount's offset tail) as a
    # mux tree before synth_*; Yosys' SAT solver proves the rewritten design equal to the one read.
    from lgn.hdl.synth import _TABLE_LOOKUPS
    from lgn.hdl.tools import find_yosys, render, run_tool

    rng = np.random.default_rng(5)
    nodes, ids = [], list(range(2, 2 + 10))
    for k in [1, 2, 3, 4, 5, 6] * 4 + [0] * 6:
        if k == 0:
            nodes.append((int(rng.integers(0, 16)), *rng.choice(ids, 2).tolist()))
        else:
            table = int.from_bytes(rng.bytes(8), "little") % (1 << (1 << k))
            nodes.append((table, rng.choice(ids, k, replace=False).tolist()))
        ids.append(2 + 10 + len(nodes) - 1)
    net = lut_netlist(10, nodes, ids[-12:], 3, offsets)
    (tmp_path / "design.v").write_text(to_verilog(net, "model", pipeline=0))
    (tmp_path / "table_lookup.v").write_text(render("hdl_table_lookup.v.j2", {}))
    script = ["read_verilog design.v", "proc", "select -assert-min 16 t:$shiftx r:Y_WIDTH=1 %i",
              "design -save gold", *_TABLE_LOOKUPS, "proc",
              "select -assert-none t:$shiftx r:Y_WIDTH=1 %i", "select -assert-none t:$bmux",
              "design -stash gate", "design -copy-from gold -as gold model",
              "design -copy-from gate -as gate model", "miter -equiv -flatten -make_assert gold gate miter",
              "hierarchy -top miter", "sat -verify -prove-asserts miter"]
    (tmp_path / "flow.ys").write_text("\n".join(script) + "\n")
    done = run_tool(find_yosys() + ["-q", "-s", "flow.ys"], "yosys", 600, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
