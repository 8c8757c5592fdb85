"""The lgn.render examples run end to end in --quick mode (slow: about a minute each)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, out: Path) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=600,
                            check=True)
    return result.stdout


@pytest.mark.slow
def test_render_pose_quick(tmp_path):
    text = _run("render_pose.py", tmp_path)
    rows = re.findall(r"^logistic .* (\d+)%\s+(\d+)%\s+(\d+)%", text, re.M)
    assert rows and int(rows[0][0]) >= 50  # small initial errors are mostly recovered
    assert (tmp_path / "pose_logistic_probabilistic.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_render_fit_quick(tmp_path):
    text = _run("render_fit.py", tmp_path)
    last = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()][-1]
    assert float(last[2]) > 0.9 and float(last[3]) > 0.85  # IoU on train and held-out views
    assert (tmp_path / "fit_progress.png").read_bytes()[:4] == b"\x89PNG"
