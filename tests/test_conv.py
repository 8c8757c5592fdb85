"""Logic-gate-tree convolutions and OR pooling: against a naive per-position reference, and compiled."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from conftest import require_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.compile import packed
from lgn.compile.lower import lower
from lgn.compile.passes import optimize
from lgn.nn import LogicConv2d, OrPool2d, Thermometer, gates, spec
from lgn.nn import functional as F

TRUTH = torch.from_numpy(gates.TRUTH_TABLE.astype("float64"))


need = require_tool


# ------------------------------------------------------------------------------ the reference
def relaxed_gate(a, b, weights, parametrization):
    """One relaxed gate by its definition: the input patterns' probabilities times the gate's table."""
    pattern = torch.stack([(1 - a) * (1 - b), (1 - a) * b, a * (1 - b), a * b], dim=-1)  # (N, 4)
    if parametrization == "table":
        return pattern @ torch.sigmoid(weights)
    return (pattern @ TRUTH.T.to(a)) @ torch.softmax(weights, dim=-1)  # all 16 gates, mixed


def hard_gate(a, b, weights, parametrization):
    op = int(F.table_gate_ops(weights)) if parametrization == "table" else int(weights.argmax())
    return TRUTH[op].to(a)[(2 * a + b).long()]


def reference_conv(conv: LogicConv2d, x: torch.Tensor) -> torch.Tensor:
    """The convolution position by position: gather the leaves, reduce the tree gate by gate."""
    s, p = conv.stride, conv.padding
    if not conv.training:
        x = (x > 0.5).to(x.dtype)
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    out_h, out_w = conv.output_size(*x.shape[2:])
    gate = relaxed_gate if conv.training else hard_gate
    channels = []
    for o in range(conv.out_channels):
        rows = []
        for i in range(out_h):
            cols = []
            for j in range(out_w):
                level = [padded[:, conv.leaf_channel[o, leaf], i * s + conv.leaf_row[o, leaf],
                                j * s + conv.leaf_col[o, leaf]] for leaf in range(2 ** conv.depth)]
                node = 0
                while len(level) > 1:
                    upper = []
                    for m in range(len(level) // 2):
                        upper.append(gate(level[2 * m], level[2 * m + 1], conv.weights[o, node], conv.parametrization))
                        node += 1
                    level = upper
                cols.append(level[0])
            rows.append(torch.stack(cols, dim=-1))
        channels.append(torch.stack(rows, dim=-2))
    return torch.stack(channels, dim=1)


def reference_or_pool(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    bits = x > 0.5
    out_h, out_w = (x.shape[2] - window) // stride + 1, (x.shape[3] - window) // stride + 1
    out = torch.zeros(*x.shape[:2], out_h, out_w, dtype=torch.bool)
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = bits[:, :, i * stride : i * stride + window, j * stride : j * stride + window].flatten(2).any(-1)
    return out.to(x.dtype)


SHAPES = [  # (in_channels, H, W, out_channels, kernel, stride, padding, depth)
    (1, 5, 6, 3, 3, 1, 1, 1),
    (3, 7, 5, 4, 3, 2, 1, 2),
    (2, 6, 7, 2, 2, 1, 0, 3),
    (1, 4, 4, 2, 1, 1, 0, 2),
    (3, 5, 5, 2, 5, 2, 2, 3),
]


@pytest.mark.parametrize("parametrization", ["gates", "table"])
@pytest.mark.parametrize("shape", SHAPES)
def test_conv_equals_reference_values_and_gradients(shape, parametrization):
    c_in, h, w, c_out, k, s, p, d = shape
    torch.manual_seed(0)
    conv = LogicConv2d(c_in, c_out, k, s, p, d, parametrization=parametrization).double()
    x = torch.rand(3, c_in, h, w, dtype=torch.float64, requires_grad=True)
    ours, theirs = conv(x), reference_conv(conv, x)
    assert ours.shape == theirs.shape == (3, c_out, *conv.output_size(h, w))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(ours)
    grads = torch.autograd.grad(ours, (x, conv.weights), upstream)
    expected = torch.autograd.grad(theirs, (x, conv.weights), upstream)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("parametrization", ["gates", "table"])
def test_conv_gradcheck(parametrization):
    torch.manual_seed(1)
    conv = LogicConv2d(2, 3, kernel_size=3, stride=2, padding=1, depth=2, parametrization=parametrization).double()
    x = torch.rand(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    index, out_size = conv.leaf_index(x.shape[1:]), conv.output_size(5, 4)
    coefficients = F.table_coefficients if parametrization == "table" else F.gate_coefficients

    def run(x, weights):
        return F.logic_conv2d(x, index, coefficients(weights), out_size)

    assert torch.autograd.gradcheck(run, (x, conv.weights.detach().clone().requires_grad_()))


@pytest.mark.parametrize("chunk", [1, 40, 1 << 30])
def test_conv_is_the_same_in_any_chunking(chunk, monkeypatch):
    """Chunks of one position, of a few (the last one partial) and one chunk for everything."""
    monkeypatch.setattr(F, "CONV_CHUNK_ELEMENTS", chunk)
    torch.manual_seed(3)
    conv = LogicConv2d(3, 4, kernel_size=3, stride=1, padding=1, depth=3, parametrization="table").double()
    x = torch.rand(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    ours, theirs = conv(x), reference_conv(conv, x)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(ours)
    for got, want in zip(torch.autograd.grad(ours, (x, conv.weights), upstream),
                         torch.autograd.grad(theirs, (x, conv.weights), upstream)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_conv_output_is_batch_innermost_and_a_second_conv_reads_it():
    torch.manual_seed(4)
    first = LogicConv2d(2, 3, kernel_size=3, padding=1, depth=2).double()
    second = LogicConv2d(3, 2, kernel_size=2, depth=1).double()
    x = torch.rand(4, 2, 5, 5, dtype=torch.float64)
    y = first(x)
    assert y.permute(1, 2, 3, 0).is_contiguous()
    torch.testing.assert_close(second(y), second(y.contiguous()), rtol=0, atol=0)


@pytest.mark.parametrize("window, stride", [(2, 2), (3, 2), (2, 1), (1, 1)])
@pytest.mark.parametrize("batch_innermost", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_or_pool_equals_max_pool_values_and_gradients(window, stride, batch_innermost, ties):
    """Also where windows tie (0/1 inputs): the gradient goes to the first maximum, as max_pool2d's."""
    torch.manual_seed(5)
    memory = torch.rand(2, 7, 6, 3, dtype=torch.float64)  # (C, H, W, N)
    memory = (memory > 0.5).double() if ties else memory
    x = memory.permute(3, 0, 1, 2) if batch_innermost else memory.permute(3, 0, 1, 2).contiguous()
    x = x.requires_grad_()
    reference = x.detach().contiguous().requires_grad_()
    ours, theirs = F.or_pool2d(x, window, stride), torch.nn.functional.max_pool2d(reference, window, stride)
    assert torch.equal(ours, theirs)
    upstream = torch.randn_like(theirs)
    (ours * upstream).sum().backward()
    (theirs * upstream).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_unfold_variant_equals_gather(shape):
    c_in, h, w, c_out, k, s, p, d = shape
    conv = LogicConv2d(c_in, c_out, k, s, p, d).double()
    x = torch.rand(2, c_in, h, w, dtype=torch.float64)
    patch = F.conv_patch_index(conv.leaf_channel, conv.leaf_row, conv.leaf_col, k)
    torch.testing.assert_close(F.logic_conv2d_unfold(x, patch, conv.coefficients(), k, s, p), conv(x))


