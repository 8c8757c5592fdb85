"""C back end with k-input LUT nodes and class offsets (issue 14): the generated C equals the
reference interpreter on hypothesis-drawn netlists mixing two-input gates and LUT-1..6 nodes with
offsets, in every style, word width and encoder path, with gcc and clang; warning-free under the
strict flags and ASan/UBSan clean."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ladder import STRICT, c_models, check_c_model, encoder_paths, tool
from lgn.compile import c, reference
from lgn.compile.luts import decompose
from lgn.compile.netlist import LUT_OP, MAX_LUT_INPUTS, Netlist
from strategies import examples, features_for, netlists
from test_c import check_sanitized

PATHS = encoder_paths()
FAST = ("-O1",)
EVERY_CONFIG = [{"word_bits": w, "style": s, "chunk_gates": 5} for w in c.WORD_BITS for s in c.STYLES]


def mixed(num_inputs, nodes, outputs, num_classes, offsets=None, encoding=None) -> Netlist:
    """A netlist of ``nodes``: ``(op, a, b)`` two-input gates and ``(fanins, table)`` LUT nodes."""
    op, a, b, fanin, arity, table = [], [], [], [], [], []
    for node in nodes:
        if len(node) == 2:  # a LUT: fan-ins and truth table
            inputs, word = node
            op.append(LUT_OP)
            a.append(inputs[0])
            b.append(inputs[-1])
            fanin.append(list(inputs) + [0] * (MAX_LUT_INPUTS - len(inputs)))
            arity.append(len(inputs))
            table.append(word)
        else:
            op.append(node[0])
            a.append(node[1])
            b.append(node[2])
    return Netlist(num_inputs, np.array(op, np.uint8), a, b, outputs, num_classes=num_classes,
                   encoding=encoding, lut_fanin=np.array(fanin, np.int64).reshape(-1, MAX_LUT_INPUTS),
                   lut_arity=np.array(arity, np.uint8), lut_table=np.array(table, np.uint64),
                   offsets=offsets)


@st.composite
def lut_netlists(draw, max_inputs: int = 12, max_nodes: int = 30, max_classes: int = 6,
                 max_outputs_per_class: int = 10, max_offset: int = 40, min_inputs: int = 0) -> Netlist:
    """Draw a netlist mixing two-input gates and LUT-1..6 nodes (fan-ins among constants,
    inputs and earlier nodes; any truth table, its top bit included), with class offsets (small,
    negative, or beyond uint16) and any input encoding."""
    base = draw(netlists(min_inputs=min_inputs, max_inputs=max_inputs, max_gates=0, max_classes=1,
                         max_outputs_per_class=1))
    first = 2 + base.num_inputs
    nodes = []
    for g in range(draw(st.integers(0, max_nodes))):
        node = first + g
        operand = st.one_of(st.integers(0, node - 1), st.integers(max(0, node - 3), node - 1))
        if draw(st.booleans()):
            k = draw(st.integers(1, 6))
            table = st.one_of(st.integers(0, (1 << (1 << k)) - 1),
                              st.sampled_from([0, (1 << (1 << k)) - 1, 1 << ((1 << k) - 1)]))
            nodes.append((tuple(draw(operand) for _ in range(k)), draw(table)))
        else:
            nodes.append((draw(st.integers(0, 15)), draw(operand), draw(operand)))
    num_nodes = first + len(nodes)
    num_classes = draw(st.integers(1, max_classes))
    per_class = draw(st.integers(1, max_outputs_per_class))
    output = st.one_of(st.integers(0, num_nodes - 1), st.integers(max(0, num_nodes - 4), num_nodes - 1))
    outputs = draw(st.lists(output, min_size=num_classes * per_class, max_size=num_classes * per_class))
    offset = st.one_of(st.integers(-max_offset, max_offset), st.sampled_from([0, 1, -1, 70000, -70000]))
    offsets = draw(st.one_of(st.none(), st.lists(offset, min_size=num_classes, max_size=num_classes)))
    return mixed(base.num_inputs, nodes, outputs, num_classes, offsets, base.encoding)


def random_lut_netlist(rng, num_inputs=9, num_nodes=120, num_classes=4, per_class=9, offsets=True):
    nodes = []
    for g in range(num_nodes):
        node = 2 + num_inputs + g
        if g % 2:
            k = int(rng.integers(1, 7))
            table = int(rng.integers(0, 1 << 63)) << 1 | int(rng.integers(0, 2))
            nodes.append((tuple(int(v) for v in rng.integers(0, node, k)), table & ((1 << (1 << k)) - 1)))
        else:
            nodes.append((int(rng.integers(0, 16)), int(rng.integers(0, node)), int(rng.integers(0, node))))
    outputs = rng.integers(0, 2 + num_inputs + num_nodes, num_classes * per_class)
    return mixed(num_inputs, nodes, outputs, num_classes,
                 rng.integers(-5, 6, num_classes) if offsets else None)


def random_bits(rng, net, n):
    return rng.integers(0, 2, (n, net.num_inputs)).astype(np.uint8)


# ------------------------------------------------------------------ drawn netlists
@examples(40)
@given(data=st.data(), net=lut_netlists(), style=st.sampled_from(c.STYLES),
       word_bits=st.sampled_from(c.WORD_BITS), path=st.sampled_from(sorted(PATHS)),
       cc=st.sampled_from(["gcc", "clang"]))
def test_drawn_lut_netlists_equal_the_reference(data, net, style, word_bits, path, cc):
    model, = c_models(net, [{"style": style, "word_bits": word_bits, "chunk_gates": 7}], cc=cc,
                      cflags=FAST + PATHS[path])
    x = data.draw(features_for(net, max_rows=2 * word_bits + 70))
    check_c_model(model, net, x, f"{cc} {path} {style}")


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_every_width_and_style(rng, cc):
    net = random_lut_netlist(rng)
    bits = random_bits(rng, net, 1100)
    for model, options in zip(c_models(net, EVERY_CONFIG, cc=cc, cflags=FAST), EVERY_CONFIG):
        check_c_model(model, net, bits, f"{cc} {options}")


def test_every_table_of_every_arity_exhaustively(rng):
    # Each class is one LUT-k over the first k inputs: every input row of 6 bits, so each of the
    # drawn tables (top bits, all-0s and all-1s included) is read at every row.
    nodes = []
    for k in range(1, 7):
        full = (1 << (1 << k)) - 1
        for table in [0, full, 1 << ((1 << k) - 1), 1, *(int(t) & full for t in
                                                           rng.integers(0, 1 << 62, 4) * 4 + 3)]:
            nodes.append((tuple(range(2, 2 + k)), table))
    net = mixed(6, nodes, 8 + np.arange(len(nodes)), len(nodes))
    bits = (np.arange(64)[:, None] >> np.arange(6)) & 1
    assert np.array_equal(reference.outputs(net, bits), reference.scores(net, bits) == 1)
    configs = [{"word_bits": w, "style": s} for w in (8, 64, 512) for s in c.STYLES]
    for model, options in zip(c_models(net, configs, cflags=("-O2",)), configs):
        check_c_model(model, net, np.tile(bits, (3, 1)), str(options))


def test_native_luts_equal_their_decomposition(rng):
    net = random_lut_netlist(rng, num_nodes=300, offsets=False)
    bits = random_bits(rng, net, 300)
    native, gates_only = (c.build(n, word_bits=64, cflags=FAST) for n in (net, decompose(net)))
    np.testing.assert_array_equal(native.scores_bits(bits), gates_only.scores_bits(bits))
    check_c_model(native, net, bits)


# ------------------------------------------------------------------ offsets
def test_offsets_shift_scores_and_break_ties_low(rng):
    # Class 1's offset makes it tie class 0, class 2's negative offset: int32 scores below zero.
    net = mixed(2, [(6, 2, 3)], [4, 2, 4, 2, 0, 0], 3, offsets=[0, 0, -3])
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    want = reference.scores(net, bits)
    assert want[:, 2].tolist() == [-3] * 4 and want.argmax(axis=1).tolist() == [0, 0, 0, 0]
    tied = net.replace(offsets=[0, 1, 2])  # class 2 always 2: wins except where class 1 ties it
    for n in (net, tied, net.replace(offsets=[70000, 0, 65536])):
        for model in c_models(n, [{"word_bits": 8, "style": s} for s in c.STYLES], cflags=FAST):
            check_c_model(model, n, np.tile(bits, (5, 1)))
    assert c.build(tied, cflags=FAST).scores_bits(bits).dtype == np.int64
    assert "typedef uint16_t m_score_t" in c.emit(tied, "m")["m.h"]
    assert "typedef int32_t m_score_t" in c.emit(net, "m")["m.h"]


def test_offsets_beyond_int32_are_refused():
    net = mixed(1, [], [2, 2], 2, offsets=[2**31 - 1, 0])
    with pytest.raises(c.CBackendError, match="class offsets .* int32_t"):
        c.emit(net)


# ------------------------------------------------------------------ quality gates
def lut_sources(tmp_path, rng):
    net = random_lut_netlist(rng, num_nodes=60)
    return [c.export(net, tmp_path, name=f"m_{style}_{w}", style=style, word_bits=w)[1]
            for style in c.STYLES for w in (8, 64, 256)]


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_strict_warnings(tmp_path, rng, compiler):
    cc = tool(compiler)
    for source in lut_sources(tmp_path, rng):
        for level in ("-O0", "-O2"):
            subprocess.run([cc, *STRICT, level, "-fsyntax-only" if level == "-O0" else "-c",
                            str(source), "-o", str(source.with_suffix(".o"))], check=True)


def test_arm_cross_compile(tmp_path, rng):
    cc = tool("arm-none-eabi-gcc")
    for source in lut_sources(tmp_path, rng)[::2]:
        subprocess.run([cc, *STRICT, "-Os", "-mcpu=cortex-m0", "-mthumb", "-ffreestanding", "-c",
                        str(source), "-o", str(source.with_suffix(".o"))], check=True)


def test_sanitizers(tmp_path, rng):
    net = random_lut_netlist(rng, num_nodes=150)
    x = random_bits(rng, net, 77)
    for style, word_bits in (("levelized", 64), ("unrolled", 128), ("table", 16), ("table", 512)):
        check_sanitized(tmp_path, net, x, style, word_bits)
