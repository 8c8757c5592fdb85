"""Lowering LUT layers and learned connectivity: torch eval == reference == packed, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.compile import gates, luts, packed, reference
from lgn.compile.lower import lower
from lgn.compile.netlist import LUT_OP
from lgn.nn import LogicLayer, LogicStack, Thermometer, spec
from lgn.nn import connectivity as C
from lgn.nn.lut import LutLayer


def stack(layers, num_features: int, bits: int, num_classes: int = 2) -> LogicStack:
    encoder = Thermometer.uniform(num_features, bits, 0, 255)
    return LogicStack(encoder, layers, num_classes, tau=1.5, feature_dtype="uint8").eval()


def randomize(model, seed: int):
    """Random logits everywhere (tables and source choices), so nothing is left at its init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 3)
    return model


def assert_torch_equals_reference_and_packed(model, num_features: int, rng, n: int = 200):
    x = rng.integers(0, 256, (n, num_features)).astype(np.float32)
    with torch.no_grad():
        expected = (model(torch.from_numpy(x)) * model.tau).round().long().numpy()
    netlist = lower(model)
    bits = netlist.encoding.encode(x)
    assert np.array_equal(reference.scores(netlist, bits), expected)
    assert np.array_equal(packed.run(netlist, bits), expected)
    # decomposed to two-input gates, it still computes the same scores
    assert np.array_equal(reference.scores(luts.decompose(netlist), bits), expected)
    return netlist


def vector_layer(draw, in_dim: int, g: torch.Generator):
    kind = draw(st.sampled_from(["lut", "learned-lut", "learned-gates", "dense"]))
    width = draw(st.integers(1, 12)) * 2
    k = draw(st.integers(1, 6))
    m = draw(st.integers(1, min(in_dim, 6)))
    if kind == "lut":
        return LutLayer(in_dim, width, k=k, generator=g)
    if kind == "learned-lut":
        return C.LearnedLutLayer(in_dim, width, k=k, candidates=m, generator=g)
    if kind == "learned-gates":
        return C.LearnedLogicLayer(in_dim, width, candidates=m, generator=g,
                                   parametrization=draw(st.sampled_from(["gates", "table"])))
    return LogicLayer(in_dim, width, generator=g)


@st.composite
def models(draw):
    num_features, bits = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 16))
    g = torch.Generator().manual_seed(seed)
    layers, in_dim = [], num_features * bits
    for _ in range(draw(st.integers(1, 3))):
        layers.append(vector_layer(draw, in_dim, g))
        in_dim = layers[-1].out_dim
    return randomize(stack(layers, num_features, bits), seed), num_features, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_torch_eval_equals_reference_and_packed_on_random_lut_models(drawn):
    model, num_features, seed = drawn
    assert_torch_equals_reference_and_packed(model, num_features, np.random.default_rng(seed))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("m", [None, 1, 3, 9])
def test_every_k_and_m_lowers_exactly(k, m):
    g = torch.Generator().manual_seed(10 * k + (m or 0))
    first = LutLayer(12, 30, k=k, generator=g) if m is None else C.LearnedLutLayer(12, 30, k=k, candidates=m,
                                                                                    generator=g)
    model = randomize(stack([first, LutLayer(30, 10, k=k, generator=g)], 4, 3), k)
    netlist = assert_torch_equals_reference_and_packed(model, 4, np.random.default_rng(k))
    # k = 1, 2 become ordinary gates; k >= 3 native LUT nodes with the layer's truth tables
    assert netlist.num_luts == (40 if k >= 3 else 0)
    assert netlist.num_gates == 40
    if k >= 3:
        fixed = first if m is None else first.to_fixed()
        assert np.array_equal(netlist.lut_table[:30], fixed.truth_tables())
        assert (netlist.lut_arity == k).all()
        assert np.array_equal(netlist.lut_fanin[:30, :k], 2 + fixed.inputs.numpy())
        assert (netlist.lut_fanin[:, k:] == 0).all()


def test_learned_connectivity_lowers_to_the_argmax_wiring():
    g = torch.Generator().manual_seed(5)
    learned_luts = C.LearnedLutLayer(15, 8, k=4, candidates=5, generator=g)
    learned_gates = C.LearnedLogicLayer(8, 6, candidates=4, parametrization="table", generator=g)
    model = randomize(stack([learned_luts, learned_gates], 5, 3, num_classes=3), 5)
    netlist = lower(model)
    inputs = 2 + np.arange(15)
    chosen = learned_luts.selector.candidates.gather(1, learned_luts.selector.logits.argmax(1, keepdim=True))
    assert np.array_equal(netlist.lut_fanin[:, :4], inputs[chosen.view(8, 4).numpy()])
    lut_ids = netlist.first_gate + np.arange(8)
    operands = learned_gates.chosen_sources().numpy()  # (6, 2): operand a, b
    assert np.array_equal(netlist.a[8:], lut_ids[operands[:, 0]])
    assert np.array_equal(netlist.b[8:], lut_ids[operands[:, 1]])
    assert np.array_equal(netlist.op[8:], learned_gates.gate_ops().numpy())
    assert (netlist.op[:8] == LUT_OP).all()
    assert_torch_equals_reference_and_packed(model, 5, np.random.default_rng(0))