@pytest.mark.parametrize("parametrization", ["gates", "table"])
@pytest.mark.parametrize("shape", SHAPES)
def test_eval_is_exactly_boolean_and_equals_reference(shape, parametrization):
    c_in, h, w, c_out, k, s, p, d = shape
    torch.manual_seed(2)
    conv = LogicConv2d(c_in, c_out, k, s, p, d, parametrization=parametrization).eval()
    x = torch.rand(4, c_in, h, w)
    y = conv(x)
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
    assert torch.equal(y, reference_conv(conv, x))


def test_or_pool_is_max_in_training_and_exact_or_in_eval():
    x = torch.rand(3, 2, 7, 6, requires_grad=True)
    pool = OrPool2d(3, stride=2)
    relaxed = pool(x)
    assert torch.equal(relaxed, torch.nn.functional.max_pool2d(x, 3, 2))
    relaxed.sum().backward()
    assert x.grad.sum() == relaxed.numel()  # the gradient goes to each window's maximum
    hard = pool.eval()(x.detach())
    assert torch.equal(hard, reference_or_pool(x.detach(), 3, 2))
    assert set(torch.unique(hard).tolist()) <= {0.0, 1.0}


def test_trees_read_at_most_two_channels_and_distinct_leaves():
    conv = LogicConv2d(6, 50, kernel_size=3, depth=3, generator=torch.Generator().manual_seed(3))
    for o in range(50):
        assert len(set(conv.leaf_channel[o].tolist())) <= 2
        leaves = set(zip(conv.leaf_channel[o].tolist(), conv.leaf_row[o].tolist(), conv.leaf_col[o].tolist()))
        assert len(leaves) == 8  # 8 leaves from 2 x 3 x 3 candidates: no repeats
    assert conv.leaf_row.max() < 3 and conv.leaf_col.min() >= 0
    assert len(set(conv.leaf_channel.flatten().tolist())) == 6  # every channel is read by some tree


