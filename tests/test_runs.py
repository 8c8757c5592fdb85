"""Run records (MODEL.metrics.jsonl), --resume against contradicting options, progress only on a terminal."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lgn.train import load_checkpoint, train
from lgn.train.records import FIELDS, RecordError, append_record, metrics_path, read_records, write_records
import test_train
import test_cli_files
from test_cli_files import run
from test_train import small_config

tiny_digits = test_train.tiny_digits  # the fixture
trained = test_cli_files.trained  # the fixture: a 1-epoch digits run

SMALL = ["--layers", "2", "--width", "200", "--tau", "10", "--lr", "0.05", "--encoder-bits", "3"]


def quiet(**kw):
    return dict(progress=False, log=lambda s: None, **kw)


def test_records_round_trip_and_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "m.metrics.jsonl"
    first = {"epoch": 1, "step": 8, "loss": 2.5, "relaxed_acc": 0.5, "discrete_acc": 0.25, "gap": 0.25,
             "lr": 0.01, "seconds": 1.0}
    append_record(path, first)
    append_record(path, {**first, "epoch": 2, "step": 16})
    assert [r["epoch"] for r in read_records(path)] == [1, 2]
    assert list(json.loads(path.read_text().splitlines()[0])) == list(FIELDS)
    whole = path.read_bytes()
    line = json.dumps({**first, "epoch": 3}).encode()
    for cut in range(1, len(line)):  # a run killed during the write of epoch 3's line
        path.write_bytes(whole + line[:cut])
        assert [r["epoch"] for r in read_records(path)] == [1, 2], cut
    path.write_bytes(whole + line)  # complete but for its newline: kept
    assert [r["epoch"] for r in read_records(path)] == [1, 2, 3]
    path.write_bytes(b'{"epoch": 1}\n' + whole)
    with pytest.raises(RecordError, match=r"m\.metrics\.jsonl:1: not a metrics record"):
        read_records(path)
    write_records(path, [first])
    assert read_records(path) == [first]
    with pytest.raises(RecordError, match="does not exist"):
        read_records(tmp_path / "none.jsonl")


def test_training_writes_a_record_per_epoch(tiny_digits, tmp_path):
    out = tmp_path / "m.pt"
    result = train(small_config(epochs=3, lr_schedule="cosine"), tiny_digits, out=out, **quiet())
    records = read_records(metrics_path(out))
    assert metrics_path(out) == tmp_path / "m.metrics.jsonl"
    assert records == result.history
    assert [r["epoch"] for r in records] == [1, 2, 3] and [r["step"] for r in records] == [8, 16, 24]
    for r in records:
        assert set(r) == set(FIELDS)
        assert abs(r["gap"] - (r["relaxed_acc"] - r["discrete_acc"])) < 1e-12
    lrs = [r["lr"] for r in records]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 0.05  # cosine: the epoch's last step's rate
    assert [r["seconds"] for r in records] == sorted(r["seconds"] for r in records)
    # a new run at the same path replaces the old run's records
    train(small_config(epochs=1), tiny_digits, out=out, **quiet())
    assert [r["epoch"] for r in read_records(metrics_path(out))] == [1]


@pytest.mark.parametrize("split", [{"epochs": 2}, {"steps": 11}])
def test_resume_continues_the_record_without_duplicates(tiny_digits, tmp_path, split):
    straight = train(small_config(epochs=4), tiny_digits, out=tmp_path / "a.pt", **quiet())
    out = tmp_path / "b.pt"
    first = small_config(**split) if "epochs" in split else small_config(epochs=4, **split)
    train(first, tiny_digits, out=out, **quiet())
    records = metrics_path(out)
    # as if the run had gone on after its checkpoint and been killed mid-line
    append_record(records, {**read_records(records)[-1], "epoch": 9, "step": 99})
    with open(records, "ab") as file:
        file.write(b'{"epoch": 10, "st')
    train(small_config(epochs=4), tiny_digits, out=out, resume=True, **quiet())
    resumed = read_records(records)
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]

    def without_time(rs):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rs]

    assert without_time(resumed) == without_time(straight.history)  # the mean loss too, mid-epoch resume or not


def test_a_killed_run_leaves_a_readable_record_and_resumes(tmp_path):
    out = tmp_path / "m.pt"
    cmd = [sys.executable, "-m", "lgn.cli", "train", "--dataset", "digits", "--epochs", "500", "--out", str(out),
           *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    records = metrics_path(out)
    deadline = time.monotonic() + 240
    try:
        while not (records.exists() and records.read_bytes().count(b"\n") >= 3):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no three epochs recorded in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)  # no handler runs: what is on disk is what a crash leaves
        proc.communicate(timeout=60)
    kept = read_records(records)
    epochs = [r["epoch"] for r in kept]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 3
    done = load_checkpoint(out)["epoch"]
    assert done in (len(epochs), len(epochs) + 1)  # the checkpoint is written before the epoch's record
    result = run("train", "--resume", "--out", out, "--epochs", done + 2, "--no-progress")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in read_records(records)] == list(range(1, done + 3))


@pytest.mark.parametrize("args, named", [
    (["--width", "300"], ["--width 300 (checkpoint: 200)"]),
    (["--layers", "3", "--lr", "0.1", "--dataset", "monk1"],
     ["--layers 3 (checkpoint: 2)", "--lr 0.1 (checkpoint: 0.05)", "--dataset monk1 (checkpoint: digits)"]),
    (["--arch", "dense(100)*2", "--parametrization", "table"],
     ["--arch dense(100)*2: layers dense(100)*2 (checkpoint: dense(200)*2)",
      "--parametrization table (checkpoint: gates)"]),
    (["--encoder-bits", "4", "--seed", "1", "--batch-size", "32"],
     ["--encoder-bits 4 (checkpoint: 3)", "--seed 1 (checkpoint: 0)", "--batch-size 32 (checkpoint: 128)"]),
    (["--arch", "conv"], ["--arch conv: layers", "(checkpoint: dense(200)*2)", "--arch conv: encoder bits 4"]),
])
def test_resume_with_contradicting_options_fails_in_one_line(trained, args, named):
    before = trained.read_bytes()
    result = run("train", "--resume", "--out", trained, "--epochs", "2", *args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lgn: error: --resume: "), result.output
    for text in named:
        assert text in lines[0], lines[0]
    assert "Traceback" not in result.output  # and, one line: nothing loaded or trained
    assert trained.read_bytes() == before  # stopped before training


def test_resume_accepts_what_may_change_and_what_matches(trained, tmp_path):
    out = tmp_path / "m.pt"
    out.write_bytes(trained.read_bytes())
    result = run("train", "--resume", "--out", out, "--epochs", "2", "--device", "cpu", "--dataset", "digits",
                 *SMALL)  # the options the run was started with
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "epoch   2" in result.output
    assert [r["epoch"] for r in read_records(metrics_path(out))] == [1, 2]
    again = run("train", "--resume", "--out", out)  # no --epochs: to the end the run was started with
    assert again.exit_code == 0 and "to 2 epochs" in again.output, again.output


def test_resume_reads_the_dataset_from_the_checkpoint(tmp_path):
    out = tmp_path / "monk.pt"
    assert run("train", "--dataset", "monk1", "--layers", "2", "--width", "64", "--epochs", "1",
               "--out", out).exit_code == 0
    result = run("train", "--resume", "--out", out, "--epochs", "2")  # not digits, the --dataset default
    assert result.exit_code == 0, result.output
    assert "dataset monk1" in result.output and load_checkpoint(out)["epoch"] == 2


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    result = run("train", "--dataset", "digits", "--epochs", "2", "--out", tmp_path / "m.pt", *SMALL)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no bar: CliRunner's stderr is no terminal
    assert [line[:9] for line in result.stdout.splitlines() if line.startswith("epoch")] == ["epoch   1",
                                                                                             "epoch   2"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(tiny_digits, tmp_path, monkeypatch, terminal):
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    lines = []
    train(small_config(epochs=2), tiny_digits, out=tmp_path / "m.pt", log=lines.append)  # progress: automatic
    assert [line[:9] for line in lines] == ["epoch   1", "epoch   2"]  # the epoch lines either way
    bar = stderr.getvalue()
    if terminal:
        assert "16/16" in bar and "step" in bar, bar
    else:
        assert bar == ""
