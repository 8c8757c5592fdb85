"""``lgn train`` under ``torchrun`` with 2 CPU processes (gloo): rank 0 alone prints and saves."""

import os
import subprocess
import sys

import pytest

from lgn.train import load_checkpoint
from lgn.train.records import read_records

SMALL = ["--layers", "2", "--width", "200", "--tau", "10", "--lr", "0.05", "--encoder-bits", "3"]

#: Each rank runs in its own working directory, so that a relative --out names a different file
#: on each: the ranks must still agree on rank 0's (a resume reads it on every rank).
LAUNCHER = """
import os, sys
rank_dir = os.path.join(os.getcwd(), "rank" + os.environ["RANK"])
os.makedirs(rank_dir, exist_ok=True)
os.chdir(rank_dir)
from lgn.cli import main
sys.argv = ["lgn"] + sys.argv[1:]
main()
"""


def torchrun(tmp_path, *args):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(launcher),
           *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.mark.slow
def test_only_rank_0_prints_and_saves_and_resume_agrees_on_the_path(tmp_path):
    first = torchrun(tmp_path, "train", "--dataset", "digits", "--epochs", "2", "--out", "run/model.pt", *SMALL)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert sum(line.startswith("dataset digits") for line in lines) == 1, first.stdout
    assert [line[:9] for line in lines if line.startswith("epoch")] == ["epoch   1", "epoch   2"], first.stdout
    saved = [line for line in lines if line.startswith("model saved to")]
    assert saved == [f"model saved to {tmp_path / 'rank0' / 'run' / 'model.pt'}"], first.stdout
    assert "lgn: error" not in first.stderr and "step/s" not in first.stderr  # no bars: stderr is a pipe
    # one checkpoint and one record, in rank 0's directory; nothing else anywhere (no probes, no temp files)
    assert files_under(tmp_path) == ["launch.py", "rank0/run/model.metrics.jsonl", "rank0/run/model.pt"]
    assert [r["epoch"] for r in read_records(tmp_path / "rank0/run/model.metrics.jsonl")] == [1, 2]

    again = torchrun(tmp_path, "train", "--resume", "--epochs", "3", "--out", "run/model.pt")
    assert again.returncode == 0, again.stdout + again.stderr  # rank 1 read rank 0's checkpoint
    assert sum(line.startswith("resuming") for line in again.stdout.splitlines()) == 1, again.stdout
    assert load_checkpoint(tmp_path / "rank0/run/model.pt")["epoch"] == 3
    assert [r["epoch"] for r in read_records(tmp_path / "rank0/run/model.metrics.jsonl")] == [1, 2, 3]
    assert files_under(tmp_path / "rank1") == []


@pytest.mark.slow
def test_a_contradicting_resume_fails_once_under_torchrun(tmp_path):
    first = torchrun(tmp_path, "train", "--dataset", "digits", "--epochs", "1", "--out", "run/model.pt", *SMALL)
    assert first.returncode == 0, first.stdout + first.stderr
    bad = torchrun(tmp_path, "train", "--resume", "--width", "300", "--out", "run/model.pt")
    assert bad.returncode != 0
    errors = [line for line in (bad.stdout + bad.stderr).splitlines() if line.startswith("lgn: error")]
    assert errors == [f"lgn: error: --resume: --width 300 (checkpoint: 200) contradicts the checkpoint "
                      f"{tmp_path / 'rank0' / 'run' / 'model.pt'} (a resumed run may change only --epochs, "
                      "--steps, --device, --data-dir)"], bad.stdout + bad.stderr


def _check_finite(rank, init_file, losses, results):
    import torch
    import torch.distributed as dist

    from lgn.train.loop import _finite_on_all_ranks

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        for index, pair in enumerate(losses):
            finite = _finite_on_all_ranks(torch.tensor(pair[rank]), 2)
            (results / f"{index}.{rank}").write_text(str(finite))
    finally:
        dist.destroy_process_group()


def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    import torch.multiprocessing as mp

    losses = [(1.0, 2.0), (1.0, float("nan")), (float("inf"), 0.5)]
    mp.spawn(_check_finite, args=(str(tmp_path / "init"), losses, tmp_path), nprocs=2)
    for index, expected in enumerate(["True", "False", "False"]):
        assert [(tmp_path / f"{index}.{rank}").read_text() for rank in (0, 1)] == [expected] * 2