@pytest.mark.parametrize("parametrization", ["gates", "table"])
def test_residual_init_passes_the_first_leaf_through(parametrization):
    conv = LogicConv2d(2, 4, kernel_size=3, padding=1, depth=3, init="residual",
                       parametrization=parametrization).eval()
    assert (conv.gate_ops() == gates.A).all()
    x = torch.rand(2, 2, 5, 5)
    first = conv.leaf_index(x.shape[1:])[:, :, 0]  # (positions, out): the first leaf's input
    flat = torch.cat([(x > 0.5).float().flatten(1), torch.zeros(2, 1)], 1)
    expected = flat[:, first].view(2, 5, 5, 4).permute(0, 3, 1, 2)
    assert torch.equal(conv(x), expected)


def test_bad_inputs_raise_one_clear_error():
    conv = LogicConv2d(2, 4, kernel_size=3)
    with pytest.raises(ValueError, match=r"expected \(N, 2, H, W\) inputs, got shape \(1, 3, 5, 5\)"):
        conv(torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match="2x2 input is smaller than the 3x3 kernel"):
        conv(torch.rand(1, 2, 2, 2))
    with pytest.raises(ValueError, match="padding 3 must be smaller than kernel_size 3"):
        LogicConv2d(2, 4, kernel_size=3, padding=3)
    with pytest.raises(ValueError, match="unknown parametrization"):
        LogicConv2d(2, 4, parametrization="lut")


# ------------------------------------------------------------------------- compiled equivalence
def random_stack(seed: int, image_shape, bits: int, arch: str, parametrization="gates"):
    """A random-init model (every gate drawn) of ``arch`` over uint8 images of ``image_shape``."""
    num_features = int(np.prod(image_shape))
    encoder = Thermometer.uniform(num_features, bits, 0, 255)
    config = {"arch": spec.parse(arch).to_json(), "num_classes": 2, "image_shape": list(image_shape),
              "seed": seed, "parametrization": parametrization, "init": "random", "feature_dtype": "uint8"}
    return spec.build(config, encoder).eval()