@pytest.mark.parametrize("k, bits, levels", [(6, 3, 7), (4, 2, 3), (2, 1, 2), (6, 6, 6)])
def test_feature_bits_layer_lowers_exactly_and_reads_one_feature_per_run(k, bits, levels):
    g = torch.Generator().manual_seed(k + bits)
    first = C.LearnedLutLayer(4 * levels, 30, k=k, candidates=3, feature_bits=(bits, levels), generator=g)
    model = randomize(stack([first, LutLayer(30, 10, k=3, generator=g)], 4, levels), k)
    netlist = assert_torch_equals_reference_and_packed(model, 4, np.random.default_rng(k))
    if k >= 3:  # the first layer's fan-ins, less the two constants, are encoder bits feature * levels + t
        fanin = netlist.lut_fanin[:30, :k] - 2
        feature = fanin.reshape(30, k // bits, bits) // levels
        assert (feature == feature[..., :1]).all()


def test_k2_lut_lowers_to_the_table_gate():
    g = torch.Generator().manual_seed(2)
    layer = LutLayer(6, 16, k=2, generator=g)
    with torch.no_grad():  # all 16 functions once
        table = torch.tensor([[(f >> i) & 1 for i in range(4)] for f in range(16)], dtype=torch.float32)
        layer.weights.copy_(table * 2 - 1)
    gate_layer = LogicLayer(6, 16, parametrization="table", generator=g)
    with torch.no_grad():
        gate_layer.weights.copy_(layer.weights)
        gate_layer.idx_a.copy_(layer.inputs[:, 1])
        gate_layer.idx_b.copy_(layer.inputs[:, 0])
    lowered, expected = lower(stack([layer], 2, 3)), lower(stack([gate_layer], 2, 3))
    assert np.array_equal(lowered.op, expected.op)
    assert np.array_equal(lowered.a, expected.a) and np.array_equal(lowered.b, expected.b)
    # entry i = output for (input 1, input 0) = (a, b) = bits of i: gate op bit 3 - i
    assert sorted(lowered.op.tolist()) == list(range(16))


def test_k1_lut_lowers_to_wires_negations_and_constants():
    layer = LutLayer(3, 4, k=1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.weights.copy_(torch.tensor([[-1.0, -1], [-1, 1], [1, -1], [1, 1]]))
    netlist = lower(stack([layer], 1, 3, num_classes=4))
    assert netlist.op.tolist() == [gates.FALSE, gates.A, gates.NOT_A, gates.TRUE]


def test_lut_spec_models_lower_with_gates_counted_by_the_spec():
    text = "thermo(2, uniform) lut(12, k=5, m=3) learned(8, m=4) lut(6, k=2) lut(4, k=3)"
    config = {"arch": spec.parse(text).to_json(), "num_classes": 2, "seed": 3, "parametrization": "table"}
    model = randomize(spec.build(config, Thermometer.uniform(5, 2, 0, 255)).eval(), 3)
    netlist = assert_torch_equals_reference_and_packed(model, 5, np.random.default_rng(3))
    resolved = spec.from_config(config).resolve(5, 2, None, 2, "uniform")
    assert netlist.num_gates == resolved.num_gates(5, 2) == 30
    assert netlist.num_luts == 16


# ------------------------------------------------------------------- checkpoints, resume, the CLI
SMALL_LUT = "thermo(2, uniform) lut(60, k=6, m=4) learned(40, m=3) lut(20, k=3) groupsum(tau=2)"


@pytest.fixture(scope="module")
def small_digits():
    import dataclasses

    from lgn import data as datasets

    data = datasets.load("digits")
    return dataclasses.replace(data, x_train=data.x_train[:300], y_train=data.y_train[:300],
                               x_test=data.x_test[:80], y_test=data.y_test[:80])


def lut_config(**kw):
    from lgn.train import TrainConfig

    return TrainConfig.for_dataset("digits", **{**dict(arch=SMALL_LUT, epochs=2, batch_size=50, lr=0.05), **kw})


def assert_loaded_equals_trained_and_packed(loaded, trained, x_test):
    x = torch.as_tensor(x_test)
    with torch.no_grad():
        expected = loaded(x)
        assert torch.equal(expected, trained.eval()(x))
    netlist = lower(loaded)
    scores = packed.run(netlist, netlist.encoding.encode(x_test))
    assert np.array_equal(scores, (expected * loaded.tau).round().long().numpy())


def test_lut_checkpoint_round_trip(small_digits, tmp_path):
    import json

    from lgn.train import load_model, train

    result = train(lut_config(), small_digits, out=tmp_path / "m.pt", progress=False, log=lambda s: None)
    model, config = load_model(tmp_path / "m.pt")
    assert json.loads(json.dumps(config["arch"])) == config["arch"]
    assert spec.from_json(config["arch"]) == spec.parse(SMALL_LUT).resolve(64, 10, (1, 8, 8), 2, "uniform")
    assert isinstance(model.layers[0], C.LearnedLutLayer) and isinstance(model.layers[1], C.LearnedLogicLayer)
    assert isinstance(model.layers[2], LutLayer)
    # the schedule ran the temperature down from 1 toward 0.1: its value at the last of 12 steps
    assert result.model.layers[0].selector.temperature == pytest.approx(C.temperature_at(11, 12, 1.0, 0.1))
    assert_loaded_equals_trained_and_packed(model, result.model, small_digits.x_test)


def test_feature_bits_checkpoint_round_trip(small_digits, tmp_path):
    from lgn.train import load_model, train

    arch = "thermo(3, uniform) lut(40, k=6, m=4, bits=3) lut(20, k=3) groupsum(tau=2)"
    result = train(lut_config(arch=arch), small_digits, out=tmp_path / "m.pt", progress=False, log=lambda s: None)
    model, config = load_model(tmp_path / "m.pt")
    assert spec.from_json(config["arch"]).layers[0] == spec.Lut(40, k=6, m=4, bits=3)
    assert model.layers[0].selector.tied == 3 and model.layers[0].selector.logits.shape == (80, 4)
    assert_loaded_equals_trained_and_packed(model, result.model, small_digits.x_test)


def test_lut_checkpoint_that_does_not_match_its_config_is_refused(small_digits, tmp_path):
    from lgn.train import CheckpointError, load_model, train

    train(lut_config(epochs=1), small_digits, out=tmp_path / "m.pt", progress=False, log=lambda s: None)
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    del state["checksum"]  # edited as by hand: the checks after the checksum apply
    state["model"]["layers.0.selector.candidates"][0, 0] = 10_000  # a source past the 128 input bits
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="layers.0.selector.candidates indexes outside 0..127"):
        load_model(tmp_path / "bad.pt")
    state["model"]["layers.0.selector.candidates"][0, 0] = 0
    state["config"]["arch"][1]["k"] = 5  # the weights hold 2^6 table entries per LUT
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"'layers.0.selector.logits' has shape \(360, 4\), config implies "
                                              r"\(300, 4\)"):
        load_model(tmp_path / "bad.pt")


