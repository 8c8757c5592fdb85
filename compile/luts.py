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

__all__ = ["decompose", "decompose_with_ids", "fold_outputs", "materialize_offsets", "require_two_input_gates", "require_no_offsets",
           "restrict", "flip", "merge", "permute", "depends", "reduce_lut", "sort_fanins",
           "gate_of_table", "FLIP_MASKS", "flip_tables"]


# ------------------------------------------------------------------------------ table algebra
# A k-input table is an int whose bit r is the value at row r, fan-in j being bit j of r. Every
# operation is a few word-wide shifts and masks (tables have at most 64 bits).
#: ``_MASKS[j]``: the bits of the rows where fan-in ``j`` is 0; ``_MASKS[6]``: the low 32 bits.
_MASKS = tuple(sum(1 << r for r in range(64) if not r >> j & 1) for j in range(6)) + ((1 << 32) - 1,)


def _compress(x: int, j: int) -> int:
    """Squeeze out the rows where fan-in ``j`` is 1 from ``x`` (whose bits there are 0)."""
    for i in range(j, 6):
        x = (x | (x >> (1 << i))) & _MASKS[i + 1]
    return x


def restrict(table: int, k: int, j: int, value: int) -> int:
    """The (k-1)-input table of ``table`` with fan-in ``j`` fixed to ``value`` (and removed)."""
    return _compress((table >> (value << j)) & _MASKS[j], j) & ((1 << (1 << (k - 1))) - 1)


def merge(table: int, k: int, i: int, j: int) -> int:
    """The (k-1)-input table of ``table`` with fan-in ``j`` reading fan-in ``i < j`` (and removed)."""
    low, high = restrict(table, k, j, 0), restrict(table, k, j, 1)
    return (low & _MASKS[i]) | (high & ~_MASKS[i] & ((1 << (1 << (k - 1))) - 1))


def flip(table: int, k: int, j: int) -> int:
    """``table`` with fan-in ``j`` negated."""
    return ((table & _MASKS[j]) << (1 << j)) | ((table >> (1 << j)) & _MASKS[j])


def _swap(table: int, p: int, q: int) -> int:
    """``table`` with fan-ins ``p < q`` exchanged (a delta swap of the rows that differ)."""
    shift, mask = (1 << q) - (1 << p), ~_MASKS[p] & _MASKS[q]
    delta = ((table >> shift) ^ table) & mask
    return table ^ delta ^ (delta << shift)


def permute(table: int, k: int, order) -> int:
    """``table`` with its fan-ins reordered: new fan-in ``p`` is old fan-in ``order[p]``."""
    at = list(range(k))  # at[p]: the old fan-in now in position p
    for p in range(k):
        q = at.index(order[p])
        if q != p:
            table = _swap(table, p, q)
            at[p], at[q] = at[q], at[p]
    return table


def depends(table: int, k: int, j: int) -> bool:
    """Whether ``table`` depends on fan-in ``j``."""
    return bool((table ^ (table >> (1 << j))) & _MASKS[j] & ((1 << (1 << k)) - 1))


def sort_fanins(table: int, fanins) -> tuple[int, list[int]]:
    """``(table, fanins)`` with repeated fan-ins merged into one and the fan-ins sorted ascending:
    the same function, written one way (what :func:`~lgn.compile.passes.hash_structure` keys on)."""
    fanins = [int(v) for v in fanins]
    for j in reversed(range(len(fanins))):
        if fanins[j] in fanins[:j]:
            table = merge(table, len(fanins), fanins.index(fanins[j]), j)
            del fanins[j]
    order = sorted(range(len(fanins)), key=fanins.__getitem__)
    return permute(table, len(fanins), order), [fanins[p] for p in order]


def reduce_lut(table: int, fanins) -> tuple[int, list[int]]:
    """``(table, fanins)`` reduced to the support of the function: constant fan-ins (nodes 0 and
    1) fixed, repeated fan-ins merged, fan-ins the table ignores dropped, the rest sorted.
    The result may have 0 fan-ins (a constant, ``table`` 0 or 1)."""
    fanins = [int(v) for v in fanins]
    for j in reversed(range(len(fanins))):
        if fanins[j] < 2:
            table = restrict(table, len(fanins), j, fanins[j])
            del fanins[j]
    table, fanins = sort_fanins(table, fanins)
    for j in reversed(range(len(fanins))):
        if not depends(table, len(fanins), j):
            table = restrict(table, len(fanins), j, 0)
            del fanins[j]
    return table, fanins


def gate_of_table(table: int) -> int:
    """The two-input gate ``op(a, b)`` of a 2-input table over fan-ins ``(a, b)`` (row ``a + 2b``)."""
    bit = lambda r: (table >> r) & 1  # noqa: E731
    return (bit(0) << 3) | (bit(2) << 2) | (bit(1) << 1) | bit(3)


#: ``FLIP_MASKS[j]``: the table bits of the rows where fan-in ``j`` is 0.
FLIP_MASKS = tuple(np.uint64(sum(1 << r for r in range(64) if not r >> j & 1)) for j in range(6))


def flip_tables(tables: np.ndarray, j: int) -> np.ndarray:
    """:func:`flip` of fan-in ``j`` on a uint64 array of tables at once (any arity above ``j``)."""
    mask, shift = FLIP_MASKS[j], np.uint64(1 << j)
    return ((tables & mask) << shift) | ((tables >> shift) & mask)


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
    return decompose_with_ids(netlist)[0]


def decompose_with_ids(netlist: Netlist) -> tuple[Netlist, np.ndarray]:
    """:func:`decompose` and the node id in the result of every node of ``netlist``."""
    if not netlist.num_luts:
        return netlist, np.arange(netlist.num_nodes, dtype=NODE_DTYPE)
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
    ), new


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


def require_no_offsets(netlist: Netlist, back_end: str) -> None:
    """Raise :class:`NetlistError` if ``netlist`` has class score offsets.

    For the formats whose scores are plain output counts (BLIF, AIGER): an offset (which may be
    negative) has no place there, so such a netlist is refused instead of written with other scores.
    """
    if netlist.offsets.any():
        raise NetlistError(f"the {back_end} back end does not compile class score offsets (its "
                           "scores are output counts): run lgn.compile.luts.materialize_offsets on "
                           "the netlist first (same argmax, every score shifted by -min(offsets))")
