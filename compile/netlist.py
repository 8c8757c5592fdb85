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
:mod:`lgn.nn.gates`. ``outputs`` lists node ids class-major: class ``c`` owns
``outputs[c*k:(c+1)*k]`` with ``k = len(outputs) // num_classes``, and its score is the number of
those nodes that are 1 (divided by ``tau`` in the trained model, which does not change the argmax).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lgn.nn.gates import GATE_NAMES, NUM_GATES

__all__ = ["Netlist", "ThermometerEncoding", "NetlistError", "FEATURE_DTYPES"]

NODE_DTYPE = np.int64
#: Raw feature types a netlist's encoder may declare (the C type the firmware passes in).
FEATURE_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "float32")


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
        if not isinstance(self.num_features, (int, np.integer)) or self.num_features < 1:
            raise NetlistError(f"encoding: num_features must be a positive integer, got {self.num_features!r}")
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
        Small JSON-able provenance (dataset, accuracy, source checkpoint, ...).

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

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "num_inputs", int(self.num_inputs))
        set_(self, "num_classes", int(self.num_classes))
        set_(self, "tau", float(self.tau))
        set_(self, "op", self._ops(self.op))
        for name in ("a", "b", "outputs"):
            set_(self, name, _frozen(getattr(self, name), NODE_DTYPE))
        try:
            meta = json.loads(json.dumps(dict(self.meta)))
        except (TypeError, ValueError) as exc:
            raise NetlistError(f"meta must be JSON-able: {exc}") from None
        set_(self, "meta", meta)
        self.validate()

    @staticmethod
    def _ops(op) -> np.ndarray:
        raw = np.asarray(op)
        if raw.size == 0:
            return _frozen(raw.reshape(raw.shape), np.uint8)
        bad = np.flatnonzero(~np.isin(raw.ravel(), np.arange(NUM_GATES)))
        if bad.size:
            raise NetlistError(f"gate {int(bad[0])}: op {raw.ravel()[bad[0]].item()!r} is not a gate number 0..15")
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
    def outputs_per_class(self) -> int:
        return self.outputs.shape[0] // self.num_classes

    @property
    def groups(self) -> np.ndarray:
        """Output node ids as ``(num_classes, outputs_per_class)``."""
        return self.outputs.reshape(self.num_classes, self.outputs_per_class)

    @cached_property
    def level(self) -> np.ndarray:
        """Logic depth of each gate: 1 + the deeper operand's (constants and inputs are 0)."""
        node_level = [0] * self.num_nodes
        first = self.first_gate
        for g, (x, y) in enumerate(zip(self.a.tolist(), self.b.tolist())):
            node_level[first + g] = 1 + max(node_level[x], node_level[y])
        return _frozen(node_level[first:], np.int64)

    @property
    def depth(self) -> int:
        """Number of logic levels (0 for a netlist without gates)."""
        return int(self.level.max()) if self.num_gates else 0

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise :class:`NetlistError` naming the first malformed entry; return ``None`` if valid."""
        if self.num_inputs < 0:
            raise NetlistError(f"num_inputs must be >= 0, got {self.num_inputs}")
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
        if self.outputs.shape[0] == 0:
            raise NetlistError("netlist has no outputs")
        if self.outputs.shape[0] % self.num_classes:
            raise NetlistError(
                f"{self.outputs.shape[0]} outputs cannot form {self.num_classes} groups of equal size"
            )
        ids = self.first_gate + np.arange(self.num_gates, dtype=NODE_DTYPE)
        for name in ("a", "b"):
            operand = getattr(self, name)
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
        """Return a new netlist with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def gate_counts(self) -> dict[str, int]:
        """Number of gates per gate name, for the names that occur."""
        counts = np.bincount(self.op, minlength=NUM_GATES)
        return {GATE_NAMES[i]: int(c) for i, c in enumerate(counts) if c}

    def node_name(self, node: int) -> str:
        if node < 2:
            return f"c{node}"
        if node < self.first_gate:
            return f"x{node - 2}"
        return f"g{node}"

    def to_text(self) -> str:
        """Return the compact text form (one line per gate), readable by :meth:`from_text`."""
        lines = [f"inputs {self.num_inputs}"]
        if self.tau != 1.0:
            lines.append(f"tau {self.tau!r}")
        for g in range(self.num_gates):
            node = self.first_gate + g
            lines.append(
                f"{self.node_name(node)} = {GATE_NAMES[self.op[g]]} "
                f"{self.node_name(int(self.a[g]))} {self.node_name(int(self.b[g]))}"
            )
        groups = (" ".join(self.node_name(int(n)) for n in grp) for grp in self.groups)
        lines.append("outputs " + " | ".join(groups))
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, **kwargs) -> "Netlist":
        """Parse the text form of :meth:`to_text`; gate names (``g7``) must equal their node ids."""
        num_inputs, tau, ops, a, b, groups = None, 1.0, [], [], [], None
        names = {name: i for i, name in enumerate(GATE_NAMES)}

        def node(token: str, lineno: int) -> int:
            kind, digits = token[:1], token[1:]
            if kind not in "cxg" or not digits.isdigit():
                raise NetlistError(f"line {lineno}: bad node name {token!r}")
            return int(digits) + (2 if kind == "x" else 0)

        for lineno, raw in enumerate(text.splitlines(), 1):
            words = raw.split("#")[0].split()
            if not words:
                continue
            if words[0] == "inputs" and len(words) == 2:
                num_inputs = int(words[1])
            elif words[0] == "tau" and len(words) == 2:
                tau = float(words[1])
            elif words[0] == "outputs":
                groups = [[node(t, lineno) for t in grp.split()] for grp in " ".join(words[1:]).split("|")]
            elif len(words) == 5 and words[1] == "=":
                if num_inputs is None:
                    raise NetlistError(f"line {lineno}: 'inputs N' must come before the gates")
                if words[2] not in names:
                    raise NetlistError(f"line {lineno}: unknown gate {words[2]!r}")
                expected = 2 + num_inputs + len(ops)
                if node(words[0], lineno) != expected:
                    raise NetlistError(f"line {lineno}: gate {words[0]} should be named g{expected}")
                ops.append(names[words[2]])
                a.append(node(words[3], lineno))
                b.append(node(words[4], lineno))
            else:
                raise NetlistError(f"line {lineno}: cannot parse {raw.strip()!r}")
        if num_inputs is None or groups is None:
            raise NetlistError("text netlist needs an 'inputs N' and an 'outputs ...' line")
        if len({len(g) for g in groups}) != 1:
            raise NetlistError("output groups must have equal sizes")
        return cls(
            num_inputs=num_inputs, op=np.array(ops, dtype=np.uint8), a=a, b=b,
            outputs=[n for grp in groups for n in grp], num_classes=len(groups), tau=tau, **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"Netlist(inputs={self.num_inputs}, gates={self.num_gates}, depth={self.depth}, "
            f"classes={self.num_classes}, outputs_per_class={self.outputs_per_class})"
        )
