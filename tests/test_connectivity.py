"""Learned connectivity: soft source selection, argmax discretization, bounded Top-K regrowth."""

from __future__ import annotations

import pytest
import torch
from fused import assert_fused_equals_torch

from lgn.nn import LogicLayer
from lgn.nn import connectivity as C
from lgn.nn.lut import LutLayer


@pytest.fixture(params=["fused", "torch-one-chunk", "torch-many-chunks"])
def kernel(request, monkeypatch):
    """Each selection kernel: the fused C one (which must build here) and the torch path, the
    latter also cut into chunks of a few slots."""
    monkeypatch.setattr(C._native, "KERNEL", "native" if request.param == "fused" else "torch")
    if request.param == "torch-many-chunks":
        monkeypatch.setattr(C, "_CHUNK_ELEMENTS", 40)


def test_select_sources_values_and_gradients(kernel):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 15, dtype=torch.float64, generator=g, requires_grad=True)
    candidates = torch.randint(0, 15, (11, 4), generator=g)
    probs = torch.softmax(torch.randn(11, 4, dtype=torch.float64, generator=g), 1).requires_grad_()
    expected = (x[..., candidates] * probs).sum(-1)
    torch.testing.assert_close(C.select_sources(x, candidates, probs), expected)
    assert torch.autograd.gradcheck(lambda x, p: C.select_sources(x, candidates, p), (x, probs))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 3])
def test_fused_selection_equals_the_torch_path_on_ragged_batches(dtype, threads, monkeypatch):
    previous = torch.get_num_threads()
    monkeypatch.setattr(C._native, "SLICE_COLUMNS", 16)
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    try:
        torch.set_num_threads(threads)
        for batch, m in [(1, 1), (7, 3), (16, 8), (50, 16), (130, 5)]:
            g = torch.Generator().manual_seed(batch + m)
            x = torch.rand(batch, 21, dtype=dtype, generator=g, requires_grad=True)
            candidates = torch.randint(0, 21, (37, m), generator=g)  # repeats allowed
            probs = torch.softmax(torch.randn(37, m, dtype=dtype, generator=g), 1).requires_grad_()
            weights = torch.randn(batch, 37, dtype=dtype, generator=g)
            assert_fused_equals_torch(monkeypatch, lambda x, p: C.select_sources(x, candidates, p), (x, probs),
                                      weights, atol * max(1, batch / 16))
    finally:
        torch.set_num_threads(previous)


def layers(in_dim=12, out_dim=10, m=5, **options):
    g = torch.Generator().manual_seed(1)
    yield C.LearnedLogicLayer(in_dim, out_dim, candidates=m, parametrization="table", generator=g, **options)
    yield C.LearnedLogicLayer(in_dim, out_dim, candidates=m, parametrization="gates", generator=g, **options)
    for k in range(1, 7):
        yield C.LearnedLutLayer(in_dim, out_dim, k=k, candidates=m, generator=g, **options)


@pytest.mark.parametrize("layer", list(layers()), ids=lambda l: f"{type(l).__name__}")
def test_eval_is_the_fixed_layer_with_the_argmax_sources(layer):
    with torch.no_grad():
        layer.selector.logits.normal_()
    expected = layer.selector.candidates.gather(1, layer.selector.logits.argmax(1, keepdim=True))
    assert torch.equal(layer.chosen_sources().flatten(), expected.flatten())
    fixed = layer.to_fixed()
    assert isinstance(fixed, LutLayer if isinstance(layer, C.LearnedLutLayer) else LogicLayer)
    x = torch.rand(64, 12)  # not binary: both round at 0.5
    y = layer.eval()(x)
    assert torch.equal(y, fixed.eval()(x))
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    # and the fixed layer reads the chosen sources: its wiring is chosen_sources()
    wiring = fixed.inputs if isinstance(fixed, LutLayer) else torch.stack([fixed.idx_a, fixed.idx_b], 1)
    assert torch.equal(wiring, layer.chosen_sources())


