"""Amaranth components against the reference interpreter (and the packed executor), simulated."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from conftest import random_netlist
from hypothesis import given
from hypothesis import strategies as st
from strategies import examples, feature_pools, features_for, netlists, threshold_edges

from lgn.compile import packed
from lgn.compile import reference as ref
from lgn.compile.netlist import FEATURE_DTYPES, Netlist, ThermometerEncoding
from lgn.hdl import (Argmax, Classifier, HDLError, InvalidNameError, PopCount, describe, latency,
                     sanitize_name, simulate)
from lgn.hdl.verilog import test_vectors as make_vectors


def reference(netlist, inputs, raw=None):
    raw = netlist.encoding is not None if raw is None else raw
    bits = ref.encode(netlist, inputs) if raw else np.asarray(inputs) != 0
    scores = ref.scores(netlist, bits)
    np.testing.assert_array_equal(packed.run(netlist, bits), scores)
    return scores.argmax(axis=1), scores


def check(netlist, inputs, pipeline, stall_seed=None, raw=None, group=6):
    classes, scores = simulate(netlist, inputs, pipeline, raw, stall_seed=stall_seed,
                               popcount_group=group)
    want_classes, want_scores = reference(netlist, inputs, raw)
    np.testing.assert_array_equal(scores, want_scores)
    np.testing.assert_array_equal(classes, want_classes)


@examples(30)
@given(data=st.data(), net=netlists(max_inputs=12, max_gates=50, max_classes=7,
                                    max_outputs_per_class=14),
       pipeline=st.integers(0, 3), stalls=st.booleans(), group=st.sampled_from([0, 2, 3, 4, 5, 6]))
def test_drawn_netlists_on_input_bits(data, net, pipeline, stalls, group):
    # The bits port, also of netlists that have an encoding (raw_features=False).
    bits = data.draw(features_for(net.replace(encoding=None), min_rows=1, max_rows=30))
    check(net, bits, pipeline, stall_seed=7 if stalls else None, raw=False, group=group)


@examples(30)
@given(data=st.data(), net=netlists(max_inputs=16, max_gates=30, encoding=True, max_features=20),
       pipeline=st.integers(0, 2), stalls=st.booleans())
def test_drawn_netlists_on_raw_features(data, net, pipeline, stalls):
    # The comparators of every feature type, thresholds at and beside the limits.
    features = data.draw(features_for(net, min_rows=1, max_rows=30))
    check(net, features, pipeline, stall_seed=3 if stalls else None)


@pytest.mark.slow
@examples(150)
@given(data=st.data(), net=netlists(max_inputs=40, max_gates=80, max_classes=12,
                                    max_outputs_per_class=30),
       pipeline=st.integers(0, 4), group=st.sampled_from([0, 2, 3, 4, 5, 6]))
def test_drawn_netlists_many(data, net, pipeline, group):
    raw = net.encoding is not None and data.draw(st.booleans())
    inputs = data.draw(features_for(net if raw else net.replace(encoding=None), min_rows=1,
                                    max_rows=80))
    check(net, inputs, pipeline, stall_seed=1, raw=raw, group=group)


@pytest.mark.parametrize("dtype", FEATURE_DTYPES)
def test_export_test_vectors_match(rng, dtype):
    # The random vectors lgn.hdl.export draws for its testbench, through the comparators.
    net = random_netlist(rng, 12, 40, 3, 4)
    enc = ThermometerEncoding(4, rng.integers(0, 4, 12), rng.uniform(-9, 9, 12), dtype)
    net = net.replace(encoding=enc)
    check(net, make_vectors(net, 24, 5), 1, stall_seed=5)


def test_every_op_constants_and_input_outputs(rng):
    # gate i applies op i to (x0, x1); outputs also read constants and inputs directly
    net = Netlist(2, np.arange(16), [2] * 16, [3] * 16,
                  list(range(4, 20)) + [0, 1, 2, 3], num_classes=4)
    inputs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=bool)
    for pipeline in (0, 1):
        check(net, inputs, pipeline)


def test_deep_chain_pipelined(rng):
    depth = 40
    ops = rng.integers(0, 16, depth)
    a = [2] + list(range(5, 5 + depth - 1))
    b = [3] + list(rng.integers(2, 5, depth - 1))
    net = Netlist(3, ops, a, b, [4 + depth, 4 + depth // 2, 2], num_classes=3)
    assert net.depth == depth
    inputs = rng.random((16, 3)) < 0.5
    for pipeline in (0, 1, 7):
        check(net, inputs, pipeline, stall_seed=3)


def test_digits_model_matches_packed(digits_netlist):
    net, x, _ = digits_netlist
    check(net, x[:40], 0)
    check(net, x[40:80], 1, stall_seed=0, group=0)


@pytest.mark.parametrize("dtype", FEATURE_DTYPES)
def test_encoder_at_the_limits_of_every_feature_type(rng, dtype):
    # One class per input bit (the bit is its only output), so the scores show every comparator.
    edges = threshold_edges(dtype)
    net = Netlist(len(edges), [], [], [], 2 + np.arange(len(edges)), num_classes=len(edges),
                  encoding=ThermometerEncoding(4, np.arange(len(edges)) % 4, edges, dtype))
    pools = feature_pools(net)
    features = np.stack([pool[rng.integers(0, len(pool), 120)] for pool in pools], axis=1)
    check(net, features, 0)


@pytest.mark.parametrize("per_class", [16, 63, 64, 256])
def test_scores_at_and_beside_powers_of_two(rng, per_class):
    groups = [[1] * per_class, [1] * (per_class - 1) + [2], (2 + np.arange(per_class) % 3).tolist()]
    net = Netlist(3, [], [], [], np.concatenate(groups), num_classes=3)
    check(net, rng.random((12, 3)) < 0.5, 2, group=6)


def test_latency_counts_register_rows():
    net = random_netlist(np.random.default_rng(0), 4, 30, 5, 14)
    # popcount of 14 bits: 4 adder levels, or compressors of 6 then 2 adder levels (3 groups);
    # argmax of 5 classes: 3 levels
    for group, popcount in ((0, 4), (6, 3), (4, 3), (2, 4)):
        stages = net.depth + popcount + 3
        assert latency(net, 0, group) == 0
        assert latency(net, 1, group) == stages
        assert latency(net, 4, group) == stages // 4


def _run(component, drive):
    sim = Simulator(component)
    out = []

    async def bench(ctx):
        out.extend(drive(ctx))
        await ctx.delay(1e-6)

    sim.add_testbench(bench)
    sim.run()
    return out


def test_argmax_ties_go_to_lowest_index():
    dut = Argmax(5, 3)
    cases = [[1, 4, 4, 2, 4], [7, 7, 7, 7, 7], [0, 0, 0, 0, 1], [3, 5, 1, 5, 0], [2, 1, 0, 6, 6]]

    def drive(ctx):
        for scores in cases:
            ctx.set(dut.scores, scores)
            yield ctx.get(dut.index)

    assert _run(dut, drive) == [int(np.argmax(c)) for c in cases]


@pytest.mark.parametrize("width, group", [(7, 0), (7, 6), (9, 4), (6, 6), (8, 3), (5, 2)])
def test_popcount_exhaustive(width, group):
    dut = PopCount(width, group=group)

    def drive(ctx):
        for value in range(1 << width):
            ctx.set(dut.bits, value)
            yield ctx.get(dut.count)

    assert _run(dut, drive) == [bin(v).count("1") for v in range(1 << width)]


@pytest.mark.parametrize("group", [1, 7, -1, 2.0])
def test_bad_popcount_group(group):
    with pytest.raises(HDLError, match="group"):
        PopCount(8, group=group)


@pytest.mark.parametrize("name, clean", [("digits", "digits"), ("small", "small_net"),
                                         ("module", "module_net"), ("7seg", "lgn_7seg"),
                                         ("my-model.v2", "my_model_v2"), ("always_ff", "always_ff_net")])
def test_sanitize_name(name, clean):
    assert sanitize_name(name) == clean


@pytest.mark.parametrize("name", ["", "---", "  ", "x" * 200, None])
def test_invalid_names(name):
    with pytest.raises(InvalidNameError):
        sanitize_name(name)


@pytest.mark.parametrize("pipeline", [-1, 1.5, "2", True])
def test_bad_pipeline(pipeline):
    net = random_netlist(np.random.default_rng(0))
    with pytest.raises(HDLError, match="pipeline"):
        describe(net, pipeline=pipeline)
    with pytest.raises(HDLError, match="pipeline"):
        Classifier(net, pipeline)


def test_raw_features_need_an_encoding():
    net = random_netlist(np.random.default_rng(0))
    with pytest.raises(HDLError, match="encoding"):
        describe(net, raw_features=True)


def test_bits_mode_on_encoded_netlist(rng):
    net = random_netlist(rng, 10, 40, 3, 4, encoding=True)
    check(net, rng.random((20, 10)) < 0.5, 1, raw=False)


def test_classifier_composes_in_an_amaranth_design(digits_netlist):
    """The README example: a parent design drives the classifier and reads its result."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    net, x, _ = digits_netlist

    class Board(wiring.Component):
        def __init__(self):
            super().__init__({"pixels": In(64 * 8), "pixels_valid": In(1), "digit": Out(4),
                              "digit_valid": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.classifier = clf = Classifier(net, pipeline=2)
            m.d.comb += [clf.features.eq(self.pixels), clf.in_valid.eq(self.pixels_valid),
                         clf.out_ready.eq(1), self.digit.eq(clf.out_class),
                         self.digit_valid.eq(clf.out_valid)]
            return m

    board = Board()
    sim = Simulator(board)
    sim.add_clock(1e-6)
    got = []
    pixels = [sum(int(v) << (8 * j) for j, v in enumerate(row)) for row in x[:12].tolist()]

    async def bench(ctx):
        for cycle in range(len(pixels) + 12):  # one sample per cycle, then drain the pipeline
            ctx.set(board.pixels, pixels[min(cycle, len(pixels) - 1)])
            ctx.set(board.pixels_valid, int(cycle < len(pixels)))
            if ctx.get(board.digit_valid):
                got.append(ctx.get(board.digit))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    want, _ = reference(net, x[:12])
    assert got == want.tolist()
