import numpy as np
import torch

from conftest import random_netlist
from lgn.compile import packed, reference


def test_packed_matches_the_reference_on_random_netlists(rng):
    for _ in range(20):
        net = random_netlist(rng, num_inputs=int(rng.integers(1, 12)), num_gates=int(rng.integers(0, 80)),
                             num_classes=int(rng.integers(1, 5)), outputs_per_class=int(rng.integers(1, 7)))
        n = int(rng.integers(0, 200))
        bits = rng.integers(0, 2, (n, net.num_inputs)).astype(bool)
        np.testing.assert_array_equal(packed.run(net, bits), reference.scores(net, bits))


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
