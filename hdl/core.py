"""The gate core: a netlist as one Amaranth component, built level by level in wide chunks.

Gates are grouped by (logic level, op); each group becomes one wide bitwise assignment over a
``Cat`` of operand bits, at most :data:`CHUNK_BITS` bits at a time, so elaboration costs a few
Python objects per gate instead of a statement per gate. Pass-through gates (A, B) and constant
gates (FALSE, TRUE) become wires, not logic. A k-input LUT node is one table lookup, its
``2**k``-bit truth table indexed by the concatenation of its fan-ins (fan-in ``j`` is bit ``j``
of the index), which Yosys/ABC map to one LUT-k.
"""

from __future__ import annotations

import functools

import numpy as np
from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lgn.compile.netlist import LUT_OP, Netlist
from lgn.compile import gates

from .errors import HDLError

__all__ = ["NetlistCore", "PipelinedComponent", "register_after", "CHUNK_BITS", "checked_init",
           "constant_nodes"]

#: Widest single assignment the core emits (bits); bounds the size of one ``Cat``.
CHUNK_BITS = 1024

# The ops that need logic (constants and pass-throughs become wires), as bitwise expressions.
_EXPR = {op: fn for op, fn in gates.BITWISE.items() if op not in (gates.FALSE, gates.TRUE, gates.A, gates.B)}
_USES_A = gates.READS_A & set(_EXPR)
_USES_B = gates.READS_B & set(_EXPR)


def checked_init(init):
    """Wrap a component's ``__init__`` so that bad arguments raise without an Amaranth warning.

    Amaranth warns about every elaboratable that is created and never elaborated, including one
    whose constructor raised; such an object was never usable, so it is silenced.
    """
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except Exception:
            self._MustUse__silence = True
            raise

    return wrapper


def constant_nodes(netlist: Netlist) -> np.ndarray:
    """Return the value of every node that is constant, ``(num_nodes,)`` int8: 0 or 1, or -1 for
    a node that depends on the inputs. Found level by level: nodes 0 and 1, then a gate or LUT
    whose value is the same for every value of its fan-ins that are not constant (FALSE, TRUE,
    an AND with a constant-0 input, a LUT with an all-0 table, wires of constants...)."""
    value = np.full(netlist.num_nodes, -1, dtype=np.int8)
    value[:2] = (0, 1)
    if not netlist.num_gates:
        return value
    first = netlist.first_gate
    table = np.asarray(gates.TRUTH_TABLE, dtype=np.int8)  # (op, 2 * a + b)
    level = np.asarray(netlist.level)
    order = np.argsort(level, kind="stable")
    bounds = np.flatnonzero(np.diff(level[order])) + 1
    row = np.full(netlist.num_gates, -1, dtype=np.int64)
    row[netlist.lut_gates] = np.arange(netlist.num_luts)
    for group in np.split(order, bounds):
        two = group[netlist.op[group] != LUT_OP]
        op, va, vb = netlist.op[two], value[netlist.a[two]], value[netlist.b[two]]
        a0, a1 = np.where(va < 0, 0, va), np.where(va < 0, 1, va)  # the values a can take
        b0, b1 = np.where(vb < 0, 0, vb), np.where(vb < 0, 1, vb)
        outs = np.stack([table[op, 2 * x + y] for x in (a0, a1) for y in (b0, b1)])
        same = (outs == outs[0]).all(axis=0)
        value[first + two[same]] = outs[0][same]
        for g in group[netlist.op[group] == LUT_OP].tolist():
            r = row[g]
            k = int(netlist.lut_arity[r])
            known = value[netlist.lut_fanin[r, :k]]
            fixed = sum(int(v) << j for j, v in enumerate(known.tolist()) if v >= 0)
            mask = sum(1 << j for j, v in enumerate(known.tolist()) if v >= 0)
            word = int(netlist.lut_table[r])
            seen = {(word >> i) & 1 for i in range(1 << k) if i & mask == fixed}
            if len(seen) == 1:
                value[first + g] = seen.pop()
    return value


def check_pipeline(pipeline) -> int:
    """Return ``pipeline`` as an int, or raise :class:`HDLError` if it is not an integer >= 0."""
    if isinstance(pipeline, bool) or not isinstance(pipeline, (int, np.integer)) or pipeline < 0:
        raise HDLError(f"pipeline must be an integer >= 0 (0 = no registers), got {pipeline!r}")
    return int(pipeline)


