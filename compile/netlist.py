"""The netlist IR: the one hand-off between the front end and every back end.

A :class:`Netlist` is a frozen, validated, topologically ordered DAG of two-input gates held in
numpy arrays. Node ids are dense:

====================  ===========================================
id                    node
====================  ===========================================
``0``                 constant 0
``1``                 constant 1
``2 .. 2+I-1``        input bits (``I = num_inputs``)
``2+I .. 2+I+G-1``    gates, in topological order
====================  ===========================================

Gate ``g`` computes ``op[g](node a[g], node b[g])`` with the gate numbering of
:mod:`lgn.compile.gates`. ``outputs`` lists node ids class-major: class ``c`` owns
``outputs[c*k:(c+1)*k]`` with ``k = len(outputs) // num_classes``, and its score is the number of
those nodes that are 1 plus the class's integer ``offsets[c]`` (divided by ``tau`` in the trained
model, which does not change the argmax); ties go to the lowest class.

k-input LUT nodes (k = 1..6) share the node numbering: a gate whose ``op`` is :data:`LUT_OP` (16)
is a LUT, described by the next row of the LUT section (``lut_fanin`` ``(L, 6)`` node ids, unused
columns 0; ``lut_arity`` ``(L,)``; ``lut_table`` ``(L,)`` uint64). A LUT's value is bit ``r`` of its
table word, ``r = sum_j fanin_j << j`` (fan-in ``j`` is bit ``j`` of the row index, as in
:class:`lgn.nn.lut.LutLayer`). Its ``a`` and ``b`` hold fan-in 0 and the last fan-in, so code that
only needs operands of two-input gates keeps working, and two-input gates stay plain arrays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lgn.compile.gates import GATE_NAMES, NUM_GATES

__all__ = ["Netlist", "GateSchedule", "LUT_OP", "MAX_LUT_INPUTS", "ThermometerEncoding", "NetlistError", "FEATURE_DTYPES", "MAX_INPUTS",
           "MAX_FEATURES", "MAX_META_BYTES", "parse_text"]

NODE_DTYPE = np.int64
#: ``op`` of a k-input LUT node (the 16 two-input gates are 0..15).
LUT_OP = NUM_GATES
#: Most fan-ins of a LUT node.
MAX_LUT_INPUTS = 6
#: Relaxation rounds :attr:`Netlist.level` tries before it falls back to the per-gate loop.
_VECTOR_ROUNDS = 256
#: Raw feature types a netlist's encoder may declare (the C type the firmware passes in).
FEATURE_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "float32")
#: Sane limits on the counts that no array backs (a file claiming more is damaged): input bits
#: and raw features. The largest models in use have about 10^5 of either.
MAX_INPUTS = 1 << 24
MAX_FEATURES = 1 << 24
#: Largest ``meta`` a model file holds (as JSON): meta is small provenance, not data.
MAX_META_BYTES = 4 << 20
#: Node ids the text form accepts (larger ones cannot be valid and would overflow int64).
_MAX_NODE_ID = 1 << 62


class NetlistError(ValueError):
    """A netlist (or the file it came from) is malformed; the message names the first bad entry."""


def _frozen(array, dtype) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class ThermometerEncoding:
    """How raw features become input bits: ``bit[i] = features[feature[i]] > threshold[i]``.

    Attributes
    ----------
    num_features : int
        Length of the raw feature vector.
    feature : ndarray of int64, shape (num_inputs,)
        Feature read by each input bit.
    threshold : ndarray of float64, shape (num_inputs,)
        Strict threshold of each input bit.
    dtype : str
        Declared type of raw features (one of :data:`FEATURE_DTYPES`), e.g. ``"uint8"`` pixels.
    """

    num_features: int
    feature: np.ndarray
    threshold: np.ndarray
    dtype: str = "float32"

    def __post_init__(self):
        object.__setattr__(self, "feature", _frozen(self.feature, np.int64))
        object.__setattr__(self, "threshold", _frozen(self.threshold, np.float64))
        if self.feature.ndim != 1 or self.feature.shape != self.threshold.shape:
            raise NetlistError(
                f"encoding: feature {self.feature.shape} and threshold {self.threshold.shape} "
                "must be 1-d arrays of the same length"
            )
        if self.dtype not in FEATURE_DTYPES:
            raise NetlistError(f"encoding: unknown feature dtype {self.dtype!r}, expected one of {FEATURE_DTYPES}")
        if (not isinstance(self.num_features, (int, np.integer)) or isinstance(self.num_features, bool)
                or not 1 <= self.num_features <= MAX_FEATURES):
            raise NetlistError(f"encoding: num_features must be an integer in 1..{MAX_FEATURES}, "
                               f"got {self.num_features!r}")
        bad = np.flatnonzero((self.feature < 0) | (self.feature >= self.num_features))
        if bad.size:
            i = int(bad[0])
            raise NetlistError(
                f"encoding: input bit {i} reads feature {int(self.feature[i])}, "
                f"outside 0..{self.num_features - 1}"
            )
        bad = np.flatnonzero(~np.isfinite(self.threshold))
        if bad.size:
            raise NetlistError(f"encoding: input bit {int(bad[0])} has a non-finite threshold")

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Return the input bits ``(N, num_inputs)`` bool of raw ``features`` ``(N, num_features)``."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise NetlistError(
                f"features have shape {features.shape}, expected (N, {self.num_features})"
            )
        return features[:, self.feature] > self.threshold

    def to_json(self) -> dict:
        return {"num_features": int(self.num_features), "dtype": self.dtype}


@dataclass(frozen=True, eq=False)
class GateSchedule:
    """The gates of a netlist grouped by logic level, then by op: one topological evaluation order.

    Every consumer that sweeps a netlist level by level (the passes, the packed executor, the C
    and Verilog back ends) reads this one object, computed once per netlist and cached as
    :attr:`Netlist.schedule`. Gates of one level read only earlier levels, so each level (and each
    ``(level, op)`` step within it) can be evaluated as one array operation.

    Attributes
    ----------
    order : ndarray of int64, shape (num_gates,)
        Gate indices (0-based, node id minus :attr:`Netlist.first_gate`) sorted by
        ``(level, op, gate index)``.
    level_starts : ndarray of int64, shape (depth + 1,)
        Level ``d`` (1..depth) holds ``order[level_starts[d - 1]:level_starts[d]]``.
    step_starts : ndarray of int64, shape (num_steps + 1,)
        Step ``i`` (one ``(level, op)`` pair) holds ``order[step_starts[i]:step_starts[i + 1]]``.
    step_level, step_op : ndarray of int64, shape (num_steps,)
        Level and op of each step, ascending by ``(level, op)``.

    Examples
    --------
    >>> net = Netlist.from_text("inputs 2\\ng4 = XOR x0 x1\\ng5 = AND x0 x1\\ng6 = OR g4 g5\\noutputs g6\\n")
    >>> [(level, op, gates.tolist()) for level, op, gates in net.schedule.steps()]
    [(1, 1, [1]), (1, 6, [0]), (2, 7, [2])]
    >>> [gates.tolist() for gates in net.schedule.levels()]
    [[1, 0], [2]]
    """

    order: np.ndarray
    level_starts: np.ndarray
    step_starts: np.ndarray
    step_level: np.ndarray
    step_op: np.ndarray

    @classmethod
    def of(cls, level: np.ndarray, op: np.ndarray) -> "GateSchedule":
        """Build the schedule of gates with logic ``level`` (>= 1) and ``op`` (0..16), vectorized.

        One stable sort of the key ``level * 17 + op`` (a radix sort when the key fits 16 bits).
        """
        level = np.asarray(level, np.int64)
        if not level.size:
            empty = np.zeros(0, np.int64)
            return cls(*(_frozen(v, np.int64) for v in (empty, [0], [0], empty, empty)))
        key = level * (LUT_OP + 1) + op
        small = key.max() < 1 << 16
        order = np.argsort(key.astype(np.uint16) if small else key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.diff(sorted_key)) + 1
        step_starts = np.r_[0, starts, level.size]
        first_key = sorted_key[step_starts[:-1]]
        step_level = first_key // (LUT_OP + 1)
        depth = int(step_level[-1])
        level_starts = np.searchsorted(level[order], np.arange(depth + 1), side="right")
        return cls(*(_frozen(v, np.int64) for v in (order, level_starts, step_starts, step_level,
                                                    first_key % (LUT_OP + 1))))

    @property
    def num_steps(self) -> int:
        return int(self.step_level.shape[0])

    def levels(self) -> list[np.ndarray]:
        """Gate indices of each level, shallowest first (views of :attr:`order`)."""
        bounds = self.level_starts.tolist()
        return [self.order[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]

    def steps(self) -> list[tuple[int, int, np.ndarray]]:
        """``(level, op, gate indices)`` of each step, in evaluation order."""
        bounds = self.step_starts.tolist()
        return [(level, op, self.order[start:stop]) for level, op, start, stop in
                zip(self.step_level.tolist(), self.step_op.tolist(), bounds[:-1], bounds[1:])]


@dataclass(frozen=True, eq=False)
class Netlist:
    """A combinational logic gate network with grouped popcount outputs.

    Construct it with arrays; it is validated and frozen at once (arrays become read-only).

    Attributes
    ----------
    num_inputs : int
        Number of input bits.
    op, a, b : ndarray, shape (num_gates,)
        Gate function (0..15) and the ids of its two operands (each smaller than the gate's id).
    outputs : ndarray, shape (num_classes * k,)
        Output node ids, class-major.
    num_classes : int
        Number of equal-sized output groups.
    tau : float
        GroupSum temperature of the trained model (scores are ``popcount / tau``).
    encoding : ThermometerEncoding or None
        How raw features map to input bits; ``None`` when the inputs are bits already.
    meta : mapping
        Small JSON-able provenance (dataset, accuracy, source checkpoint, ...); ``class_names``,
        when present, is a list of one string per class (see :attr:`class_names`).

    Examples
    --------
    >>> net = Netlist.from_text('''
    ... inputs 2
    ... g4 = XOR x0 x1
    ... outputs g4 x0 | x1 c1
    ... ''')
    >>> net.num_gates, net.num_classes
    (1, 2)
    """

    num_inputs: int
    op: np.ndarray
    a: np.ndarray
    b: np.ndarray
    outputs: np.ndarray
    num_classes: int = 1
    tau: float = 1.0
    encoding: ThermometerEncoding | None = None
    meta: Mapping = field(default_factory=dict)
    lut_fanin: np.ndarray | None = None
    lut_arity: np.ndarray | None = None
    lut_table: np.ndarray | None = None
    offsets: np.ndarray | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        for name, kind in (("num_inputs", int), ("num_classes", int), ("tau", float)):
            try:
                set_(self, name, kind(getattr(self, name)))
            except (TypeError, ValueError, OverflowError) as exc:
                raise NetlistError(f"{name} must be a number, got {getattr(self, name)!r} ({exc})") from None
        try:
            set_(self, "op", self._ops(self.op))
            for name in ("a", "b", "outputs"):
                set_(self, name, _frozen(getattr(self, name), NODE_DTYPE))
            fanin = self.lut_fanin
            set_(self, "lut_fanin", _frozen(np.zeros((0, MAX_LUT_INPUTS)) if fanin is None
                                            else fanin, NODE_DTYPE))
            arity = self.lut_arity
            if arity is not None and np.asarray(arity).size and (
                    np.min(arity) < 0 or np.max(arity) > 255):
                raw = np.asarray(arity)
                first_bad = int(np.flatnonzero((raw < 0) | (raw > 255))[0])
                raise NetlistError(f"LUT {first_bad}: arity {raw[first_bad]} outside 1..6")
            set_(self, "lut_arity", _frozen(() if arity is None else arity, np.uint8))
            table = self.lut_table
            if table is not None and np.asarray(table).size and np.min(table) < 0:
                raise NetlistError(f"LUT {int(np.flatnonzero(np.asarray(table) < 0)[0])}: "
                                   "negative truth-table word")
            set_(self, "lut_table", _frozen(() if table is None else table, np.uint64))
            offsets = self.offsets
            set_(self, "offsets", _frozen(np.zeros(max(self.num_classes, 0)) if offsets is None
                                          else offsets, np.int64))
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, NetlistError):
                raise
            raise NetlistError(f"op, a, b and outputs must be arrays of integers ({exc})") from None
        try:
            meta = json.loads(json.dumps(dict(self.meta)))
        except (TypeError, ValueError, RecursionError) as exc:
            raise NetlistError(f"meta must be JSON-able: {exc}") from None
        set_(self, "meta", meta)
        self.validate()

    @staticmethod
    def _ops(op) -> np.ndarray:
        raw = np.asarray(op)
        if raw.size == 0:
            return _frozen(raw.reshape(raw.shape), np.uint8)
        flat = raw.ravel()
        if flat.dtype.kind in "iu":  # the common case: a range check, no set membership
            bad = np.flatnonzero((flat < 0) | (flat > NUM_GATES))
        else:
            bad = np.flatnonzero(~np.isin(flat, np.arange(NUM_GATES + 1)))
        if bad.size:
            raise NetlistError(f"gate {int(bad[0])}: op {raw.ravel()[bad[0]].item()!r} is not a "
                               "gate number 0..15 or 16 (LUT)")
        return _frozen(raw, np.uint8)

    # ------------------------------------------------------------------ shape
    @property
    def num_gates(self) -> int:
        return int(self.op.shape[0])

    @property
    def first_gate(self) -> int:
        """Node id of gate 0."""
        return 2 + self.num_inputs

    @property
    def num_nodes(self) -> int:
        return self.first_gate + self.num_gates

    @property
    def class_names(self) -> tuple[str, ...]:
        """Name of each class: ``meta["class_names"]`` (the dataset's labels), else ``"0"``, ``"1"``, ..."""
        names = self.meta.get("class_names")
        return tuple(names) if names is not None else tuple(str(c) for c in range(self.num_classes))

    @property
    def outputs_per_class(self) -> int:
        return self.outputs.shape[0] // self.num_classes

    @property
    def groups(self) -> np.ndarray:
        """Output node ids as ``(num_classes, outputs_per_class)``."""
        return self.outputs.reshape(self.num_classes, self.outputs_per_class)

    @cached_property
    def level(self) -> np.ndarray:
        """Logic depth of each gate: 1 + the deepest operand's (constants and inputs are 0).

        Whole-array relaxation: each round sets every gate to 1 + the max of its operands'
        levels, and after ``r`` rounds every gate of depth <= ``r`` is final, so a netlist of
        depth ``D`` takes ``D + 1`` rounds of O(gates) array work. A netlist deeper than
        :data:`_VECTOR_ROUNDS` rounds (a long chain) finishes with the per-gate loop.
        """
        if not self.num_gates:
            return _frozen(np.zeros(0), np.int64)
        first = self.first_gate
        operands = [self.a, self.b]
        if self.num_luts:
            fanin = np.repeat(self.b[:, None], MAX_LUT_INPUTS, axis=1)
            fanin[:, 0] = self.a
            fanin[self.lut_gates] = self.lut_fanin  # unused columns read node 0 (level 0)
            operands = list(fanin.T)
        # Levels stay below _VECTOR_ROUNDS + 2 here: 16 bits hold them, and small values gather fast.
        node_level = np.zeros(self.num_nodes, np.uint16)
        for _ in range(_VECTOR_ROUNDS):
            deepest = node_level[operands[0]]
            for column in operands[1:]:
                np.maximum(deepest, node_level[column], out=deepest)
            deepest += 1
            if np.array_equal(deepest, node_level[first:]):
                return _frozen(deepest, np.int64)
            node_level[first:] = deepest
        return self._level_by_loop()

    def _cache_level(self, level: np.ndarray) -> None:
        """Cache ``level`` as :attr:`level`: for a pass that computed its result's levels as it
        rewrote the gates (the tests check such levels against the definition)."""
        self.__dict__["level"] = _frozen(level, np.int64)

    @cached_property
    def schedule(self) -> GateSchedule:
        """The gates grouped by level, then op (:class:`GateSchedule`); computed once, cached."""
        return GateSchedule.of(self.level, self.op)

    def _level_by_loop(self) -> np.ndarray:
        """:attr:`level` by one pass over the gates in order (the definition; slow in Python)."""
        node_level = [0] * self.num_nodes
        first = self.first_gate
        operands = zip(self.a.tolist(), self.b.tolist())
        if not self.num_luts:
            for g, (x, y) in enumerate(operands):
                node_level[first + g] = 1 + max(node_level[x], node_level[y])
        else:
            fanins = self.fanins()
            for g, pair in enumerate(operands):
                node_level[first + g] = 1 + max(node_level[v] for v in fanins.get(g, pair))
        return _frozen(node_level[first:], np.int64)

    @property
    def num_luts(self) -> int:
        """Number of k-input LUT nodes (gates with ``op == LUT_OP``)."""
        return int(self.lut_arity.shape[0])

    @cached_property
    def lut_gates(self) -> np.ndarray:
        """Gate index of each LUT row, ``(num_luts,)`` int64 (ascending)."""
        return _frozen(np.flatnonzero(self.op == LUT_OP), np.int64)

    def fanins(self) -> dict[int, tuple[int, ...]]:
        """Fan-in node ids of each LUT node, keyed by gate index."""
        return {int(g): tuple(int(v) for v in row[:k]) for g, row, k in
                zip(self.lut_gates, self.lut_fanin, self.lut_arity)}

    @property
    def depth(self) -> int:
        """Number of logic levels (0 for a netlist without gates)."""
        return int(self.level.max()) if self.num_gates else 0

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise :class:`NetlistError` naming the first malformed entry; return ``None`` if valid."""
        if not 0 <= self.num_inputs <= MAX_INPUTS:
            raise NetlistError(f"num_inputs must be in 0..{MAX_INPUTS}, got {self.num_inputs}")
        if self.num_classes < 1:
            raise NetlistError(f"num_classes must be >= 1, got {self.num_classes}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise NetlistError(f"tau must be a positive finite number, got {self.tau}")
        for name in ("op", "a", "b", "outputs"):
            if getattr(self, name).ndim != 1:
                raise NetlistError(f"{name} must be 1-d, got shape {getattr(self, name).shape}")
        if not (self.op.shape == self.a.shape == self.b.shape):
            raise NetlistError(
                f"op, a, b must have one entry per gate, got lengths "
                f"{self.op.shape[0]}, {self.a.shape[0]}, {self.b.shape[0]}"
            )
        self._validate_luts()
        names = self.meta.get("class_names")
        if names is not None and not (isinstance(names, list) and len(names) == self.num_classes
                                      and all(isinstance(n, str) for n in names)):
            raise NetlistError(f"meta: class_names must be a list of {self.num_classes} strings (one per "
                               f"class), got {str(names)[:80]}")
        if self.offsets.shape != (self.num_classes,):
            raise NetlistError(f"offsets must have one integer per class ({self.num_classes}), "
                               f"got shape {self.offsets.shape}")
        if self.outputs.shape[0] == 0:
            raise NetlistError("netlist has no outputs")
        if self.outputs.shape[0] % self.num_classes:
            raise NetlistError(
                f"{self.outputs.shape[0]} outputs cannot form {self.num_classes} groups of equal size"
            )
        ids = self.first_gate + np.arange(self.num_gates, dtype=NODE_DTYPE)
        for name in ("a", "b"):
            operand = getattr(self, name)
            if not operand.size or (operand.min() >= 0 and (operand < ids).all()):
                continue
            bad = np.flatnonzero((operand < 0) | (operand >= ids))
            if bad.size:
                g = int(bad[0])
                ref = int(operand[g])
                if ref < 0 or ref >= self.num_nodes:
                    why = f"which does not exist (nodes are 0..{self.num_nodes - 1})"
                else:
                    why = "which is not earlier: " + (
                        "the gates form a cycle" if self._has_cycle() else "forward reference"
                    )
                raise NetlistError(f"gate {g} (node {int(ids[g])}): input {name} = {ref}, {why}")
        bad = np.flatnonzero((self.outputs < 0) | (self.outputs >= self.num_nodes))
        if bad.size:
            i = int(bad[0])
            raise NetlistError(
                f"output {i} = node {int(self.outputs[i])}, which does not exist "
                f"(nodes are 0..{self.num_nodes - 1})"
            )
        if self.encoding is not None and self.encoding.feature.shape[0] != self.num_inputs:
            raise NetlistError(
                f"encoding has {self.encoding.feature.shape[0]} input bits, netlist has {self.num_inputs}"
            )

    def _validate_luts(self) -> None:
        """Check the LUT section: one row per LUT gate, k in 1..6, earlier fan-ins, table width."""
        num = int(np.count_nonzero(self.op == LUT_OP))
        if self.lut_fanin.ndim != 2 or self.lut_fanin.shape[1] != MAX_LUT_INPUTS:
            raise NetlistError(f"lut_fanin must have shape (L, {MAX_LUT_INPUTS}), "
                               f"got {self.lut_fanin.shape}")
        if not (num == self.lut_fanin.shape[0] == self.lut_arity.shape[0] == self.lut_table.shape[0]):
            raise NetlistError(
                f"{num} gates are LUTs (op 16) but the LUT section has {self.lut_fanin.shape[0]} "
                f"fan-in rows, {self.lut_arity.shape[0]} arities, {self.lut_table.shape[0]} tables")
        if not num:
            return
        gates_ = np.flatnonzero(self.op == LUT_OP)
        ids = self.first_gate + gates_
        arity = self.lut_arity.astype(np.int64)
        bad_k = (arity < 1) | (arity > MAX_LUT_INPUTS)
        used = np.arange(MAX_LUT_INPUTS)[None, :] < arity[:, None]
        bad_in = (used & ((self.lut_fanin < 0) | (self.lut_fanin >= ids[:, None]))).any(axis=1)
        bad_in |= (~used & (self.lut_fanin != 0)).any(axis=1)
        width = np.left_shift(np.uint64(1), np.minimum(arity, 6).astype(np.uint64))
        high = np.where(arity >= 6, np.uint64(0), self.lut_table >> np.where(arity >= 6, 0, width)
                        .astype(np.uint64))
        bad_t = (high != 0) & ~bad_k
        last = np.maximum(arity - 1, 0)
        rows = np.arange(num)
        bad_ab = ((self.a[gates_] != self.lut_fanin[:, 0])
                  | (self.b[gates_] != self.lut_fanin[rows, last]))
        bad = np.flatnonzero(bad_k | bad_in | bad_t | bad_ab)
        if not bad.size:
            return
        r = int(bad[0])
        where = f"LUT {r} (gate {int(gates_[r])}, node {int(ids[r])})"
        if bad_k[r]:
            raise NetlistError(f"{where}: k = {int(arity[r])} fan-ins, outside 1..{MAX_LUT_INPUTS}")
        if bad_in[r]:
            row = self.lut_fanin[r].tolist()
            raise NetlistError(f"{where}: fan-ins {row[:int(arity[r])]} must be earlier nodes "
                               f"(0..{int(ids[r]) - 1}), unused columns 0; got {row}")
        if bad_t[r]:
            raise NetlistError(f"{where}: truth table {int(self.lut_table[r]):#x} has bits beyond "
                               f"the 2^{int(arity[r])} rows of a {int(arity[r])}-input LUT")
        raise NetlistError(f"{where}: a and b must be its first and last fan-in")

    def _has_cycle(self) -> bool:
        """Whether the gate graph, read without the ordering rule, has a cycle (Kahn's algorithm)."""
        first, n = self.first_gate, self.num_gates
        ok = lambda v: first <= v < first + n  # noqa: E731
        indegree = [0] * n
        readers: list[list[int]] = [[] for _ in range(n)]
        for g in range(n):
            for src in {int(self.a[g]), int(self.b[g])}:
                if ok(src):
                    indegree[g] += 1
                    readers[src - first].append(g)
        ready = [g for g in range(n) if indegree[g] == 0]
        seen = 0
        while ready:
            g = ready.pop()
            seen += 1
            for r in readers[g]:
                indegree[r] -= 1
                if indegree[r] == 0:
                    ready.append(r)
        return seen < n

    # ------------------------------------------------------------- utilities
    def replace(self, **changes) -> "Netlist":
        """Return a new netlist with ``changes`` applied (validated again).

        Changing ``num_classes`` without giving ``offsets`` keeps all-zero offsets (resized);
        nonzero offsets must then be given for the new classes.
        """
        if "num_classes" in changes and "offsets" not in changes and not self.offsets.any():
            changes["offsets"] = None
        return dataclasses.replace(self, **changes)

    def gate_counts(self) -> dict[str, int]:
        """Number of gates per gate name, for the names that occur."""
        counts = np.bincount(self.op, minlength=NUM_GATES + 1)
        names = GATE_NAMES + ("LUT",)
        return {names[i]: int(c) for i, c in enumerate(counts) if c}

    def node_name(self, node: int) -> str:
        if node < 2:
            return f"c{node}"
        if node < self.first_gate:
            return f"x{node - 2}"
        return f"g{node}"

    # ------------------------------------------------------------- identity
    @cached_property
    def sha256(self) -> str:
        """SHA-256 (hex) of the model: every field that defines what the netlist computes.

        It covers ``num_inputs``, ``num_classes``, ``tau``, the gates (``op``, ``a``, ``b``), the
        ``outputs`` and the encoding (feature count and type, the feature and threshold of every
        input bit), serialized canonically: a JSON line of the scalars (``tau`` as a hex float), then
        each array as ``name dtype length`` and its little-endian bytes. ``meta`` (provenance: the
        dataset, the source file) is not part of the model, so the same circuit has the same hash
        whichever file it was read from. Model files store :attr:`content_sha256` to detect damage.
        """
        enc = self.encoding
        scalars = {"num_inputs": self.num_inputs, "num_classes": self.num_classes,
                   "tau": self.tau.hex(), "encoding": None if enc is None else enc.to_json()}
        arrays = [("op", self.op, "<u1"), ("a", self.a, "<i8"), ("b", self.b, "<i8"),
                  ("outputs", self.outputs, "<i8")]
        if self.num_luts:  # absent when empty, so gate-only netlists keep their old hashes
            arrays += [("lut_fanin", self.lut_fanin.ravel(), "<i8"),
                       ("lut_arity", self.lut_arity, "<u1"), ("lut_table", self.lut_table, "<u8")]
        if self.offsets.any():
            arrays += [("offsets", self.offsets, "<i8")]
        if enc is not None:
            arrays += [("feature", enc.feature, "<i8"), ("threshold", enc.threshold, "<f8")]
        digest = hashlib.sha256(b"lgn-netlist\n" + _canonical_json(scalars).encode("ascii") + b"\n")
        for name, array, dtype in arrays:
            data = np.ascontiguousarray(array, dtype=dtype)
            digest.update(f"{name} {dtype} {data.shape[0]}\n".encode("ascii"))
            digest.update(data)
        return digest.hexdigest()

    @cached_property
    def content_sha256(self) -> str:
        """SHA-256 (hex) of the model (:attr:`sha256`) and its ``meta``: the checksum model files store.

        Two netlists are equal (``==``) exactly when their content hashes are.
        """
        payload = f"lgn-netlist-content\n{self.sha256}\n{_canonical_json(self.meta)}\n"
        return hashlib.sha256(payload.encode("ascii")).hexdigest()

    def __eq__(self, other) -> bool:
        if not isinstance(other, Netlist):
            return NotImplemented
        return self is other or self.content_sha256 == other.content_sha256

    def __hash__(self) -> int:
        return hash(self.content_sha256)

    # ------------------------------------------------------------- text form
    def to_text(self, checksum: bool = False) -> str:
        """Return the text form, which :meth:`from_text` reads back to an equal netlist.

        One item per line: ``inputs N``; ``tau T`` (unless 1); with an encoding ``features F
        DTYPE`` and one ``x<i> = f<j> > THRESHOLD`` line per input bit; ``meta {JSON}`` (unless
        empty); ``offsets O0 O1 ...`` (unless all 0); one ``g<id> = OP A B`` line per gate or
        ``g<id> = LUT<k> 0xTABLE F0 .. F<k-1>`` per LUT node; ``outputs ...``, classes separated by ``|``.
        Floats are written with ``repr``, which reads back exactly. ``checksum=True`` appends a
        last line ``checksum sha256:HEX`` of :attr:`content_sha256` (what model files carry).
        """
        lines = [f"inputs {self.num_inputs}"]
        if self.tau != 1.0:
            lines.append(f"tau {self.tau!r}")
        enc = self.encoding
        if enc is not None:
            lines.append(f"features {enc.num_features} {enc.dtype}")
            pairs = zip(enc.feature.tolist(), enc.threshold.tolist())
            lines += [f"x{i} = f{f} > {t!r}" for i, (f, t) in enumerate(pairs)]
        if self.meta:
            lines.append(f"meta {_canonical_json(self.meta)}")
        if self.offsets.any():
            lines.append("offsets " + " ".join(str(int(v)) for v in self.offsets))
        fanins = self.fanins()
        tables = dict(zip(self.lut_gates.tolist(), self.lut_table.tolist()))
        for g in range(self.num_gates):
            node = self.first_gate + g
            if g in fanins:
                names = " ".join(self.node_name(v) for v in fanins[g])
                lines.append(f"{self.node_name(node)} = LUT{len(fanins[g])} "
                             f"{tables[g]:#x} {names}")
                continue
            lines.append(
                f"{self.node_name(node)} = {GATE_NAMES[self.op[g]]} "
                f"{self.node_name(int(self.a[g]))} {self.node_name(int(self.b[g]))}"
            )
        groups = (" ".join(self.node_name(int(n)) for n in grp) for grp in self.groups)
        lines.append("outputs " + " | ".join(groups))
        if checksum:
            lines.append(f"checksum sha256:{self.content_sha256}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, **kwargs) -> "Netlist":
        """Parse the text form of :meth:`to_text`; gate names (``g7``) must equal their node ids.

        A ``checksum`` line, when present, must match what was read. ``kwargs`` then replace
        fields (e.g. ``meta=...``). Raises :class:`NetlistError` naming the line at fault.
        """
        netlist, _ = parse_text(text)
        return netlist.replace(**kwargs) if kwargs else netlist

    def __repr__(self) -> str:
        return (
            f"Netlist(inputs={self.num_inputs}, gates={self.num_gates}, depth={self.depth}, "
            f"classes={self.num_classes}, outputs_per_class={self.outputs_per_class})"
        )


def _canonical_json(value) -> str:
    """One-line JSON with sorted keys and ASCII escapes: the same text for equal values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


_COUNT = re.compile(r"[0-9]{1,18}")
_NODE = re.compile(r"([cxg])([0-9]{1,18})")
_CHECKSUM = re.compile(r"sha256:([0-9a-f]{64})")


def parse_text(text: str) -> tuple[Netlist, str | None]:
    """Read the text form of :meth:`Netlist.to_text`: ``(netlist, checksum)``.

    ``checksum`` is the hex SHA-256 of a ``checksum`` line, verified against the netlist read
    (a mismatch raises :class:`NetlistError`), or ``None`` when the text has no such line.
    """
    return _TextReader().read(text)


class _TextReader:
    """State of one :func:`parse_text` call; every problem is a NetlistError naming its line."""

    def __init__(self):
        self.num_inputs = None
        self.tau = None
        self.features = None  # (num_features, dtype)
        self.bits = ([], [])  # feature and threshold of each input bit
        self.meta = None
        self.gates = ([], [], [])  # op, a, b
        self.luts = ([], [], [])  # fan-ins (padded), arity, table
        self.offsets = None
        self.groups = None
        self.checksum = None
        self.lineno = 0

    def fail(self, problem: str):
        return NetlistError(f"line {self.lineno}: {problem}")

    def read(self, text: str) -> tuple[Netlist, str | None]:
        for self.lineno, raw in enumerate(text.splitlines(), 1):
            keyword, _, rest = raw.strip().partition(" ")
            if self.checksum is not None and raw.split("#")[0].strip():
                raise self.fail("nothing may follow the checksum line")
            if keyword in ("meta", "checksum"):  # the rest of the line is data, '#' included
                parse = self.parse_meta if keyword == "meta" else self.parse_checksum
                self.set_once(keyword, parse(rest))
                continue
            words = raw.split("#")[0].split()
            if words:
                self.line(words, raw.strip())
        self.lineno = 0
        netlist = self.build()
        if self.checksum is not None and self.checksum != netlist.content_sha256:
            raise NetlistError("checksum mismatch, the file is damaged")
        return netlist, self.checksum

    def set_once(self, name: str, value, keyword: str | None = None) -> None:
        if getattr(self, name) is not None:
            raise self.fail(f"a second {keyword or name!r} line")
        setattr(self, name, value)

    def line(self, words: list[str], raw: str) -> None:
        head = words[0]
        if head == "inputs" and len(words) == 2:
            self.set_once("num_inputs", self.count(words[1], "input count", MAX_INPUTS), "inputs")
        elif head == "tau" and len(words) == 2:
            self.set_once("tau", self.number(words[1], "tau"))
        elif head == "features" and len(words) == 3:
            if self.num_inputs is None:
                raise self.fail("'inputs N' must come before 'features'")
            self.set_once("features", (self.count(words[1], "feature count", MAX_FEATURES), words[2]))
        elif head == "outputs":
            groups = [group.split() for group in " ".join(words[1:]).split("|")]
            if not all(groups):
                raise self.fail("an output group is empty (classes are separated by '|')")
            self.set_once("groups", [[self.node(token) for token in group] for group in groups], "outputs")
        elif head == "offsets":
            self.set_once("offsets", [self.integer(w, "offset") for w in words[1:]])
        elif len(words) >= 5 and words[1] == "=" and re.fullmatch(r"LUT[0-9]", words[2]):
            self.lut(words)
        elif len(words) == 5 and words[1] == "=" and words[3] == ">":
            self.input_bit(words)
        elif len(words) == 5 and words[1] == "=":
            self.gate(words)
        else:
            raise self.fail(f"cannot parse {raw[:80]!r}")

    def count(self, token: str, what: str, limit: int) -> int:
        if not _COUNT.fullmatch(token) or int(token) > limit:
            raise self.fail(f"bad {what} {token[:40]!r} (expected an integer in 0..{limit})")
        return int(token)

    def number(self, token: str, what: str) -> float:
        try:
            return float(token)
        except ValueError:
            raise self.fail(f"bad {what} {token[:40]!r} (expected a number)") from None

    def node(self, token: str) -> int:
        match = _NODE.fullmatch(token)
        if self.num_inputs is None:
            raise self.fail("'inputs N' must come before the gates and outputs")
        if match:
            kind, index = match[1], int(match[2])
            if kind == "c" and index < 2:
                return index
            if kind == "x" and index < self.num_inputs:
                return 2 + index
            if kind == "g" and index >= 2 + self.num_inputs:
                return index
        raise self.fail(f"bad node name {token[:40]!r} (c0, c1, x0..x{self.num_inputs - 1} or "
                        f"g{2 + self.num_inputs}...)")

    def integer(self, token: str, what: str) -> int:
        if not re.fullmatch(r"-?[0-9]{1,18}", token):
            raise self.fail(f"bad {what} {token[:40]!r} (expected an integer)")
        return int(token)

    def lut(self, words: list[str]) -> None:
        ops, a, b = self.gates
        fanin, arity, table = self.luts
        if self.num_inputs is None:
            raise self.fail("'inputs N' must come before the gates")
        k = int(words[2][3:])
        if not 1 <= k <= MAX_LUT_INPUTS:
            raise self.fail(f"{words[2]}: k = {k} fan-ins, outside 1..{MAX_LUT_INPUTS}")
        if len(words) != 4 + k:
            raise self.fail(f"{words[2]} needs a table and {k} fan-ins, got {len(words) - 4}")
        expected = 2 + self.num_inputs + len(ops)
        if words[0] != f"g{expected}":
            raise self.fail(f"gate {words[0][:40]} should be named g{expected}")
        if not re.fullmatch(r"0x[0-9a-fA-F]{1,16}", words[3]):
            raise self.fail(f"bad truth table {words[3][:40]!r} (expected 0x and 1..16 hex digits)")
        nodes = [self.node(token) for token in words[4:]]
        ops.append(LUT_OP)
        a.append(nodes[0])
        b.append(nodes[-1])
        fanin.append(nodes + [0] * (MAX_LUT_INPUTS - k))
        arity.append(k)
        table.append(int(words[3], 16))

    def input_bit(self, words: list[str]) -> None:
        feature, threshold = self.bits
        if self.features is None:
            raise self.fail("input bit lines need a 'features F DTYPE' line before them")
        if words[0] != f"x{len(feature)}":
            raise self.fail(f"input bit {words[0][:40]!r} should be x{len(feature)} (bits in order)")
        if len(feature) == self.num_inputs:
            raise self.fail(f"more input bit lines than the {self.num_inputs} inputs")
        if not words[2].startswith("f"):
            raise self.fail(f"bad feature {words[2][:40]!r} (expected f<index>)")
        feature.append(self.count(words[2][1:], "feature index", MAX_FEATURES))
        threshold.append(self.number(words[4], "threshold"))

    def gate(self, words: list[str]) -> None:
        ops, a, b = self.gates
        if self.num_inputs is None:
            raise self.fail("'inputs N' must come before the gates")
        if words[2] not in _GATE_NUMBERS:
            raise self.fail(f"unknown gate {words[2][:40]!r}")
        expected = 2 + self.num_inputs + len(ops)
        if words[0] != f"g{expected}":
            raise self.fail(f"gate {words[0][:40]} should be named g{expected}")
        ops.append(_GATE_NUMBERS[words[2]])
        a.append(self.node(words[3]))
        b.append(self.node(words[4]))

    def parse_meta(self, rest: str) -> dict:
        if len(rest) > MAX_META_BYTES:
            raise self.fail(f"meta is longer than {MAX_META_BYTES} characters")
        try:
            meta = json.loads(rest)
        except (ValueError, RecursionError) as exc:
            raise self.fail(f"meta is not JSON ({str(exc)[:80]})") from None
        if not isinstance(meta, dict):
            raise self.fail("meta must be a JSON object")
        return meta

    def parse_checksum(self, rest: str) -> str:
        match = _CHECKSUM.fullmatch(rest.strip())
        if not match:
            raise self.fail("bad checksum line (expected 'checksum sha256:<64 hex digits>')")
        return match[1]

    def build(self) -> Netlist:
        if self.num_inputs is None or self.groups is None:
            raise NetlistError("text netlist needs an 'inputs N' and an 'outputs ...' line")
        if len({len(group) for group in self.groups}) != 1:
            raise NetlistError("output groups must have equal sizes")
        encoding = None
        if self.features is not None:
            feature, threshold = self.bits
            if len(feature) != self.num_inputs:
                raise NetlistError(f"{len(feature)} input bit lines for {self.num_inputs} inputs")
            num_features, dtype = self.features
            encoding = ThermometerEncoding(num_features, np.array(feature, np.int64),
                                           np.array(threshold, np.float64), dtype)
        ops, a, b = self.gates
        fanin, arity, table = self.luts
        return Netlist(
            lut_fanin=np.array(fanin, NODE_DTYPE).reshape(-1, MAX_LUT_INPUTS),
            lut_arity=np.array(arity, np.uint8), lut_table=np.array(table, np.uint64),
            offsets=None if self.offsets is None else np.array(self.offsets, np.int64),
            num_inputs=self.num_inputs, op=np.array(ops, dtype=np.uint8),
            a=np.array(a, dtype=NODE_DTYPE), b=np.array(b, dtype=NODE_DTYPE),
            outputs=np.array([n for group in self.groups for n in group], dtype=NODE_DTYPE),
            num_classes=len(self.groups), tau=1.0 if self.tau is None else self.tau,
            encoding=encoding, meta=self.meta or {},
        )


_GATE_NUMBERS = {name: i for i, name in enumerate(GATE_NAMES)}
