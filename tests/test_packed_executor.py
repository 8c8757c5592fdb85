"""The fast numpy evaluator of ``packed`` against the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import random_netlist
from lgn.compile import packed, reference
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
