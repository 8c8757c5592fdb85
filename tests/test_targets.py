"""The target registry: one table of back ends, read by the CLI, evaluation and ``lgn check``."""

import subprocess
import sys

import numpy as np
import pytest
from test_cli_files import SMALL, run
from test_dot import parse_dot, rebuild
from test_formats import simulate_aag

from lgn import targets
from lgn.compile import reference
from lgn.compile import targets as compile_targets


def test_importing_the_registry_and_the_cli_imports_no_back_end():
    script = ("import sys, lgn.targets, lgn.cli; "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'amaranth', 'jinja2'}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_entry_resolves_and_declares_what_it_takes():
    for name, target in targets.TARGETS.items():
        assert target.name == name and target.inputs in ("bits", "features")
        assert target.writes in (None, "file", "directory") and target.source in ("netlist", "model")
        assert target.writes or target.predicts, name
        for which in ("export", "predictor"):
            if getattr(target, which):
                assert callable(target.entry(which))
        defaults = target.option_values({})
        assert set(defaults) == {o.name for o in target.options}
        for option in target.options:
            allowed = option.allowed()
            assert allowed is None or defaults[option.name] in allowed, (name, option.name)
    assert set(compile_targets.TARGETS) < set(targets.TARGETS)  # the front end adds torch only
    assert "torch" not in compile_targets.TARGETS


def test_options_are_checked_against_the_target():
    c = targets.get("c")
    assert c.option_values({"word_bits": "32"})["word_bits"] == 32
    with pytest.raises(targets.TargetError, match="--word-bits must be one of 8, 16"):
        c.option_values({"word_bits": "12"})
    with pytest.raises(targets.TargetError, match=r"--pipeline does not apply to the c target \(it applies to verilog\)"):
        c.option_values({"pipeline": 2})
    with pytest.raises(targets.TargetError, match="--pipeline must be >= 0, got -1"):
        targets.get("verilog").option_values({"pipeline": -1})
    with pytest.raises(targets.TargetError, match="unknown target 'vhdl', expected one of torch, packed"):
        targets.get("vhdl")


# ------------------------------------------------------------------- every target, end to end
SUFFIX = {"packed": "m.npz", "netlist": "m.txt", "blif": "m.blif", "aiger": "m.aag", "dot": "m.dot"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small digits model trained through the CLI, with its test split (lgn.io.EvalSetup)."""
    from lgn.io import load_for_eval

    out = tmp_path_factory.mktemp("targets") / "model.pt"
    assert run("train", "--dataset", "digits", "--epochs", "2", "--out", out, *SMALL).exit_code == 0
    return load_for_eval(out)


def blif_outputs(text: str, bits: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate single-output BLIF covers (``.names``) on input bits named ``x<i>``; outputs by name."""
    value = {f"x{i}": bits[:, i] != 0 for i in range(bits.shape[1])}
    outputs, cover, target = [], [], None

    def close():
        if target is not None:
            *ins, out = target
            on = np.zeros(len(bits), bool)
            for row in cover:
                term = np.ones(len(bits), bool)
                for name, literal in zip(ins, row.split()[0] if ins else ""):
                    term &= value[name] if literal == "1" else ~value[name] if literal == "0" else True
                on |= term
            value[out] = on

    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] in (".names", ".end"):
            close()
            target, cover = (words[1:], []) if words[0] == ".names" else (None, [])
        elif words[0] == ".outputs":
            outputs = words[1:]
        elif not words[0].startswith("."):
            cover.append(line)
    return {name: value[name] for name in outputs}


def read_netlist_file(net, path, features, bits):
    from lgn.compile import formats

    loaded = formats.load(path)
    assert np.array_equal(reference.scores(loaded, reference.encode(loaded, features)), reference.scores(net, bits))


def read_gate_file(net, path, features, bits, read):
    from lgn.compile import formats

    got = read(path, bits)
    outputs = np.stack([got[name] for name in formats.output_names(net)], axis=1)
    assert np.array_equal(outputs, reference.outputs(net, bits))


def read_c(net, path, features, bits):
    from conftest import require_tool

    from lgn.compile import c

    require_tool("gcc")
    source = path / "model.c"
    library = c.compile_shared(source, path / "libcheck.so", "gcc", ("-O1", "-std=c99", "-Wall", "-Wextra",
                                                                   "-Werror", "-pedantic"))
    built = c.CModel(library, net, "model", 64)
    assert np.array_equal(built.scores(features), reference.scores(net, bits))


def read_verilog(net, path, features, bits):
    from conftest import require_tool

    from lgn import hdl
    from lgn.compile import packed

    require_tool("iverilog")
    testbench = path / "model_tb.v"
    assert hdl.run_testbench(testbench, path / "model.v") == 0  # expected values: the packed executor
    assert np.array_equal(packed.run(net, bits), reference.scores(net, bits))


#: How each exported target is read back and compared with the reference interpreter.
READ_BACK = {
    "packed": read_netlist_file,
    "netlist": read_netlist_file,
    "blif": lambda net, path, features, bits: read_gate_file(
        net, path, features, bits, lambda p, b: blif_outputs(p.read_text(), b)),
    "aiger": lambda net, path, features, bits: read_gate_file(
        net, path, features, bits, lambda p, b: simulate_aag(p.read_text(), {f"x{i}": b[:, i] != 0
                                                                             for i in range(b.shape[1])}, len(b))),
    "c": read_c,
    "verilog": read_verilog,
    "dot": lambda net, path, features, bits: np.testing.assert_array_equal(
        reference.scores(rebuild(parse_dot(path.read_text()), net.num_inputs), bits), reference.scores(net, bits)),
}
EXTRA = {"verilog": ["--vectors", "20"]}


def test_every_exported_target_has_a_read_back():
    assert set(READ_BACK) == set(targets.exporting())


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_target_end_to_end(setup, tmp_path, name):
    """Export through the CLI and read back, or classify through ``lgn eval``: equal to the reference."""
    target = targets.get(name)
    net = setup.file.netlist
    features = setup.features[:20]
    bits = reference.encode(net, features)
    expected = reference.predict(net, reference.encode(net, setup.features))
    if target.writes:
        out = tmp_path / SUFFIX.get(name, name)
        result = run("export", setup.file.path, "--target", name, "-o", out, *EXTRA.get(name, []))
        assert result.exit_code == 0, result.output
        assert out.is_dir() == (target.writes == "directory")
        READ_BACK[name](net, out, features, bits)
    if target.predicts:
        if target.unavailable():
            from conftest import missing

            missing(target.unavailable())
        assert np.array_equal(setup.predict(name), expected)
        result = run("eval", setup.file.path, "--backend", name)
        accuracy = float((expected == setup.data.y_test).mean())
        assert result.exit_code == 0 and f"({name}): {accuracy:.2%}" in result.output, result.output
