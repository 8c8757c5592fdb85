"""The equivalence ladder: every back end computes what the reference interpreter says a netlist
means, on hypothesis-drawn netlists (failures shrink to a minimal netlist) and on a trained model.

reference == packed (numpy, torch) == C (gcc, clang) == Amaranth simulation == iverilog
simulation of the emitted Verilog == BLIF and AIGER read back and evaluated by Yosys. The files
of each back end (test_c.py, test_hdl*.py) go through its options in depth.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ladder import (c_models, check_c_model, check_lut_back_ends, check_packed, check_passes,
                    encoder_paths, verilog_mismatches, yosys_outputs)
from lgn.compile import c, packed, reference
from lgn.compile.netlist import Netlist, NetlistError, ThermometerEncoding
from lgn.hdl import simulate
from lgn.nn.gates import gate_value
from strategies import examples, features_for, mixed_netlists, netlists

PATHS = encoder_paths()


# ------------------------------------------------------------------ the reference itself
def naive_scores(net: Netlist, bits) -> np.ndarray:
    """One sample at a time, one gate at a time, on Python ints: the definition spelled out."""
    out = []
    for row in np.asarray(bits).tolist():
        value = [0, 1] + [int(v != 0) for v in row]
        for op, a, b in zip(net.op.tolist(), net.a.tolist(), net.b.tolist()):
            value.append(gate_value(op, value[a], value[b]))
        out.append([sum(value[node] for node in group) for group in net.groups.tolist()])
    return np.array(out, dtype=np.int64).reshape(len(out), net.num_classes)


@examples(60)
@given(data=st.data(), net=netlists(max_inputs=10, max_gates=40))
def test_reference_equals_the_naive_definition_and_packed(data, net):
    bits = data.draw(features_for(net.replace(encoding=None), max_rows=150))
    scores = reference.scores(net, bits)
    np.testing.assert_array_equal(scores, naive_scores(net, bits))
    np.testing.assert_array_equal(reference.predict(net, bits),
                                  [int(np.argmax(row)) for row in scores.tolist()])
    check_packed(net, bits)
    np.testing.assert_array_equal(packed.run(net, torch.from_numpy(bits != 0)).numpy(), scores,
                                  err_msg="packed.run on a torch tensor")


def test_reference_ties_go_to_the_lowest_class():
    net = Netlist.from_text("inputs 2\noutputs x0 | x1 | x0 | c0\n")
    bits = [[0, 0], [1, 0], [0, 1], [1, 1]]
    assert reference.scores(net, bits).tolist() == [[0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0],
                                                    [1, 1, 1, 0]]
    assert reference.predict(net, bits).tolist() == [0, 0, 1, 0]


def test_reference_encoding_compares_exactly():
    # int32 values beside a threshold 2**31 - 1.5 (not exact in float32); -0.0 equals 0.0; NaN
    # is above nothing; a threshold between two float32 values.
    enc = ThermometerEncoding(2, [0, 0, 1, 1, 1], [2**31 - 1.5, -(2**31) + 0.5, 0.0, -0.0,
                                                     1 + 2**-30], "int32")
    net = Netlist(5, [], [], [], [2, 3, 4, 5, 6], num_classes=5, encoding=enc)
    x = np.array([[2**31 - 1, 0], [2**31 - 2, 1], [-(2**31), 2]], dtype=np.int32)
    assert reference.encode(net, x).astype(int).tolist() == [[1, 1, 0, 0, 0], [0, 1, 1, 1, 0],
                                                             [0, 0, 1, 1, 1]]
    net = net.replace(encoding=ThermometerEncoding(2, [0, 0, 1, 1, 1], [0.0, -0.0, 1.0, 1 + 2**-30,
                                                                         -1e300], "float32"))
    above_one = np.nextafter(np.float32(1), 2)
    x = np.array([[-0.0, above_one], [np.nan, np.nan], [0.0, -np.inf]], np.float32)
    assert reference.encode(net, x).astype(int).tolist() == [[0, 0, 1, 1, 1], [0, 0, 0, 0, 0],
                                                             [0, 0, 0, 0, 0]]


def test_reference_rejects_bad_inputs():
    net = Netlist.from_text("inputs 2\noutputs x0 x1\n")
    with pytest.raises(NetlistError, match=r"bits have shape \(3,\), expected \(N, 2\)"):
        reference.scores(net, [0, 1, 1])
    net = net.replace(encoding=ThermometerEncoding(1, [0, 0], [0.5, 1.5], "uint8"))
    with pytest.raises(NetlistError, match="features have shape"):
        reference.encode(net, np.zeros((2, 2)))
    with pytest.raises(NetlistError, match="not all exact uint8"):
        reference.encode(net, np.array([[256]]))
    with pytest.raises(NetlistError, match="not all exact uint8"):
        reference.encode(net, np.array([[0.5]]))


# ------------------------------------------------------------------ the ladder
def check_every_back_end(net: Netlist, features: np.ndarray, style: str, word_bits: int, path: str,
                         pipeline: int) -> None:
    """C (gcc and clang), Amaranth (raw-feature and bits ports), iverilog and Yosys (BLIF, AIGER)
    equal the reference on ``features`` (the simulators on a prefix of them)."""
    bits = reference.encode(net, features)
    want = check_packed(net, bits)
    for cc in ("gcc", "clang"):
        model, = c_models(net, [{"style": style, "word_bits": word_bits}], cc=cc,
                          cflags=("-O1",) + PATHS[path])
        check_c_model(model, net, features, f"{cc} {path} {style}")
    rows = slice(0, 24)  # the simulators are slow: a prefix of the samples
    classes, scores = simulate(net, features[rows], pipeline, stall_seed=pipeline)
    np.testing.assert_array_equal(scores, want[rows], err_msg="Amaranth simulation")
    np.testing.assert_array_equal(classes, want[rows].argmax(axis=1), err_msg="Amaranth simulation")
    if net.encoding is not None:  # the bits port of the same netlist
        _, scores = simulate(net, bits[rows], pipeline, raw_features=False)
        np.testing.assert_array_equal(scores, want[rows], err_msg="Amaranth simulation, bits port")
    raw = net.encoding is not None
    assert verilog_mismatches(net, features[rows], pipeline, raw, "iverilog") == 0
    outputs = reference.outputs(net, bits[rows])
    for kind, got in yosys_outputs(net, bits[rows]).items():
        np.testing.assert_array_equal(got, outputs, err_msg=f"Yosys eval of the {kind} file")


#: The C configuration each example draws (the simulators take what every example takes).
C_OPTIONS = {"style": st.sampled_from(c.STYLES), "word_bits": st.sampled_from(c.WORD_BITS),
             "path": st.sampled_from(sorted(PATHS))}


@pytest.mark.tools
@examples(12)
@given(data=st.data(), net=netlists(max_inputs=24, max_gates=40, max_classes=8,
                                    max_outputs_per_class=20),
       pipeline=st.integers(0, 3), **C_OPTIONS)
def test_every_back_end_on_drawn_netlists(data, net, style, word_bits, path, pipeline):
    features = data.draw(features_for(net, min_rows=1, max_rows=2 * word_bits + 10))
    check_every_back_end(net, features, style, word_bits, path, pipeline)


@pytest.mark.slow
@pytest.mark.tools
@examples(60)
@given(data=st.data(), net=netlists(max_inputs=60, max_gates=150, max_classes=16,
                                    max_outputs_per_class=40),
       pipeline=st.integers(0, 4), **C_OPTIONS)
def test_every_back_end_on_larger_drawn_netlists(data, net, style, word_bits, path, pipeline):
    features = data.draw(features_for(net, min_rows=1, max_rows=2 * word_bits + 10))
    check_every_back_end(net, features, style, word_bits, path, pipeline)


@pytest.mark.tools
@examples(25)
@given(data=st.data(), net=netlists(max_inputs=14, max_gates=60, max_classes=6,
                                    max_outputs_per_class=12, encoding=False))
def test_yosys_reads_blif_and_aiger_of_drawn_netlists(data, net):
    bits = data.draw(features_for(net, max_rows=40))
    outputs = reference.outputs(net, bits)
    for kind, got in yosys_outputs(net, bits).items():
        np.testing.assert_array_equal(got, outputs, err_msg=f"Yosys eval of the {kind} file")


# ------------------------------------------------------------------ LUT nodes and offsets
@examples(80)
@given(data=st.data(), net=mixed_netlists(max_inputs=14, max_gates=40))
def test_packed_and_passes_equal_the_reference_on_mixed_netlists(data, net):
    bits = data.draw(features_for(net, max_rows=150))
    check_packed(net, bits)
    check_passes(net, bits)
    np.testing.assert_array_equal(packed.run(net, torch.from_numpy(bits != 0)).numpy(),
                                  reference.scores(net, bits), err_msg="packed.run on a torch tensor")


@pytest.mark.tools
@examples(20)
@given(data=st.data(), net=mixed_netlists(max_inputs=14, max_gates=40))
def test_lut_back_ends_on_mixed_netlists(data, net):
    check_lut_back_ends(net, data.draw(features_for(net, max_rows=40)))


# ------------------------------------------------------------------ a trained model
def test_trained_model_ladder(digits_model, digits_netlist):
    model, x_float, _ = digits_model
    net, x, _ = digits_netlist
    with torch.no_grad():
        torch_scores = (model(x_float) * model.tau).round().numpy().astype(np.int64)
    bits = reference.encode(net, x)
    np.testing.assert_array_equal(bits, model.encoder(x_float).numpy().astype(bool))
    want = check_packed(net, bits)
    np.testing.assert_array_equal(want, torch_scores, err_msg="PyTorch eval forward")
    check_c_model(c.build(net, word_bits=128, cflags=("-O1",)), net, x)
    _, scores = simulate(net, x[:30], 2, stall_seed=0)
    np.testing.assert_array_equal(scores, want[:30], err_msg="Amaranth simulation")
    outputs = reference.outputs(net, bits[:40])
    for kind, got in yosys_outputs(net, bits[:40]).items():
        np.testing.assert_array_equal(got, outputs, err_msg=f"Yosys eval of the {kind} file")
