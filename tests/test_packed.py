import numpy as np
import torch

from conftest import random_netlist
from lgn.compile import packed
from lgn.nn.gates import gate_value


def naive_scores(net, bits):
    """One gate at a time, one sample at a time: the definition, spelled out."""
    out = []
    for x in bits:
        v = [0, 1] + [int(t) for t in x]
        for g in range(net.num_gates):
            v.append(gate_value(int(net.op[g]), v[net.a[g]], v[net.b[g]]))
        out.append([sum(v[n] for n in grp) for grp in net.groups])
    return np.array(out, dtype=np.int64).reshape(len(bits), net.num_classes)


def test_packed_matches_naive_on_random_netlists(rng):
    for _ in range(20):
        net = random_netlist(rng, num_inputs=int(rng.integers(1, 12)), num_gates=int(rng.integers(0, 80)),
                             num_classes=int(rng.integers(1, 5)), outputs_per_class=int(rng.integers(1, 7)))
        n = int(rng.integers(0, 200))
        bits = rng.integers(0, 2, (n, net.num_inputs)).astype(bool)
        np.testing.assert_array_equal(packed.run(net, bits), naive_scores(net, bits))


def test_packed_torch_matches_numpy(rng):
    net = random_netlist(rng, num_inputs=10, num_gates=200)
    bits = rng.integers(0, 2, (333, 10)).astype(bool)
    np.testing.assert_array_equal(packed.run(net, torch.from_numpy(bits)).numpy(), packed.run(net, bits))


def test_pack_roundtrip(rng):
    bits = rng.integers(0, 2, (130, 7)).astype(bool)
    np.testing.assert_array_equal(packed.unpack(packed.pack(bits), 130), bits)


def test_packed_equals_torch_eval_on_trained_model(digits_model, digits_netlist):
    model, x, _ = digits_model
    net, _, _ = digits_netlist
    with torch.no_grad():
        expected = model(x) * model.tau
    bits = model.encoder(x).numpy().astype(bool)
    scores = packed.run(net, bits)
    np.testing.assert_array_equal(scores, expected.round().numpy().astype(np.int64))
    np.testing.assert_array_equal(packed.predict(net, bits), expected.argmax(1).numpy())
    np.testing.assert_array_equal(net.encoding.encode(x.numpy()), bits)
