"""Passes keep the function (exhaustively up to 12 input bits) and have their structural effect."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.compile import luts, packed, reference
from lgn.compile.netlist import LUT_OP, Netlist
from lgn.compile.passes import (OFFSET_PASSES, PASSES, eliminate_dead, fold_outputs, hash_structure,
                                optimize, push_negations, simplify)
from lgn.compile.report import describe
from lgn.nn import gates
from strategies import examples, mixed_netlists

ALL_PASSES = PASSES + (optimize, fold_outputs)
EXHAUSTIVE_BITS = 12


@st.composite
def netlists(draw, max_inputs: int = 10, max_gates: int = 60):
    """Random netlists with all 16 ops, constant operands and outputs, duplicated gates,
    deep chains, NOT chains and unused inputs."""
    num_inputs = draw(st.integers(0, max_inputs))
    num_gates = draw(st.integers(0, max_gates))
    first = 2 + num_inputs
    op, a, b = [], [], []
    for g in range(num_gates):
        node = first + g
        kind = draw(st.sampled_from(["random", "random", "chain", "copy", "swapped", "not", "const"]))
        if kind == "copy" and g:  # an exact duplicate of an earlier gate
            k = draw(st.integers(0, g - 1))
            op.append(op[k]), a.append(a[k]), b.append(b[k])
            continue
        if kind == "swapped" and g:  # the swapped-input twin of an earlier gate
            k = draw(st.integers(0, g - 1))
            op.append(gates.swap_inputs(op[k])), a.append(b[k]), b.append(a[k])
            continue
        x = draw(st.integers(0, node - 1))
        y = draw(st.integers(0, node - 1))
        if kind == "chain" and g:
            x = node - 1
        elif kind == "const":
            y = draw(st.integers(0, 1))
        gate = draw(st.sampled_from([gates.NOT_A, gates.NOT_B])) if kind == "not" else draw(st.integers(0, 15))
        op.append(gate), a.append(x), b.append(y)
    num_classes = draw(st.integers(1, 4))
    per_class = draw(st.integers(1, 5))
    outputs = draw(st.lists(st.integers(0, first + num_gates - 1),
                            min_size=num_classes * per_class, max_size=num_classes * per_class))
    return Netlist(num_inputs, np.array(op, dtype=np.uint8), a, b, outputs, num_classes=num_classes,
                   tau=draw(st.sampled_from([1.0, 2.5])), meta={"source": "hypothesis"})


def input_bits(num_inputs: int, rng: np.random.Generator) -> np.ndarray:
    """Every input combination up to EXHAUSTIVE_BITS inputs, else 4096 random samples."""
    if num_inputs <= EXHAUSTIVE_BITS:
        rows = np.arange(2**num_inputs)
        return ((rows[:, None] >> np.arange(num_inputs)) & 1).astype(bool)
    return rng.integers(0, 2, (4096, num_inputs)).astype(bool)


def assert_same_function(before: Netlist, after: Netlist) -> None:
    bits = input_bits(before.num_inputs, np.random.default_rng(0))
    np.testing.assert_array_equal(reference.scores(after, bits), reference.scores(before, bits))
    assert (after.num_inputs, after.num_classes, after.tau) == (before.num_inputs, before.num_classes, before.tau)
    assert after.meta == before.meta and after.encoding is before.encoding
    assert after.num_gates <= before.num_gates
    # a pass may hand its result the levels it computed: they must be the definition's
    np.testing.assert_array_equal(after.level, after._level_by_loop())


def gate_nodes(net: Netlist) -> np.ndarray:
    return net.first_gate + np.arange(net.num_gates)


def lut_rows(net: Netlist) -> dict[int, tuple[int, list[int]]]:
    """``{node: (table, fan-ins)}`` of the LUT nodes."""
    return {net.first_gate + g: (int(t), list(f)) for (g, f), t in
            zip(net.fanins().items(), net.lut_table.tolist())}


def operands(net: Netlist) -> set[int]:
    """Every node some gate or LUT reads."""
    return set(net.a.tolist()) | set(net.b.tolist()) | {v for _, f in lut_rows(net).values() for v in f}


def assert_simplified(net: Netlist) -> None:
    """No constant operand, no NOT operand, no repeated or ignored operand except in ``NOT_A x x``;
    every LUT has 3..6 distinct sorted fan-ins that its table depends on."""
    assert (net.a >= 2).all() and (net.b >= 2).all(), "a gate reads a constant"
    is_not = net.op == gates.NOT_A
    nots = set(gate_nodes(net)[is_not].tolist())
    assert not nots & operands(net), "a gate reads a NOT gate"
    assert (net.a[is_not] == net.b[is_not]).all()
    two_input = ~is_not
    assert (net.a[two_input] != net.b[two_input]).all()
    unary = [gates.FALSE, gates.TRUE, gates.A, gates.B, gates.NOT_B]
    assert not np.isin(net.op, unary).any(), "a gate ignores an operand"
    for node, (table, fanins) in lut_rows(net).items():
        assert 3 <= len(fanins) and fanins == sorted(set(fanins)) and fanins[0] >= 2, (node, fanins)
        assert all(luts.depends(table, len(fanins), j) for j in range(len(fanins))), node


def assert_negations_pushed(net: Netlist) -> None:
    """Every NOT gate reads an input bit, a constant, a NOT gate or an output node."""
    nots = np.isin(net.op, [gates.NOT_A, gates.NOT_B])
    operand = np.where(net.op == gates.NOT_B, net.b, net.a)[nots]
    foldable = set(gate_nodes(net)[~nots].tolist()) - set(net.outputs.tolist())
    assert not foldable & set(operand.tolist()), "a NOT gate negates a foldable gate"


def assert_hashed(net: Netlist) -> None:
    assert (net.a <= net.b).all()
    two_input = net.op != LUT_OP
    keys = set(zip(net.op[two_input].tolist(), net.a[two_input].tolist(), net.b[two_input].tolist()))
    assert len(keys) == two_input.sum(), "two gates share (op, a, b)"
    rows = lut_rows(net).values()
    assert all(f == sorted(set(f)) for _, f in rows), "a LUT's fan-ins repeat or are unsorted"
    assert len({(t, *f) for t, f in rows}) == net.num_luts, "two LUTs share table and fan-ins"


def assert_no_dead(net: Netlist) -> None:
    live = np.zeros(net.num_nodes, dtype=bool)
    live[net.outputs] = True
    fanins = net.fanins()
    for g in reversed(range(net.num_gates)):  # the definition, one gate at a time
        if live[net.first_gate + g]:
            live[list(fanins.get(g, (net.a[g], net.b[g])))] = True
    assert live[net.first_gate:].all(), "a gate reaches no output"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=netlists(max_inputs=EXHAUSTIVE_BITS))
def test_every_pass_keeps_the_function_exhaustively(net):
    for run_pass in ALL_PASSES:
        assert_same_function(net, run_pass(net))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=netlists(max_inputs=40, max_gates=150))
def test_every_pass_keeps_the_function_on_samples(net):
    for run_pass in ALL_PASSES:
        assert_same_function(net, run_pass(net))


@settings(max_examples=100, deadline=None)
@given(net=netlists())
def test_simplify_removes_constants_negations_and_ignored_operands(net):
    assert_simplified(simplify(net))


@settings(max_examples=100, deadline=None)
@given(net=netlists())
def test_push_negations_leaves_no_foldable_not(net):
    assert_negations_pushed(push_negations(simplify(net)))


@settings(max_examples=100, deadline=None)
@given(net=netlists())
def test_hash_structure_leaves_no_duplicate_gate(net):
    assert_hashed(hash_structure(net))


@settings(max_examples=100, deadline=None)
@given(net=netlists())
def test_eliminate_dead_leaves_only_live_gates(net):
    assert_no_dead(eliminate_dead(net))


@settings(max_examples=100, deadline=None)
@given(net=netlists())
def test_optimize_reaches_a_fixed_point_of_every_pass(net):
    out = optimize(net)
    assert_simplified(out)
    assert_negations_pushed(out)
    assert_hashed(out)
    assert_no_dead(out)
    for run_pass in PASSES:
        assert run_pass(out) is out
    assert optimize(out) is out


def check(run_pass, text: str, expected: str) -> None:
    """Golden test: ``run_pass`` turns ``text`` into ``expected`` and keeps the function."""
    net = Netlist.from_text(text)
    out = run_pass(net)
    assert out.to_text() == expected.lstrip("\n")
    assert_same_function(net, out)


def test_simplify_golden_constants_and_wires():
    check(simplify, """
