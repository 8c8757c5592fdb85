"""Passes for k-input LUT nodes and score offsets: decomposition into gates, output folding.

- :func:`decompose`: every LUT-k node becomes a Shannon mux tree of two-input gates (constant and
  single-variable cofactors folded), for back ends that want two-input gates only (AIGER, C,
  the packed executor). Outputs keep their order, so scores are unchanged.
- :func:`fold_outputs`: constant outputs leave the groups and become class offsets.
- :func:`materialize_offsets`: the inverse: offsets become constant outputs, for back ends that
  only count (the argmax is unchanged; every score shifts by the same ``-min(offsets)``).
"""

from __future__ import annotations

import numpy as np

from lgn.compile import gates

from .netlist import LUT_OP, NODE_DTYPE, Netlist, NetlistError

__all__ = ["decompose", "fold_outputs", "materialize_offsets", "require_two_input_gates"]


class _Builder:
    """Appends two-input gates, memoizing each (op, a, b) so shared cofactors are built once."""

    def __init__(self, first: int):
        self.first = first
        self.op, self.a, self.b = [], [], []
        self.memo: dict[tuple[int, int, int], int] = {}

    def gate(self, op: int, a: int, b: int) -> int:
        key = (op, a, b)
        if key not in self.memo:
            self.memo[key] = self.first + len(self.op)
            self.op.append(op)
            self.a.append(a)
            self.b.append(b)
        return self.memo[key]

    def lut(self, table: int, fanin: list[int], cache: dict) -> int:
        """Node computing ``table`` over ``fanin`` (bit j of the row index is fanin[j])."""
        k = len(fanin)
        rows = 1 << k
        full = (1 << rows) - 1
        if table == 0:
            return 0
        if table == full:
            return 1
        key = (table, k)
        if key in cache:
            return cache[key]
        half = rows >> 1
        lo, hi = table & ((1 << half) - 1), table >> half  # cofactors of the last fan-in
        s = fanin[-1]
        low, high = self.lut(lo, fanin[:-1], cache), self.lut(hi, fanin[:-1], cache)
        if low == high:
            node = low
        elif (low, high) == (0, 1):
            node = s
        elif (low, high) == (1, 0):
            node = self.gate(gates.NOT_A, s, s)
        elif low == 0:
            node = self.gate(gates.AND, s, high)
        elif high == 0:
            node = self.gate(gates.NOT_A_AND_B, s, low)
        elif low == 1:
            node = self.gate(gates.A_IMPLIES_B, s, high)
        elif high == 1:
            node = self.gate(gates.OR, s, low)
        else:
            node = self.gate(gates.OR, self.gate(gates.AND, s, high),
                             self.gate(gates.NOT_A_AND_B, s, low))
        cache[key] = node
        return node


def decompose(netlist: Netlist) -> Netlist:
    """Return ``netlist`` with every LUT node replaced by two-input gates (same scores).

    Each LUT is expanded by Shannon's rule on its last fan-in, recursively; a cofactor that is a
    constant or equals another one is not built again. The argument is returned if it has no LUTs.
    """
    if not netlist.num_luts:
        return netlist
    first = netlist.first_gate
    out = _Builder(first)
    new = np.arange(netlist.num_nodes, dtype=NODE_DTYPE)  # old node id -> new node id
    fanins = netlist.fanins()
    tables = dict(zip(netlist.lut_gates.tolist(), netlist.lut_table.tolist()))
    for g, (op, a, b) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        if op == LUT_OP:
            inputs = [int(new[v]) for v in fanins[g]]
            new[first + g] = out.lut(tables[g], inputs, {})
        else:
            new[first + g] = first + len(out.op)
            out.op.append(op)
            out.a.append(int(new[a]))
            out.b.append(int(new[b]))
    return netlist.replace(
        op=np.array(out.op, np.uint8), a=np.array(out.a, NODE_DTYPE), b=np.array(out.b, NODE_DTYPE),
        outputs=new[netlist.outputs], lut_fanin=None, lut_arity=None, lut_table=None,
    )


def fold_outputs(netlist: Netlist) -> Netlist:
    """Return ``netlist`` with constant outputs folded into the class offsets (same scores).

    Each class drops its outputs that are node 0 or 1, adding the number of 1s to its offset;
    classes left shorter than the longest are padded with node 0 (which adds nothing), so the
    groups shrink by the fewest constants any class has.
    """
    groups = netlist.groups
    constant = groups < 2
    if not constant.any():
        return netlist
    offsets = netlist.offsets + (groups == 1).sum(axis=1)
    kept = [row[row >= 2] for row in groups]
    width = max(max(len(row) for row in kept), 1)
    padded = np.zeros((netlist.num_classes, width), NODE_DTYPE)
    for c, row in enumerate(kept):
        padded[c, : len(row)] = row
    if width == groups.shape[1]:
        return netlist
    return netlist.replace(outputs=padded.ravel(), offsets=offsets)


def materialize_offsets(netlist: Netlist) -> Netlist:
    """Return an offset-free netlist with the same argmax: offsets become constant outputs.

    Class ``c`` gains ``offsets[c] - min(offsets)`` outputs on node 1 and pads with node 0 to
    the common width, so every score shifts by ``-min(offsets)`` and the ranking is kept.
    """
    if not netlist.offsets.any():
        return netlist
    extra = netlist.offsets - netlist.offsets.min()
    width = int(extra.max())
    ones = np.arange(width)[None, :] < extra[:, None]
    outputs = np.concatenate([netlist.groups, ones.astype(NODE_DTYPE)], axis=1)
    return netlist.replace(outputs=outputs.ravel(), offsets=None)


def require_two_input_gates(netlist: Netlist, back_end: str) -> None:
    """Raise :class:`NetlistError` unless ``netlist`` has only two-input gates and no offsets.

    The back ends that do not yet compile LUT nodes or class offsets natively call this first,
    so such a netlist is refused in one line instead of being compiled to a different function.
    """
    if netlist.num_luts or netlist.offsets.any():
        found = "LUT nodes" if netlist.num_luts else "class score offsets"
        raise NetlistError(f"the {back_end} back end does not compile {found} yet: run "
                           "lgn.compile.luts.decompose and materialize_offsets on the netlist first")
