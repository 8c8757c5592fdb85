"""Writing files so that a reader never sees a partial one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it onto ``path``.

    The file is flushed to disk before the rename and removed if anything fails; it gets the
    permissions a plain ``open(path, "wb")`` would (0o666 less the umask).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
