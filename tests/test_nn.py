import numpy as np
import pytest
import torch

from lgn.nn import GroupSum, LogicLayer, LogicNet, Thermometer, gates
from lgn.nn import functional as F

EXPECTED = {  # the paper's table, spelled out independently of the bit trick in gates.py
    "FALSE": lambda a, b: 0, "AND": lambda a, b: a and b, "A_AND_NOT_B": lambda a, b: a and not b,
    "A": lambda a, b: a, "NOT_A_AND_B": lambda a, b: (not a) and b, "B": lambda a, b: b,
    "XOR": lambda a, b: a != b, "OR": lambda a, b: a or b, "NOR": lambda a, b: not (a or b),
    "XNOR": lambda a, b: a == b, "NOT_B": lambda a, b: not b, "B_IMPLIES_A": lambda a, b: a or not b,
    "NOT_A": lambda a, b: not a, "A_IMPLIES_B": lambda a, b: (not a) or b,
    "NAND": lambda a, b: not (a and b), "TRUE": lambda a, b: 1,
}


@pytest.mark.parametrize("op", range(16))
def test_truth_table_and_coefficients(op):
    fn = EXPECTED[gates.GATE_NAMES[op]]
    c0, c1, c2, c3 = gates.COEFFICIENTS[op]
    k0, k1, k2, k3 = gates.ANF[op]
    for a in (0, 1):
        for b in (0, 1):
            want = int(bool(fn(a, b)))
            assert gates.gate_value(op, a, b) == want
            assert gates.TRUTH_TABLE[op, 2 * a + b] == want
            assert c0 + c1 * a + c2 * b + c3 * a * b == want
            assert k0 ^ (k1 & a) ^ (k2 & b) ^ (k3 & a & b) == want
            assert gates.gate_value(gates.swap_inputs(op), b, a) == want


def test_relaxed_layer_equals_naive_values_and_gradients():
    torch.manual_seed(0)
    layer = LogicLayer(20, 50).double()
    x = torch.rand(7, 20, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y_ref = F.logic_layer_reference(x, layer.idx_a, layer.idx_b, layer.weights)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, layer.weights), g)
    grads_ref = torch.autograd.grad(y_ref, (x, layer.weights), g)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want)


def test_gradcheck_float64():
    torch.manual_seed(1)
    layer = LogicLayer(6, 9, connections="unique").double()
    x = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    w = layer.weights.detach().clone().requires_grad_()
    fn = lambda x, w: F.logic_layer(x, layer.idx_a, layer.idx_b, F.gate_coefficients(w))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w))


def test_eval_is_exactly_boolean_and_matches_truth_table():
    torch.manual_seed(2)
    layer = LogicLayer(10, 64).eval()
    x = torch.rand(33, 10)
    y = layer(x)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    bits = (x > 0.5).long()
    ops = layer.gate_ops()
    for j in range(64):
        a, b = bits[:, layer.idx_a[j]], bits[:, layer.idx_b[j]]
        want = torch.tensor([gates.gate_value(int(ops[j]), int(p), int(q)) for p, q in zip(a, b)])
        assert torch.equal(y[:, j].long(), want)


def test_residual_init_passes_input_a_through():
    layer = LogicLayer(12, 12, init="residual").eval()
    x = (torch.rand(5, 12) > 0.5).float()
    assert torch.equal(layer(x), x[:, layer.idx_a])


def test_unique_connections_are_distinct_pairs():
    layer = LogicLayer(30, 200, connections="unique", generator=torch.Generator().manual_seed(0))
    a, b = layer.idx_a, layer.idx_b
    assert (a != b).all()
    pairs = {(min(p, q), max(p, q)) for p, q in zip(a.tolist(), b.tolist())}
    assert len(pairs) == 200
    assert set(a.tolist()) | set(b.tolist()) == set(range(30))


