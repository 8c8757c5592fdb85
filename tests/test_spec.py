"""The model spec: grammar round trips, every malformed spec, shapes by arithmetic, legacy configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.cli import main
from lgn.compile import formats
from lgn.compile.lower import lower
from lgn.nn import LogicNet, Thermometer, spec
from lgn.train import ARCH_PRESETS, TrainConfig, load_model

DATA = Path(__file__).parent / "data"


# --------------------------------------------------------------------------------- the grammar
def block_text(draw) -> str:
    kind = draw(st.sampled_from(["conv", "orpool", "dense", "flatten", "lut", "learned"]))
    if kind == "conv":
        k = draw(st.integers(1, 5))
        return (f"conv({draw(st.integers(1, 64))}, k={k}, s={draw(st.integers(1, 3))}, "
                f"p={draw(st.integers(0, k - 1))}, d={draw(st.integers(1, spec.MAX_DEPTH))})")
    if kind == "orpool":
        return f"orpool({draw(st.integers(1, 4))}, s={draw(st.integers(1, 4))})"
    if kind == "dense":
        return f"dense({draw(st.integers(1, 10_000))})"
    if kind == "lut":
        m = draw(st.sampled_from(["", f", m={draw(st.integers(1, 16))}"]))
        return f"lut({draw(st.integers(1, 10_000))}, k={draw(st.integers(1, 6))}{m})"
    if kind == "learned":
        return f"learned({draw(st.integers(1, 10_000))}, m={draw(st.integers(1, 16))})"
    return "flatten"


@st.composite
def spec_texts(draw) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"thermo({draw(st.integers(1, 8))}, {draw(st.sampled_from(['uniform', 'quantile']))})")
    parts += [block_text(draw) for _ in range(draw(st.integers(0, 4)))]
    parts.append(f"dense({draw(st.integers(1, 500))})")
    if draw(st.booleans()):
        parts[-1] += f"*{draw(st.integers(1, 3))}"
    if draw(st.booleans()):
        parts.append(f"groupsum(tau={draw(st.floats(0.01, 100, allow_nan=False)):g})")
    return " ".join(parts)


@settings(max_examples=200, deadline=None)
@given(spec_texts())
def test_text_and_json_round_trip(text):
    parsed = spec.parse(text)
    assert spec.parse(str(parsed)) == parsed
    assert spec.from_json(parsed.to_json()) == parsed
    import json

    assert spec.from_json(json.loads(json.dumps(parsed.to_json()))) == parsed  # plain JSON


def test_lut_and_learned_blocks_defaults_and_canonical_text():
    parsed = spec.parse("lut(600) lut(w=100, k=4, candidates=8) learned(40) LEARNED(40, m=8) lut(10, 3, 2)")
    assert parsed.blocks[:5] == (spec.Lut(600, 6, None), spec.Lut(100, 4, 8), spec.Learned(40, 8),
                                 spec.Learned(40, 8), spec.Lut(10, 3, 2))
    assert str(parsed) == "lut(600, k=6) lut(100, k=4, m=8) learned(40, m=8)*2 lut(10, k=3, m=2) groupsum"


def test_canonical_text_keywords_and_repeats():
    parsed = spec.parse("thermo(3)  conv(32,kernel=3,padding=1) orpool dense(8000) DENSE(w=8000) dense(100)")
    assert str(parsed) == ("thermo(3) conv(32, k=3, s=1, p=1, d=3) orpool(2, s=2) dense(8000)*2 dense(100) "
                           "groupsum")
    assert parsed == spec.parse("thermo(bits=3) conv(32, 3, 1, 1, 3) orpool(2) dense(8000)*2 dense(100)")
    assert spec.dense_spec(4, 8000, 20.0) == spec.parse("dense(8000)*4 groupsum(tau=20)")


MALFORMED = [  # (spec, the token the message must name, why)
    ("convv(8)", "'convv(8)'", "unknown block 'convv'"),
    ("thermo(3) pool(2) dense(10)", "'pool(2)'", "unknown block 'pool'"),
    ("conv flatten dense(10)", "'conv'", "missing the number of output channels"),
    ("dense", "'dense'", "missing the width"),
    ("conv(-8) flatten dense(10)", "'conv(-8)'", "channels must be a positive integer, got -8"),
    ("conv(8, k=-3) flatten dense(10)", "'conv(8, k=-3)'", "kernel size k must be a positive integer"),
    ("conv(8, p=-1) flatten dense(10)", "'conv(8, p=-1)'", "padding p must be an integer >= 0"),
    ("conv(8, s=0) flatten dense(10)", "'conv(8, s=0)'", "stride s must be a positive integer"),
    ("conv(8, d=0) flatten dense(10)", "'conv(8, d=0)'", "depth d must be a positive integer"),
    ("conv(8, d=9) flatten dense(10)", "'conv(8, d=9)'", "depth d must be at most 8"),
    ("conv(8, k=3, p=3) flatten dense(10)", "'conv(8, k=3, p=3)'", "padding p=3 must be smaller than"),
    ("dense(0)", "'dense(0)'", "width must be a positive integer, got 0"),
    ("dense(-10)", "'dense(-10)'", "width must be a positive integer, got -10"),
    ("dense(2.5)", "'dense(2.5)'", "width must be a positive integer, got 2.5"),
    ("dense(ten)", "'dense(ten)'", "width must be a positive integer, got 'ten'"),
    ("dense(10)*0", "'dense(10)*0'", "repeat count must be a positive integer"),
    ("orpool(0) dense(10)", "'orpool(0)'", "window must be a positive integer"),
    ("thermo(0) dense(10)", "'thermo(0)'", "bits must be a positive integer"),
    ("thermo(3, cubic) dense(10)", "'thermo(3, cubic)'", "method must be 'uniform' or 'quantile'"),
    ("dense(10) groupsum(tau=-1)", "'groupsum(tau=-1)'", "tau must be a positive number"),
    ("dense(10) thermo(3)", "'thermo(3)'", "thermo must be the first block"),
    ("groupsum dense(10)", "'groupsum'", "groupsum must be the last block"),
    ("conv(8, q=2) dense(10)", "'conv(8, q=2)'", "unknown argument 'q'"),
    ("conv(8, k=3, 4) dense(10)", "'conv(8, k=3, 4)'", "positional argument 4 after a keyword"),
    ("conv(8, 3, 1, 1, 3, 7) dense(10)", "'conv(8, 3, 1, 1, 3, 7)'", "too many arguments"),
    ("lut(100, k=7)", "'lut(100, k=7)'", "k (inputs per LUT) must be an integer in 1..6, got 7"),
    ("lut(100, k=0)", "'lut(100, k=0)'", "k (inputs per LUT) must be an integer in 1..6, got 0"),
    ("lut(100, k=2.5)", "'lut(100, k=2.5)'", "k (inputs per LUT) must be an integer in 1..6, got 2.5"),
    ("lut(100, m=0)", "'lut(100, m=0)'", "m (candidate sources per input) must be an integer >= 1, got 0"),
    ("lut(k=6, m=8)", "'lut(k=6, m=8)'", "missing the width"),
    ("lut", "'lut'", "missing the width"),
    ("lut(-5)", "'lut(-5)'", "width must be a positive integer, got -5"),
    ("lut(10, 6, 8, 3, 1)", "'lut(10, 6, 8, 3, 1)'", "too many arguments"),
    ("learned(100, m=-2)", "'learned(100, m=-2)'", "m (candidate sources per input) must be an integer >= 1"),
    ("learned(m=4)", "'learned(m=4)'", "missing the width"),
    ("learned(100, k=2)", "'learned(100, k=2)'", "unknown argument 'k'"),
    ("conv(8, k=3, kernel=5) dense(10)", "'conv(8, k=3, kernel=5)'", "kernel is given twice"),
    ("conv(8, k=3 dense(10)", "'conv(8, k=3 dense(10'", "unbalanced parentheses"),
    ("dense(10)x", "'dense(10)x'", "unexpected 'x'"),
    ("orpool(2) flatten", None, "no logic layer"),
    ("", None, "the model spec is empty"),
]


@pytest.mark.parametrize("text, token, why", MALFORMED)
def test_malformed_specs_name_the_token_and_why(text, token, why):
    with pytest.raises(spec.SpecError) as error:
        spec.parse(text)
    message = str(error.value)
    assert why in message and "\n" not in message
    if token is not None:
        assert token in message


UNFITTING = [  # (spec, image shape of a 64-feature dataset or None, token, why)
    ("conv(8) flatten dense(10)", None, "'conv(8)'", "conv needs an image dataset"),
    ("orpool(2) dense(10)", None, "'orpool(2)'", "orpool needs an image dataset"),
    ("conv(8, k=9) flatten dense(10)", (1, 8, 8), "'conv(8, k=9)'", "8x8 input is smaller than the 9x9 kernel"),
    ("conv(8, k=5, s=2) conv(8, k=3) flatten dense(10)", (1, 8, 8), "'conv(8, k=3)'",
     "2x2 input is smaller than the 3x3 kernel"),
    ("conv(8, k=7, p=1) orpool(5) flatten dense(10)", (1, 8, 8), "'orpool(5)'",
     "the 4x4 input is smaller than the 5x5 window"),
    ("conv(8) orpool(2) flatten dense(15)", (1, 8, 8), "'dense(15)'", "width 15 is not divisible by the 10 classes"),
    ("dense(20)*3 dense(25)", (1, 8, 8), "'dense(25)'", "width 25 is not divisible by the 10 classes"),
    ("conv(3) flatten", (1, 8, 8), "'flatten'", "output count 108 is not divisible by the 10 classes"),
    ("conv(8) dense(10)", (1, 8, 8), "'dense(10)'", "dense needs a vector; put flatten before it"),
    ("conv(10, k=8)", (1, 8, 8), "'conv(10, k=8)'", "groupsum needs a vector"),
    ("dense(10) flatten dense(10)", (1, 8, 8), "'flatten'", "nothing to flatten"),
    ("dense(10) conv(8) flatten dense(10)", (1, 8, 8), "'conv(8)'", "conv needs an image, but dense(10) gives a vector"),
    ("dense(20) lut(10, m=21)", None, "'lut(10, m=21)'", "m=21 candidate sources is more than the 20 inputs"),
    ("learned(100, m=193)", None, "'learned(100, m=193)'", "m=193 candidate sources is more than the 192 inputs"),
    ("lut(15, k=4)", None, "'lut(15, k=4)'", "width 15 is not divisible by the 10 classes"),
    ("conv(8) lut(10)", (1, 8, 8), "'lut(10)'", "lut needs a vector; put flatten before it"),
    ("lut(10) orpool(2) flatten dense(10)", (1, 8, 8), "'orpool(2)'", "orpool needs an image, but lut(10) gives"),
]


@pytest.mark.parametrize("text, image_shape, token, why", UNFITTING)
def test_specs_that_do_not_fit_the_data_name_the_token_and_why(text, image_shape, token, why):
    with pytest.raises(spec.SpecError) as error:
        spec.parse(text).resolve(64, 10, image_shape, 3, "uniform")
    assert token in str(error.value) and why in str(error.value)


def test_resolve_fills_the_encoder_and_tau():
    resolved = spec.parse("conv(8, p=1) orpool(2) flatten dense(1000)").resolve(64, 10, (1, 8, 8), 3, "quantile")
    assert resolved.thermo == spec.Thermo(3, "quantile")
    assert resolved.head.tau == 10.0  # sqrt(1000 / 10)
    kept = spec.parse("thermo(5, uniform) dense(40) groupsum(tau=2)").resolve(64, 10, None, 3, "quantile")
    assert kept.thermo == spec.Thermo(5, "uniform") and kept.head.tau == 2.0


# ---------------------------------------------------------------- shapes by arithmetic, building
BUILDABLE = [  # (spec, image shape or None, thermometer bits, classes)
    ("conv(4, k=3, p=1, d=2) orpool(2) conv(6, k=2, s=2, d=3) flatten dense(30) dense(20)", (2, 9, 7), 2, 10),
    ("thermo(2, uniform) flatten dense(40)*2", (1, 4, 4), 2, 10),
    ("dense(50) dense(20)", None, 3, 10),
    ("conv(5, k=1, d=1) orpool(3, s=1) flatten", (1, 5, 4), 1, 2),
    ("lut(30, k=6, m=5) learned(20, m=3) lut(12, k=3) lut(10, k=1, m=2)", None, 2, 10),
    ("conv(3, k=3, d=2) flatten lut(8, k=4) learned(6)", (1, 5, 5), 2, 2),
    ("thermo(2, uniform) lut(40, k=2)", (1, 4, 4), 2, 10),
]


@pytest.mark.parametrize("parametrization", ["gates", "table"])
@pytest.mark.parametrize("text, image_shape, bits, classes", BUILDABLE)
def test_parameter_shapes_and_bounds_match_the_built_model(text, image_shape, bits, classes, parametrization):
    num_features = int(np.prod(image_shape)) if image_shape else 12
    config = {"arch": spec.parse(text).to_json(), "num_classes": classes, "image_shape": image_shape,
              "parametrization": parametrization, "seed": 1}
    encoder = Thermometer.uniform(num_features, bits, 0, 255)
    model = spec.build(config, encoder)
    shapes = spec.parameter_shapes(config, num_features, bits)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    assert list(model.state_dict()) == list(shapes)  # the same order too
    bounds = spec.index_bounds(config, num_features, bits)
    for key, bound in bounds.items():
        assert model.state_dict()[key].max() < bound
    resolved = spec.from_config(config).resolve(num_features, config["num_classes"], image_shape, bits, "uniform")
    assert lower(model).num_gates == resolved.num_gates(num_features, bits, image_shape)


def test_dense_spec_builds_exactly_the_logic_net():
    encoder = Thermometer.uniform(64, 3, 0, 16)
    net = LogicNet(encoder, 10, layers=3, width=200, tau=None, seed=4, parametrization="table", init="residual",
                   connections="unique")
    config = {"layers": 3, "width": 200, "tau": None, "num_classes": 10, "seed": 4, "parametrization": "table",
              "init": "residual", "connections": "unique"}
    stack = spec.build(config, Thermometer(encoder.thresholds))
    assert list(stack.state_dict()) == list(net.state_dict())
    for key, value in net.state_dict().items():
        assert torch.equal(stack.state_dict()[key], value), key
    assert stack.tau == net.tau
    x = torch.rand(20, 64) * 16
    assert torch.equal(stack(x), net(x)) and torch.equal(stack.eval()(x), net.eval()(x))
    assert np.array_equal(lower(stack).op, lower(net).op) and np.array_equal(lower(stack).a, lower(net).a)


def test_config_with_both_arch_and_width_is_rejected():
    with pytest.raises(spec.SpecError, match="both an arch and layers/width"):
        spec.from_config({"arch": "dense(10)", "width": 10, "layers": 1})


@pytest.mark.parametrize("name", ["release-digits-dense", "release-monk1-table"])
def test_checkpoints_of_the_current_release_load_and_compile_unchanged(name, tmp_path):
    """The files in tests/data were written by lgn before model specs (commit 2f67b58)."""
    model, config = load_model(DATA / f"{name}.pt")
    assert "arch" not in config
    netlist, released = lower(model), formats.load(DATA / f"{name}.npz")
    for field in ("op", "a", "b", "outputs"):
        assert np.array_equal(getattr(netlist, field), getattr(released, field)), field
    assert netlist.tau == released.tau and netlist.num_inputs == released.num_inputs
    assert np.array_equal(netlist.encoding.threshold, released.encoding.threshold)
    out = tmp_path / "m.pt"
    out.write_bytes((DATA / f"{name}.pt").read_bytes())
    dataset = "digits" if "digits" in name else "monk1"
    result = CliRunner().invoke(main, ["train", "--dataset", dataset, "--epochs", "4", "--out", str(out), "--resume",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "epoch   4" in result.output


# ---------------------------------------------------------------------------- configs, the CLI
def test_presets_and_overrides():
    config = TrainConfig.for_dataset("fashion-mnist", arch="conv", tau=7.5, encoder_bits=2, epochs=1)
    parsed = spec.parse(config.arch)
    assert parsed.head.tau == 7.5 and parsed.thermo.bits == 2 and config.tau == 7.5 and config.encoder_bits == 2
    assert config.epochs == 1 and config.layers is None and config.width is None
    assert TrainConfig.for_dataset("digits", arch="dense") == TrainConfig.for_dataset("digits")
    assert TrainConfig.for_dataset("monk1", arch="dense") == TrainConfig.for_dataset("monk1")
    custom = TrainConfig.for_dataset("digits", arch="thermo(2) conv(8, p=1) orpool(2) flatten dense(100)")
    assert custom.encoder_bits == 2 and custom.lr == TrainConfig.for_dataset("digits").lr
    with pytest.raises(spec.SpecError, match="--arch conv: no preset for dataset 'monk1'"):
        TrainConfig.for_dataset("monk1", arch="conv")
    with pytest.raises(spec.SpecError, match="--layers/--width describe a dense net"):
        TrainConfig.for_dataset("digits", arch="dense(100)", layers=2, width=100)
    for dataset in ("digits", "mnist", "fashion-mnist", "cifar10"):
        assert dataset in ARCH_PRESETS["conv"]


def test_help_lists_the_presets():
    from lgn.cli import _arch_presets

    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    help_text = "".join(result.output.split())  # click wraps lines, also at hyphens
    assert "--arch" in help_text and "".join(_arch_presets().split()) in help_text
    for name, by_dataset in ARCH_PRESETS.items():  # the help's list (written without torch) is the table's
        assert f"{name} ({', '.join(by_dataset)})" in _arch_presets()


@pytest.mark.parametrize("args, message", [
    (["--arch", "conv(8) flatten dense(10)", "--dataset", "monk1"], "'conv(8)': conv needs an image dataset"),
    (["--arch", "convolution(8)"], "unknown block 'convolution'"),
    (["--arch", "conv(8, k=9) flatten dense(10)"], "'conv(8, k=9)': the 8x8 input is smaller than the 9x9 kernel"),
    (["--arch", "conv(8) orpool(2) flatten dense(25)"], "'dense(25)': width 25 is not divisible by the 10 classes"),
    (["--arch", "dense(-3)"], "'dense(-3)': width must be a positive integer"),
    (["--arch", "conv", "--dataset", "monk2"], "no preset for dataset 'monk2'"),
    (["--arch", "dense(100)", "--width", "100"], "--width describe a dense net"),
])
def test_cli_rejects_bad_specs_in_one_line_before_training(args, message, tmp_path):
    out = tmp_path / "model.pt"
    result = CliRunner().invoke(main, ["train", *args, "--out", str(out), "--no-progress", "--epochs", "1"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("lgn: error: ") and message in lines[-1], result.output
    assert "Traceback" not in result.output and "epoch" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("dataset, image_shape", [("digits", (1, 8, 8)), ("mnist", (1, 28, 28)),
                                                  ("fashion-mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
def test_every_conv_preset_fits_its_dataset(dataset, image_shape):
    config = TrainConfig.for_dataset(dataset, arch="conv")
    resolved = spec.parse(config.arch).resolve(int(np.prod(image_shape)), 10, image_shape, 3, "uniform")
    assert any(isinstance(block, spec.Conv) for block in resolved.blocks)
    config_dict = {"arch": resolved.to_json(), "num_classes": 10, "image_shape": list(image_shape),
                   "parametrization": config.parametrization}
    shapes = spec.parameter_shapes(config_dict, int(np.prod(image_shape)), resolved.thermo.bits)
    assert shapes["encoder.thresholds"] == (int(np.prod(image_shape)), resolved.thermo.bits)
