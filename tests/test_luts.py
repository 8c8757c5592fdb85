"""LUT nodes and offsets: reference semantics, decomposition, packed executor, formats, validate."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgn.compile import formats, luts, packed, reference
from lgn.compile.luts import decompose, fold_outputs, materialize_offsets
from lgn.compile.netlist import Netlist, NetlistError
from strategies import examples, netlists

TEXT = """inputs 6
g8 = XOR x0 x1
g9 = LUT6 0x123456789abcdef0 x0 x1 x2 x3 x4 x5
g10 = LUT3 0x96 g8 g9 x2
g11 = LUT1 0x1 g10
offsets 2 -1
outputs g8 g9 c1 | g10 g11 c0
"""
BITS = np.array([[i >> j & 1 for j in range(6)] for i in range(64)])


def test_lut_semantics_and_back_ends_agree():
    net = Netlist.from_text(TEXT)
    row = BITS @ (1 << np.arange(6))
    assert np.array_equal(reference.outputs(net, BITS)[:, 1], (0x123456789ABCDEF0 >> row) & 1 == 1)
    expected = reference.scores(net, BITS)
    assert np.array_equal(reference.scores(decompose(net).replace(offsets=net.offsets), BITS), expected)
    assert np.array_equal(packed.run(net, BITS), expected)
    folded = fold_outputs(net)
    assert folded.outputs_per_class == 2 and np.array_equal(reference.scores(folded, BITS), expected)
    plain = materialize_offsets(net)
    assert np.array_equal(reference.predict(plain, BITS), reference.predict(net, BITS))


def test_lut_files_round_trip(tmp_path):
    net = Netlist.from_text(TEXT)
    assert Netlist.from_text(net.to_text(checksum=True)) == net
    formats.save(net, tmp_path / "m.npz")
    assert formats.load(tmp_path / "m.npz") == net


@pytest.mark.parametrize("line, message", [
    ("g8 = LUT7 0x1 x0 x1 x2 x3 x4 x5 x0", "outside 1..6"),
    ("g8 = LUT2 0x1f x0 x1", "bits beyond"),
    ("g8 = LUT2 0x1 x0 g8", "must be earlier"),
])
def test_validate_rejects_bad_luts(line, message):
    with pytest.raises(NetlistError, match=message):
        Netlist.from_text(f"inputs 6\n{line}\noutputs g8\n")


def _back_ends():
    return {"BLIF": formats.to_blif, "AIGER": formats.to_aiger}


@pytest.mark.parametrize("back_end", ["BLIF", "AIGER"])
def test_blif_and_aiger_take_luts_and_refuse_offsets_in_one_line(back_end):
    """BLIF writes LUTs natively, AIGER through decompose; both refuse offsets (scores are counts)."""
    emit = _back_ends()[back_end]
    net = Netlist.from_text(TEXT)
    with pytest.raises(NetlistError, match="does not compile class score offsets .*materialize_offsets"):
        emit(net)
    emit(net.replace(offsets=None))
    emit(materialize_offsets(net))  # what the message says to do works


def test_blif_lut_cover_golden():
    net = Netlist.from_text("inputs 3\ng5 = LUT3 0x96 x2 x0 x0\ng6 = LUT2 0xf x0 x1\n"
                            "g7 = LUT3 0xe8 x0 c1 x1\noutputs g5 g6 g7\n")
    assert formats.to_blif(net).split(".outputs")[1].split("\n")[1:-1] == [
        ".names c1", "1", ".names x0 x2 n5", "01 1", "11 1", ".names n6", "1",
        ".names c1 x0 x1 n7", "110 1", "101 1", "011 1", "111 1",
        ".names n5 class0_0", "1 1", ".names n6 class0_1", "1 1", ".names n7 class0_2", "1 1", ".end"]


@given(net=netlists(max_gates=120))
@examples(200)
def test_vectorized_levels_equal_the_per_gate_definition(net):
    assert np.array_equal(net.level, net._level_by_loop())


def test_levels_of_luts_and_of_a_chain_deeper_than_the_vector_rounds():
    net = Netlist.from_text(TEXT)
    assert net.level.tolist() == net._level_by_loop().tolist() == [1, 1, 2, 3]
    n = 600  # deeper than _VECTOR_ROUNDS: the per-gate loop finishes it
    chain = Netlist(1, np.full(n, 6), np.r_[2, np.arange(3, 2 + n)], np.zeros(n, int), [1 + n],
                    num_classes=1)
    assert chain.level.tolist() == list(range(1, n + 1))


@pytest.mark.parametrize("table", [0xF23456789ABCDEF1, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0x1])
def test_lut6_with_every_table_bit_including_the_top_one(table):
    net = Netlist.from_text(f"inputs 6\ng8 = LUT6 {table:#x} x0 x1 x2 x3 x4 x5\noutputs g8 | x0\n")
    expected = np.array([(table >> i) & 1 for i in range(64)])
    assert np.array_equal(reference.outputs(net, BITS)[:, 0], expected == 1)
    assert np.array_equal(packed.run(net, BITS)[:, 0], expected)
    assert np.array_equal(reference.outputs(decompose(net), BITS)[:, 0], expected == 1)
    assert Netlist.from_text(net.to_text()) == net


def _remap(table: int, k: int, old_row) -> int:
    """The k-input table whose row r is row old_row(r) of ``table``: the definition, row by row."""
    return sum(((table >> old_row(r)) & 1) << r for r in range(1 << k))


@given(data=st.data(), k=st.integers(1, 6))
@examples(300)
def test_table_algebra_equals_its_row_by_row_definition(data, k):
    table = data.draw(st.integers(0, (1 << (1 << k)) - 1))
    j = data.draw(st.integers(0, k - 1))
    low = (1 << j) - 1
    assert luts.flip(table, k, j) == _remap(table, k, lambda r: r ^ (1 << j))
    assert luts.depends(table, k, j) == (_remap(table, k, lambda r: r & ~(1 << j))
                                         != _remap(table, k, lambda r: r | (1 << j)))
    order = data.draw(st.permutations(range(k)))
    assert luts.permute(table, k, order) == _remap(
        table, k, lambda r: sum(((r >> p) & 1) << order[p] for p in range(k)))
    if k > 1:
        value, i = data.draw(st.integers(0, 1)), data.draw(st.integers(0, k - 1))
        assert luts.restrict(table, k, j, value) == _remap(
            table, k - 1, lambda r: (r & low) | (value << j) | ((r >> j) << (j + 1)))
        if i < j:
            assert luts.merge(table, k, i, j) == _remap(
                table, k - 1, lambda r: (r & low) | (((r >> i) & 1) << j) | ((r >> j) << (j + 1)))


@given(data=st.data(), k=st.integers(1, 6))
@examples(200)
def test_reduce_lut_keeps_the_function_on_its_support(data, k):
    table = data.draw(st.integers(0, (1 << (1 << k)) - 1))
    fanins = data.draw(st.lists(st.integers(0, 5), min_size=k, max_size=k))  # nodes 0, 1: constants
    reduced, support = luts.reduce_lut(table, fanins)
    assert support == sorted(set(support)) and all(v >= 2 for v in support)
    assert all(luts.depends(reduced, len(support), j) for j in range(len(support)))
    merged, distinct = luts.sort_fanins(table, fanins)
    assert distinct == sorted(set(fanins))
    for x in range(16):  # nodes 2..5 take the bits of x
        value = {0: 0, 1: 1, **{2 + i: x >> i & 1 for i in range(4)}}
        row = lambda nodes: sum(value[v] << j for j, v in enumerate(nodes))  # noqa: E731
        assert (reduced >> row(support)) & 1 == (table >> row(fanins)) & 1 == (merged >> row(distinct)) & 1
