"""The ranking example runs end to end (a few steps; the real run is in examples/)."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sort_ranking.py"


def test_sort_ranking_example_runs():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "3", "--sizes", "3", "5",
                          "--test-sets", "20", "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.split()[:1] in (["3"], ["5"])]
    assert [row[0] for row in rows] == ["3", "5"]
    for _, exact, elementwise, _ in rows:
        assert 0 <= float(exact) <= float(elementwise) <= 1
