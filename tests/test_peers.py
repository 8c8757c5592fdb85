"""Models of difflogic and TorchLogix, built with the real libraries: their netlists (packed
executor and generated C) give exactly the peers' own eval-mode scores and predictions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import require_module, require_tool
from lgn.compile import c, packed
from lgn.compile.gates import NUM_GATES, TRUTH_TABLE
from lgn.compile.luts import decompose, materialize_offsets
from lgn.compile.netlist import ThermometerEncoding
from lgn.compile.peers import DIFFLOGIC_OPS, PeerModelError, from_difflogic, from_torchlogix

INSTALL = "bash scripts/setup.sh installs it"
FAST = ("-O1",)


def difflogic():
    return require_module("difflogic", INSTALL)


def torchlogix_layers():
    return require_module("torchlogix.layers", INSTALL)


def random_bits(seed: int, n: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (n, *shape)).astype(np.uint8)


def assert_equals_peer(model, net, bits: np.ndarray) -> None:
    """Packed and C scores of ``net`` on ``bits`` equal ``model``'s: the same argmax, and the
    same float32 scores once divided by tau as the peer's GroupSum does."""
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(bits.astype(np.float32)))
    flat = bits.reshape(len(bits), -1)
    scores = packed.run(net, flat != 0)
    assert np.array_equal(scores.argmax(1), expected.argmax(1).numpy())
    assert torch.equal(torch.from_numpy(scores).to(torch.float32) / net.tau, expected)
    require_tool("gcc", "apt-get install gcc")
    plain = decompose(materialize_offsets(net))  # C takes two-input gates and no offsets
    built = c.build(plain, cflags=FAST)
    c_scores = built.scores(flat)
    assert np.array_equal(c_scores + net.offsets.min(), scores)
    assert np.array_equal(built.predict(flat), expected.argmax(1).numpy())


# --------------------------------------------------------------------------- difflogic
def test_difflogic_ops_are_the_lgn_gates():
    bin_op = difflogic().functional.bin_op
    a, b = torch.tensor([0.0, 0, 1, 1]), torch.tensor([0.0, 1, 0, 1])
    for i in range(NUM_GATES):
        table = bin_op(a, b, i).numpy()
        assert np.array_equal(table, TRUTH_TABLE[DIFFLOGIC_OPS[i]]), i


@pytest.mark.parametrize("num_inputs, widths, classes, tau", [
    (12, [40], 2, 1.0),
    (30, [64, 48, 30], 3, 7.0),
    (20, [300, 200, 100], 10, 0.3),
])
def test_difflogic_model_equals_the_peer(num_inputs, widths, classes, tau):
    dl = difflogic()
    torch.manual_seed(len(widths))
    dims = [num_inputs] + widths
    layers = [dl.LogicLayer(i, o, device="cpu", implementation="python") for i, o in zip(dims, dims[1:])]
    model = torch.nn.Sequential(*layers, dl.GroupSum(classes, tau=tau))
    net = from_difflogic(model)
    assert net.num_gates == sum(widths) and net.num_inputs == num_inputs and net.meta == {"library": "difflogic"}
    if sum(widths) > 500:  # random weights: every op is somebody's argmax
        assert set(np.unique(net.op)) == set(range(NUM_GATES))
    assert_equals_peer(model, net, random_bits(len(widths), 333, (num_inputs,)))


def test_difflogic_in_bfloat16():
    dl = difflogic()
    torch.manual_seed(4)
    model = torch.nn.Sequential(dl.LogicLayer(16, 80, device="cpu", implementation="python"),
                                dl.GroupSum(4, tau=2)).to(torch.bfloat16)
    net = from_difflogic(model)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(random_bits(4, 200, (16,))).to(torch.bfloat16))
    assert np.array_equal(packed.predict(net, random_bits(4, 200, (16,)) != 0), expected.float().argmax(1).numpy())


def test_difflogic_images_through_flatten_nested_sequentials_and_a_shared_layer():
    dl = difflogic()
    torch.manual_seed(5)
    shared = dl.LogicLayer(60, 60, device="cpu", implementation="python")  # runs twice
    body = torch.nn.Sequential(dl.LogicLayer(24, 60, device="cpu", implementation="python"), shared, shared,
                               dl.LogicLayer(60, 40, device="cpu", implementation="python"))
    model = torch.nn.Sequential(torch.nn.Flatten(), body, dl.GroupSum(4, tau=2))
    assert_equals_peer(model, from_difflogic(model), random_bits(6, 200, (4, 6)))


