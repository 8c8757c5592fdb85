"""lgn.sort: networks, relaxed sorting against torch.sort and the dense reference, gradients."""

import itertools
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from lgn.sort import (NETWORKS, SIGMOIDS, SoftSort, SortError, TopKCrossEntropy, bitonic_network,
                      conditional_swap, odd_even_network, ranking_loss, relaxed_network,
                      soft_rank, soft_sort, soft_top_k, sorting_network, top_k_cross_entropy,
                      top_k_network)
from lgn.sort import _mixing

MONOTONIC = ("cauchy", "reciprocal", "optimal")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


# -- networks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NETWORKS)
def test_networks_sort_every_binary_input(name):
    # 0-1 principle: a comparator network sorts everything iff it sorts every 0/1 sequence.
    for n in range(2, 12):
        net = sorting_network(name, n)
        for bits in itertools.product((0, 1), repeat=n):
            assert net.apply(bits) == sorted(bits), (name, n, bits)


def test_network_sizes():
    assert odd_even_network(7).depth == 7
    for log in range(1, 11):
        assert bitonic_network(2 ** log).depth == log * (log + 1) // 2
        assert bitonic_network(2 ** log).num_comparators == 2 ** (log - 1) * log * (log + 1) // 2
    # Hidden padding only removes comparators: never more layers than the padded network.
    assert bitonic_network(1000).depth == 55 and bitonic_network(1000).n == 1000


def test_top_k_network_selects_and_is_partial(gen):
    for n, k in [(2, 1), (7, 3), (16, 1), (16, 4), (33, 5), (64, 64), (100, 10)]:
        net = top_k_network(n, k)
        for _ in range(50):
            values = torch.randn(n, generator=gen).tolist()
            assert net.apply(values)[n - k:] == sorted(values)[n - k:], (n, k)
        if k < n // 2:
            assert net.num_comparators < bitonic_network(n).num_comparators


# -- forward values -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hard_limit_equals_torch_sort(name, dtype, gen):
    for n in (2, 3, 5, 8, 13, 32):
        x = torch.randn(4, 3, n, generator=gen, dtype=dtype)
        x[0, 0, 1] = x[0, 0, 0]  # a tie
        for descending in (False, True):
            values, perm = soft_sort(x, name, steepness=math.inf, descending=descending)
            torch.testing.assert_close(values, torch.sort(x, -1, descending=descending).values,
                                       rtol=0, atol=0)
            assert perm.dtype == dtype and set(perm.unique().tolist()) <= {0.0, 1.0}
            torch.testing.assert_close((perm @ x.unsqueeze(-1)).squeeze(-1), values)


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_steep_limit_approaches_torch_sort(sigmoid, gen):
    # Distinct values spaced >= 1e-2 apart; beta large enough for every sigmoid's tail.
    x = torch.randperm(20, generator=gen).double().view(2, 10) * 1e-2
    values, perm = soft_sort(x, steepness=1e9, sigmoid=sigmoid)
    torch.testing.assert_close(values, torch.sort(x).values)
    hard = torch.nn.functional.one_hot(torch.argsort(x), 10).double()
    torch.testing.assert_close(perm, hard, atol=1e-6, rtol=0)


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
@pytest.mark.parametrize("name", NETWORKS)
def test_permutation_is_doubly_stochastic(sigmoid, name, gen):
    for n in (2, 6, 17, 64):
        x = torch.randn(3, n, generator=gen, dtype=torch.float64) * 3
        values, perm = soft_sort(x, name, sigmoid, steepness=1.5)
        assert perm.min() >= 0
        torch.testing.assert_close(perm.sum(-1), torch.ones(3, n, dtype=torch.float64))
        torch.testing.assert_close(perm.sum(-2), torch.ones(3, n, dtype=torch.float64))
        torch.testing.assert_close((perm @ x.unsqueeze(-1)).squeeze(-1), values)


@pytest.mark.parametrize("name", NETWORKS)
def test_fast_permutation_matches_dense_reference(name, gen):
    # The O(n^2)-per-layer checkpointed kernel against one dense matrix product per layer:
    # values and gradients, block-sparse (bitonic) and dense layouts, padded sizes.
    for n in (2, 3, 7, 16, 33, 100):
        net = sorting_network(name, n)
        x = torch.randn(2, n, generator=gen, dtype=torch.float64, requires_grad=True)
        weight = torch.randn(2, n, n, generator=gen, dtype=torch.float64)
        _, w = relaxed_network(x, net, "cauchy", 2.0)
        fast = _mixing.mix(w, _mixing.full_plan(net, x.device))
        dense = _mixing.reference_permutation(w, net)
        torch.testing.assert_close(fast, dense)
        grad_fast, = torch.autograd.grad((fast * weight).sum(), x, retain_graph=True)
        grad_dense, = torch.autograd.grad((dense * weight).sum(), x)
        torch.testing.assert_close(grad_fast, grad_dense)


