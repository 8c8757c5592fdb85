"""The CUDA path against the CPU: logic layers and nets, sorting, the packed executor.

Every test here needs a GPU and is skipped without one (the one skip the suite allows); run them
with ``bash bench/gpu.sh`` on a machine that has one.
"""

import numpy as np
import pytest
import torch

from lgn.compile import packed
from lgn.compile.lower import lower
from lgn.nn import LogicLayer, LogicNet, Thermometer
from lgn.nn import functional as F
from lgn.sort import NETWORKS, ranking_loss, soft_rank, soft_sort, soft_top_k, top_k_cross_entropy
from lgn.sort import _mixing

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

PARAMETRIZATIONS = ("gates", "table")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(4321)


def _on(device, *tensors):
    return [t.detach().to(device).requires_grad_(t.requires_grad) for t in tensors]


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("batch", [1, 3, 128])
def test_logic_layer_kernels_match_cpu(parametrization, batch, gen):
    layer = LogicLayer(50, 70, parametrization=parametrization, generator=gen)
    x = torch.rand(batch, 50, generator=gen, requires_grad=True)
    w = layer.weights.detach().clone().requires_grad_()
    g = torch.randn(batch, 70, generator=gen)
    results = {}
    for device in ("cpu", "cuda"):
        xd, wd = _on(device, x, w)
        coef = F.table_coefficients(wd) if parametrization == "table" else F.gate_coefficients(wd)
        ia, ib = layer.idx_a.to(device), layer.idx_b.to(device)
        outs = [F.logic_layer_feature_major(xd.t(), ia, ib, coef).t(), F.logic_layer(xd, ia, ib, coef),
                F.logic_layer_batch_major(xd, ia, ib, coef)]
        grads = [torch.autograd.grad(y, (xd, wd), g.to(device), retain_graph=True) for y in outs]
        results[device] = outs, grads
        assert all(y.device.type == device for y in outs)
    for got, want in zip(results["cuda"][0], results["cpu"][0]):
        torch.testing.assert_close(got.cpu(), want)
    for got, want in zip(results["cuda"][1], results["cpu"][1]):
        for a, b in zip(got, want):
            torch.testing.assert_close(a.cpu(), b)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_logic_net_training_and_eval_match_cpu(parametrization, gen):
    nets = {d: LogicNet(Thermometer.uniform(16, 2, 0, 1), 4, layers=3, width=400, seed=5,
                        parametrization=parametrization).to(d) for d in ("cpu", "cuda")}
    opts = {d: torch.optim.Adam(net.parameters(), lr=0.05) for d, net in nets.items()}
    x = torch.rand(256, 16, generator=gen)
    y = torch.randint(0, 4, (256,), generator=gen)
    losses = {d: [] for d in nets}
    for _ in range(10):
        for d, net in nets.items():
            loss = torch.nn.functional.cross_entropy(net(x.to(d)), y.to(d))
            opts[d].zero_grad()
            loss.backward()
            opts[d].step()
            losses[d].append(loss.item())
    torch.testing.assert_close(torch.tensor(losses["cuda"]), torch.tensor(losses["cpu"]), rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # discretized: exactly the same scores
        scores = {d: net.eval()(x.to(d)).cpu() for d, net in nets.items()}
    assert torch.equal(scores["cuda"], scores["cpu"])


def test_packed_executor_on_cuda_tensors_matches_numpy_and_the_model(gen):
    model = LogicNet(Thermometer.uniform(12, 3, 0, 1), 3, layers=3, width=300, seed=7).eval()
    netlist = lower(model)
    x = torch.rand(1000, 12, generator=gen)
    bits = model.encoder(x)
    want = packed.run(netlist, bits.numpy())
    got = packed.run(netlist, bits.cuda())
    assert got.device.type == "cuda" and got.dtype == torch.int64
    np.testing.assert_array_equal(got.cpu().numpy(), want)
    with torch.no_grad():
        scores = model.cuda()(x.cuda())
    torch.testing.assert_close(got.to(scores.dtype) / model.tau, scores)
    assert torch.equal(packed.predict(netlist, bits.cuda()).cpu(), torch.from_numpy(want.argmax(1)))


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sort_matches_cpu(name, dtype, gen):
    for n, batch in [(2, 3), (17, 5), (64, 4), (256, 8)]:
        x = torch.randn(batch, n, generator=gen, dtype=dtype, requires_grad=True)
        order = torch.argsort(torch.randn(batch, n, generator=gen))
        out = {}
        for device in ("cpu", "cuda"):
            xd, = _on(device, x)
            values, perm = soft_sort(xd, name, steepness=3.0)
            loss = ranking_loss(perm, order.to(device)) + values.square().mean()
            out[device] = values, perm, torch.autograd.grad(loss, xd)[0]
        for got, want in zip(out["cuda"], out["cpu"]):
            torch.testing.assert_close(got.cpu(), want)


def test_sort_kernels_ranks_and_top_k_on_cuda(gen):
    net_x = torch.randn(6, 40, generator=gen, dtype=torch.float64)
    cuda_x = net_x.cuda()
    torch.testing.assert_close(soft_rank(cuda_x, steepness=2.0).cpu(), soft_rank(net_x, steepness=2.0))
    values, rows = soft_top_k(cuda_x, 5, steepness=2.0)
    cpu_values, cpu_rows = soft_top_k(net_x, 5, steepness=2.0)
    torch.testing.assert_close(values.cpu(), cpu_values)
    torch.testing.assert_close(rows.cpu(), cpu_rows)
    labels = torch.randint(0, 40, (6,), generator=gen)
    torch.testing.assert_close(top_k_cross_entropy(cuda_x, labels.cuda(), (1, 5), steepness=2.0).cpu(),
                               top_k_cross_entropy(net_x, labels, (1, 5), steepness=2.0))
    # both permutation kernels run on CUDA tensors, the chunked one as one chunk per stage
    from lgn.sort import relaxed_network, sorting_network
    net = sorting_network("bitonic", 100)
    _, w = relaxed_network(torch.randn(3, 100, generator=gen, dtype=torch.float64).cuda(), net)
    w.requires_grad_()
    plan = _mixing.full_plan(net, w.device)
    weight = torch.randn(3, 100, 100, dtype=torch.float64, device="cuda")
    results = [_mixing.mix_chunked(w, plan), _mixing.mix_whole_batch(w, plan)]
    grads = [torch.autograd.grad((p * weight).sum(), w)[0] for p in results]
    torch.testing.assert_close(results[0], results[1])
    torch.testing.assert_close(grads[0], grads[1])
