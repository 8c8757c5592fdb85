"""Running the outside tools (iverilog, Verilator, Yosys, nextpnr)."""

from __future__ import annotations

import subprocess

from .errors import ToolFailedError

__all__ = ["run_tool"]


def run_tool(command: list[str], what: str, timeout: float | None = None,
             cwd=None) -> subprocess.CompletedProcess:
    """Run ``command`` capturing its text output; running past ``timeout`` seconds raises
    :class:`ToolFailedError` naming ``what`` (the exit status is left to the caller)."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolFailedError(f"{what} did not finish within {timeout:.0f} s") from None
