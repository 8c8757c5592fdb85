"""lgn's files on disk: atomic writes, output-path errors that name the user's path, and the checks
an input file passes before anything in it is trusted.

Output errors are :class:`OutputPathError` (an :class:`OSError`): one line, ``cannot write to
PATH: WHY``, where PATH is the path the caller gave and WHY says what is wrong with it (a missing
directory that cannot be created, a file where a directory is needed, permission denied, a
read-only file system, ...), never the name of an internal temporary file.

Input problems are :class:`InputFileError` (a :class:`ValueError`) without the path: each loader
puts its file name in front (``PATH: PROBLEM``).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import secrets
import zipfile
from pathlib import Path

__all__ = ["OutputPathError", "InputFileError", "MissingFileError", "write_atomic", "check_writable", "ensure_directory",
           "read_bytes", "checked_zip", "model_file_kind", "note_unverified", "first_line"]

#: Largest entry (uncompressed) a model archive may declare: far above any real model.
MAX_ENTRY_BYTES = 1 << 34
#: Deflate cannot expand data by more than about 1032:1; a larger declared ratio is a lie.
_MAX_DEFLATE_RATIO = 1032
_log = logging.getLogger("lgn")


class OutputPathError(OSError):
    """A file or directory cannot be written; the one-line message names the path and the reason."""


class InputFileError(ValueError):
    """An input file cannot be read or trusted; the message says why (the caller adds the path)."""


class MissingFileError(InputFileError):
    """The input file does not exist."""


# ------------------------------------------------------------------------------------ output
def _reason(path: Path, exc: OSError, directory: bool = False) -> str:
    """Why ``path`` cannot be written, in words about ``path`` (not about a temporary file)."""
    parent = path if directory else path.parent
    code = exc.errno
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a directory"
    if code == errno.EISDIR:
        return "it is a directory"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied (in {_existing(parent)})"
    if code == errno.EROFS:
        return f"{_existing(parent)} is on a read-only file system"
    if code == errno.ENOENT:
        if not parent.exists():
            return f"directory {parent} does not exist and cannot be created"
        return f"{parent} does not allow creating files"
    if code == errno.ENOSPC:
        return f"no space left on the device of {_existing(parent)}"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or str(exc) or type(exc).__name__


def _existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    return next((p for p in [path, *path.parents] if p.exists()), path)


def _make_directory(directory: Path, path: Path) -> None:
    """Create ``directory`` and its parents for writing ``path``, or raise :class:`OutputPathError`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot write to {path}: {_reason(directory, exc, directory=True)}") from None


def write_atomic(path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it onto ``path``.

    Missing parent directories are created. The file is flushed to disk before the rename and
    removed if anything fails; it gets the permissions a plain ``open(path, "wb")`` would (0o666
    less the umask). Any :class:`OSError` (from the file system or from ``write``) becomes an
    :class:`OutputPathError` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"cannot write to {path}: it is a directory")
    _make_directory(path.parent, path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OutputPathError(f"cannot write to {path}: {_reason(path, exc)}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OutputPathError):
            raise OutputPathError(f"cannot write to {path}: {_reason(path, exc)}") from None
        raise


def check_writable(path) -> Path:
    """Prove that a file can be written at ``path`` (creating its directory), before work is done.

    Raises :class:`OutputPathError` naming ``path`` otherwise; returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"cannot write to {path}: it is a directory")
    _make_directory(path.parent, path)
    _probe(path.with_name(f".{path.name}.{secrets.token_hex(6)}.probe"), path)
    return path


def ensure_directory(path) -> Path:
    """Create the output directory ``path`` (and its parents) and prove files can be written in it.

    Raises :class:`OutputPathError` naming ``path`` (e.g. when it is an existing file).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"cannot write to {path}: it is a file, not a directory")
    _make_directory(path, path)
    _probe(path / f".lgn.{secrets.token_hex(6)}.probe", path)
    return path


def _probe(probe: Path, path: Path) -> None:
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise OutputPathError(f"cannot write to {path}: {_reason(probe, exc)}") from None


# ------------------------------------------------------------------------------------- input
def first_line(exc: BaseException, limit: int = 160) -> str:
    """``Type: first line of the message`` of ``exc``, at most ``limit`` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:limit] if text else type(exc).__name__


def read_bytes(path) -> bytes:
    """Read the whole file at ``path`` (one open); :class:`InputFileError` says why it cannot be."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise MissingFileError("no such file") from None
    except IsADirectoryError:
        raise InputFileError("is a directory, not a model file") from None
    except OSError as exc:
        raise InputFileError(f"cannot read ({exc.strerror or exc})") from None
    except MemoryError:
        raise InputFileError("too large to read into memory") from None


def checked_zip(data: bytes, compression=(zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)) -> zipfile.ZipFile:
    """Open the zip archive ``data`` after checking its directory, before anything is decompressed.

    Every entry must be unencrypted, use one of the ``compression`` methods, lie inside the
    file, and declare an uncompressed size its stored bytes can hold (equal for stored entries,
    within deflate's largest ratio otherwise, and below :data:`MAX_ENTRY_BYTES`); names must be
    unique. Raises :class:`InputFileError` naming the first bad entry.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except Exception as exc:  # zipfile raises many types for a damaged directory
        raise InputFileError(f"damaged zip archive ({first_line(exc)})") from None
    names = set()
    for info in entries:
        name = info.filename[:60]
        if info.filename in names:
            raise InputFileError(f"damaged zip archive (entry {name!r} appears twice)")
        names.add(info.filename)
        if info.flag_bits & 0x1:
            raise InputFileError(f"zip entry {name!r} is encrypted")
        if info.compress_type not in compression:
            raise InputFileError(f"zip entry {name!r} uses an unsupported compression method "
                                 f"({info.compress_type})")
        stored = info.compress_type == zipfile.ZIP_STORED
        if (info.file_size > MAX_ENTRY_BYTES or (stored and info.file_size != info.compress_size)
                or (not stored and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024)):
            raise InputFileError(f"damaged zip archive (entry {name!r} declares {info.file_size} bytes "
                                 f"for {info.compress_size} stored)")
        if info.header_offset + 30 + info.compress_size > len(data):
            raise InputFileError(f"damaged zip archive (entry {name!r} extends past the end of the file)")
    return archive


def model_file_kind(data: bytes) -> str | None:
    """What ``data`` holds: ``'checkpoint'`` (torch zip), ``'npz'``, ``'text'`` (text netlist) or ``None``.

    Decided by content only (zip entries, or the first line of text); nothing is decompressed.
    """
    if data.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except Exception:  # damaged: let the netlist reader say what is wrong
            return "npz"
        return "checkpoint" if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names) else "npz"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the 4096-byte boundary
            return None
        text = head[:exc.start].decode("utf-8")
    for line in text.splitlines():
        words = line.split("#")[0].split()
        if words:
            return "text" if words[0] == "inputs" else None
    return None


def note_unverified(path, what: str) -> None:
    """Log the one-line note that the model file ``path`` carries no checksum (stderr by default)."""
    _log.warning("note: %s: %s carries no checksum (written before lgn recorded one); "
                 "loaded without verification", path, what)