def test_lut_resume_continues_exactly(small_digits, tmp_path):
    """Resumed from the checkpoint of epoch 1 of the same run: the temperature schedule (over the
    run's total steps) and the weights continue exactly."""
    import shutil

    from lgn.train import train

    def keep_epoch_1(line):  # epoch 2 is logged after epoch 1's checkpoint, before epoch 2's
        if line.startswith("epoch   2"):
            shutil.copy(tmp_path / "a.pt", tmp_path / "b.pt")

    straight = train(lut_config(epochs=3), small_digits, out=tmp_path / "a.pt", progress=False, log=keep_epoch_1)
    resumed = train(lut_config(epochs=3), small_digits, out=tmp_path / "b.pt", resume=True, progress=False,
                    log=lambda s: None)
    assert resumed.history[0] == straight.history[0] and len(resumed.history) == 3
    for (key, v), w in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(v, w), key
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    assert resumed.model.layers[0].selector.temperature == straight.model.layers[0].selector.temperature


def test_loaded_learned_wiring_keeps_its_temperature_and_relaxed_accuracy(small_digits, tmp_path):
    """The checkpoint stores the source-choice temperature: the relaxed model after load_model is
    the one the run evaluated last (same relaxed accuracy); a bad stored value is one clear line."""
    from lgn.train import evaluate_accuracy, load_model, train
    from lgn.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    result = train(lut_config(epochs=1, temperature_end=0.05), small_digits, out=tmp_path / "m.pt", progress=False,
                   log=lambda s: None)
    model, _ = load_model(tmp_path / "m.pt")
    selectors = [m for m in model.modules() if isinstance(m, C.SourceSelector)]
    assert selectors and all(m.temperature == result.model.layers[0].selector.temperature for m in selectors)
    assert selectors[0].temperature < 1.0
    x = torch.as_tensor(small_digits.x_test, dtype=torch.float32)
    y = torch.as_tensor(small_digits.y_test)
    assert evaluate_accuracy(model, x, y, relaxed=True) == result.history[-1]["relaxed_acc"]
    state = load_checkpoint(tmp_path / "m.pt")
    state["temperature"] = -1.0
    save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(CheckpointError, match="field 'temperature' is not a positive number"):
        load_model(tmp_path / "bad.pt")