def register_after(stage: int, pipeline: int) -> bool:
    """Whether a register row follows logic stage ``stage`` (1-based) at pipeline depth ``pipeline``."""
    return pipeline > 0 and stage % pipeline == 0


class _Bits:
    """Where every node's value lives: ``(source index, bit)`` per node, sources a list of values."""

    def __init__(self, num_nodes: int, sources: list):
        self.sources = sources
        self.source = np.zeros(num_nodes, dtype=np.int64)
        self.bit = np.zeros(num_nodes, dtype=np.int64)

    def add(self, value, nodes: np.ndarray) -> None:
        self.source[nodes] = len(self.sources)
        self.bit[nodes] = np.arange(len(nodes))
        self.sources.append(value)

    def cat(self, nodes: np.ndarray):
        """Return ``Cat`` of the values of ``nodes``, merging runs of consecutive bits into slices."""
        src, bit = self.source[nodes], self.bit[nodes]
        breaks = np.flatnonzero((np.diff(src) != 0) | (np.diff(bit) != 1)) + 1
        starts = np.concatenate(([0], breaks)).tolist()
        ends = np.concatenate((breaks, [len(nodes)])).tolist()
        src, bit = src.tolist(), bit.tolist()
        parts = []
        for start, end in zip(starts, ends):
            value, first = self.sources[src[start]], bit[start]
            parts.append(value[first : first + end - start])
        return Cat(*parts)


class PipelinedComponent(wiring.Component):
    """A component of ``stages`` logic stages with a register row after every ``pipeline``-th
    stage, counting from ``stage_offset`` (the stages of the components before it). With any
    register it gets an ``en`` input, the clock enable of all its registers."""

    def __init__(self, members: dict, stages: int, pipeline: int, stage_offset: int):
        self.pipeline = check_pipeline(pipeline)
        self.stage_offset = int(stage_offset)
        self.cuts = [stage for stage in range(1, stages + 1)
                     if register_after(self.stage_offset + stage, self.pipeline)]
        super().__init__({**members, "en": In(1)} if self.cuts else members)

    @property
    def latency(self) -> int:
        """Register rows between the inputs and the outputs."""
        return len(self.cuts)


