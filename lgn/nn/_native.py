"""The fused LUT-layer kernel (``lut_kernel.c``), built once per machine with the system C compiler.

The shared library is cached under ``$LGN_CACHE_DIR`` (else ``$XDG_CACHE_HOME/lgn``, else
``~/.cache/lgn``), named by a hash of the source, the compiler, its flags and the CPU (it is built
with ``-march=native``), and written atomically, so concurrent first uses are safe. Where it
does not build (no C compiler), :func:`lut_kernels` warns once and returns ``None``, and callers
use the pure-torch path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import tempfile
import warnings
from pathlib import Path

from lgn.compile.c.build import compile_shared, find_compiler
from lgn.compile.c.plan import CBackendError

SOURCE = Path(__file__).with_name("lut_kernel.c")
CFLAGS = ("-O3", "-march=native", "-ffp-contract=fast")
C_TYPES = {"float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double)}


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
    target = cache_dir() / f"lut_kernel-{real}-{key}.so"
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
    return library


@functools.cache
def lut_kernels(dtype: str) -> ctypes.CDLL | None:
    """The kernel library for ``dtype`` ('float32' or 'float64'), or ``None`` when unavailable."""
    if dtype not in C_TYPES:
        return None
    try:
        return load(build(dtype))
    except (CBackendError, OSError) as error:
        warnings.warn(f"LUT layers use the slower pure-torch kernel: the fused one did not build "
                      f"({str(error).splitlines()[0]})", RuntimeWarning, stacklevel=4)
        return None