@pytest.mark.parametrize("layer", list(layers()), ids=lambda l: f"{type(l).__name__}")
def test_training_mode_is_the_node_on_the_mixed_sources(layer):
    x = torch.rand(5, 12)
    probs = torch.softmax(layer.selector.logits / layer.selector.temperature, 1)
    mixed = (x[:, layer.selector.candidates] * probs).sum(-1)
    inner = layer.gates if isinstance(layer, C.LearnedLogicLayer) else layer.luts
    torch.testing.assert_close(layer.train()(x), inner(mixed))
    layer(x).sum().backward()
    assert layer.selector.logits.grad.abs().sum() > 0


def test_learns_the_right_wires():
    # target: x[3] AND NOT x[7]; each operand has 6 candidates among 16 inputs, incl. 3 and 7
    torch.manual_seed(0)
    layer = C.LearnedLogicLayer(16, 1, candidates=6, parametrization="table",
                                generator=torch.Generator().manual_seed(0))
    layer.selector.candidates[0] = torch.tensor([1, 3, 5, 7, 9, 11])
    layer.selector.candidates[1] = torch.tensor([7, 2, 4, 6, 8, 3])
    x = (torch.rand(512, 16) > 0.5).float()
    target = x[:, 3] * (1 - x[:, 7])
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    for step in range(300):
        C.set_temperature(layer, C.temperature_at(step, 300, 1.0, 0.05))
        out = layer(x)[:, 0].clamp(1e-6, 1 - 1e-6)
        loss = torch.nn.functional.binary_cross_entropy(out, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert sorted(layer.chosen_sources()[0].tolist()) == [3, 7]
    assert torch.equal(layer.eval()(x)[:, 0], target)


def test_selection_and_temperature():
    logits = torch.randn(7, 5)
    probs = C.selection_probabilities(logits, 0.5)
    torch.testing.assert_close(probs, torch.softmax(logits / 0.5, 1))
    noisy = C.selection_probabilities(logits, 0.5, "gumbel")
    torch.testing.assert_close(noisy.sum(1), torch.ones(7))
    assert not torch.allclose(noisy, probs)
    assert C.temperature_at(0, 100, 2.0, 0.02) == pytest.approx(2.0)
    assert C.temperature_at(50, 100, 2.0, 0.02) == pytest.approx(0.2)
    assert C.temperature_at(100, 100, 2.0, 0.02) == pytest.approx(0.02)
    model = torch.nn.Sequential(*layers())
    C.set_temperature(model, 0.3)
    assert all(m.temperature == 0.3 for m in model.modules() if isinstance(m, C.SourceSelector))


def test_memory_is_m_per_slot():
    layer = C.LearnedLutLayer(100_000, 50, k=6, candidates=8)
    assert layer.selector.logits.shape == layer.selector.candidates.shape == (300, 8)
    assert layer(torch.rand(2, 100_000)).shape == (2, 50)


def test_regrow_keeps_the_best_and_resets_adam():
    g = torch.Generator().manual_seed(3)
    layer = C.LearnedLutLayer(200, 30, k=4, candidates=8, sources="all", generator=g)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.01)
    with torch.no_grad():
        layer.selector.logits.normal_(generator=g)
    layer(torch.rand(4, 200)).sum().backward()
    optimizer.step()
    before = layer.selector.candidates.clone()
    chosen = layer.chosen_sources().clone()
    assert C.regrow_all(layer, 0.5, optimizer, g) == 120 * 4
    after = layer.selector.candidates
    assert torch.equal(layer.chosen_sources(), chosen)
    changed = after != before
    assert (changed.sum(1) <= 4).all() and changed.any()
    state = optimizer.state[layer.selector.logits]
    assert (state["exp_avg"][changed] == 0).all() and (state["exp_avg_sq"][changed] == 0).all()
    assert ((0 <= after) & (after < 200)).all()


@pytest.mark.parametrize("m", [0, -1, 13, 2.0, True])
def test_bad_candidates_is_one_clear_line(m):
    message = r"candidates \(m\) must be an integer in 1\.\.in_dim \(12\)"
    for make in (lambda: C.LearnedLogicLayer(12, 4, candidates=m), lambda: C.LearnedLutLayer(12, 4, candidates=m)):
        with pytest.raises(ValueError, match=message) as info:
            make()
        assert "\n" not in str(info.value)