inputs 2
g4 = AND x0 c1
g5 = XOR x1 c1
g6 = OR g4 g5
g7 = XOR x0 x0
g8 = B g7 g6
outputs g8 g7 x1 c1
""", """
inputs 2
g4 = NOT_A x1 x1
g5 = B_IMPLIES_A x0 x1
outputs g5 c0 x1 c1
""")


def test_simplify_golden_negation_absorption_and_double_negation():
    check(simplify, """
inputs 2
g4 = NOT_A x0 x1
g5 = NOT_B x1 g4
g6 = AND g4 x1
g7 = XOR g5 x0
outputs g6 g7
""", """
inputs 2
g4 = NOT_A x0 x0
g5 = NOT_A_AND_B x0 x1
outputs g5 c0
""")


def test_push_negations_golden():
    check(push_negations, """
inputs 3
g5 = AND x0 x1
g6 = OR g5 x2
g7 = NOT_A g5 g5
g8 = NOT_B x1 g6
g9 = NOT_A x2 x2
g10 = XOR g7 g5
outputs g8 g10 g9 g7
""", """
inputs 3
g5 = NAND x0 x1
g6 = A_AND_NOT_B g5 x2
g7 = NOT_A x2 x2
g8 = XNOR g5 g5
outputs g6 g8 g7 g5
""")


def test_hash_structure_golden_commutative_and_swapped_twins():
    check(hash_structure, """
