"""The fast numpy evaluator of ``packed`` against the one-gate-at-a-time definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import random_netlist
from lgn.compile import packed
from test_passes import netlists


def naive_values(net, bits) -> np.ndarray:
    """Every node's value per sample, ``(N, num_nodes)``, one gate at a time."""
    values = np.zeros((len(bits), net.num_nodes), dtype=bool)
    values[:, 1] = True
    values[:, 2 : net.first_gate] = bits
    for g in range(net.num_gates):
        x, y = values[:, net.a[g]].astype(int), values[:, net.b[g]].astype(int)
        values[:, net.first_gate + g] = (int(net.op[g]) >> (3 - 2 * x - y)) & 1
    return values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=netlists(), n=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_evaluate_every_node_matches_the_definition(net, n, seed):
    bits = np.random.default_rng(seed).integers(0, 2, (n, net.num_inputs)).astype(bool)
    nodes = np.arange(net.num_nodes)
    got = packed.unpack(packed.evaluate(net, packed.pack(bits), nodes), n)
    np.testing.assert_array_equal(got, naive_values(net, bits))
    expected = np.stack([naive_values(net, bits)[:, grp].sum(1) for grp in net.groups], axis=1)
    np.testing.assert_array_equal(packed.run(net, bits), expected.reshape(n, net.num_classes))


def test_run_across_chunk_boundaries(rng):
    net = random_netlist(rng, num_inputs=7, num_gates=90, num_classes=2, outputs_per_class=5)
    chunk = packed.CHUNK_WORDS * packed.WORD_BITS
    for n in (0, 1, 63, 64, 65, chunk - 1, chunk, chunk + 1, 2 * chunk + 77):
        bits = rng.integers(0, 2, (n, 7)).astype(bool)
        expected = np.stack([naive_values(net, bits)[:, grp].sum(1) for grp in net.groups], axis=1)
        np.testing.assert_array_equal(packed.run(net, bits), expected.reshape(n, 2))


def test_schedule_is_cached_per_netlist_and_groups_by_level_then_op(rng):
    net = random_netlist(rng, num_gates=200)
    plan = packed.schedule(net)
    assert packed.schedule(net) is plan
    assert packed.schedule(random_netlist(rng, num_gates=200)) is not plan
    keys = [(int(net.level[ids[0] - net.first_gate]), op) for op, ids, _, _ in plan.steps]
    assert keys == sorted(set(keys))
    for (op, ids, a, b), (start, stop), (a_rows, b_rows) in zip(plan.steps, plan.spans, plan.operand_rows):
        assert (net.op[ids - net.first_gate] == op).all()
        np.testing.assert_array_equal(plan.row[ids], np.arange(start, stop))
        np.testing.assert_array_equal(plan.row[a], a_rows)
        np.testing.assert_array_equal(plan.row[b], b_rows)


def test_pack_accepts_0_1_integers(rng):
    bits = rng.integers(0, 2, (100, 5))
    np.testing.assert_array_equal(packed.pack(bits), packed.pack(bits.astype(bool)))


def test_evaluate_rejects_a_schedule_without_row_layout(rng):
    net = random_netlist(rng, num_gates=20)
    bare = packed.Schedule(packed.schedule(net).steps)
    with pytest.raises(ValueError, match="no row layout"):
        packed.evaluate(net, packed.pack(np.zeros((3, net.num_inputs), bool)), plan=bare)