def test_bad_options():
    with pytest.raises(ValueError, match="^LearnedLutLayer: k must be an integer in 1..6, got 7$"):
        C.LearnedLutLayer(12, 4, k=7)
    with pytest.raises(ValueError, match="unknown selection 'hard'"):
        C.LearnedLogicLayer(12, 4, selection="hard")
    with pytest.raises(ValueError, match="unknown sources 'some'"):
        C.LearnedLutLayer(12, 4, sources="some")
    with pytest.raises(ValueError, match="unknown parametrization 'lut'"):
        C.LearnedLogicLayer(12, 4, parametrization="lut")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        C.LearnedLogicLayer(12, 4, temperature=0)
    with pytest.raises(ValueError, match="needs in_dim >= 1 and out_dim >= 1"):
        C.LearnedLutLayer(12, 0)
    with pytest.raises(ValueError, match="expected 12 input features"):
        C.LearnedLutLayer(12, 4)(torch.rand(2, 11))


def feature_layer(features=5, levels=7, out_dim=40, k=6, bits=3, m=4, seed=4):
    g = torch.Generator().manual_seed(seed)
    layer = C.LearnedLutLayer(features * levels, out_dim, k=k, candidates=m, generator=g,
                              feature_bits=(bits, levels))
    with torch.no_grad():
        layer.selector.logits.normal_(generator=g)
    return layer


@pytest.mark.parametrize("k, bits, levels", [(6, 3, 7), (6, 2, 3), (4, 2, 2), (6, 6, 6), (3, 1, 4)])
def test_feature_bits_runs_read_one_feature_at_ascending_thresholds(k, bits, levels):
    layer = feature_layer(levels=levels, k=k, bits=bits)
    runs = 40 * k // bits
    assert layer.selector.logits.shape == (runs, 4)
    candidates = layer.selector.candidates.view(runs, bits, 4)
    feature, level = candidates // levels, candidates % levels
    assert (feature == feature[:, :1]).all()  # one feature per candidate of a run
    assert (level.diff(dim=1) > 0).all()  # distinct thresholds, ascending
    assert all(len(set(row.tolist())) == 4 for row in feature[:, 0])  # distinct features per run
    chosen = layer.chosen_sources().view(40, k // bits, bits)
    assert (chosen // levels == (chosen // levels)[..., :1]).all()  # the argmax ties a run to one feature
    best = layer.selector.logits.argmax(1)
    assert torch.equal(chosen.reshape(runs, bits), candidates[torch.arange(runs), :, best])


def test_feature_bits_eval_is_the_fixed_layer_and_training_mixes_per_run():
    layer = feature_layer()
    x = torch.rand(64, 35)
    assert torch.equal(layer.eval()(x), layer.to_fixed().eval()(x))
    probs = torch.softmax(layer.selector.logits / layer.selector.temperature, 1).repeat_interleave(3, 0)
    mixed = (x[:, layer.selector.candidates] * probs).sum(-1)
    torch.testing.assert_close(layer.train()(x), layer.luts(mixed))
    layer(x).sum().backward()
    assert layer.selector.logits.grad.abs().sum() > 0


@pytest.mark.parametrize("options, message", [
    (dict(k=6, feature_bits=(4, 7)), r"feature_bits \(g=4, B=7\) needs g dividing k \(6\)"),
    (dict(k=6, feature_bits=(3, 2)), r"feature_bits \(g=3, B=2\) needs g dividing k \(6\), g <= B"),
    (dict(k=6, feature_bits=(3, 4)), r"B dividing in_dim \(35\)"),
    (dict(k=6, candidates=6, feature_bits=(3, 7)), r"candidates \(m\) must be at most the number of raw features \(5\), got 6"),
    (dict(k=6, sources="all", feature_bits=(3, 7)), r"tied slots need sources='random'"),
])
def test_feature_bits_bad_options_are_one_line(options, message):
    with pytest.raises(ValueError, match=message) as info:
        C.LearnedLutLayer(35, 8, **{"candidates": 4, **options})
    assert "\n" not in str(info.value)