inputs 2
g4 = AND x0 x1
g5 = AND x1 x0
g6 = A_AND_NOT_B x1 x0
g7 = NOT_A_AND_B x0 x1
g8 = XOR g4 g5
g9 = XOR g6 g7
outputs g8 g9
""", """
inputs 2
g4 = AND x0 x1
g5 = NOT_A_AND_B x0 x1
g6 = XOR g4 g4
g7 = XOR g5 g5
outputs g6 g7
""")


def test_eliminate_dead_golden():
    check(eliminate_dead, """
inputs 3
g5 = AND x0 x1
g6 = OR x1 x2
g7 = XOR g5 x2
g8 = NAND g6 g6
outputs g7 x0
""", """
inputs 3
g5 = AND x0 x1
g6 = XOR g5 x2
outputs g6 x0
""")


def test_optimize_golden_everything_folds_away():
    check(optimize, """
inputs 2
g4 = AND x0 x1
g5 = AND x1 x0
g6 = XOR g4 g5
g7 = OR g6 x0
g8 = NOT_A g7 c0
g9 = NOT_B c1 g8
outputs g9 g6
""", """
inputs 2
outputs x0 c0
""")


def test_passes_return_the_argument_when_nothing_changes():
    net = Netlist.from_text("inputs 2\ng4 = AND x0 x1\noutputs g4\n")
    for run_pass in ALL_PASSES:
        assert run_pass(net) is net


def test_passes_keep_encoding_and_meta(digits_netlist):
    net, _, _ = digits_netlist
    for run_pass in ALL_PASSES:
        out = run_pass(net)
        assert out.encoding is net.encoding and out.meta == net.meta and out.tau == net.tau


def test_optimize_trained_digits_model(digits_netlist):
    net, x, _ = digits_netlist
    out = optimize(net)
    bits = net.encoding.encode(x)
    np.testing.assert_array_equal(packed.run(out, bits), packed.run(net, bits))
    np.testing.assert_array_equal(packed.predict(out, bits), packed.predict(net, bits))
    assert out.num_gates < net.num_gates
    assert_simplified(out)
    assert_negations_pushed(out)
    assert_hashed(out)
    assert_no_dead(out)


def test_describe_golden():
    net = Netlist.from_text("inputs 2\ng4 = AND x0 x1\ng5 = AND x1 x0\ng6 = XOR g4 g5\ng7 = OR g6 x0\n"
                            "outputs g7 g6 | x1 g4\n", meta={"dataset": "toy"})
    assert describe(net) == """\
inputs   2 input bits (no encoding: inputs are bits)
outputs  2 classes x 2 output bits, tau 1 (1 outputs are constants or input bits)
meta     {"dataset": "toy"}

