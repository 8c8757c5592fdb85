"""The target registry: one table of back ends, read by the CLI, evaluation and ``lgn check``."""

import subprocess
import sys

import pytest

from lgn import targets
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