def test_backward_keeps_few_states():
    # Saved for backward: checkpoints only, never one P per layer (bitonic 256 has 36 layers).
    n, batch = 256, 2
    x = torch.randn(batch, n, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        soft_sort(x)
    assert sum(saved) <= 6 * batch * n * n


@pytest.fixture(params=[256, 2000], ids=["chunks-256", "chunks-2000"])
def small_chunks(request, monkeypatch):
    """Tiny CPU chunks, so that small problems split into many items x columns chunks."""
    monkeypatch.setattr(_mixing, "CPU_CHUNK_ELEMENTS", request.param)
    monkeypatch.setattr(_mixing, "TILED_CHUNK_ELEMENTS", request.param)
    return request.param


def _permutation_and_grad(kernel, x, net, sigmoid, weight):
    x = x.clone().requires_grad_()
    _, w = relaxed_network(x, net, sigmoid, 2.0)
    perm = kernel(w, _mixing.full_plan(net, x.device))
    grad, = torch.autograd.grad((perm * weight).sum(), x)
    return perm.detach(), grad


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_kernel_equals_the_first_kernel(name, dtype, small_chunks, gen):
    # The chunked kernel (stages, items x columns chunks, lazily grown entries, checkpointed long
    # stages) against the first one on n = 2..64; the sigmoid cycles so that each is drawn.
    for n in range(2, 65):
        net = sorting_network(name, n)
        x = torch.randn(3, n, generator=gen, dtype=dtype) * 2
        weight = torch.randn(3, n, n, generator=gen, dtype=dtype)
        sigmoid = SIGMOIDS[n % len(SIGMOIDS)]
        perm, grad = _permutation_and_grad(_mixing.mix_chunked, x, net, sigmoid, weight)
        base_perm, base_grad = _permutation_and_grad(_mixing.mix_whole_batch, x, net, sigmoid, weight)
        torch.testing.assert_close(perm, base_perm, msg=f"{name} n={n} {sigmoid}")
        torch.testing.assert_close(grad, base_grad, msg=f"{name} n={n} {sigmoid}")


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_chunked_kernel_every_sigmoid_and_gradcheck(sigmoid, small_chunks, gen):
    for name in NETWORKS:
        net = sorting_network(name, 19)
        x = torch.randn(2, 19, generator=gen, dtype=torch.float64)
        weight = torch.randn(2, 19, 19, generator=gen, dtype=torch.float64)
        perm, grad = _permutation_and_grad(_mixing.mix_chunked, x, net, sigmoid, weight)
        base_perm, base_grad = _permutation_and_grad(_mixing.mix_whole_batch, x, net, sigmoid, weight)
        torch.testing.assert_close(perm, base_perm)
        torch.testing.assert_close(grad, base_grad)
        w = torch.rand(2, sorting_network(name, 6).num_comparators, generator=gen, dtype=torch.float64)
        plan = _mixing.full_plan(sorting_network(name, 6), w.device)
        assert torch.autograd.gradcheck(lambda w: _mixing.mix_chunked(w, plan), (w.requires_grad_(),))


@pytest.mark.parametrize("name", NETWORKS)
def test_tiled_kernel_equals_todays_kernels(name, small_chunks, gen):
    # mix_tiled (strided halves, lo - hi kept for backward) against today's chunked kernel and the
    # first one on n = 2..64, every sigmoid drawn; float32, so P and gradients must agree closely.
    for n in range(2, 65):
        net = sorting_network(name, n)
        x = torch.randn(3, n, generator=gen) * 2
        weight = torch.randn(3, n, n, generator=gen)
        sigmoid = SIGMOIDS[(n + 3) % len(SIGMOIDS)]
        perm, grad = _permutation_and_grad(_mixing.mix_tiled, x, net, sigmoid, weight)
        for kernel in (_mixing.mix_chunked, _mixing.mix_whole_batch):
            base_perm, base_grad = _permutation_and_grad(kernel, x, net, sigmoid, weight)
            torch.testing.assert_close(perm, base_perm, msg=f"{name} n={n} {sigmoid}")
            torch.testing.assert_close(grad, base_grad, msg=f"{name} n={n} {sigmoid}")


def test_tiles_cover_strided_layers_and_padding():
    cpu = torch.device("cpu")
    plan = _mixing.full_plan(bitonic_network(64), cpu)
    flips = [step for step in plan.steps if step.tile is None]
    # the flip layer of every merge but the first (there it is the stride-1 layer)
    assert len(flips) == 5 and all(step.stride is None for step in flips)
    padded = _mixing.full_plan(bitonic_network(15), cpu)  # one padding row: some empty slots
    assert any(step.tile is not None and step.tile.columns is not None for step in padded.steps)
    odd_even = _mixing.full_plan(odd_even_network(9), cpu)
    assert all(step.tile is not None for step in odd_even.steps)


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_tiled_kernel_gradcheck(sigmoid, small_chunks, gen):
    for name, n in [("bitonic", 6), ("bitonic", 8), ("odd_even", 7)]:
        net = sorting_network(name, n)
        x = torch.randn(2, n, generator=gen, dtype=torch.float64, requires_grad=True)

        def perm(x):
            _, w = relaxed_network(x, net, sigmoid, 2.0)
            return _mixing.mix_tiled(w, _mixing.full_plan(net, x.device))
        assert torch.autograd.gradcheck(perm, (x,))


def test_tiled_left_products_equal_the_first_kernel(small_chunks, gen):
    for n, k in [(9, 1), (16, 3), (33, 33)]:
        for net in (sorting_network("bitonic", n), sorting_network("odd_even", n), top_k_network(n, k)):
            w = torch.rand(4, net.num_comparators, generator=gen, dtype=torch.float64, requires_grad=True)
            init = torch.randn(n, k, generator=gen, dtype=torch.float64)
            plan = _mixing.left_plan(net, w.device, k)
            weight = torch.randn(4, k, n, generator=gen, dtype=torch.float64)
            got = _mixing.mix_tiled(w, plan, init)
            want = _mixing.mix_whole_batch(w, plan, init)
            torch.testing.assert_close(got, want)
            grads = [torch.autograd.grad((y * weight).sum(), w)[0] for y in (got, want)]
            torch.testing.assert_close(*grads)


def test_chunked_left_products_equal_the_first_kernel(small_chunks, gen):
    for n, k in [(9, 1), (16, 3), (33, 33)]:
        for net in (sorting_network("bitonic", n), top_k_network(n, k)):
            w = torch.rand(4, net.num_comparators, generator=gen, dtype=torch.float64, requires_grad=True)
            init = torch.randn(n, k, generator=gen, dtype=torch.float64)
            plan = _mixing.left_plan(net, w.device, k)
            weight = torch.randn(4, k, n, generator=gen, dtype=torch.float64)
            got = _mixing.mix_chunked(w, plan, init)
            want = _mixing.mix_whole_batch(w, plan, init)
            torch.testing.assert_close(got, want)
            grads = [torch.autograd.grad((y * weight).sum(), w)[0] for y in (got, want)]
            torch.testing.assert_close(*grads)


def test_mix_picks_the_chunked_kernel_for_large_batches(gen):
    n, batch = 256, 8  # 8 x 256 x 256 elements exceed one CPU chunk
    net = sorting_network("bitonic", n)
    assert batch * max(step.cost for step in _mixing.full_plan(net, torch.device("cpu")).steps) \
        > _mixing.CPU_CHUNK_ELEMENTS
    x = torch.randn(batch, n, generator=gen, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        _, w = relaxed_network(x, net)
        perm = _mixing.mix(w, _mixing.full_plan(net, x.device))
    # The chunked kernel keeps the stage inputs: about one P for bitonic (the first kernel, six).
    kernel_saved = [s for s in saved if s >= batch * n]
    assert sum(kernel_saved) <= 1.1 * batch * n * n
    torch.testing.assert_close(perm, _mixing.mix_whole_batch(w, _mixing.full_plan(net, x.device)))


def test_batch_dims_descending_and_module(gen):
    x = torch.randn(2, 3, 4, 9, generator=gen)
    values, perm = soft_sort(x, steepness=5.0, descending=True)
    assert values.shape == x.shape and perm.shape == (2, 3, 4, 9, 9)
    flat_values, flat_perm = soft_sort(x.reshape(-1, 9), steepness=5.0)
    torch.testing.assert_close(values.reshape(-1, 9), flat_values.flip(-1))
    torch.testing.assert_close(perm.reshape(-1, 9, 9), flat_perm.flip(-2))
    module_values, module_perm = SoftSort(9, steepness=5.0, descending=True)(x)
    torch.testing.assert_close(module_values, values)
    torch.testing.assert_close(module_perm, perm)


def test_conditional_swap():
    a, b = torch.tensor([0.0, 3.0]), torch.tensor([1.0, -1.0])
    lo, hi = conditional_swap(a, b, steepness=math.inf)
    assert lo.tolist() == [0.0, -1.0] and hi.tolist() == [1.0, 3.0]
    lo, hi = conditional_swap(a, b, steepness=1.0)
    torch.testing.assert_close(lo + hi, a + b)
    assert (lo <= hi).all()


# -- ranks and top-k ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NETWORKS)
def test_soft_rank(name, gen):
    x = torch.randn(5, 11, generator=gen, dtype=torch.float64)
    hard = soft_rank(x, name, steepness=math.inf)
    torch.testing.assert_close(hard, (torch.argsort(torch.argsort(x)) + 1).double())
    torch.testing.assert_close(soft_rank(x, name, steepness=math.inf, descending=True), 12 - hard)
    _, perm = soft_sort(x, name, steepness=2.0)
    positions = torch.arange(1, 12, dtype=torch.float64).view(-1, 1)
    torch.testing.assert_close(soft_rank(x, name, steepness=2.0), (perm * positions).sum(-2))


def test_top_k_agrees_with_full_sort(gen):
    for n, k in [(2, 1), (5, 2), (16, 4), (37, 5), (64, 64)]:
        x = torch.randn(3, n, generator=gen, dtype=torch.float64)
        values, rows = soft_top_k(x, k, steepness=math.inf)
        full_values, full_perm = soft_sort(x, steepness=math.inf, descending=True)
        torch.testing.assert_close(values, full_values[:, :k], rtol=0, atol=0)
        torch.testing.assert_close(rows, full_perm[:, :k])
        # Relaxed: rows are distributions; steep enough, the relaxed top-k matches the sort.
        values, rows = soft_top_k(x, k, steepness=1.0)
        torch.testing.assert_close(rows.sum(-1), torch.ones(3, k, dtype=torch.float64))
        assert rows.min() >= 0 and (rows.sum(-2) <= 1 + 1e-12).all()
        torch.testing.assert_close((rows @ x.unsqueeze(-1)).squeeze(-1), values)
        values, _ = soft_top_k(x, k, steepness=1e9)
        torch.testing.assert_close(values, torch.topk(x, k).values)


def test_top_k_cross_entropy(gen):
    scores = torch.randn(6, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 10, (6,), generator=gen)
    hard = top_k_cross_entropy(scores, labels, k=3, steepness=math.inf, eps=1e-3)
    inside = (torch.topk(scores, 3).indices == labels[:, None]).any(-1)
    expected = torch.where(inside, 0.0, -math.log(1e-3)).double().mean()
    torch.testing.assert_close(hard, expected)
    loss = TopKCrossEntropy(k=(1, 5), weights=(0.5, 0.5), steepness=2.0)(scores, labels)
    loss.backward()
    # Raising the true class's score can only help it into the top k.
    assert (scores.grad.gather(1, labels[:, None]) <= 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ranking_loss_equals_one_hot_bce(dtype, gen):
    # Without building the one-hot target: same value and gradient as torch's BCE, also where P
    # leaves [0, 1] by rounding or reaches 0 and 1 exactly (log clamped at -100).
    for shape in [(4, 6), (2, 3, 9), (1, 2), (2, 40)]:
        perm = torch.rand(*shape, shape[-1], generator=gen, dtype=dtype)
        flat = perm.view(-1, shape[-1], shape[-1])
        flat[0, 0, :2] = torch.tensor([0.0, 1.0])
        flat[-1, -1, :2] = torch.tensor([-1e-7, 1 + 1e-7])
        order = torch.argsort(torch.rand(shape, generator=gen), -1)
        perm.requires_grad_()
        got = ranking_loss(perm, order)
        one_hot = torch.nn.functional.one_hot(order, shape[-1]).to(dtype)
        want = torch.nn.functional.binary_cross_entropy(perm.clamp(0, 1), one_hot)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(torch.autograd.grad(got, perm)[0], torch.autograd.grad(want, perm)[0])


def test_ranking_loss(gen):
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    order = torch.argsort(x)
    _, perm = soft_sort(x, steepness=math.inf)
    assert ranking_loss(perm, order).item() == 0
    _, soft = soft_sort(x, steepness=1.0)
    loss = ranking_loss(soft, order)
    torch.testing.assert_close(loss, ranking_loss(soft, torch.nn.functional.one_hot(order, 6).double()))
    assert loss > 0 and ranking_loss(soft, order.flip(-1)) > loss


# -- gradients ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_gradcheck(sigmoid, gen):
    x = torch.randn(2, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: soft_sort(x, sigmoid=sigmoid, steepness=2.0), (x,))
    assert torch.autograd.gradcheck(lambda x: soft_sort(x, "odd_even", sigmoid, 2.0)[1], (x,))


def test_gradcheck_rank_top_k_and_losses(gen):
    x = torch.randn(2, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: soft_rank(x, steepness=2.0), (x,))
    assert torch.autograd.gradcheck(lambda x: soft_top_k(x, 3, steepness=2.0), (x,))
    order = torch.argsort(torch.randn(2, 7, generator=gen))
    assert torch.autograd.gradcheck(lambda x: ranking_loss(soft_sort(x, steepness=2.0)[1], order), (x,))
    labels = torch.tensor([0, 4])
    assert torch.autograd.gradcheck(lambda x: top_k_cross_entropy(x, labels, (1, 3), steepness=2.0), (x,))


def _min_jacobian(sigmoid, gen, trials=8):
    worst = math.inf
    for name in NETWORKS:
        for _ in range(trials):
            x = torch.randn(6, generator=gen, dtype=torch.float64)
            jac = jacobian(lambda x: soft_sort(x, name, sigmoid, steepness=2.0)[0], x)
            worst = min(worst, jac.min().item())
    return worst


@pytest.mark.parametrize("sigmoid", MONOTONIC)
def test_monotonic_sigmoids_have_nonnegative_jacobian(sigmoid, gen):
    assert _min_jacobian(sigmoid, gen) >= -1e-12


def test_logistic_is_not_monotonic(gen):
    assert _min_jacobian("logistic", gen) < -0.05


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: soft_sort(torch.tensor([1.0, float("nan"), 2.0])), "NaN or infinite"),
    (lambda: soft_sort(torch.tensor([1.0, float("inf")])), "NaN or infinite"),
    (lambda: soft_sort(torch.tensor([[1.0], [2.0]])), "n >= 2"),
    (lambda: soft_sort(torch.tensor(1.0)), "n >= 2"),
    (lambda: soft_sort(torch.tensor([3, 1, 2])), "floating-point"),
    (lambda: soft_sort(torch.randn(4), network="bubble"), "unknown network"),
    (lambda: soft_sort(torch.randn(4), sigmoid="tanh"), "unknown sigmoid"),
    (lambda: soft_sort(torch.randn(4), steepness=0.0), "steepness"),
    (lambda: soft_sort(torch.randn(4), network=bitonic_network(5)), "wires"),
    (lambda: soft_rank(torch.randn(4, 1)), "n >= 2"),
    (lambda: soft_top_k(torch.randn(4), 5), "k must"),
    (lambda: sorting_network("bitonic", 1), "n >= 2"),
    (lambda: SoftSort(4, network="merge"), "unknown network"),
    (lambda: ranking_loss(torch.rand(2, 3, 3), torch.zeros(2, 4, dtype=torch.long)), "shape"),
    (lambda: top_k_cross_entropy(torch.randn(2, 4), torch.tensor([0, 4])), "labels"),
    (lambda: top_k_cross_entropy(torch.randn(2, 4), torch.tensor([0, 1]), k=(1, 2), weights=(1, 1)),
     "weights"),
])
def test_bad_input_raises_sort_error(call, message):
    with pytest.raises(SortError, match=message):
        call()
    assert issubclass(SortError, ValueError)


@pytest.mark.parametrize("text, expected", [("2048K\n", 2 << 20), ("1M", 1 << 20), ("524288", 1 << 19),
                                            ("", 2 << 20), ("big", 2 << 20)])
def test_l2_size_from_sysfs_text(tmp_path, text, expected):
    size = tmp_path / "size"
    size.write_text(text)
    assert _mixing._l2_bytes(str(size)) == expected
    assert _mixing._l2_bytes(str(tmp_path / "missing")) == 2 << 20