gates        as stored  after optimize
AND                  2               1
XOR                  1               0
OR                   1               0
depth                3               1
total gates          4      1 (-75.0%)
"""


def test_describe_trained_model(digits_netlist):
    net, _, _ = digits_netlist
    small = optimize(net)
    text = describe(net, small)
    assert "192 input bits: thermometer encoding of 64 uint8 features, 3..3 bits per feature" in text
    assert "10 classes x 60 output bits, tau 10" in text
    total = text.splitlines()[-1].split()
    assert total[:4] == ["total", "gates", str(net.num_gates), str(small.num_gates)]
    for name, count in net.gate_counts().items():
        assert any(line.split()[:2] == [name, str(count)] for line in text.splitlines())


@given(net=st.one_of(netlists(max_gates=120), mixed_netlists(max_gates=60)))
@settings(max_examples=100, deadline=None)
def test_schedule_orders_gates_by_level_then_op_and_is_cached(net):
    plan = net.schedule
    assert net.schedule is plan
    order = plan.order.tolist()
    keys = [(int(net.level[g]), int(net.op[g]), g) for g in order]
    assert keys == sorted(keys) and sorted(order) == list(range(net.num_gates))
    assert [gates_.tolist() for gates_ in plan.levels()] == [
        [g for g in order if net.level[g] == d] for d in range(1, net.depth + 1)]
    steps = [(level, op, gates_.tolist()) for level, op, gates_ in plan.steps()]
    assert [g for *_, group in steps for g in group] == order
    assert [(level, op) for level, op, _ in steps] == sorted({key[:2] for key in keys})
    assert all(net.level[g] == level and net.op[g] == op for level, op, group in steps for g in group)


# ------------------------------------------------------------------ LUT nodes and offsets
@given(net=mixed_netlists(max_inputs=EXHAUSTIVE_BITS))
@examples(200)
def test_every_pass_keeps_the_function_of_mixed_netlists_exhaustively(net):
    for run_pass in ALL_PASSES + (lambda n: optimize(n, OFFSET_PASSES),):
        assert_same_function(net, run_pass(net))


@given(net=mixed_netlists())
@examples(150)
def test_passes_have_their_structural_effect_on_mixed_netlists(net):
    assert_simplified(simplify(net))
    assert_negations_pushed(push_negations(simplify(net)))
    assert_hashed(hash_structure(net))
    assert_no_dead(eliminate_dead(net))
    out = optimize(net)
    for check_done in (assert_simplified, assert_negations_pushed, assert_hashed, assert_no_dead):
        check_done(out)
    for run_pass in PASSES:
        assert run_pass(out) is out
    folded = optimize(net, OFFSET_PASSES)
    assert optimize(folded, OFFSET_PASSES) is folded
    no_constants = (folded.groups >= 2).all(axis=1)  # some class has none: no column to fold
    assert no_constants.any() or folded.outputs_per_class == 1, "constant outputs left to fold"


def test_simplify_golden_luts_constants_negations_dead_inputs():
    check(simplify, """
inputs 4
g6 = LUT3 0xe8 x0 c1 x1
g7 = NOT_A x2 x2
g8 = LUT4 0x9669 x3 g7 x0 x1
g9 = LUT3 0xf0 x0 x1 x2
g10 = LUT2 0x1 x3 x3
g11 = LUT4 0xfe00 x3 x2 x1 x0
outputs g6 g8 g9 g10 g11
""", """
inputs 4
g6 = OR x0 x1
g7 = NOT_A x2 x2
g8 = LUT4 0x6996 x0 x1 x2 x3
g9 = NOT_A x3 x3
g10 = LUT4 0xaaa8 x0 x1 x2 x3
outputs g6 g8 x2 g9 g10
""")


def test_hash_structure_golden_luts_with_permuted_and_repeated_fan_ins():
    check(hash_structure, """
inputs 3
g5 = LUT3 0xca x0 x1 x2
g6 = LUT3 0xac x1 x0 x2
g7 = LUT4 0xc00a x0 x1 x2 x2
g8 = LUT2 0x6 g5 g6
outputs g5 g6 g7 g8
""", """
inputs 3
g5 = LUT3 0xca x0 x1 x2
g6 = LUT1 0x0 g5
outputs g5 g5 g5 g6
""")


def test_push_negations_and_eliminate_dead_through_luts():
    check(push_negations, """
inputs 3
g5 = LUT3 0x80 x0 x1 x2
g6 = NOT_A g5 g5
g7 = LUT2 0x8 g6 x0
g8 = LUT2 0x8 g5 x1
outputs g7 g8
""", """
inputs 3
g5 = LUT3 0x7f x0 x1 x2
g6 = LUT2 0x8 g5 x0
g7 = LUT2 0x4 g5 x1
outputs g6 g7
""")
    check(eliminate_dead, """
inputs 3
g5 = AND x0 x1
g6 = LUT3 0x80 x0 g5 x2
g7 = LUT2 0x6 x0 x1
outputs g6
""", """
inputs 3
g5 = AND x0 x1
g6 = LUT3 0x80 x0 g5 x2
outputs g6
""")


def test_fold_outputs_moves_constant_outputs_into_offsets_exactly():
    net = Netlist.from_text("inputs 2\ng4 = AND x0 c0\ng5 = OR x0 c1\noutputs g4 x1 g5 | x0 c1 x1\n")
    out = optimize(net, OFFSET_PASSES)
    assert out.to_text() == "inputs 2\noffsets 1 1\noutputs x1 c0 | x0 x1\n"
    assert out.outputs_per_class == 2 and out.offsets.tolist() == [1, 1]
    assert_same_function(net, out)
    # ties go to the lowest class exactly as before: the scores themselves are equal
    bits = input_bits(2, np.random.default_rng(0))
    np.testing.assert_array_equal(reference.predict(out, bits), reference.predict(net, bits))
