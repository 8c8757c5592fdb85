"""The feature-major logic-layer kernel against the first (batch-major) one and the 16-gate formula."""

import pytest
import torch

from lgn.nn import LogicLayer, LogicNet, Thermometer
from lgn.nn import functional as F

PARAMETRIZATIONS = ("gates", "table")


def _coefficients(parametrization, weights):
    return F.table_coefficients(weights) if parametrization == "table" else F.gate_coefficients(weights)


@pytest.fixture(params=[None, 7, 64], ids=["one-chunk", "chunks-of-7", "chunks-of-64"])
def chunk(request, monkeypatch):
    """Rows of elements per kernel chunk: the default, and tiny ones that leave a remainder."""
    if request.param is not None:
        monkeypatch.setattr(F, "CPU_CHUNK_ELEMENTS", request.param)
    return request.param


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("batch", [1, 3, 128])
def test_feature_major_equals_batch_major_values_and_gradients(parametrization, batch, chunk):
    gen = torch.Generator().manual_seed(batch)
    layer = LogicLayer(37, 53, parametrization=parametrization, generator=gen)
    x = torch.rand(batch, 37, generator=gen, requires_grad=True)
    weights = layer.weights.detach().clone().requires_grad_()
    coef = _coefficients(parametrization, weights)
    y = F.logic_layer_feature_major(x.t(), layer.idx_a, layer.idx_b, coef).t()
    y_ref = F.logic_layer_batch_major(x, layer.idx_a, layer.idx_b, coef)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn(batch, 53, generator=gen)
    got = torch.autograd.grad(y, (x, weights), g, retain_graph=True)
    want = torch.autograd.grad(y_ref, (x, weights), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    if parametrization == "gates":  # and the definition: all 16 gates mixed by softmax
        torch.testing.assert_close(y, F.logic_layer_reference(x, layer.idx_a, layer.idx_b, weights))


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("batch", [1, 3, 128])
def test_feature_major_gradcheck_float64(parametrization, batch, chunk):
    gen = torch.Generator().manual_seed(10 + batch)
    layer = LogicLayer(6, 11, connections="unique", parametrization=parametrization, generator=gen).double()
    x = torch.rand(6, batch, dtype=torch.float64, generator=gen, requires_grad=True)
    w = layer.weights.detach().clone().requires_grad_()

    def fn(x, w):
        return F.logic_layer_feature_major(x, layer.idx_a, layer.idx_b, _coefficients(parametrization, w))

    assert torch.autograd.gradcheck(fn, (x, w))


def test_only_the_needed_gradients_and_empty_batches(chunk):
    gen = torch.Generator().manual_seed(5)
    layer = LogicLayer(9, 20, generator=gen)
    coef = layer.coefficients().detach()
    x = torch.rand(9, 4, generator=gen)
    # weights only (the first layer: its input needs no gradient)
    w = coef.clone().requires_grad_()
    y = F.logic_layer_feature_major(x, layer.idx_a, layer.idx_b, w)
    grad_w, = torch.autograd.grad(y.sum(), w)
    torch.testing.assert_close(grad_w, torch.autograd.grad(
        F.logic_layer_batch_major(x.t(), layer.idx_a, layer.idx_b, w).sum(), w)[0])
    # input only
    xg = x.clone().requires_grad_()
    grad_x, = torch.autograd.grad(F.logic_layer_feature_major(xg, layer.idx_a, layer.idx_b, coef).sum(), xg)
    xb = x.t().clone().requires_grad_()
    torch.testing.assert_close(grad_x.t(), torch.autograd.grad(
        F.logic_layer_batch_major(xb, layer.idx_a, layer.idx_b, coef).sum(), xb)[0])
    # no samples
    empty = torch.zeros(9, 0, requires_grad=True)
    out = F.logic_layer_feature_major(empty, layer.idx_a, layer.idx_b, w)
    assert out.shape == (20, 0)
    out.sum().backward()
    assert empty.grad.shape == (9, 0) and torch.equal(w.grad, torch.zeros_like(w))


def test_scratch_buffers_never_alias_outputs_or_other_calls(chunk):
    """Layers of different sizes, forwards interleaved before their backwards (as in a net): the
    kernel's reused scratch buffers change no output and no gradient."""
    gen = torch.Generator().manual_seed(8)
    layers = [LogicLayer(40, 70, generator=gen), LogicLayer(70, 25, parametrization="table", generator=gen),
              LogicLayer(25, 90, generator=gen)]
    x = torch.rand(40, 33, generator=gen, requires_grad=True)
    h, outputs = x, []
    for layer in layers:
        h = F.logic_layer_feature_major(h, layer.idx_a, layer.idx_b, layer.coefficients())
        outputs.append(h)
    copies = [o.detach().clone() for o in outputs]
    g = torch.randn(90, 33, generator=gen)
    got = torch.autograd.grad(h, [x, *(layer.weights for layer in layers)], g)
    for o, c in zip(outputs, copies):
        assert torch.equal(o, c)
    h_ref = x.t()
    for layer in layers:
        h_ref = F.logic_layer_batch_major(h_ref, layer.idx_a, layer.idx_b, layer.coefficients())
    want = torch.autograd.grad(h_ref, [x, *(layer.weights for layer in layers)], g.t())
    torch.testing.assert_close(h, h_ref.t())
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_logic_layer_contract_any_leading_dims_contiguous():
    gen = torch.Generator().manual_seed(6)
    layer = LogicLayer(12, 30, generator=gen)
    coef = layer.coefficients()
    x = torch.rand(2, 5, 12, generator=gen)
    y = F.logic_layer(x, layer.idx_a, layer.idx_b, coef)
    assert y.shape == (2, 5, 30) and y.is_contiguous()
    torch.testing.assert_close(y, F.logic_layer_batch_major(x, layer.idx_a, layer.idx_b, coef))
    assert F.logic_layer(x[0, 0], layer.idx_a, layer.idx_b, coef).shape == (30,)
    # dtypes promote as in the elementwise formula: bits with float32 coefficients, float64 ones
    bits = x > 0.5
    for inputs, weights in [(bits, coef), (x, coef.double())]:
        got = F.logic_layer(inputs, layer.idx_a, layer.idx_b, weights)
        want = F.logic_layer_batch_major(inputs, layer.idx_a, layer.idx_b, weights)
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="in_dim, N"):
        F.logic_layer_feature_major(x, layer.idx_a, layer.idx_b, coef)


