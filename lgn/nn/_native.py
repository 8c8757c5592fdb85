"""Fused CPU kernels (``kernels.c``: relaxed LUT layers, learned source selection), built once per
machine with the system C compiler.

The shared library is cached under ``$LGN_CACHE_DIR`` (else ``$XDG_CACHE_HOME/lgn``, else
``~/.cache/lgn``), named by a hash of the source, the compiler, its flags and the CPU (it is built
with ``-march=native``), and written atomically, so concurrent first uses are safe. Where it
does not build (no C compiler), :func:`kernels` warns once and returns ``None``, and callers
use the pure-torch path.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import hashlib
import os
import platform
import tempfile
import warnings
from pathlib import Path

import torch

from lgn.compile.c.build import compile_shared, find_compiler
from lgn.compile.c.plan import CBackendError

SOURCE = Path(__file__).with_name("kernels.c")
CFLAGS = ("-O3", "-march=native", "-ffp-contract=fast")
C_TYPES = {"float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double)}
#: Which kernels run on CPU (default ``$LGN_KERNEL``, else 'auto'): 'auto' (the fused ones where
#: they build, else torch ops), 'native' (the fused ones, an error where they do not build) or
#: 'torch'. CUDA tensors always take the torch ops.
KERNEL = os.environ.get("LGN_KERNEL", "auto")
KERNELS = ("auto", "native", "torch")
#: Batch columns each thread takes at least (a whole number of vector blocks).
SLICE_COLUMNS = 64


def cache_dir() -> Path:
    """Where built kernels are kept (see the module doc)."""
    if os.environ.get("LGN_CACHE_DIR"):
        return Path(os.environ["LGN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lgn"


def _cpu() -> str:
    """The CPU's model and feature flags (the library is built for exactly this CPU)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part")
    return platform.machine() + "".join(sorted({line for line in lines if line.startswith(wanted)}))


def build(dtype: str, cc: str | None = None, cflags=CFLAGS) -> Path:
    """The kernel for ``dtype`` built with ``cc`` (default: :func:`find_compiler`) and ``cflags``,
    from the cache when it is there."""
    cc = find_compiler(cc)
    real = C_TYPES[dtype][0]
    flags = (*cflags, f"-DREAL={real}")
    key = hashlib.sha256("\0".join([SOURCE.read_text(), cc, *flags, _cpu()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"kernels-{real}-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            built = compile_shared(SOURCE, Path(scratch) / target.name, cc, cflags=flags)
            os.replace(built, target)
    return target


def load(library_path: Path) -> ctypes.CDLL:
    """Open a built kernel and declare its two functions."""
    library = ctypes.CDLL(str(library_path))
    size, pointer = ctypes.c_size_t, ctypes.c_void_p
    common = [ctypes.c_int, size, size, size, size, pointer, pointer, pointer]
    library.lut_forward.argtypes, library.lut_forward.restype = [*common, pointer], None
    library.lut_backward.argtypes, library.lut_backward.restype = [*common, pointer, pointer, pointer], None
    common = [size, size, size, size, size, pointer, pointer, pointer]
    library.select_forward.argtypes, library.select_forward.restype = [*common, pointer], None
    library.select_backward.argtypes, library.select_backward.restype = [*common, pointer, pointer, pointer], None
    return library


@functools.cache
def kernels(dtype: str) -> ctypes.CDLL | None:
    """The kernel library for ``dtype`` ('float32' or 'float64'), or ``None`` when unavailable."""
    if dtype not in C_TYPES:
        return None
    try:
        return load(build(dtype))
    except (CBackendError, OSError) as error:
        warnings.warn(f"LUT layers and learned wiring use the slower pure-torch kernels: the fused ones did not build "
                      f"({str(error).splitlines()[0]})", RuntimeWarning, stacklevel=4)
        return None


def fused_kernels(*tensors: torch.Tensor) -> ctypes.CDLL | None:
    """The library to run an op on ``tensors`` with, or ``None`` for torch ops (see ``KERNEL``)."""
    if KERNEL not in KERNELS:
        raise ValueError(f"unknown kernel {KERNEL!r} (LGN_KERNEL), expected one of {KERNELS}")
    first = tensors[0]
    if KERNEL == "torch" or first.device.type != "cpu" or any(t.dtype != first.dtype for t in tensors):
        return None
    library = kernels(str(first.dtype).removeprefix("torch."))
    if library is None and KERNEL == "native":
        raise RuntimeError(f"the fused kernels are not available for {first.dtype}")
    return library


@functools.cache
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="lgn-kernel")


def in_slices(batch: int, call) -> int:
    """Run ``call(slice_index, start, stop)`` on column slices of the batch, one per torch thread
    (the kernels release the GIL), each a whole number of 16-lane blocks; return the slice count."""
    slices = max(1, min(torch.get_num_threads(), batch // SLICE_COLUMNS))
    if slices == 1:
        call(0, 0, batch)
        return 1
    step = -(-batch // slices)  # ceil, then up to whole blocks
    step = -(-step // 16) * 16
    bounds = [(s, min(s + step, batch)) for s in range(0, batch, step)]
    for done in [_pool(len(bounds)).submit(call, i, *b) for i, b in enumerate(bounds)]:
        done.result()
    return len(bounds)
