"""Running the outside tools (iverilog, Verilator, Yosys, nextpnr)."""

from __future__ import annotations

import subprocess

from .errors import ToolFailedError

__all__ = ["run_tool", "tool_failed", "output_tail"]


def run_tool(command: list[str], what: str, timeout: float | None = None,
             cwd=None) -> subprocess.CompletedProcess:
    """Run ``command`` capturing its text output; running past ``timeout`` seconds raises
    :class:`ToolFailedError` naming ``what`` (the exit status is left to the caller)."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolFailedError(f"{what} did not finish within {timeout:.0f} s") from None


def output_tail(text: str, lines: int = 5) -> str:
    """The last ``lines`` non-empty lines of a tool's output joined by ``|`` (one line)."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def tool_failed(what: str, done: subprocess.CompletedProcess) -> ToolFailedError:
    """The one-line error for a tool that exited with an error: its ERROR lines, else the last
    lines of its output, else its exit status (a tool killed for memory may print nothing)."""
    log = f"{done.stdout or ''}\n{done.stderr or ''}"
    errors = [line.strip() for line in log.splitlines() if "ERROR" in line and line.strip()]
    detail = " | ".join(errors[:3]) if errors else output_tail(log)
    if not detail:
        status = done.returncode
        why = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        detail = f"{why}, no output (out of memory?)"
    return ToolFailedError(f"{what} failed: {detail}")
