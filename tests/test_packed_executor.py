"""The fast numpy evaluator of ``packed`` against the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import random_netlist
from lgn.compile import luts, packed, reference
from lgn.compile.netlist import LUT_OP, Netlist
from strategies import mixed_netlists
from test_passes import netlists


def every_node(net):
    """``net`` with every node as an output (one class, no offsets): its outputs are all values."""
    return net.replace(outputs=np.arange(net.num_nodes), num_classes=1, offsets=None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=st.one_of(netlists(), mixed_netlists()), n=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_evaluate_every_node_matches_the_reference(net, n, seed):
    bits = np.random.default_rng(seed).integers(0, 2, (n, net.num_inputs)).astype(bool)
    nodes = np.arange(net.num_nodes)
    got = packed.unpack(packed.evaluate(net, packed.pack(bits), nodes), n)
    np.testing.assert_array_equal(got, reference.outputs(every_node(net), bits))
    np.testing.assert_array_equal(packed.run(net, bits), reference.scores(net, bits))


def test_run_across_chunk_boundaries(rng):
    net = random_netlist(rng, num_inputs=7, num_gates=90, num_classes=2, outputs_per_class=5)
    chunk = packed.CHUNK_WORDS * packed.WORD_BITS
    for n in (0, 1, 63, 64, 65, chunk - 1, chunk, chunk + 1, 2 * chunk + 77):
        bits = rng.integers(0, 2, (n, 7)).astype(bool)
        np.testing.assert_array_equal(packed.run(net, bits), reference.scores(net, bits))


def wide_lut_netlist(rng, num_inputs=9, per_arity=40):
    """Two levels, each of ``per_arity`` LUT-k nodes for every k = 1..6 (random tables with the
    top bit drawn too, fan-ins may repeat and be constants) and 20 gates; every node an output."""
    first = 2 + num_inputs
    ops, a, b, fanin, arity, table = [], [], [], [], [], []
    for _ in range(2):
        below = first + len(ops)
        for k in np.repeat(np.arange(1, 7), per_arity):
            row = rng.integers(0, below, k)
            ops.append(LUT_OP), a.append(row[0]), b.append(row[-1]), arity.append(k)
            fanin.append(np.r_[row, np.zeros(6 - k, int)])
            bits = rng.integers(0, 2, 1 << k)
            table.append(sum(int(v) << i for i, v in enumerate(bits)))
        for _ in range(20):
            ops.append(int(rng.integers(0, 16))), a.append(rng.integers(0, below)), b.append(rng.integers(0, below))
    return Netlist(num_inputs, ops, a, b, np.arange(first + len(ops)), lut_fanin=np.array(fanin),
                   lut_arity=arity, lut_table=np.array(table, np.uint64))


def test_schedule_is_cached_per_netlist_and_groups_by_level_then_op(rng):
    net = random_netlist(rng, num_gates=200)
    plan = packed.schedule(net)
    assert packed.schedule(net) is plan
    assert packed.schedule(random_netlist(rng, num_gates=200)) is not plan
    check_schedule(net, plan)


def test_schedule_groups_luts_by_level_then_arity(rng):
    net = wide_lut_netlist(rng)
    plan = packed.schedule(net)
    check_schedule(net, plan)
    lut_steps = [(int(net.level[ids[0] - net.first_gate]), fanins.shape[0])
                 for op, ids, fanins, _ in plan.steps if op == LUT_OP]
    assert lut_steps == [(level, k) for level in (1, 2) for k in range(1, 7)]


def check_schedule(net, plan):
    """Steps in (level, op, arity) order, each writing its own rows and reading its operands'."""
    lut_row = {int(g): r for r, g in enumerate(net.lut_gates)}
    arity = lambda op, a: a.shape[0] if op == LUT_OP else 0  # noqa: E731
    keys = [(int(net.level[ids[0] - net.first_gate]), op, arity(op, a)) for op, ids, a, _ in plan.steps]
    assert keys == sorted(set(keys))
    for (op, ids, a, b), (start, stop), (a_rows, b_rows) in zip(plan.steps, plan.spans, plan.operand_rows):
        gates_ = ids - net.first_gate
        assert (net.op[gates_] == op).all()
        np.testing.assert_array_equal(plan.row[ids], np.arange(start, stop))
        np.testing.assert_array_equal(plan.row[a], a_rows)
        if op != LUT_OP:
            np.testing.assert_array_equal(plan.row[b], b_rows)
            continue
        rows = [lut_row[g] for g in gates_.tolist()]
        assert (net.lut_arity[rows] == a.shape[0]).all()
        np.testing.assert_array_equal(a.T, net.lut_fanin[rows, : a.shape[0]])
        np.testing.assert_array_equal(b, net.lut_table[rows])


@pytest.mark.parametrize("chunk", [None, 7])
def test_wide_lut_levels_across_lut_chunks(rng, monkeypatch, chunk):
    """Many LUT-k nodes per (level, k), in chunks of 7 nodes or one, against the reference."""
    if chunk:
        monkeypatch.setattr(packed, "LUT_CHUNK_NODES", chunk)
    net = wide_lut_netlist(rng)
    bits = rng.integers(0, 2, (2 * packed.CHUNK_WORDS * packed.WORD_BITS + 5, net.num_inputs)).astype(bool)
    np.testing.assert_array_equal(packed.unpack(packed.evaluate(net, packed.pack(bits)), len(bits)),
                                  reference.outputs(net, bits))
    np.testing.assert_array_equal(packed.run(net, bits), reference.scores(net, bits))


def test_luts_run_natively_not_through_decompose(rng, monkeypatch):
    net = wide_lut_netlist(rng, per_arity=3)
    bits = rng.integers(0, 2, (70, net.num_inputs)).astype(bool)
    expected = reference.scores(net, bits)
    monkeypatch.setattr(luts, "decompose_with_ids", None)
    monkeypatch.setattr(luts, "decompose", None)
    np.testing.assert_array_equal(packed.run(net, bits), expected)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=mixed_netlists(), n=st.integers(0, 150), seed=st.integers(0, 2**32 - 1))
def test_torch_matches_the_reference_on_mixed_netlists(net, n, seed):
    bits = np.random.default_rng(seed).integers(0, 2, (n, net.num_inputs)).astype(bool)
    nodes = np.arange(net.num_nodes)
    words = torch.from_numpy(packed.pack(bits).view(np.int64))
    got = packed.evaluate(net, words, nodes).numpy().view(np.uint64)
    np.testing.assert_array_equal(packed.unpack(got, n), reference.outputs(every_node(net), bits))
    np.testing.assert_array_equal(packed.run(net, torch.from_numpy(bits)).numpy(), reference.scores(net, bits))


def test_pack_accepts_0_1_integers(rng):
    bits = rng.integers(0, 2, (100, 5))
    np.testing.assert_array_equal(packed.pack(bits), packed.pack(bits.astype(bool)))


def test_evaluate_rejects_a_schedule_without_row_layout(rng):
    net = random_netlist(rng, num_gates=20)
    bare = packed.Schedule(packed.schedule(net).steps)
    with pytest.raises(ValueError, match="no row layout"):
        packed.evaluate(net, packed.pack(np.zeros((3, net.num_inputs), bool)), plan=bare)