def test_cli_digits_lut_preset_end_to_end(tmp_path):
    """``lgn train --dataset digits --arch lut`` cut to a few steps, --resume, eval; lowered == packed."""
    from click.testing import CliRunner

    from lgn import data as datasets
    from lgn.cli import main
    from lgn.train import load_model

    out = tmp_path / "model.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "digits", "--arch", "lut", "--steps", "3", "--out", str(out),
                                  "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "lut(" in result.output
    assert "(900 nodes), init" in result.output  # LUT nodes, and no gate parametrization to report
    resumed = runner.invoke(main, ["train", "--dataset", "digits", "--steps", "5", "--out", str(out), "--resume",
                                   "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    evaluated = runner.invoke(main, ["eval", str(out), "--backend", "torch"])
    assert evaluated.exit_code == 0, evaluated.output
    model, config = load_model(out)
    assert any(isinstance(layer, (LutLayer, C.LearnedLutLayer)) for layer in model.layers)
    data = datasets.load("digits")
    netlist = lower(model)
    with torch.no_grad():
        expected = (model(torch.as_tensor(data.x_test, dtype=torch.float32)) * model.tau).round().long().numpy()
    assert np.array_equal(packed.run(netlist, netlist.encoding.encode(data.x_test)), expected)


@pytest.mark.parametrize("args, message", [
    (["--arch", "lut(100, k=7)"], "'lut(100, k=7)': k (inputs per LUT) must be an integer in 1..6, got 7"),
    (["--arch", "lut(100, m=0)"], "'lut(100, m=0)': m (candidate sources per input) must be an integer >= 1"),
    (["--arch", "lut(k=6)"], "'lut(k=6)': missing the width"),
    (["--arch", "learned(100, m=500)"], "'learned(100, m=500)': m=500 candidate sources is more than the 192 inputs"),
    (["--arch", "lut(100) lut(50, m=101)"], "'lut(50, m=101)': m=101 candidate sources is more than the 100"),
    (["--arch", "lut(100, k=6, m=4, bits=4)"],
     "bits (thermometer bits per raw feature) must be a positive integer dividing k=6, got 4"),
    (["--arch", "lut(100, k=6, bits=3)"], "bits=3 needs learned wiring (m=...)"),
    (["--arch", "lut(100) lut(50, k=6, m=4, bits=3)"], "'lut(50, k=6, m=4, bits=3)': bits= reads raw features'"),
    (["--arch", "thermo(2) lut(100, k=6, m=4, bits=3)"], "bits=3 is more than the 2 thermometer bits per feature"),
    (["--arch", "lut(100, k=6, m=65, bits=3)"], "m=65 candidate features is more than the 64 features"),
])
def test_cli_rejects_bad_lut_specs_in_one_line_before_training(args, message, tmp_path):
    from click.testing import CliRunner

    from lgn.cli import main

    out = tmp_path / "model.pt"
    result = CliRunner().invoke(main, ["train", *args, "--out", str(out), "--no-progress", "--epochs", "1"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("lgn: error: ") and message in lines[-1], result.output
    assert "Traceback" not in result.output and "epoch" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("dataset, image_shape", [("digits", (1, 8, 8)), ("fashion-mnist", (1, 28, 28))])
def test_every_lut_preset_fits_its_dataset_and_lists_in_help(dataset, image_shape):
    from lgn.cli import _arch_presets
    from lgn.train import TrainConfig

    config = TrainConfig.for_dataset(dataset, arch="lut")
    features = int(np.prod(image_shape))
    resolved = spec.parse(config.arch).resolve(features, 10, image_shape, 3, "uniform")
    assert all(isinstance(block, spec.Lut) and 2 <= block.k <= 6 and block.m for block in resolved.layers)
    assert resolved.layers[-1].k == 6
    shapes = spec.parameter_shapes({"arch": resolved.to_json(), "num_classes": 10, "image_shape": list(image_shape)},
                                   features, resolved.thermo.bits)
    assert shapes["layers.0.selector.logits"][1] == resolved.layers[0].m
    assert f"lut ({', '.join(['digits', 'fashion-mnist'])})" in _arch_presets()