def assert_torch_equals_packed(model, num_features: int, rng, n: int = 100):
    x = rng.integers(0, 256, (n, num_features)).astype(np.float32)
    with torch.no_grad():
        scores = model(torch.from_numpy(x)) * model.tau
    netlist = lower(model)
    bits = netlist.encoding.encode(x)
    got = packed.run(netlist, bits)
    assert np.array_equal(got, scores.round().long().numpy())
    assert np.allclose(scores.numpy(), got)  # popcounts are exact in float32
    assert np.array_equal(packed.run(optimize(netlist), bits), got)
    return netlist, x


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels=st.sampled_from([1, 3]), height=st.integers(3, 9), width=st.integers(3, 9),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2), depth=st.integers(1, 3),
       pool=st.sampled_from(["", "orpool(2)", "orpool(3, s=1)"]), bits=st.integers(1, 2),
       parametrization=st.sampled_from(["gates", "table"]), seed=st.integers(0, 2 ** 16))
def test_torch_eval_equals_packed_on_random_conv_models(channels, height, width, kernel, stride, padding, depth, pool,
                                                        bits, parametrization, seed):
    padding = min(padding, kernel - 1)
    arch = f"conv(4, k={kernel}, s={stride}, p={padding}, d={depth}) {pool} conv(3, k=1, d=1) flatten dense(6)"
    image_shape = (channels, height, width)
    try:
        spec.parse(arch).resolve(int(np.prod(image_shape)), 2, image_shape, bits, "uniform")
    except spec.SpecError:  # the pool does not fit this small an image: nothing to compare
        return
    model = random_stack(seed, image_shape, bits, arch, parametrization)
    assert_torch_equals_packed(model, int(np.prod(image_shape)), np.random.default_rng(seed))


def test_lowering_unrolls_per_position_with_padding_as_constant_zero():
    model = random_stack(0, (1, 4, 5), 1, "conv(2, k=3, p=1, d=2) orpool(2) flatten")
    netlist = lower(model)
    conv = model.layers[1]
    assert netlist.num_gates == 4 * 5 * 2 * 3 + 2 * 2 * 2 * 3  # tree gates per position, then OR gates
    assert netlist.num_gates == spec.parse("conv(2, k=3, p=1, d=2) orpool(2) flatten").resolve(
        20, 2, (1, 4, 5), 1, "uniform").num_gates(20, 1, (1, 4, 5))
    lowest = netlist.op[: 4 * 5 * 2 * 2].reshape(4 * 5, 2, 2)
    assert (lowest == conv.gate_ops()[:, :2].numpy()).all()  # the same gates at every position
    corner = np.concatenate([netlist.a[:4], netlist.b[:4]])
    padded_leaves = (conv.leaf_index((1, 4, 5))[0] == 20).sum()
    assert (corner == 0).sum() == padded_leaves  # position (0, 0): leaves on the padding read node 0
    assert (netlist.op[4 * 5 * 2 * 3 :] == gates.OR).all()


@pytest.mark.parametrize("image_shape, bits", [((1, 8, 8), 2), ((3, 7, 9), 1)])
def test_c_from_raw_uint8_pixels_equals_packed(image_shape, bits, tmp_path):
    from lgn.compile import c

    need("gcc")
    arch = "conv(6, k=3, s=1, p=1, d=3) orpool(2) conv(8, k=3, s=2, d=2) flatten dense(20)"
    model = random_stack(5, image_shape, bits, arch, "table")
    netlist, x = assert_torch_equals_packed(model, int(np.prod(image_shape)), np.random.default_rng(5), n=300)
    built = c.build(optimize(netlist), cflags=("-O1",))
    expected = packed.run(netlist, netlist.encoding.encode(x))
    assert np.array_equal(built.scores(x.astype(np.uint8)), expected)


