"""The command line end to end, through click's test runner (and a real subprocess for signals)."""

import importlib
import os
import signal
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from conftest import require_tool

from lgn.cli import main
from lgn.train import load_checkpoint, load_model

SMALL = ["--layers", "2", "--width", "200", "--tau", "10", "--lr", "0.05", "--encoder-bits", "3", "--no-progress"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model.pt"
    result = run("train", "--dataset", "digits", "--epochs", "4", "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_help_is_complete():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("train", "eval"):
        assert command in result.output
        sub = run(command, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.output


def test_train_reports_and_saves(trained):
    out, output = trained
    assert "epoch   4" in output and "discrete" in output and "gap" in output
    assert f"model saved to {out}" in output
    assert "discretized test accuracy" in output
    assert load_checkpoint(out)["epoch"] == 4


def test_eval_backends_agree(trained):
    out, output = trained
    reported = output.split("discretized test accuracy ")[1].split("%")[0]
    for backend in ("torch", "packed"):
        result = run("eval", out, "--backend", backend)
        assert result.exit_code == 0, result.output
        assert f"({backend}): {reported}%" in result.output


def test_resume_extends_a_run(trained, tmp_path):
    out = tmp_path / "m.pt"
    out.write_bytes(trained[0].read_bytes())
    result = run("train", "--dataset", "digits", "--epochs", "5", "--out", out, "--resume", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "epoch   5" in result.output and "epoch   4" not in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--dataset", "npz:/no/such.npz"], "/no/such.npz"),
    (["train", "--width", "205", "--epochs", "1"], "multiple of the 10 classes"),
    (["train", "--resume", "--out", "/no/such/model.pt"], "--resume: no checkpoint at /no/such/model.pt"),
    (["eval", "/no/such/model.pt"], "/no/such/model.pt does not exist"),
])
def test_bad_input_is_one_clear_line(args, message):
    result = run(*args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("lgn: error: ") and message in lines[-1], result.output
    assert "Traceback" not in result.output


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("train", "--epochs", "1", "--out", blocker / "m.pt", *SMALL)
    assert result.exit_code == 1 and "cannot write to" in result.output


def test_corrupted_checkpoint(trained, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(trained[0].read_bytes()[:5000])
    result = run("eval", bad)
    assert result.exit_code == 1 and "is not" in result.output and "Traceback" not in result.output


def test_ctrl_c_saves_a_checkpoint_and_resume_works(tmp_path):
    out = tmp_path / "m.pt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "lgn.cli", "train", "--epochs", "200", "--out", str(out), *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:  # wait for the first finished epoch, then press Ctrl-C
        lines.append(line)
        if line.startswith("epoch   1"):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted: checkpoint saved" in rest
    state = load_checkpoint(out)
    assert state["step"] >= 1
    load_model(out)


def test_torchrun_two_cpu_processes_match_single_process(tmp_path):
    args = ["train", "--steps", "10", "--batch-size", "64", *SMALL]  # full batches: equal halves
    single = tmp_path / "single.pt"
    assert run(*args, "--out", single).exit_code == 0
    ddp = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "lgn.cli", *args, "--out", str(ddp)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = load_checkpoint(single)["model"], load_checkpoint(ddp)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-4, msg=key)


def test_info_and_software_exports(trained, tmp_path):
    from lgn.compile import formats

    out, _ = trained
    info = run("info", out)
    assert info.exit_code == 0 and "total gates" in info.output and "after optimize" in info.output
    for target, name in [("packed", "m.npz"), ("netlist", "m.txt"), ("blif", "m.blif"), ("aiger", "m.aig")]:
        result = run("export", out, "--target", target, "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).stat().st_size > 0
    netlist = formats.load(tmp_path / "m.npz")
    assert netlist.meta["dataset"] == "digits"
    reference = run("eval", out, "--backend", "packed").output.split(": ")[1]
    assert run("eval", tmp_path / "m.npz", "--backend", "packed").output.split(": ")[1] == reference
    unoptimized = run("export", out, "--target", "packed", "--no-optimize", "-o", tmp_path / "raw.npz")
    assert unoptimized.exit_code == 0
    assert formats.load(tmp_path / "raw.npz").num_gates > netlist.num_gates


LAYERS_NETLIST = """inputs 3
g5 = XOR x0 x1
g6 = AND g5 x2
g7 = NOT_A x0 g6
g8 = OR g6 g7
outputs g6 g8 | g7 x1
"""


def test_info_layers_golden(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text(LAYERS_NETLIST)
    result = run("info", path, "--layers")
    assert result.exit_code == 0, result.output
    stored = result.output.split("levels (as stored)\n")[1].split("\n\n")[0]
    # x0 feeds g5 and g7 (NOT_A reads its a only), x1 g5 and an output, x2 g6; g6 feeds g8 and an output
    assert stored == (
        "level     gates  fan-out max  mean  gates per op\n"
        "    0  3 inputs            2  1.67  -\n"
        "    1         1            1  1.00  XOR 1\n"
        "    2         1            2  2.00  AND 1\n"
        "    3         1            2  2.00  NOT_A 1\n"
        "    4         1            1  1.00  OR 1\n"
        "depth 4, 4 gates")
    assert "levels (after optimize)" in result.output


def test_info_layers_adds_up(trained):
    import numpy as np

    from lgn.compile.gates import GATE_NAMES, READS_A, READS_B
    from lgn.io import load_model_file

    net = load_model_file(trained[0]).netlist
    result = run("info", trained[0], "--layers")
    assert result.exit_code == 0, result.output
    table = result.output.split("levels (as stored)\n")[1].split("\n\n")[0].splitlines()[1:-1]
    assert len(table) == net.depth + 1 and table[0].split()[1:3] == [str(net.num_inputs), "inputs"]
    reads = {}  # the obviously-correct count: the operands each gate's function reads, the outputs
    for node in net.outputs.tolist():
        reads[node] = reads.get(node, 0) + 1
    for op, a, b in zip(net.op.tolist(), net.a.tolist(), net.b.tolist()):
        for node, read in ((a, op in READS_A), (b, op in READS_B)):
            reads[node] = reads.get(node, 0) + read
    for level, row in enumerate(table[1:], start=1):
        gates = np.flatnonzero(net.level == level)
        words = row.split()
        assert words[:2] == [str(level), str(len(gates))]
        fanout = [reads.get(net.first_gate + g, 0) for g in gates]
        assert int(words[2]) == max(fanout) and words[3] == f"{sum(fanout) / len(fanout):.2f}"
        ops = dict(zip(words[4::2], (int(w.rstrip(",")) for w in words[5::2])))
        assert ops == {GATE_NAMES[o]: int(c) for o, c in zip(*np.unique(net.op[gates], return_counts=True))}


@pytest.mark.parametrize("args, message", [
    (["export", "MODEL", "--target", "nope", "-o", "x"], "Invalid value for '--target'"),
    (["export", "MODEL", "--target", "verilog", "-o", "x", "--pipeline", "-1"], "--pipeline must be >= 0"),
    (["export", "/etc/hostname", "--target", "packed", "-o", "x"], "/etc/hostname"),
    (["info", "/no/model.npz"], "does not exist"),
])
def test_export_bad_input(trained, tmp_path, args, message):
    args = [str(trained[0]) if a == "MODEL" else a for a in args]
    result = run(*args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["export", "MODEL", "-t", "packed", "--word-bits", "32", "-o", "OUT/m.npz"],
     "--word-bits does not apply to the packed target (it applies to c)"),
    (["export", "MODEL", "-t", "c", "--pipeline", "2", "-o", "OUT"],
     "--pipeline does not apply to the c target (it applies to verilog)"),
    (["export", "MODEL", "-t", "aiger", "--name", "x", "-o", "OUT/m.aig"], "--name does not apply to the aiger target"),
    (["export", "MODEL", "-t", "blif", "--data-dir", "OUT", "-o", "OUT/m.blif"],
     "--data-dir does not apply to the blif target"),
])
def test_an_option_of_another_target_is_one_clear_line(trained, tmp_path, args, message):
    args = [str(trained[0]) if a == "MODEL" else a.replace("OUT", str(tmp_path)) for a in args]
    result = run(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"lgn: error: {message}"), result.output
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_cli_choices_come_from_the_back_ends():
    from lgn.compile import c
    from lgn.hdl.synth import ICE40_DEVICES, TARGETS

    export = run("export", "--help").output
    assert f"[{'|'.join(map(str, c.WORD_BITS))}]" in export and f"[{'|'.join(c.STYLES)}]" in export
    assert f"[default: {c.DEFAULT_STYLE}]" in export
    help_synth = run("synth", "--help").output
    assert f"[{'|'.join(TARGETS)}]" in help_synth and f"[{'|'.join(ICE40_DEVICES)}]" in help_synth


def test_c_backend_from_the_cli(trained, tmp_path):
    require_tool("gcc")
    out, _ = trained
    result = run("export", out, "--target", "c", "--name", "int", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "int_.h").exists() and (tmp_path / "int_.c").exists()
    reference = run("eval", out, "--backend", "torch").output.split(": ")[1]
    result = run("eval", out, "--backend", "c")
    assert result.exit_code == 0, result.output
    assert result.output.split(": ")[1] == reference


def test_verilog_export_and_check(trained, tmp_path):
    require_tool("iverilog")
    out, _ = trained
    result = run("export", out, "--target", "verilog", "--name", "module", "--pipeline", "2",
                 "--vectors", "100", "-o", tmp_path / "v")
    assert result.exit_code == 0, result.output
    assert "latency" in result.output
    assert (tmp_path / "v" / "module_net.v").exists()
    result = run("check", out, "--out", tmp_path / "check", "--vectors", "50")
    assert result.exit_code == 0, result.output
    assert "all back ends agree" in result.output
    for backend in ("pytorch eval()", "packed, optimized", "C (compiled here)", "verilog"):
        assert backend in result.output


def test_check_reads_the_model_once_and_emits_the_c_once(trained, tmp_path, monkeypatch):
    import lgn.files

    require_tool("gcc")
    emit_module = importlib.import_module("lgn.compile.c.emit")  # the module, not lgn.compile.c.emit()
    reads, emitted = [], []
    read_bytes, emit = lgn.files.read_bytes, emit_module.emit
    monkeypatch.setattr(lgn.files, "read_bytes", lambda path: reads.append(str(path)) or read_bytes(path))
    monkeypatch.setattr(emit_module, "emit", lambda *a, **k: emitted.append(a[1:]) or emit(*a, **k))
    result = run("check", trained[0], "--out", tmp_path, "--vectors", "10")
    assert result.exit_code == 0 and "C (compiled here)" in result.output, result.output
    assert reads.count(str(trained[0])) == 1
    assert len(emitted) == 1 and (tmp_path / "c" / "model.c").exists()


@pytest.mark.parametrize("args, message", [
    (["synth", "MODEL", "--target", "altera"], "Invalid value for '--target'"),
    (["synth", "MODEL", "--target", "xilinx", "--device", "up5k"], "device"),
    (["export", "MODEL", "--target", "verilog", "--name", "!!!", "-o", "OUT"], "name"),
    (["export", "MODEL", "--target", "c", "--word-bits", "12", "-o", "OUT"], "Invalid value for '--word-bits'"),
])
def test_hardware_bad_input(trained, tmp_path, args, message):
    args = [str(trained[0]) if a == "MODEL" else str(tmp_path) if a == "OUT" else a for a in args]
    result = run(*args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_bench_times_every_backend(trained):
    result = run("bench", trained[0], "--repeats", "1", "--backend", "torch", "--backend", "packed")
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and "packed" in result.output and "samples/s" in result.output
    require_tool("gcc")
    result = run("bench", trained[0], "--repeats", "1", "--backend", "c")
    assert result.exit_code == 0 and "c " in result.output, result.output
