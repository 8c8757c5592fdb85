"""Model files and output paths through the command line: the text netlist read back by every
command, checksums shown by ``lgn info`` and carried into generated code, the note for old files
on stderr, and one-line output-path errors that name the path the user gave."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lgn import files
from lgn.cli import main

SMALL = ["--layers", "2", "--width", "200", "--tau", "10", "--lr", "0.05", "--encoder-bits", "3", "--no-progress"]
OLD_RELEASE = Path(__file__).parent / "data" / "old-release"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model.pt"
    result = run("train", "--dataset", "digits", "--epochs", "1", "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    return out


def hashes(info_output: str) -> tuple[str, str]:
    """(as stored, after optimize) SHA-256 from ``lgn info``."""
    stored, optimized = re.findall(r"\b([0-9a-f]{64})\s+\((?:the model as stored|after optimize)", info_output)
    return stored, optimized


def test_every_command_reads_the_text_netlist(trained, tmp_path):
    text, npz = tmp_path / "m.lgn", tmp_path / "m.npz"
    for target, path in (("netlist", text), ("packed", npz)):
        result = run("export", trained, "--target", target, "--no-optimize", "-o", path)
        assert result.exit_code == 0, result.output
    assert text.read_text().startswith("inputs 192\ntau 10.0\nfeatures 64 uint8\nx0 = f0 > ")
    infos = {name: run("info", path) for name, path in (("pt", trained), ("text", text), ("npz", npz))}
    assert all(r.exit_code == 0 for r in infos.values()), [r.output for r in infos.values()]
    assert len({hashes(r.output) for r in infos.values()}) == 1  # one model, whichever file it is read from
    assert "training checkpoint, checksum verified (sha256 " in infos["pt"].output
    assert "text netlist file, checksum verified" in infos["text"].output
    assert "netlist file (.npz), checksum verified" in infos["npz"].output
    accuracy = {r.output.split(": ")[1] for r in (run("eval", p, "--backend", "packed") for p in (trained, text, npz))}
    assert len(accuracy) == 1
    result = run("export", text, "--target", "blif", "-o", tmp_path / "m.blif")
    assert result.exit_code == 0 and (tmp_path / "m.blif").read_text().startswith("# lgn netlist")


def test_generated_code_carries_the_hash_lgn_info_prints(trained, tmp_path):
    _, optimized = hashes(run("info", trained).output)
    result = run("export", trained, "--target", "c", "-o", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert f'#define MODEL_MODEL_SHA256 "{optimized}"' in (tmp_path / "c" / "model.h").read_text()
    result = run("export", trained, "--target", "verilog", "--vectors", "5", "-o", tmp_path / "v")
    assert result.exit_code == 0, result.output
    assert f"model sha256: {optimized}" in (tmp_path / "v" / "model_report.txt").read_text()


def test_a_damaged_checkpoint_is_one_line(trained, tmp_path):
    data = bytearray(trained.read_bytes())
    data[data.index(b"archive/data/1") + 300] ^= 1  # a weight bit: torch would load it silently
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    for command in (["info", bad], ["eval", bad], ["export", bad, "-t", "packed", "-o", tmp_path / "x.npz"]):
        result = run(*command)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output == f"lgn: error: {bad}: checksum mismatch, the file is damaged\n"
    assert not (tmp_path / "x.npz").exists()


def test_old_files_load_with_a_note_on_stderr():
    """A real process: the note goes to stderr, stdout stays machine-readable."""
    lgn = [sys.executable, "-m", "lgn.cli"]
    for name in ("model.pt", "model.npz", "model.txt"):
        result = subprocess.run(lgn + ["info", str(OLD_RELEASE / name)], capture_output=True, text=True,
                                env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        assert result.returncode == 0, result.stderr
        assert "NOT verified: it carries no checksum" in result.stdout and "note:" not in result.stdout
        assert result.stderr.strip().splitlines()[-1] == (
            f"note: {OLD_RELEASE / name}: {'checkpoint' if name.endswith('.pt') else 'netlist file'} carries no "
            "checksum (written before lgn recorded one); loaded without verification")


# ------------------------------------------------------------------------------ output paths
@pytest.fixture
def blocker(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    return path


@pytest.mark.parametrize("args, message", [
    (["export", "MODEL", "-t", "packed", "-o", "/proc/m.npz"], "cannot write to /proc/m.npz: /proc does not allow "
                                                               "creating files"),
    (["export", "MODEL", "-t", "blif", "-o", "BLOCKER/sub/m.blif"],
     "cannot write to BLOCKER/sub/m.blif: BLOCKER is a file, not a directory"),
    (["export", "MODEL", "-t", "packed", "-o", "TMP"], "--out TMP is a directory; the packed target writes a file"),
    (["export", "MODEL", "-t", "c", "-o", "BLOCKER"], "--out BLOCKER is a file; the c target writes a directory"),
    (["export", "MODEL", "-t", "verilog", "-o", "BLOCKER/v"], "cannot write to BLOCKER/v: BLOCKER is a file, not a "
                                                              "directory"),
    (["export", "MODEL", "-t", "c", "-o", "/proc/c"], "cannot write to /proc/c: directory /proc/c does not exist "
                                                      "and cannot be created"),
    (["check", "MODEL", "-o", "BLOCKER/sub"], "cannot write to BLOCKER/sub: BLOCKER is a file, not a directory"),
    (["train", "--epochs", "1", "--out", "/proc/m.pt", *SMALL], "cannot write to /proc/m.pt: /proc does not allow "
                                                                "creating files"),
])
def test_output_path_errors_name_the_path_given(trained, tmp_path, blocker, args, message):
    values = {"MODEL": str(trained), "BLOCKER": str(blocker), "TMP": str(tmp_path)}
    args = [re.sub("MODEL|BLOCKER|TMP", lambda m: values[m[0]], a) for a in args]
    result = run(*args)
    expected = re.sub("BLOCKER|TMP", lambda m: values[m[0]], message)
    assert result.exit_code == 1 and result.output == f"lgn: error: {expected}\n", result.output
    assert ".tmp" not in result.output and "Errno" not in result.output


@pytest.mark.parametrize("code, reason", [
    (errno.EROFS, "is on a read-only file system"), (errno.EACCES, "permission denied (in "),
    (errno.ENOSPC, "no space left on the device of "), (errno.EDQUOT, "disk quota exceeded"),
])
def test_write_atomic_explains_file_system_errors(tmp_path, monkeypatch, code, reason):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(args[0]))

    monkeypatch.setattr(files.os, "open", refuse)
    with pytest.raises(files.OutputPathError) as info:
        files.write_atomic(tmp_path / "m.npz", lambda file: None)
    message = str(info.value)
    assert message.startswith(f"cannot write to {tmp_path / 'm.npz'}: ") and reason in message
    assert ".tmp" not in message


def test_write_atomic_names_the_path_when_the_writer_fails(tmp_path):
    def full(file):
        file.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(files.OutputPathError, match=r"cannot write to .*m\.npz: no space left on the device of"):
        files.write_atomic(tmp_path / "m.npz", full)
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone
    files.write_atomic(tmp_path / "new" / "dir" / "m.npz", lambda file: file.write(b"ok"))
    assert (tmp_path / "new" / "dir" / "m.npz").read_bytes() == b"ok"  # missing directories are made


@pytest.mark.needs_tool("gcc")
def test_check_accepts_the_text_netlist(trained, tmp_path):
    text = tmp_path / "m.lgn"
    assert run("export", trained, "--target", "netlist", "-o", text).exit_code == 0
    result = run("check", text, "-o", tmp_path / "check", "--vectors", "20")
    assert "packed, optimized" in result.output and "C (compiled here)" in result.output, result.output
