"""A tiny PNG writer (zlib only) for images of rendering progress."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import RenderError

__all__ = ["write_png", "image_grid"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: str | Path, image) -> None:
    """Write ``image`` (``(H, W)``, ``(H, W, C)`` or a ``(C, H, W)`` tensor; C in 1..4) as 8-bit PNG.

    Floating images are taken to lie in ``[0, 1]`` and clipped; integer images must be uint8.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = (image.movedim(0, -1) if image.dim() == 3 else image).numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or 0 in array.shape:
        raise RenderError(f"cannot write image of shape {array.shape} as PNG")
    if np.issubdtype(array.dtype, np.floating):
        array = np.round(np.clip(np.nan_to_num(array), 0, 1) * 255)
    elif array.dtype != np.uint8:
        raise RenderError(f"integer images must be uint8, got {array.dtype}")
    array = np.ascontiguousarray(array.astype(np.uint8))
    height, width, channels = array.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), array.reshape(height, -1)], 1)
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _chunk(b"IEND", b""))
    Path(path).write_bytes(data)


def image_grid(images, columns: int, pad: int = 2, fill: float = 1.0) -> np.ndarray:
    """Tile equally sized ``(H, W, C)`` images (or ``(C, H, W)`` tensors) into one array."""
    arrays = [np.asarray(i.detach().cpu().movedim(0, -1) if isinstance(i, torch.Tensor) else i,
                         dtype=np.float32) for i in images]
    arrays = [a[..., None] if a.ndim == 2 else a for a in arrays]
    if not arrays or len({a.shape for a in arrays}) != 1:
        raise RenderError("image_grid needs at least one image, all of the same shape")
    height, width, channels = arrays[0].shape
    rows = -(-len(arrays) // columns)
    grid = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, channels), fill,
                   np.float32)
    for k, a in enumerate(arrays):
        r, c = divmod(k, columns)
        y, x = pad + r * (height + pad), pad + c * (width + pad)
        grid[y:y + height, x:x + width] = a
    return grid