def test_group_sum_and_thermometer():
    x = torch.arange(12.0).reshape(1, 12)
    torch.testing.assert_close(GroupSum(3, tau=2.0)(x), torch.tensor([[3.0, 11.0, 19.0]]))
    enc = Thermometer.uniform(2, 3, 0, 16)
    torch.testing.assert_close(enc.thresholds[0], torch.tensor([4.0, 8.0, 12.0]))
    bits = enc(torch.tensor([[5.0, 16.0]]))
    assert bits.tolist() == [[1, 0, 0, 1, 1, 1]]
    q = Thermometer.quantile(torch.arange(100.0).reshape(50, 2), 1)
    torch.testing.assert_close(q.thresholds[:, 0], torch.tensor([49.0, 50.0]))


def test_logic_net_shapes_and_bad_arguments():
    net = LogicNet(Thermometer.uniform(4, 2, 0, 1), 3, layers=2, width=30)
    assert net(torch.rand(5, 4)).shape == (5, 3)
    assert net.num_gates == 60
    with pytest.raises(ValueError, match="multiple of num_classes"):
        LogicNet(Thermometer.uniform(4, 2, 0, 1), 3, layers=2, width=31)
    with pytest.raises(ValueError, match="expected 8 input features"):
        net.layers[0](torch.rand(2, 5))
    with pytest.raises(ValueError, match="unknown connections"):
        LogicLayer(4, 4, connections="nope")
    with pytest.raises(ValueError, match="unknown init"):
        LogicLayer(4, 4, init="nope")


def test_training_reduces_loss_on_a_learnable_function():
    torch.manual_seed(0)
    x = torch.randint(0, 2, (512, 6)).float()
    y = ((x[:, 0].long() ^ x[:, 1].long()) | x[:, 2].long())
    net = LogicNet(Thermometer.uniform(6, 1, 0, 1), 2, layers=2, width=64, tau=4)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (net.eval()(x).argmax(1) == y).float().mean()
    assert accuracy > 0.95


def test_table_parametrization_discretizes_to_its_truth_table():
    torch.manual_seed(3)
    layer = LogicLayer(10, 64, parametrization="table")
    assert layer.weights.shape == (64, 4)
    layer.eval()
    x = (torch.rand(40, 10) > 0.5).float()
    y = layer(x)
    ops = layer.gate_ops()
    for j in range(64):
        table = (layer.weights[j] > 0).long().tolist()
        assert gates.TRUTH_TABLE[int(ops[j])].tolist() == table
        a, b = x[:, layer.idx_a[j]].long(), x[:, layer.idx_b[j]].long()
        want = torch.tensor([gates.gate_value(int(ops[j]), int(p), int(q)) for p, q in zip(a, b)])
        assert torch.equal(y[:, j].long(), want)


def test_table_parametrization_relaxation_and_gradcheck():
    torch.manual_seed(4)
    layer = LogicLayer(6, 9, parametrization="table").double()
    x = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    # the relaxation interpolates the sigmoid table bilinearly
    t = torch.sigmoid(layer.weights)
    a, b = x[:, layer.idx_a], x[:, layer.idx_b]
    want = (1 - a) * (1 - b) * t[:, 0] + (1 - a) * b * t[:, 1] + a * (1 - b) * t[:, 2] + a * b * t[:, 3]
    torch.testing.assert_close(layer(x), want)
    w = layer.weights.detach().clone().requires_grad_()
    fn = lambda x, w: F.logic_layer(x, layer.idx_a, layer.idx_b, F.table_coefficients(w))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w))
    residual = LogicLayer(12, 12, init="residual", parametrization="table").eval()
    bits = (torch.rand(5, 12) > 0.5).float()
    assert torch.equal(residual(bits), bits[:, residual.idx_a])
    with pytest.raises(ValueError, match="unknown parametrization"):
        LogicLayer(4, 4, parametrization="nope")


def test_bitwise_forms_and_operand_sets_match_the_truth_table():
    a = np.array([False, False, True, True])
    b = np.array([False, True, False, True])
    for op in range(16):
        assert gates.BITWISE[op](a, b).astype(int).tolist() == gates.TRUTH_TABLE[op].tolist()
        assert (op in gates.READS_A) == any(gates.gate_value(op, 0, y) != gates.gate_value(op, 1, y) for y in (0, 1))
        assert (op in gates.READS_B) == any(gates.gate_value(op, x, 0) != gates.gate_value(op, x, 1) for x in (0, 1))