def _batch_major_forward(model, x):
    """LogicNet.forward as first written: batch-major layers through the first kernel."""
    h = model.encoder(x)
    for layer in model.layers:
        h = F.logic_layer_batch_major(layer._inputs(h), layer.idx_a, layer.idx_b, layer.coefficients())
    return model.group_sum(h)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_eval_is_bit_identical_to_the_first_kernel(parametrization):
    model = LogicNet(Thermometer.uniform(20, 3, 0, 1), 5, layers=3, width=200, seed=3,
                     parametrization=parametrization, init="random").eval()
    x = torch.rand(300, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), _batch_major_forward(model, x))
        h = model.encoder(x)
        for layer in model.layers:  # module boundary: (N, in) -> (N, out), exactly 0/1
            nxt = layer(h)
            assert torch.equal(nxt, layer.forward_feature_major(h.t()).t())
            assert set(nxt.unique().tolist()) <= {0.0, 1.0}
            h = nxt


def _loss_curve(forward_of, parametrization, *, seed, init, data_seed, steps, batch):
    """Training losses of a small LogicNet whose forward pass is ``forward_of(model)``."""
    model = LogicNet(Thermometer.uniform(8, 2, 0, 1), 4, layers=3, width=240, seed=seed,
                     parametrization=parametrization, init=init)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(data_seed)
    losses = []
    for _ in range(steps):
        x = torch.rand(batch, 8, generator=gen)
        y = (x[:, 0] > x[:, 1]).long() + 2 * (x[:, 2] > 0.5).long()
        loss = torch.nn.functional.cross_entropy(forward_of(model)(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_training_follows_the_same_loss_curve(parametrization):
    options = dict(seed=1, init="residual", data_seed=2, steps=40, batch=64)
    new = _loss_curve(lambda model: model, parametrization, **options)
    old = _loss_curve(lambda model: lambda x: _batch_major_forward(model, x), parametrization, **options)
    torch.testing.assert_close(new, old, rtol=1e-4, atol=1e-5)
    assert new[-5:].mean() < new[:5].mean() - 0.1  # it learns


def _table_reference(x, idx_a, idx_b, weights):
    """The truth-table gate by its definition: the expected table entry under independent inputs."""
    a, b = x[..., idx_a], x[..., idx_b]
    pattern = torch.stack([(1 - a) * (1 - b), (1 - a) * b, a * (1 - b), a * b], dim=-1)  # entry 2a+b
    return (pattern * torch.sigmoid(weights)).sum(-1)


def _reference_forward(model, x):
    """LogicNet.forward by the definitions: 16 gates mixed by softmax, or the expected table entry."""
    h = model.encoder(x)
    for layer in model.layers:
        formula = F.logic_layer_reference if layer.parametrization == "gates" else _table_reference
        h = formula(h, layer.idx_a, layer.idx_b, layer.weights)
    return model.group_sum(h)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_training_follows_the_reference_formula_loss_curve(parametrization):
    options = dict(seed=4, init="random", data_seed=3, steps=30, batch=128)
    new = _loss_curve(lambda model: model, parametrization, **options)
    reference = _loss_curve(lambda model: lambda x: _reference_forward(model, x), parametrization, **options)
    torch.testing.assert_close(new, reference, rtol=1e-4, atol=1e-5)
    assert new[-5:].mean() < new[:5].mean() - 0.05  # it learns


def test_logic_net_keeps_leading_dims_and_rejects_bad_layouts():
    model = LogicNet(Thermometer.uniform(4, 2, 0, 1), 3, layers=2, width=30)
    x = torch.rand(2, 5, 4)
    assert model(x).shape == (2, 5, 3)
    torch.testing.assert_close(model(x).reshape(10, 3), model(x.reshape(10, 4)))
    with pytest.raises(ValueError, match=r"\(8, N\) feature-major"):
        model.layers[0].forward_feature_major(torch.rand(5, 8))