def test_an_encoding_makes_the_netlist_read_raw_features():
    dl = difflogic()
    torch.manual_seed(6)
    model = torch.nn.Sequential(dl.LogicLayer(16, 50, device="cpu", implementation="python"),
                                dl.GroupSum(5, tau=1)).eval()
    encoding = ThermometerEncoding(8, np.repeat(np.arange(8), 2), np.tile([63.5, 191.5], 8), "uint8")
    net = from_difflogic(model, encoding=encoding, meta={"class_names": list("abcde")})
    assert net.meta["class_names"] == list("abcde")
    features = np.random.default_rng(6).integers(0, 256, (300, 8)).astype(np.uint8)
    with torch.no_grad():
        expected = model(torch.from_numpy(encoding.encode(features).astype(np.float32))).argmax(1).numpy()
    require_tool("gcc", "apt-get install gcc")
    assert np.array_equal(c.build(net, cflags=FAST).predict(features), expected)
    with pytest.raises(PeerModelError, match="encoding: 10 input bits, but the model reads 16"):
        from_difflogic(model, encoding=ThermometerEncoding(5, np.arange(10) % 5, np.zeros(10)))


# --------------------------------------------------------------------------- TorchLogix
@pytest.mark.parametrize("parametrization, rank, connections", [
    ("raw", 2, "fixed"), ("raw", 2, "learnable"), ("warp", 2, "fixed"), ("light", 2, "learnable"),
    ("warp", 1, "fixed"), ("warp", 4, "fixed"), ("light", 4, "learnable"), ("light", 6, "fixed"),
])
def test_torchlogix_model_equals_the_peer(parametrization, rank, connections):
    tl = torchlogix_layers()
    torch.manual_seed(rank)
    dims = [20, 120, 90, 60] if rank > 1 else [20, 40, 60, 60]
    options = {"lut_rank": rank, "parametrization": parametrization,
               "parametrization_kwargs": {"weight_init": "random"}}
    layers = [tl.LogicDense(i, o, connections=connections if k == 0 else "fixed", **options)
              for k, (i, o) in enumerate(zip(dims, dims[1:]))]
    model = torch.nn.Sequential(torch.nn.Flatten(), *layers, tl.GroupSum(6, tau=3.0))
    net = from_torchlogix(model)
    assert net.num_luts == (sum(dims[1:]) if rank > 2 else 0)
    if rank == 2 and parametrization == "raw":
        assert set(np.unique(net.op)) == set(range(NUM_GATES))
    assert_equals_peer(model, net, random_bits(rank, 300, (dims[0],)))


def test_torchlogix_group_sum_beta_becomes_offsets():
    tl = torchlogix_layers()
    torch.manual_seed(3)
    model = torch.nn.Sequential(tl.LogicDense(10, 30, parametrization_kwargs={"weight_init": "random"}),
                                tl.GroupSum(3, tau=2.0, beta=4.0))
    net = from_torchlogix(model)
    assert net.offsets.tolist() == [4, 4, 4]
    assert_equals_peer(model, net, random_bits(3, 100, (10,)))
    model[1].beta = 0.5
    with pytest.raises(PeerModelError, match=r"model\[1\]: GroupSum beta=0.5 is not an integer"):
        from_torchlogix(model)


# --------------------------------------------------------------------------- refusals
def test_modules_that_do_not_convert_fail_in_one_line():
    dl, tl = difflogic(), torchlogix_layers()
    layer = dl.LogicLayer(8, 20, device="cpu", implementation="python")
    cases = [
        (torch.nn.Sequential(layer, torch.nn.Linear(20, 4), dl.GroupSum(2)),
         r"model\[1\]: cannot convert a Linear module"),
        (torch.nn.Sequential(layer), "needs logic layers and a final GroupSum"),
        (torch.nn.Sequential(layer, dl.GroupSum(3)), r"model\[1\]: GroupSum k=3 does not divide the 20"),
        (torch.nn.Sequential(layer, dl.GroupSum(2), layer), r"GroupSum must be the last module, but model\[2\]"),
        (torch.nn.Sequential(layer, dl.LogicLayer(12, 20, device="cpu", implementation="python"),
                             dl.GroupSum(2)), r"model\[1\]: the layer reads 12 inputs, but the previous one gives 20"),
    ]
    for model, message in cases:
        with pytest.raises(PeerModelError, match=message):
            from_difflogic(model)
    gumbel = tl.LogicDense(8, 20, connections="learnable", connections_kwargs={"gumbel": True})
    with pytest.raises(PeerModelError, match=r"model\[0\]: learnable connections with gumbel=True"):
        from_torchlogix(torch.nn.Sequential(gumbel, tl.GroupSum(2)))


def test_the_conversion_module_imports_neither_torch_nor_the_peers():
    script = ("import sys, lgn.compile; assert lgn.compile.from_difflogic and lgn.compile.from_torchlogix; "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'difflogic', 'torchlogix'}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr[-2000:]