@pytest.mark.tools
def test_blif_and_aiger_of_a_conv_model_compute_the_same(tmp_path):
    from test_formats import assert_yosys_computes_the_same

    model = random_stack(7, (1, 5, 5), 1, "conv(3, k=3, p=1, d=2) orpool(2) flatten dense(4)")
    netlist = lower(model)
    x = np.random.default_rng(7).integers(0, 256, (64, 25))
    assert_yosys_computes_the_same(netlist, netlist.encoding.encode(x), tmp_path)


# ------------------------------------------------------------------------------ training, CLI
SMALL_CONV = "thermo(2, uniform) conv(8, k=3, p=1, d=2) orpool(2) conv(12, k=3, p=1, d=2) flatten dense(60)"


@pytest.fixture(scope="module")
def small_digits():
    import dataclasses

    from lgn import data as datasets

    data = datasets.load("digits")
    return dataclasses.replace(data, x_train=data.x_train[:400], y_train=data.y_train[:400],
                               x_test=data.x_test[:100], y_test=data.y_test[:100])


def conv_config(**kw):
    from lgn.train import TrainConfig

    base = dict(arch=SMALL_CONV, epochs=2, batch_size=50, lr=0.05, parametrization="table", init="residual")
    return TrainConfig.for_dataset("digits", **{**base, **kw})


def test_conv_checkpoint_round_trip_and_plain_json_arch(small_digits, tmp_path):
    import json

    from lgn.train import load_model, train

    result = train(conv_config(), small_digits, out=tmp_path / "m.pt", progress=False, log=lambda s: None)
    model, config = load_model(tmp_path / "m.pt")
    assert json.loads(json.dumps(config["arch"])) == config["arch"]  # plain JSON in the config
    assert spec.from_json(config["arch"]) == spec.parse(SMALL_CONV).resolve(64, 10, (1, 8, 8), 2, "uniform")
    assert config["image_shape"] == [1, 8, 8] and config["layers"] is None
    x = torch.as_tensor(small_digits.x_test)
    with torch.no_grad():
        assert torch.equal(model(x), result.model.eval()(x))
    netlist = lower(model)
    bits = netlist.encoding.encode(small_digits.x_test)
    assert np.array_equal(packed.predict(netlist, bits), model(x).argmax(1).numpy())


def test_conv_checkpoint_that_does_not_match_its_config_is_refused(small_digits, tmp_path):
    from lgn.train import CheckpointError, load_model, train

    train(conv_config(epochs=1), small_digits, out=tmp_path / "m.pt", progress=False, log=lambda s: None)
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    del state["checksum"]  # edited as by hand: the checks after the checksum apply
    state["config"]["arch"][1]["channels"] = 9  # arch: thermo, conv, ...; layers: ThermometerImage, conv, ...
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"'layers.1.weights' has shape \(8, 3, 4\), config implies \(9, 3, 4\)"):
        load_model(tmp_path / "bad.pt")
    state["config"]["arch"][1]["channels"] = 8
    state["model"]["layers.1.leaf_row"][0, 0] = 3
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"layers.1.leaf_row indexes outside 0\.\.2"):
        load_model(tmp_path / "bad.pt")
    state["model"]["layers.1.leaf_row"][0, 0] = 0
    state["config"]["arch"][1]["kernel"] = 30
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="config is invalid: .*smaller than the 30x30 kernel"):
        load_model(tmp_path / "bad.pt")