class NetlistCore(PipelinedComponent):
    """Evaluate a netlist's gates: input bits in, output node bits out.

    Parameters
    ----------
    netlist : Netlist
        The circuit; ``outputs`` are emitted in netlist order (class-major).
    pipeline : int
        Put a register row after every logic level ``L`` with ``(stage_offset + L) % pipeline == 0``
        (0: purely combinational). Registers hold only the values still needed later.
    stage_offset : int
        Logic stages that come before this core in the enclosing pipeline.

    Attributes
    ----------
    bits : In(num_inputs)
        Input bit ``i`` is netlist input ``x_i``.
    outputs : Out(len(netlist.outputs))
        Bit ``j`` is the value of node ``netlist.outputs[j]``.
    en : In(1)
        Clock enable of the registers (present only when the core has registers).
    latency : int
        Register rows between ``bits`` and ``outputs``.
    """

    @checked_init
    def __init__(self, netlist: Netlist, pipeline: int = 0, stage_offset: int = 0):
        self.netlist = netlist
        members = {"bits": In(netlist.num_inputs), "outputs": Out(len(netlist.outputs))}
        super().__init__(members, netlist.depth, pipeline, stage_offset)

    def outputs_at(self, positions: np.ndarray):
        """``Cat`` of the ``outputs`` bits at ``positions`` (runs of consecutive bits as slices)."""
        positions = np.asarray(positions, dtype=np.int64)
        breaks = (np.flatnonzero(np.diff(positions) != 1) + 1).tolist()
        runs = zip([0, *breaks], [*breaks, len(positions)])
        return Cat(*(self.outputs[int(positions[s])] if e - s == 1 else
                     self.outputs[int(positions[s]) : int(positions[e - 1]) + 1] for s, e in runs))

    def elaborate(self, platform):
        m = Module()
        net = self.netlist
        first = net.first_gate
        where = _Bits(net.num_nodes, [C(0, 1), C(1, 1)])
        where.source[1] = 1
        if net.num_inputs:
            where.add(self.bits, np.arange(2, first))
        level = np.asarray(net.level)
        node_level = np.concatenate(([-1, -1], np.zeros(net.num_inputs, np.int64), level))
        last_use = np.full(net.num_nodes, -1, dtype=np.int64)
        np.maximum.at(last_use, net.a, level)
        np.maximum.at(last_use, net.b, level)
        if net.num_luts:  # every fan-in, not only the first and the last (a, b)
            used = np.arange(net.lut_fanin.shape[1]) < net.lut_arity[:, None]
            np.maximum.at(last_use, net.lut_fanin[used],
                          np.repeat(level[net.lut_gates], net.lut_arity.astype(np.int64)))
        last_use[net.outputs] = net.depth + 1
        by_level: dict[int, list] = {}
        for lvl, _op, group in net.schedule.steps():
            by_level.setdefault(lvl, []).append(group)
        for lvl in range(1, net.depth + 1):
            for group in by_level.get(lvl, []):
                self._emit_group(m, where, group, lvl)
            if lvl in self.cuts:
                live = np.flatnonzero((node_level >= 0) & (node_level <= lvl) & (last_use > lvl))
                self._emit_registers(m, where, live, lvl)
        for start in range(0, len(net.outputs), CHUNK_BITS):
            nodes = net.outputs[start : start + CHUNK_BITS]
            m.d.comb += self.outputs[start : start + len(nodes)].eq(where.cat(nodes))
        return m

    def _emit_group(self, m, where: _Bits, group: np.ndarray, lvl: int) -> None:
        """Assign the gates ``group`` (one level, one op) in chunks of at most CHUNK_BITS."""
        net = self.netlist
        op = int(net.op[group[0]])
        ids = net.first_gate + group
        if op in (gates.FALSE, gates.TRUE):
            where.source[ids], where.bit[ids] = int(op == gates.TRUE), 0
            return
        if op in (gates.A, gates.B):
            src = net.a[group] if op == gates.A else net.b[group]
            where.source[ids], where.bit[ids] = where.source[src], where.bit[src]
            return
        if op == LUT_OP:
            self._emit_luts(m, where, group, lvl)
            return
        name = gates.GATE_NAMES[op].lower()
        for start in range(0, len(group), CHUNK_BITS):
            chunk = group[start : start + CHUNK_BITS]
            value = Signal(len(chunk), name=f"l{lvl}_{name}_{start // CHUNK_BITS}")
            a = where.cat(net.a[chunk]) if op in _USES_A else None
            b = where.cat(net.b[chunk]) if op in _USES_B else None
            m.d.comb += value.eq(_EXPR[op](a, b))
            where.add(value, net.first_gate + chunk)

    def _emit_luts(self, m, where: _Bits, group: np.ndarray, lvl: int) -> None:
        """Assign the LUT nodes ``group`` (one level): each one table lookup, CHUNK_BITS per signal."""
        net = self.netlist
        row = np.searchsorted(net.lut_gates, group)
        arity, table = net.lut_arity[row].tolist(), net.lut_table[row].tolist()
        for start in range(0, len(group), CHUNK_BITS):
            chunk = range(start, min(start + CHUNK_BITS, len(group)))
            value = Signal(len(chunk), name=f"l{lvl}_lut_{start // CHUNK_BITS}")
            for bit, i in enumerate(chunk):
                index = where.cat(net.lut_fanin[row[i], : arity[i]])
                m.d.comb += value[bit].eq(C(table[i], 1 << arity[i]).bit_select(index, 1))
            where.add(value, net.first_gate + group[start : start + len(chunk)])

    def _emit_registers(self, m, where: _Bits, live: np.ndarray, lvl: int) -> None:
        """Register the distinct non-constant values of the ``live`` nodes after level ``lvl``."""
        live = live[where.source[live] >= 2]
        if not live.size:
            return
        location = where.source[live] * (1 << 32) + where.bit[live]
        unique, first_node, inverse = np.unique(location, return_index=True, return_inverse=True)
        held = live[first_node]
        base = len(where.sources)
        for start in range(0, len(held), CHUNK_BITS):
            nodes = held[start : start + CHUNK_BITS]
            reg = Signal(len(nodes), name=f"pipe{lvl}_{start // CHUNK_BITS}", reset_less=True)
            with m.If(self.en):
                m.d.sync += reg.eq(where.cat(nodes))
            where.sources.append(reg)
        index = np.arange(len(held))[inverse.ravel()]
        where.source[live] = base + index // CHUNK_BITS
        where.bit[live] = index % CHUNK_BITS
