"""Lowering LUT layers and learned connectivity: torch eval == reference == packed, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.compile import gates, luts, packed, reference
from lgn.compile.lower import lower
from lgn.compile.netlist import LUT_OP
from lgn.nn import LogicLayer, LogicStack, Thermometer, spec
from lgn.nn import connectivity as C
from lgn.nn.lut import LutLayer


def stack(layers, num_features: int, bits: int, num_classes: int = 2) -> LogicStack:
    encoder = Thermometer.uniform(num_features, bits, 0, 255)
    return LogicStack(encoder, layers, num_classes, tau=1.5, feature_dtype="uint8").eval()


def randomize(model, seed: int):
    """Random logits everywhere (tables and source choices), so nothing is left at its init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 3)
    return model


def assert_torch_equals_reference_and_packed(model, num_features: int, rng, n: int = 200):
    x = rng.integers(0, 256, (n, num_features)).astype(np.float32)
    with torch.no_grad():
        expected = (model(torch.from_numpy(x)) * model.tau).round().long().numpy()
    netlist = lower(model)
    bits = netlist.encoding.encode(x)
    assert np.array_equal(reference.scores(netlist, bits), expected)
    assert np.array_equal(packed.run(netlist, bits), expected)
    # decomposed to two-input gates, it still computes the same scores
    assert np.array_equal(reference.scores(luts.decompose(netlist), bits), expected)
    return netlist


def vector_layer(draw, in_dim: int, g: torch.Generator):
    kind = draw(st.sampled_from(["lut", "learned-lut", "learned-gates", "dense"]))
    width = draw(st.integers(1, 12)) * 2
    k = draw(st.integers(1, 6))
    m = draw(st.integers(1, min(in_dim, 6)))
    if kind == "lut":
        return LutLayer(in_dim, width, k=k, generator=g)
    if kind == "learned-lut":
        return C.LearnedLutLayer(in_dim, width, k=k, candidates=m, generator=g)
    if kind == "learned-gates":
        return C.LearnedLogicLayer(in_dim, width, candidates=m, generator=g,
                                   parametrization=draw(st.sampled_from(["gates", "table"])))
    return LogicLayer(in_dim, width, generator=g)


@st.composite
def models(draw):
    num_features, bits = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 16))
    g = torch.Generator().manual_seed(seed)
    layers, in_dim = [], num_features * bits
    for _ in range(draw(st.integers(1, 3))):
        layers.append(vector_layer(draw, in_dim, g))
        in_dim = layers[-1].out_dim
    return randomize(stack(layers, num_features, bits), seed), num_features, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_torch_eval_equals_reference_and_packed_on_random_lut_models(drawn):
    model, num_features, seed = drawn
    assert_torch_equals_reference_and_packed(model, num_features, np.random.default_rng(seed))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("m", [None, 1, 3, 9])
def test_every_k_and_m_lowers_exactly(k, m):
    g = torch.Generator().manual_seed(10 * k + (m or 0))
    first = LutLayer(12, 30, k=k, generator=g) if m is None else C.LearnedLutLayer(12, 30, k=k, candidates=m,
                                                                                    generator=g)
    model = randomize(stack([first, LutLayer(30, 10, k=k, generator=g)], 4, 3), k)
    netlist = assert_torch_equals_reference_and_packed(model, 4, np.random.default_rng(k))
    # k = 1, 2 become ordinary gates; k >= 3 native LUT nodes with the layer's truth tables
    assert netlist.num_luts == (40 if k >= 3 else 0)
    assert netlist.num_gates == 40
    if k >= 3:
        fixed = first if m is None else first.to_fixed()
        assert np.array_equal(netlist.lut_table[:30], fixed.truth_tables())
        assert (netlist.lut_arity == k).all()
        assert np.array_equal(netlist.lut_fanin[:30, :k], 2 + fixed.inputs.numpy())
        assert (netlist.lut_fanin[:, k:] == 0).all()


def test_learned_connectivity_lowers_to_the_argmax_wiring():
    g = torch.Generator().manual_seed(5)
    learned_luts = C.LearnedLutLayer(15, 8, k=4, candidates=5, generator=g)
    learned_gates = C.LearnedLogicLayer(8, 6, candidates=4, parametrization="table", generator=g)
    model = randomize(stack([learned_luts, learned_gates], 5, 3, num_classes=3), 5)
    netlist = lower(model)
    inputs = 2 + np.arange(15)
    chosen = learned_luts.selector.candidates.gather(1, learned_luts.selector.logits.argmax(1, keepdim=True))
    assert np.array_equal(netlist.lut_fanin[:, :4], inputs[chosen.view(8, 4).numpy()])
    lut_ids = netlist.first_gate + np.arange(8)
    operands = learned_gates.chosen_sources().numpy()  # (6, 2): operand a, b
    assert np.array_equal(netlist.a[8:], lut_ids[operands[:, 0]])
    assert np.array_equal(netlist.b[8:], lut_ids[operands[:, 1]])
    assert np.array_equal(netlist.op[8:], learned_gates.gate_ops().numpy())
    assert (netlist.op[:8] == LUT_OP).all()
    assert_torch_equals_reference_and_packed(model, 5, np.random.default_rng(0))


def test_k2_lut_lowers_to_the_table_gate():
    g = torch.Generator().manual_seed(2)
    layer = LutLayer(6, 16, k=2, generator=g)
    with torch.no_grad():  # all 16 functions once
        table = torch.tensor([[(f >> i) & 1 for i in range(4)] for f in range(16)], dtype=torch.float32)
        layer.weights.copy_(table * 2 - 1)
    gate_layer = LogicLayer(6, 16, parametrization="table", generator=g)
    with torch.no_grad():
        gate_layer.weights.copy_(layer.weights)
        gate_layer.idx_a.copy_(layer.inputs[:, 1])
        gate_layer.idx_b.copy_(layer.inputs[:, 0])
    lowered, expected = lower(stack([layer], 2, 3)), lower(stack([gate_layer], 2, 3))
    assert np.array_equal(lowered.op, expected.op)
    assert np.array_equal(lowered.a, expected.a) and np.array_equal(lowered.b, expected.b)
    # entry i = output for (input 1, input 0) = (a, b) = bits of i: gate op bit 3 - i
    assert sorted(lowered.op.tolist()) == list(range(16))


def test_k1_lut_lowers_to_wires_negations_and_constants():
    layer = LutLayer(3, 4, k=1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.weights.copy_(torch.tensor([[-1.0, -1], [-1, 1], [1, -1], [1, 1]]))
    netlist = lower(stack([layer], 1, 3, num_classes=4))
    assert netlist.op.tolist() == [gates.FALSE, gates.A, gates.NOT_A, gates.TRUE]


def test_lut_spec_models_lower_with_gates_counted_by_the_spec():
    text = "thermo(2, uniform) lut(12, k=5, m=3) learned(8, m=4) lut(6, k=2) lut(4, k=3)"
    config = {"arch": spec.parse(text).to_json(), "num_classes": 2, "seed": 3, "parametrization": "table"}
    model = randomize(spec.build(config, Thermometer.uniform(5, 2, 0, 255)).eval(), 3)
    netlist = assert_torch_equals_reference_and_packed(model, 5, np.random.default_rng(3))
    resolved = spec.from_config(config).resolve(5, 2, None, 2, "uniform")
    assert netlist.num_gates == resolved.num_gates(5, 2) == 30
    assert netlist.num_luts == 16
