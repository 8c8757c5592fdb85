"""Strict reader and writer of IDX files (the MNIST format), gzipped or not.

An IDX file is two zero bytes, a data-type code, the number of dimensions ``d``, ``d`` big-endian
uint32 sizes, then the array in C order, big-endian. The reader checks every part and that the
file holds exactly the bytes its header announces.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import DatasetError

__all__ = ["read_idx", "write_idx", "read_bytes"]

#: IDX data-type code -> big-endian numpy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the contents of ``path``, gunzipped when it starts with the gzip magic number."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({error})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read the IDX file ``path`` (optionally gzipped) into a native-endian numpy array.

    Raises
    ------
    DatasetError
        Naming the file, when the magic number, type code, dimensions or length are wrong.
    """
    raw = read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    if raw[0] or raw[1]:
        raise DatasetError(f"{path}: bad magic number 0x{raw[:4].hex()} (not an IDX file)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{path}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DatasetError(f"{path}: {problem}: {len(raw)} bytes, expected {expected} for a "
                           f"{dtype.newbyteorder('=').name} array of shape {shape}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as IDX, gzipped (reproducibly) when the name ends in ``.gz``."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise DatasetError(f"{path}: IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise DatasetError(f"{path}: IDX needs 1..255 dimensions, got {array.ndim}")
    big = array.astype(native.newbyteorder(">"), copy=False)
    data = (bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(big).tobytes())
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)
