"""k-input LUT nodes: relaxation = exact Bernoulli expectation, k = 2 = table gate, eval = truth tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from fused import assert_fused_equals_torch

from lgn.nn import LogicLayer
from lgn.nn import functional as F
from lgn.nn import lut


def expectation_by_enumeration(x, inputs, table):
    """E[table[pattern]] with input j an independent Bernoulli(x_j): one sample row, plain Python."""
    out = []
    for n, sources in enumerate(inputs.tolist()):
        total = 0.0
        for bits in itertools.product((0, 1), repeat=len(sources)):
            probability = 1.0
            for value, source in zip(bits, sources):
                probability = probability * (x[source] if value else 1 - x[source])
            pattern = sum(value << j for j, value in enumerate(bits))  # input j is bit j
            total = total + probability * table[n, pattern]
        out.append(total)
    return torch.stack(out)


@pytest.fixture(params=["fused", "torch-one-chunk", "torch-many-chunks"])
def kernel(request, monkeypatch):
    """Each relaxed-layer kernel: the fused C one (which must build here) and the torch path,
    the latter also cut into chunks of a few nodes."""
    monkeypatch.setattr(lut._native, "KERNEL", "native" if request.param == "fused" else "torch")
    if request.param == "torch-many-chunks":
        monkeypatch.setattr(lut, "_CHUNK_ELEMENTS", 64)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_relaxation_is_the_exact_expectation_values_and_gradients(k, kernel):
    g = torch.Generator().manual_seed(k)
    x = torch.rand(3, 9, dtype=torch.float64, generator=g, requires_grad=True)
    inputs = torch.randint(0, 9, (7, k), generator=g)
    table = torch.rand(7, 1 << k, dtype=torch.float64, generator=g, requires_grad=True)
    y = lut.lut_layer(x, inputs, table)
    expected = torch.stack([expectation_by_enumeration(row, inputs, table) for row in x])
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
    weights = torch.rand(y.shape, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad((y * weights).sum(), (x, table))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (x, table))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_gradcheck_float64(k, kernel):
    g = torch.Generator().manual_seed(10 + k)
    x = torch.rand(4, 11, dtype=torch.float64, generator=g, requires_grad=True)
    inputs = torch.randint(0, 11, (5, k), generator=g)
    table = torch.rand(5, 1 << k, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, t: lut.lut_layer(x, inputs, t), (x, table))
    assert torch.autograd.gradcheck(lambda t: lut.lut_layer(x.detach(), inputs, t), (table,))


@pytest.mark.parametrize("batch", [1, 3, 128])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_every_k_and_batch_equals_the_enumeration_values_and_gradients(k, batch, kernel):
    """Against lut_layer_reference (the 2^k pattern products through autograd), float64, and
    float32 within float32 rounding of the float64 result."""
    g = torch.Generator().manual_seed(100 * k + batch)
    x = torch.rand(batch, 13, dtype=torch.float64, generator=g, requires_grad=True)
    inputs = torch.randint(0, 13, (17, k), generator=g)
    table = torch.rand(17, 1 << k, dtype=torch.float64, generator=g, requires_grad=True)
    weights = torch.randn(batch, 17, dtype=torch.float64, generator=g)
    y = lut.lut_layer(x, inputs, table)
    expected = lut.lut_layer_reference(x, inputs, table)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
    grads = torch.autograd.grad((y * weights).sum(), (x, table))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (x, table))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-11)
    x32, table32 = x.detach().float().requires_grad_(), table.detach().float().requires_grad_()
    y32 = lut.lut_layer(x32, inputs, table32)
    torch.testing.assert_close(y32, expected.float(), rtol=0, atol=1e-5)
    grads32 = torch.autograd.grad((y32 * weights.float()).sum(), (x32, table32))
    for got, want in zip(grads32, expected_grads):
        torch.testing.assert_close(got, want.float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [5, 6])
def test_large_k_matches_the_reference_with_batch_dims(k, kernel):
    g = torch.Generator().manual_seed(k)
    x = torch.rand(2, 3, 20, generator=g)
    inputs = lut.lut_sources(20, 33, k, "random", g)
    table = torch.rand(33, 1 << k, generator=g)
    torch.testing.assert_close(lut.lut_layer(x, inputs, table), lut.lut_layer_reference(x, inputs, table))


def test_k2_lut_is_the_table_gate():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 12, dtype=torch.float64, generator=g)
    inputs = torch.randint(0, 12, (9, 2), generator=g)
    weights = torch.randn(9, 4, dtype=torch.float64, generator=g)
    # operand a of the gate is LUT input 1 (bit 1 of the pattern), b is input 0: index 2a + b
    gate = F.logic_layer(x, inputs[:, 1], inputs[:, 0], F.table_coefficients(weights))
    torch.testing.assert_close(lut.lut_layer(x, inputs, lut.lut_table(weights)), gate, rtol=0, atol=1e-14)

    layer = lut.LutLayer(12, 9, k=2)
    reference = LogicLayer(12, 9, parametrization="table")
    with torch.no_grad():
        reference.weights.copy_(layer.weights)
        reference.idx_a.copy_(layer.inputs[:, 1])
        reference.idx_b.copy_(layer.inputs[:, 0])
    x = torch.rand(5, 12)
    assert torch.equal(layer(x), reference(x))
    assert torch.equal(layer.eval()(x), reference.eval()(x))
    assert list(layer.truth_tables()) == [int(sum(1 << (3 - i) for i in range(4) if (op >> i) & 1))
                                          for op in reference.gate_ops().tolist()]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_eval_is_boolean_and_equals_the_truth_table_words(k):
    g = torch.Generator().manual_seed(k)
    layer = lut.LutLayer(16, 40, k=k, generator=g).eval()
    x = torch.rand(50, 16, generator=g)  # not binary: eval rounds at 0.5
    y = layer(x)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    words = layer.truth_tables()
    assert words.dtype == np.uint64 and (k == 6 or (words >> np.uint64(1 << k) == 0).all())
    expected = lut.evaluate_truth_tables(words, k, layer.inputs.numpy(), (x > 0.5).numpy())
    np.testing.assert_array_equal(y.numpy().astype(np.uint8), expected)


def test_truth_table_bit_order_is_input_j_bit_j():
    layer = lut.LutLayer(3, 1, k=3, init="random")
    layer.inputs = torch.tensor([[0, 1, 2]])
    # f = x0 AND NOT x2: true for patterns i with bit 0 set and bit 2 clear: i in {1, 3}
    with torch.no_grad():
        layer.weights.copy_(torch.tensor([[1.0 if (i & 1) and not (i & 4) else -1.0 for i in range(8)]]))
    assert int(layer.truth_tables()[0]) == (1 << 1) | (1 << 3)
    patterns = torch.tensor([[(i >> j) & 1 for j in range(3)] for i in range(8)], dtype=torch.float32)
    assert layer.eval()(patterns)[:, 0].tolist() == [1.0 if i in (1, 3) else 0.0 for i in range(8)]


@pytest.mark.parametrize("k", [1, 3, 6])
def test_residual_init_passes_input_0_through(k):
    layer = lut.LutLayer(10, 20, k=k, init="residual")
    x = (torch.rand(30, 10) > 0.5).float()
    assert torch.equal(layer.eval()(x), x[:, layer.inputs[:, 0]])
    assert (layer.train()(x) - x[:, layer.inputs[:, 0]]).abs().max() < 0.1


def test_connections():
    g = torch.Generator().manual_seed(0)
    unique = lut.LutLayer(50, 400, k=6, connections="unique", generator=g).inputs
    assert (unique.sort(1).values.diff(dim=1) > 0).all()  # distinct inputs within a node
    assert len(np.unique(unique.sort(1).values.numpy(), axis=0)) == 400  # no repeated input sets
    assert set(unique[:, 0].tolist()) == set(range(50))  # every input read
    tight = lut.LutLayer(6, 30, k=6, connections="unique", generator=g).inputs
    assert (tight.sort(1).values == torch.arange(6)).all()
    counts = torch.bincount(lut.LutLayer(100, 500, k=4, generator=g).inputs.flatten(), minlength=100)
    assert counts.min() == counts.max() == 20  # 'random' uses every input equally often


@pytest.mark.parametrize("k", [0, 7, -1, 2.5, True, "6"])
def test_bad_k_is_one_clear_line(k):
    with pytest.raises(ValueError, match=r"^LutLayer: k must be an integer in 1\.\.6, got") as info:
        lut.LutLayer(8, 4, k=k)
    assert "\n" not in str(info.value)


def test_bad_options():
    with pytest.raises(ValueError, match="connections='unique' needs in_dim >= k"):
        lut.LutLayer(4, 2, k=5, connections="unique")
    with pytest.raises(ValueError, match="unknown connections 'ring'"):
        lut.LutLayer(8, 2, connections="ring")
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        lut.LutLayer(8, 2, init="zeros")
    with pytest.raises(ValueError, match="expected 8 input features"):
        lut.LutLayer(8, 2)(torch.rand(3, 9))
    with pytest.raises(ValueError, match="table"):
        lut.lut_layer(torch.rand(2, 8), torch.zeros(3, 2, dtype=torch.long), torch.rand(3, 5))
    with pytest.raises(ValueError, match="LUT layer: k must be an integer in 1..6, got 7"):
        lut.lut_layer(torch.rand(2, 8), torch.zeros(3, 7, dtype=torch.long), torch.rand(3, 128))


def test_a_lut6_node_learns_any_function_of_its_inputs(kernel):
    torch.manual_seed(0)
    target = torch.randint(0, 2, (64,)).float()  # a random 6-input Boolean function
    x = torch.tensor([[(i >> j) & 1 for j in range(6)] for i in range(64)], dtype=torch.float32)
    layer = lut.LutLayer(6, 1, k=6, connections="unique")
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(200):
        loss = torch.nn.functional.binary_cross_entropy(layer(x)[:, 0].clamp(1e-6, 1 - 1e-6), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(layer.eval()(x)[:, 0], target)


@pytest.mark.parametrize("k", [1, 4, 6])
def test_empty_batch_and_unbatched_input(k, kernel):
    layer = lut.LutLayer(10, 5, k=k)
    x = torch.rand(0, 10, requires_grad=True)
    layer(x).sum().backward()
    assert layer(x).shape == (0, 5) and x.grad.shape == (0, 10)
    single = torch.rand(10)
    torch.testing.assert_close(layer(single), layer(single.unsqueeze(0))[0])
    assert layer.eval()(single).shape == (5,) and layer(torch.rand(0, 10)).shape == (0, 5)


# ----------------------------------------------------------------------------- the fused kernel
def _compare_with_the_torch_path(monkeypatch, dtype, ks=range(1, 7), batches=(1, 7, 16, 33, 130)):
    """The active fused kernel against the torch path: values and both gradients."""
    atol = 1e-12 if dtype == torch.float64 else 2e-5
    for k in ks:
        for batch in batches:
            g = torch.Generator().manual_seed(1000 * k + batch)
            x = torch.rand(batch, 19, dtype=dtype, generator=g, requires_grad=True)
            inputs = torch.randint(0, 19, (23, k), generator=g)
            table = torch.rand(23, 1 << k, dtype=dtype, generator=g, requires_grad=True)
            weights = torch.randn(batch, 23, dtype=dtype, generator=g)
            assert_fused_equals_torch(monkeypatch, lambda x, table: lut.lut_layer(x, inputs, table), (x, table),
                                      weights, atol * max(1, batch / 16))

def test_the_fused_kernel_builds_here_for_both_dtypes():
    """A C compiler is a test requirement: without the fused kernel LUT layers train 3-4x slower."""
    for dtype in ("float32", "float64"):
        assert lut._native.kernels(dtype) is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_fused_kernel_equals_the_torch_path_on_every_k_and_ragged_batches(dtype, monkeypatch):
    _compare_with_the_torch_path(monkeypatch, dtype)


@pytest.mark.parametrize("threads, columns", [(2, 64), (3, 16)])
def test_the_fused_kernel_splits_the_batch_over_threads_exactly(threads, columns, monkeypatch):
    previous = torch.get_num_threads()
    monkeypatch.setattr(lut._native, "SLICE_COLUMNS", columns)
    try:
        torch.set_num_threads(threads)
        _compare_with_the_torch_path(monkeypatch, torch.float64, ks=(1, 3, 6), batches=(15, 50, 130, 257))
    finally:
        torch.set_num_threads(previous)


@pytest.mark.needs_tool("gcc", "clang")
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_the_fused_kernel_is_exact_for_every_vector_width_and_compiler(cc, tmp_path, monkeypatch):
    """Both kernels built strict (-Werror -pedantic) for the baseline, AVX2 and this machine's
    vector width."""
    import platform

    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path))
    targets = ["-march=x86-64", "-march=x86-64-v3", "-march=native"] if platform.machine() == "x86_64" else [
        "-march=native"]
    for target in targets:
        flags = ("-O3", target, "-Wall", "-Wextra", "-Werror", "-pedantic")
        libraries = {dtype: lut._native.load(lut._native.build(dtype, cc, flags)) for dtype in ("float32", "float64")}
        monkeypatch.setattr(lut._native, "kernels", libraries.get)
        for dtype in (torch.float32, torch.float64):
            _compare_with_the_torch_path(monkeypatch, dtype, batches=(3, 16, 41))
            _compare_selection_with_the_torch_path(monkeypatch, dtype)


def _compare_selection_with_the_torch_path(monkeypatch, dtype):
    from lgn.nn.connectivity import select_sources

    g = torch.Generator().manual_seed(5)
    x = torch.rand(41, 30, dtype=dtype, generator=g, requires_grad=True)
    candidates = torch.randint(0, 30, (25, 6), generator=g)
    probs = torch.softmax(torch.randn(25, 6, dtype=dtype, generator=g), 1).requires_grad_()
    results = []
    for kernel in ("native", "torch"):
        monkeypatch.setattr(lut._native, "KERNEL", kernel)
        y = select_sources(x, candidates, probs)
        results.append((y, *torch.autograd.grad((y * y).sum(), (x, probs))))
    for fused, plain in zip(*results):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_the_kernel_cache_is_reused_and_keyed_by_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path))
    first = lut._native.build("float32")
    assert lut._native.build("float32") == first and first.parent == tmp_path
    assert lut._native.build("float32", cflags=("-O2",)) != first
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([first.name, lut._native.build(
        "float32", cflags=("-O2",)).name])  # no scratch files left behind


def test_without_a_compiler_lut_layers_warn_once_and_use_the_torch_path(monkeypatch, tmp_path):
    from lgn.compile.c.plan import CompilerNotFoundError

    def no_compiler(cc=None):
        raise CompilerNotFoundError("no C compiler found (tried $CC, cc, gcc, clang)")

    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(lut._native, "find_compiler", no_compiler)
    lut._native.kernels.cache_clear()
    try:
        x = torch.rand(5, 9)
        inputs, table = torch.randint(0, 9, (4, 6)), torch.rand(4, 64)
        with pytest.warns(RuntimeWarning, match="pure-torch kernels: the fused ones did not build .no C compiler"):
            y = lut.lut_layer(x, inputs, table)
        torch.testing.assert_close(y, lut.lut_layer_reference(x, inputs, table))
        lut.lut_layer(x, inputs, table)  # warned once: a second warning would fail under -W error
        monkeypatch.setattr(lut._native, "KERNEL", "native")
        with pytest.raises(RuntimeError, match="the fused kernels are not available for torch.float32"):
            lut.lut_layer(x, inputs, table)
    finally:
        lut._native.kernels.cache_clear()


def test_an_unknown_kernel_name_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(lut._native, "KERNEL", "cuda-graphs")
    with pytest.raises(ValueError, match="unknown kernel 'cuda-graphs' .LGN_KERNEL."):
        lut.lut_layer(torch.rand(2, 8), torch.zeros(3, 6, dtype=torch.long), torch.rand(3, 64))