@pytest.mark.parametrize("split", [{"epochs": 1}, {"steps": 11}])
def test_conv_resume_continues_exactly(small_digits, tmp_path, split):
    from lgn.train import train

    kw = dict(pass_decay=0.05, augment="shift=1,flip")  # both draw on state the checkpoint must carry
    straight = train(conv_config(epochs=3, **kw), small_digits, out=tmp_path / "a.pt", progress=False,
                     log=lambda s: None)
    first = conv_config(**{**kw, "epochs": 3, **split})
    train(first, small_digits, out=tmp_path / "b.pt", progress=False, log=lambda s: None)
    resumed = train(conv_config(epochs=3, **kw), small_digits, out=tmp_path / "b.pt", resume=True, progress=False,
                    log=lambda s: None)
    for (key, v), w in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(v, w), key
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_pass_decay_reaches_conv_trees(small_digits):
    from lgn.train import loop

    model = spec.build({"arch": SMALL_CONV, "num_classes": 10, "image_shape": [1, 8, 8]},
                       Thermometer.uniform(64, 2, 0, 16))
    targets = loop._pass_through_targets(model)
    assert [t[0].shape for t in targets] == [(8, 3, 16), (12, 3, 16), (60, 16)]
    before = (model.layers[1].weights - targets[0][1]).abs().sum()
    loop._decay_to_pass_through(targets, 0.5)
    assert torch.allclose((model.layers[1].weights - targets[0][1]).abs().sum(), 0.5 * before)


def test_augment_shifts_and_mirrors_images():
    from lgn.train import TrainingError, loop

    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(6, 20)  # six 1x4x5 images
    generator = torch.Generator().manual_seed(0)
    shifted = loop._augment(x, (1, 4, 5), {"shift": 1}, generator).view(6, 4, 5)
    images = x.view(6, 4, 5)
    for i in range(6):  # each is the image moved by at most a pixel, edges repeated
        assert any(torch.equal(shifted[i], torch.nn.functional.pad(images[i][None, None], (1, 1, 1, 1),
                                                                    mode="replicate")[0, 0, 1 - dy : 5 - dy, 1 - dx : 6 - dx])
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    mirrored = loop._augment(x, (1, 4, 5), {"flip": True}, generator).view(6, 4, 5)
    assert all(torch.equal(mirrored[i], images[i]) or torch.equal(mirrored[i], images[i].flip(-1)) for i in range(6))
    with pytest.raises(TrainingError, match="augmentation needs an image dataset"):
        loop.parse_augment("flip", None)
    with pytest.raises(TrainingError, match="cannot use 'rotate'"):
        loop.parse_augment("shift=1,rotate", (1, 8, 8))


def test_cli_digits_conv_preset_end_to_end(tmp_path):
    """The preset's command, cut to one epoch: train, info, eval on every back end, check."""
    from click.testing import CliRunner

    from lgn.cli import main

    need("gcc")
    out = tmp_path / "model.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "digits", "--arch", "conv", "--epochs", "1", "--out", str(out),
                                  "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "conv(" in result.output and "orpool(" in result.output and "epoch   1" in result.output
    reported = result.output.split("discretized test accuracy ")[1].split("%")[0]
    info = runner.invoke(main, ["info", str(out)])
    assert info.exit_code == 0 and "OR" in info.output, info.output
    for backend in ("torch", "packed", "c"):
        evaluated = runner.invoke(main, ["eval", str(out), "--backend", backend])
        assert evaluated.exit_code == 0 and f"({backend}): {reported}%" in evaluated.output, evaluated.output
    for target, name in (("blif", "m.blif"), ("aiger", "m.aig"), ("c", "c"), ("verilog", "v")):
        exported = runner.invoke(main, ["export", str(out), "--target", target, "-o", str(tmp_path / name),
                                        *(["--vectors", "50"] if target == "verilog" else [])])
        assert exported.exit_code == 0, exported.output


@pytest.mark.slow
def test_digits_conv_preset_reaches_its_accuracy_and_every_back_end_agrees(tmp_path):
    """The full ``lgn train --dataset digits --arch conv`` and ``lgn check`` on its whole test set."""
    from click.testing import CliRunner

    from lgn.cli import main

    need("gcc")
    need("iverilog")
    out = tmp_path / "model.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "digits", "--arch", "conv", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert float(result.output.split("discretized test accuracy ")[1].split("%")[0]) >= 98.0
    checked = runner.invoke(main, ["check", str(out), "--vectors", "360"])
    assert checked.exit_code == 0 and "all back ends agree" in checked.output, checked.output
