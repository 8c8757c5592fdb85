"""The input thermometer as comparators on raw features."""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from lgn.compile.netlist import ThermometerEncoding

from .core import CHUNK_BITS, checked_init

__all__ = ["ThermometerEncoder", "feature_shape", "float32_key", "port_words", "pack_rows"]

_INTEGER = {"uint8": unsigned(8), "int8": signed(8), "uint16": unsigned(16),
            "int16": signed(16), "int32": signed(32)}


def feature_shape(dtype: str):
    """Return the Amaranth shape of one raw feature (``float32``: its 32 IEEE-754 bits)."""
    return _INTEGER.get(dtype, unsigned(32))


def port_words(encoding: ThermometerEncoding | None, inputs) -> tuple[np.ndarray, int]:
    """Return what the classifier's input port carries per sample, and the bits per element.

    With an encoding, ``inputs (N, num_features)`` raw features become their unsigned bit
    patterns (``float32``: IEEE-754 bits; signed types: two's complement), ``feature_width`` bits
    each; without one, ``inputs (N, num_inputs)`` are bits (nonzero is 1), one bit each.
    """
    inputs = np.asarray(inputs)
    if encoding is None:
        return (inputs != 0).astype(np.uint64), 1
    width = feature_shape(encoding.dtype).width
    if encoding.dtype == "float32":
        return np.asarray(inputs, dtype=np.float32).view(np.uint32).astype(np.uint64), width
    return (inputs.astype(np.int64) & ((1 << width) - 1)).astype(np.uint64), width


def pack_rows(values: np.ndarray, width: int) -> list[int]:
    """Each row of non-negative ints as one integer, element ``j`` at bits ``[j*width, (j+1)*width)``."""
    values = np.asarray(values).astype(np.uint64) & np.uint64((1 << width) - 1)
    out = []
    for row in values.tolist():
        acc = 0
        for j, v in enumerate(row):
            acc |= int(v) << (j * width)
        out.append(acc)
    return out


def float32_key(value) -> int:
    """Return the unsigned 32-bit key that orders float32 values (``-0.0`` below ``+0.0``)."""
    bits = int(np.float32(value).view(np.uint32))
    return bits ^ 0xFFFFFFFF if bits >> 31 else bits | 0x80000000


def _float_bound(threshold: float) -> int:
    """Key of the smallest float32 strictly above ``threshold``; zero is taken as ``-0.0``."""
    with np.errstate(over="ignore"):  # beyond FLT_MAX: inf, which is above every threshold
        nearest = np.float32(threshold)
        if not float(nearest) > threshold:
            nearest = np.nextafter(nearest, np.float32(np.inf))
    if nearest == 0:
        nearest = np.float32(-0.0)
    return float32_key(nearest)


class ThermometerEncoder(wiring.Component):
    """Compute ``bits[i] = features[feature[i]] > threshold[i]`` in hardware.

    Integer features compare against ``floor(threshold)`` (equal for integers, and exact);
    thresholds outside the type's range become constants. ``float32`` features arrive as IEEE-754
    bit patterns and compare through an order-preserving key, matching numpy's float comparison
    (NaN compares false, ``-0.0 == +0.0``).

    Attributes
    ----------
    features : In(ArrayLayout(feature_shape(dtype), num_features))
    bits : Out(num_inputs)
    """

    @checked_init
    def __init__(self, encoding: ThermometerEncoding):
        self.encoding = encoding
        self.shape = feature_shape(encoding.dtype)
        super().__init__({
            "features": In(data.ArrayLayout(self.shape, encoding.num_features)),
            "bits": Out(len(encoding.feature)),
        })

    def elaborate(self, platform):
        m = Module()
        enc = self.encoding
        raw = self.features.as_value()
        width = self.shape.width
        feature = [raw[f * width : (f + 1) * width] for f in range(enc.num_features)]
        if enc.dtype == "float32":
            compare = self._float_comparators(m, feature)
        else:
            compare = self._integer_comparators(feature)
        exprs = [compare(int(f), float(t)) for f, t in zip(enc.feature, enc.threshold)]
        for start in range(0, len(exprs), CHUNK_BITS):
            part = exprs[start : start + CHUNK_BITS]
            m.d.comb += self.bits[start : start + len(part)].eq(Cat(*part))
        return m

    def _integer_comparators(self, feature):
        width = self.shape.width
        low, high = ((-(1 << (width - 1)), (1 << (width - 1)) - 1)
                     if self.shape.signed else (0, (1 << width) - 1))
        bias = 1 << (width - 1) if self.shape.signed else 0
        ordered = [Cat(x[:-1], ~x[-1]) if self.shape.signed else x for x in feature]

        def compare(f: int, threshold: float):
            bound = math.floor(threshold)
            if bound < low:
                return C(1, 1)
            if bound >= high:
                return C(0, 1)
            return _above(ordered[f], bound + bias)

        return compare

    def _float_comparators(self, m, feature):
        keys, numbers = {}, {}
        used = sorted(set(self.encoding.feature.tolist()))
        for f in used:
            x = feature[f]
            key = Signal(32, name=f"key{f}")
            number = Signal(name=f"number{f}")
            m.d.comb += [key.eq(Mux(x[31], ~x, Cat(x[:31], C(1, 1)))),
                         number.eq(~(x[23:31].all() & x[:23].any()))]
            keys[f], numbers[f] = key, number

        def compare(f: int, threshold: float):
            return numbers[f] & _above(keys[f], _float_bound(threshold) - 1)

        return compare


def _above(x, bound: int):
    """Return ``x > bound`` for an unsigned value and a constant ``0 <= bound < 2**len(x) - 1``.

    Written as a sum of products of ``x``'s bits (no constants): ``x > c`` exactly when, for some
    bit ``i`` where ``c`` has a 0, ``x_i = 1`` and ``x`` has a 1 wherever ``c`` has one above ``i``.
    Constant operands would be narrowed by the Verilog writer and trip ``verilator -Wall``.
    """
    terms = []
    for i in range(len(x)):
        if not (bound >> i) & 1:
            ones = [x[j] for j in range(i + 1, len(x)) if (bound >> j) & 1]
            terms.append(Cat(x[i], *ones).all() if ones else x[i])
    return Cat(*terms).any()
