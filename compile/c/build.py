"""Building for the C back end: run the system C compiler and wrap the library with ctypes."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path

import numpy as np

from lgn.tools import find_tool

from ..netlist import Netlist
from .emit import export
from .plan import _FEATURE_TYPES, CBackendError, CompilerNotFoundError, c_identifier, score_type


# --------------------------------------------------------------------------- build (ctypes)
def find_compiler(cc: str | None = None) -> str:
    """Return the C compiler to use: ``cc``, else ``$CC``, else the first of cc, gcc, clang."""
    for candidate in ([cc] if cc else [os.environ.get("CC"), "cc", "gcc", "clang"]):
        path = find_tool(candidate) if candidate else None
        if path:
            return path
    raise CompilerNotFoundError(
        f"no C compiler found ({cc or 'tried $CC, cc, gcc, clang'}); install gcc or clang "
        "or pass cc='path/to/compiler'"
    )


def compile_shared(source: Path, output: Path, cc: str | None = None, cflags=("-O2",)) -> Path:
    """Compile the C file ``source`` into the shared library ``output``; raise on failure."""
    command = [find_compiler(cc), "-std=c99", *cflags, "-shared", "-fPIC", str(source), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise CBackendError(f"{' '.join(command)} failed:\n{result.stderr.strip()[:4000]}")
    return output


class CModel:
    """A netlist compiled to a shared library; call it with numpy arrays.

    Build it with :func:`build`. ``predict``/``scores`` take raw features ``(N, num_features)``
    (input bits, one per byte, when the netlist has no encoding); ``predict_bits``/``scores_bits``
    take input bits ``(N, num_inputs)`` and bypass the encoder. Scores are int64: popcounts plus
    the class offsets.
    """

    def __init__(self, library: Path, netlist: Netlist, name: str, word_bits: int):
        self.netlist = netlist
        self.word_bits = word_bits
        self.num_classes = netlist.num_classes
        self.num_features = netlist.encoding.num_features if netlist.encoding else netlist.num_inputs
        dtype = netlist.encoding.dtype if netlist.encoding else "uint8"
        self.feature_dtype = np.dtype(_FEATURE_TYPES[dtype][1])
        self.score_dtype = np.dtype(score_type(netlist)[1])
        self.library_path = library
        self._lib = ctypes.CDLL(str(library))
        lane = {8: ctypes.c_uint8, 16: ctypes.c_uint16, 32: ctypes.c_uint32}.get(word_bits, ctypes.c_uint64)
        self._lane_dtype = np.dtype(f"uint{ctypes.sizeof(lane) * 8}")
        p, size = ctypes.c_void_p, ctypes.c_size_t
        for suffix in ("predict_batch", "scores_batch", "predict_bits", "scores_bits"):
            fn = getattr(self._lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = [p, size, p], None
            setattr(self, f"_{suffix}", fn)

    def _features(self, features) -> np.ndarray:
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise CBackendError(f"features have shape {x.shape}, expected (N, {self.num_features})")
        if self.netlist.encoding is None:
            x = x != 0
        with np.errstate(all="ignore"):  # out-of-type values are reported below
            cast = np.ascontiguousarray(x, dtype=self.feature_dtype)
        exact = np.array_equal(cast, x, equal_nan=cast.dtype.kind == "f")
        if cast.dtype != x.dtype and x.size and not exact:
            raise CBackendError(
                f"features of type {x.dtype} are not all exact {self.feature_dtype} values "
                f"(the model's feature type)"
            )
        return cast

    def predict(self, features) -> np.ndarray:
        """Return the class ``(N,)`` int64 of each sample of raw ``features``."""
        x = self._features(features)
        out = np.empty(x.shape[0], dtype=np.intc)
        self._predict_batch(x.ctypes.data, x.shape[0], out.ctypes.data)
        return out.astype(np.int64)

    def scores(self, features) -> np.ndarray:
        """Return the scores ``(N, num_classes)`` int64 of each sample of raw ``features``."""
        x = self._features(features)
        out = np.empty((x.shape[0], self.num_classes), dtype=self.score_dtype)
        self._scores_batch(x.ctypes.data, x.shape[0], out.ctypes.data)
        return out.astype(np.int64)

    def _blocks(self, bits):
        bits = np.asarray(bits)
        if bits.ndim != 2 or bits.shape[1] != self.netlist.num_inputs:
            raise CBackendError(f"bits have shape {bits.shape}, expected (N, {self.netlist.num_inputs})")
        lane_bits = self._lane_dtype.itemsize * 8
        for start in range(0, bits.shape[0], self.word_bits):
            block = bits[start : start + self.word_bits] != 0
            padded = np.zeros((self.word_bits, bits.shape[1]), dtype=np.uint8)
            padded[: block.shape[0]] = block
            packed = np.packbits(padded.T, axis=1, bitorder="little")  # (inputs, word_bits / 8)
            lanes = np.ascontiguousarray(packed).view(f"<u{lane_bits // 8}").astype(self._lane_dtype)
            yield start, block.shape[0], np.ascontiguousarray(lanes)

    def scores_bits(self, bits) -> np.ndarray:
        """Return the scores ``(N, num_classes)`` of input ``bits (N, num_inputs)``."""
        out = np.empty((np.shape(bits)[0], self.num_classes), dtype=self.score_dtype)
        for start, n, lanes in self._blocks(bits):
            self._scores_bits(lanes.ctypes.data, n, out[start:].ctypes.data)
        return out.astype(np.int64)

    def predict_bits(self, bits) -> np.ndarray:
        """Return the class ``(N,)`` of input ``bits (N, num_inputs)``."""
        out = np.empty(np.shape(bits)[0], dtype=np.intc)
        for start, n, lanes in self._blocks(bits):
            self._predict_bits(lanes.ctypes.data, n, out[start:].ctypes.data)
        return out.astype(np.int64)


def build(netlist: Netlist, *, name: str = "model", cc: str | None = None, cflags=("-O2",),
          **options) -> CModel:
    """Compile ``netlist`` with the system C compiler and return it as a :class:`CModel`.

    ``options`` are those of :func:`emit`; ``cflags`` are passed to the compiler (which is
    ``cc``, else ``$CC``, else cc/gcc/clang). Raises :class:`CompilerNotFoundError` without one.
    """
    compiler = find_compiler(cc)
    workdir = Path(tempfile.mkdtemp(prefix="lgn_c_"))
    try:
        ident = c_identifier(name)
        paths = export(netlist, workdir, name=ident, **options)
        library = compile_shared(paths[1], workdir / f"lib{ident}.so", compiler, cflags)
        model = CModel(library, netlist, ident, options.get("word_bits", 64))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    weakref.finalize(model, shutil.rmtree, workdir, ignore_errors=True)
    return model
