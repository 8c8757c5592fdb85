"""The README's Python API example runs as written and does what it says."""

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]


def _python_api_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_example_runs_as_written(tmp_path):
    """Run from a directory of its own (the block writes under ``out/``), with the venv's Python."""
    require_tool("gcc", "apt-get install gcc")
    script = tmp_path / "api.py"
    script.write_text(_python_api_block())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^\d+ gates, accuracy \d+\.\d%$", result.stdout.strip().splitlines()[-1])
    for name in ("model.pt", "model.npz", "verilog/digits.v", "verilog/digits_tb.v"):
        assert (tmp_path / "out/api" / name).is_file(), name
