"""Hypothesis strategies that draw netlists themselves (so failures shrink to a minimal netlist)
and raw features for them (values at, beside and far from the thresholds and the type limits).

- :func:`netlists`: any valid :class:`Netlist`: 0.. inputs, 0.. gates of every op reading
  constants, inputs or earlier gates, outputs among all nodes (constants and inputs included),
  1.. classes, and optionally a thermometer encoding of any feature type, with features in random
  order or in the thermometer layout of ``lower()`` (long runs: the C encoder's vector paths).
- :func:`mixed_netlists`: netlists mixing two-input gates and LUT-1..6 nodes, with class offsets.
- :func:`features_for`: ``(N, num_features)`` raw features of the encoding's type (or input bits
  for a netlist without one), drawn from per-feature pools holding each threshold's neighbours.
- :func:`thresholds`: one threshold for a feature type, at and beside its limits, far outside,
  non-integers, and for ``float32`` zeros, subnormals and float64 values between float32s.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from lgn.compile import gates
from lgn.compile.luts import permute
from lgn.compile.netlist import FEATURE_DTYPES, LUT_OP, MAX_LUT_INPUTS, Netlist, ThermometerEncoding

__all__ = ["netlists", "mixed_netlists", "features_for", "feature_pools", "thresholds", "threshold_edges", "examples",
           "INTEGER_DTYPES"]

INTEGER_DTYPES = tuple(d for d in FEATURE_DTYPES if d != "float32")
F32 = np.finfo(np.float32)
FLT_MAX = float(F32.max)
FLT_TRUE_MIN = float(np.float32(2.0**-149))
FLT_MIN = float(F32.tiny)
#: float32 values that sit at the edges of the format.
FLOAT_EDGES = (0.0, FLT_TRUE_MIN, 2 * FLT_TRUE_MIN, FLT_MIN,
               float(np.nextafter(np.float32(FLT_MIN), 0)), 1.0, float(np.nextafter(np.float32(1), 2)),
               FLT_MAX, float(np.nextafter(np.float32(FLT_MAX), 0)))


def examples(count: int) -> settings:
    """Settings of a test that builds or simulates each drawn netlist: ``count`` examples, no
    deadline (a compiler or simulator run per example), fixtures shared across examples."""
    return settings(max_examples=count, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


def _limits(dtype: str) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def threshold_edges(dtype: str) -> list[float]:
    """Finite float64 thresholds at, beside and far beyond the limits of ``dtype``."""
    far = [1e12, -1e12, 1e300, -1e300, 0.0, -0.0, 0.5, -0.5, 1.0, -1.0]
    if dtype == "float32":
        edges = [s * v for v in FLOAT_EDGES for s in (1.0, -1.0)]
        beside = [s * v for v in (FLT_TRUE_MIN / 2, FLT_TRUE_MIN * 1.5, FLT_MAX * (1 + 2.0**-30),
                                  2.0**128 - 2.0**103, 2.0**128, 1 + 2.0**-24, 1 + 2.0**-40,
                                  1 - 2.0**-50)
                  for s in (1.0, -1.0)]
        return far + edges + beside
    low, high = _limits(dtype)
    near = [low - 1, low - 0.5, low, low + 0.5, low + 1, high - 1, high - 0.5, high, high + 0.5,
            high + 1, low - 1e-9 * abs(low), high + 1e-9 * high]
    return far + [float(v) for v in near]


def thresholds(dtype: str) -> st.SearchStrategy[float]:
    """One finite threshold for features of ``dtype``: limits, neighbours, random, non-integers."""
    edges = st.sampled_from(threshold_edges(dtype))
    if dtype == "float32":
        inside = st.floats(width=32, allow_nan=False, allow_infinity=False)
        wide = st.floats(allow_nan=False, allow_infinity=False)
        between = inside.map(lambda v: float(np.nextafter(np.float64(v), np.inf)))
        return st.one_of(edges, inside, wide, between, st.integers(-300, 300).map(float))
    low, high = _limits(dtype)
    return st.one_of(edges, st.integers(low, high).map(float),
                     st.floats(low - 3.0, high + 3.0, allow_nan=False),
                     st.integers(-3, 3).map(lambda v: v + 0.5))


@st.composite
def _encoding(draw, num_inputs: int, dtypes, max_features: int) -> ThermometerEncoding:
    dtype = draw(st.sampled_from(dtypes))
    threshold = st.lists(thresholds(dtype), min_size=num_inputs, max_size=num_inputs)
    if num_inputs and draw(st.booleans()):  # lower()'s layout: input f*k + j reads feature f
        per_feature = draw(st.integers(1, min(4, num_inputs)))
        num_features = num_inputs // per_feature
        extra = draw(st.integers(0, 70))  # features no input bit reads
        feature = [min(i // per_feature, num_features - 1) for i in range(num_inputs)]
        return ThermometerEncoding(num_features + extra, feature, draw(threshold), dtype)
    num_features = draw(st.integers(1, max_features))
    feature = draw(st.lists(st.integers(0, num_features - 1), min_size=num_inputs,
                            max_size=num_inputs))
    return ThermometerEncoding(num_features, feature, draw(threshold), dtype)


@st.composite
def netlists(draw, max_inputs: int = 12, max_gates: int = 60, max_classes: int = 6,
             max_outputs_per_class: int = 12, encoding: bool | None = None,
             dtypes=FEATURE_DTYPES, max_features: int = 140, min_inputs: int = 0) -> Netlist:
    """Draw a valid netlist (see the module docstring); ``encoding=None`` draws if it has one."""
    num_inputs = draw(st.integers(min_inputs, max_inputs))
    num_gates = draw(st.integers(0, max_gates))
    first = 2 + num_inputs
    ops, a, b = [], [], []
    for g in range(num_gates):
        node = first + g
        operand = st.one_of(st.integers(0, node - 1), st.integers(max(0, node - 3), node - 1))
        ops.append(draw(st.integers(0, 15)))
        a.append(draw(operand))
        b.append(draw(operand))
    num_nodes = first + num_gates
    num_classes = draw(st.integers(1, max_classes))
    per_class = draw(st.integers(1, max_outputs_per_class))
    output = st.one_of(st.integers(0, num_nodes - 1),
                       st.integers(max(0, num_nodes - 4), num_nodes - 1))
    outputs = draw(st.lists(output, min_size=num_classes * per_class,
                            max_size=num_classes * per_class))
    with_encoding = draw(st.booleans()) if encoding is None else encoding
    enc = draw(_encoding(num_inputs, tuple(dtypes), max_features)) if with_encoding else None
    return Netlist(num_inputs, np.array(ops, dtype=np.uint8), a, b, outputs,
                   num_classes=num_classes, encoding=enc)


def _projection(k: int, j: int) -> int:
    """The k-input table of fan-in j alone."""
    return sum(1 << r for r in range(1 << k) if r >> j & 1)


@st.composite
def _lut_table(draw, k: int) -> int:
    """A k-input truth table: anything, or one that reduces (constant, wire, NOT, AND, XOR)."""
    full = (1 << (1 << k)) - 1
    j = draw(st.integers(0, k - 1))
    xor = 0
    for i in range(k):
        xor ^= _projection(k, i)
    special = [0, full, _projection(k, j), full ^ _projection(k, j), 1 << (full.bit_length() - 1), xor]
    return draw(st.one_of(st.integers(0, full), st.sampled_from(special)))


@st.composite
def mixed_netlists(draw, max_inputs: int = 12, max_gates: int = 40, max_classes: int = 4,
                   max_outputs_per_class: int = 6, offsets: bool = True) -> Netlist:
    """Draw a valid netlist mixing two-input gates and LUT-1..6 nodes, with class offsets.

    Each node is a two-input gate (what it shrinks to), a k-input LUT (k = 1..6, a random table
    or one that reduces to a constant, wire, NOT, AND or XOR; fan-ins may repeat and be constants)
    or a copy of an earlier node with its fan-ins permuted (a structural-hashing target); operands
    lean towards the last few nodes, so chains are deep. Outputs may be constants or inputs.
    """
    num_inputs = draw(st.integers(0, max_inputs))
    num_gates = draw(st.integers(0, max_gates))
    first = 2 + num_inputs
    ops, a, b = [], [], []
    luts: dict[int, tuple[int, list[int]]] = {}  # gate -> (table, fan-ins)
    for g in range(num_gates):
        node = first + g
        operand = st.one_of(st.integers(0, node - 1), st.integers(max(0, node - 3), node - 1))
        kind = draw(st.sampled_from(["gate", "lut", "copy"]))
        if kind == "copy" and g:
            k = draw(st.integers(0, g - 1))
            if k in luts:
                table, fanins = luts[k]
                order = draw(st.permutations(range(len(fanins))))
                luts[g] = (permute(table, len(fanins), order), [fanins[p] for p in order])
                ops.append(LUT_OP), a.append(luts[g][1][0]), b.append(luts[g][1][-1])
            else:
                ops.append(gates.swap_inputs(ops[k])), a.append(b[k]), b.append(a[k])
            continue
        if kind == "lut":
            k = draw(st.integers(1, MAX_LUT_INPUTS))
            fanins = [draw(operand) for _ in range(k)]
            luts[g] = (draw(_lut_table(k)), fanins)
            ops.append(LUT_OP), a.append(fanins[0]), b.append(fanins[-1])
            continue
        ops.append(draw(st.integers(0, 15))), a.append(draw(operand)), b.append(draw(operand))
    num_nodes = first + num_gates
    num_classes = draw(st.integers(1, max_classes))
    per_class = draw(st.integers(1, max_outputs_per_class))
    output = st.one_of(st.integers(0, num_nodes - 1), st.integers(max(0, num_nodes - 4), num_nodes - 1))
    outputs = draw(st.lists(output, min_size=num_classes * per_class, max_size=num_classes * per_class))
    offset = st.lists(st.integers(-3, 3), min_size=num_classes, max_size=num_classes)
    order = sorted(luts)
    fanin = np.zeros((len(order), MAX_LUT_INPUTS), np.int64)
    for row, g in enumerate(order):
        fanin[row, : len(luts[g][1])] = luts[g][1]
    return Netlist(num_inputs, np.array(ops, dtype=np.uint8), a, b, outputs, num_classes=num_classes,
                   lut_fanin=fanin, lut_arity=[len(luts[g][1]) for g in order],
                   lut_table=np.array([luts[g][0] for g in order], np.uint64),
                   offsets=draw(offset) if offsets else None)


# ------------------------------------------------------------------------------ features
def _float_pool(values) -> np.ndarray:
    """float32 values at and beside ``values`` (float64), plus the format's special values."""
    specials = [np.nan, -np.nan, np.inf, -np.inf, -0.0]
    specials += [s * v for v in FLOAT_EDGES for s in (1.0, -1.0)]
    pool = [np.float32(v) for v in specials]
    with np.errstate(over="ignore"):
        for t in values:
            near = np.float32(t)
            pool += [near, np.nextafter(near, np.float32(np.inf)),
                     np.nextafter(near, np.float32(-np.inf))]
    nans = np.array([0x7FC00001, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32).view(np.float32)
    return np.concatenate([np.array(pool, dtype=np.float32), nans])


def _integer_pool(dtype: str, values) -> np.ndarray:
    low, high = _limits(dtype)
    pool = {low, low + 1, high - 1, high, 0, 1, -1 if low < 0 else 2}
    for t in values:
        if math.isfinite(t) and low - 2 <= t <= high + 2:
            pool |= {math.floor(t) - 1, math.floor(t), math.floor(t) + 1, math.ceil(t)}
    return np.array(sorted(v for v in pool if low <= v <= high), dtype=dtype)


def feature_pools(net: Netlist) -> list[np.ndarray]:
    """Per feature, the interesting values of the encoding's type for the thresholds on it."""
    enc = net.encoding
    pools = []
    for f in range(enc.num_features):
        values = enc.threshold[enc.feature == f].tolist()
        pools.append(_float_pool(values) if enc.dtype == "float32"
                     else _integer_pool(enc.dtype, values))
    return pools


@st.composite
def features_for(draw, net: Netlist, max_rows: int = 200, min_rows: int = 0) -> np.ndarray:
    """Draw raw features ``(N, num_features)`` for ``net`` (input bits, uint8 0/1, without an
    encoding): every value from its feature's pool, or anywhere in the type."""
    rows = draw(st.integers(min_rows, max_rows))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    enc = net.encoding
    if enc is None:
        density = draw(st.sampled_from([0.5, 0.1, 0.9]))
        return (rng.random((rows, net.num_inputs)) < density).astype(np.uint8)
    if enc.dtype == "float32":
        patterns = rng.integers(0, 2**32, (rows, enc.num_features), dtype=np.uint64)
        anywhere = patterns.astype(np.uint32).view(np.float32)  # every bit pattern: NaN, inf, ...
        anywhere = np.where(rng.random(anywhere.shape) < 0.5, anywhere,
                            rng.normal(0, 10, anywhere.shape).astype(np.float32))
    else:
        low, high = _limits(enc.dtype)
        anywhere = rng.integers(low, high + 1, (rows, enc.num_features), dtype=np.int64)
        anywhere = anywhere.astype(enc.dtype)
    x = anywhere.copy()
    pick = rng.random(x.shape) < draw(st.sampled_from([0.8, 0.5, 1.0]))
    for f, pool in enumerate(feature_pools(net)):
        chosen = pool[rng.integers(0, len(pool), rows)]
        x[:, f] = np.where(pick[:, f], chosen, anywhere[:, f])
    return x
