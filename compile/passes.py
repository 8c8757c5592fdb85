"""Function-preserving netlist passes and :func:`optimize`, which runs them to a fixed point.

Every pass is a pure ``Netlist -> Netlist`` function: the result computes the same class scores
as its argument on every input, keeps ``num_inputs``, ``num_classes``, ``tau``, ``encoding`` and
``meta``, and is returned as the argument itself when the pass finds nothing to do. The IR has no
wire node, so a gate that becomes a wire is removed and its readers (and outputs) read its source
instead; outputs may therefore end up on input bits or constants.

The passes sweep the gates level by level (all gates of one logic level at once, as numpy array
operations), in the order of the shared :attr:`Netlist.schedule`: the cost is array work
proportional to the gates plus roughly 0.1 ms of Python per logic level. A 784 -> 8 x
50,000-gate network optimizes in well under a second; only a netlist that is one very long chain
(hundreds of thousands of levels) would take a minute. LUT nodes are rewritten one at a time with
the word-wide table algebra of :mod:`lgn.compile.luts` (tens of microseconds each: 8,000 LUT-6
nodes optimize in about a second).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgn.compile import gates

from . import luts as tables
from .netlist import LUT_OP, MAX_LUT_INPUTS, NODE_DTYPE, Netlist

__all__ = ["PASSES", "OFFSET_PASSES", "optimize", "simplify", "push_negations", "hash_structure",
           "eliminate_dead", "fold_outputs"]


# --------------------------------------------------------------------------- gate algebra tables
def _table(op: int) -> tuple[int, int, int, int]:
    """Truth table ``(g(0,0), g(0,1), g(1,0), g(1,1))`` of gate ``op``."""
    return tuple(int(v) for v in gates.TRUTH_TABLE[op])


def _op(t0: int, t1: int, t2: int, t3: int) -> int:
    """Gate number of the truth table ``(g(0,0), g(0,1), g(1,0), g(1,1))``."""
    return (t0 << 3) | (t1 << 2) | (t2 << 1) | t3


def _lookup(rewrite) -> np.ndarray:
    """A ``(16,)`` uint8 table: ``rewrite(truth_table)`` for every gate, as a gate number."""
    return np.array([_op(*rewrite(*_table(op))) for op in range(gates.NUM_GATES)], dtype=np.uint8)


#: g(~a, b) and g(a, ~b): the gate that absorbs a negated operand.
_NEGATE_A = _lookup(lambda t0, t1, t2, t3: (t2, t3, t0, t1))
_NEGATE_B = _lookup(lambda t0, t1, t2, t3: (t1, t0, t3, t2))
#: g(c, b) with a fixed to the constant c, as a gate that ignores a.
_FIX_A = np.stack([_lookup(lambda t0, t1, t2, t3: (t0, t1, t0, t1)),
                   _lookup(lambda t0, t1, t2, t3: (t2, t3, t2, t3))])
#: g(a, c) with b fixed to the constant c, as a gate that ignores b.
_FIX_B = np.stack([_lookup(lambda t0, t1, t2, t3: (t0, t0, t2, t2)),
                   _lookup(lambda t0, t1, t2, t3: (t1, t1, t3, t3))])
#: g(x, x), as a gate of a that ignores b.
_SAME = _lookup(lambda t0, t1, t2, t3: (t0, t0, t3, t3))
#: A gate of b alone rewritten as the same function of a (the caller moves b into a).
_B_TO_A = _lookup(lambda t0, t1, t2, t3: (t0, t0, t1, t1) if (t0, t1) == (t2, t3) else (t0, t1, t2, t3))
#: g(b, a): the gate to use when the operands are swapped.
_SWAP = np.array([gates.swap_inputs(op) for op in range(gates.NUM_GATES)], dtype=np.uint8)
_IGNORES_B = np.array([t[0] == t[1] and t[2] == t[3] for t in map(_table, range(16))])


# ---------------------------------------------------------------------------- shared machinery
def _levels(netlist: Netlist) -> list[np.ndarray]:
    """Return the gate indices of each logic level, shallowest first (the shared schedule's)."""
    return netlist.schedule.levels()


def _id_dtype(netlist: Netlist):
    """The narrowest integer type holding every node id: sweeps gather smaller values faster."""
    return np.int32 if netlist.num_nodes < 1 << 31 else NODE_DTYPE


@dataclass(frozen=True)
class _Luts:
    """The LUT nodes of a pass's result, described in the argument's numbering: ``gate`` (old gate
    indices, ascending), ``fanin`` ``(L, 6)`` (old node ids, unused columns 0), ``arity``, ``table``."""

    gate: np.ndarray
    fanin: np.ndarray
    arity: np.ndarray
    table: np.ndarray

    @classmethod
    def of(cls, netlist: Netlist) -> "_Luts":
        return cls(netlist.lut_gates, netlist.lut_fanin, netlist.lut_arity, netlist.lut_table)

    @classmethod
    def from_rows(cls, rows: dict) -> "_Luts":
        """From ``{old gate: (table, fan-ins)}``."""
        order = sorted(rows)
        fanin = np.zeros((len(order), MAX_LUT_INPUTS), NODE_DTYPE)
        for i, g in enumerate(order):
            fanin[i, : len(rows[g][1])] = rows[g][1]
        return cls(np.array(order, np.int64), fanin,
                   np.array([len(rows[g][1]) for g in order], np.uint8),
                   np.array([rows[g][0] for g in order], np.uint64))

    def same_as(self, netlist: Netlist) -> bool:
        return (np.array_equal(self.gate, netlist.lut_gates) and np.array_equal(self.fanin, netlist.lut_fanin)
                and np.array_equal(self.arity, netlist.lut_arity)
                and np.array_equal(self.table, netlist.lut_table))


def _rebuild(netlist: Netlist, keep: np.ndarray, op, a, b, source: np.ndarray,
             level: np.ndarray | None = None, luts: _Luts | None = None) -> Netlist:
    """Return ``netlist`` with only the gates ``keep``, rewired.

    ``op, a, b`` (per gate, old node ids) give the new definition of each kept gate; ``luts`` the
    fan-ins and tables of the kept gates whose op is LUT_OP (their ``a`` and ``b`` are ignored);
    ``source`` maps every old node id to the old id of the node that replaces it (itself for kept
    nodes; a kept gate, an input or a constant otherwise). ``level`` (per old gate), when the pass
    knows it, is the logic level each kept gate has in the result: the result caches it instead of
    computing it again. The argument is returned when nothing changes.
    """
    first = netlist.first_gate
    outputs = source[netlist.outputs]
    if (keep.all() and np.array_equal(op, netlist.op) and np.array_equal(a, netlist.a)
            and np.array_equal(b, netlist.b) and np.array_equal(outputs, netlist.outputs)
            and (luts is None or luts.same_as(netlist))):
        return netlist
    kept = np.flatnonzero(keep)
    new_id = np.full(netlist.num_nodes, -1, dtype=NODE_DTYPE)
    new_id[:first] = np.arange(first)
    new_id[first + kept] = first + np.arange(kept.size)
    op, a, b = np.asarray(op)[kept], new_id[np.asarray(a)[kept]], new_id[np.asarray(b)[kept]]
    lut_section = {}
    if luts is not None:
        rows = np.flatnonzero(keep[luts.gate])
        fanin, arity = new_id[luts.fanin[rows]], luts.arity[rows]
        fanin[np.arange(MAX_LUT_INPUTS)[None, :] >= arity[:, None]] = 0
        at = new_id[first + luts.gate[rows]] - first
        a[at], b[at] = fanin[:, 0], fanin[np.arange(rows.size), arity.astype(np.int64) - 1]
        lut_section = dict(lut_fanin=fanin, lut_arity=arity, lut_table=luts.table[rows])
    result = netlist.replace(op=op, a=a, b=b, outputs=new_id[outputs], **lut_section)
    if level is not None:
        result._cache_level(level[kept])
    return result


def _split(netlist: Netlist, gate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two-input gates and the LUT nodes among ``gate`` (each ascending as given)."""
    if not netlist.num_luts:
        return gate, gate[:0]
    is_lut = netlist.op[gate] == LUT_OP
    return gate[~is_lut], gate[is_lut]


def _lut_row(netlist: Netlist) -> np.ndarray:
    """Row of each gate in the LUT section (-1 for two-input gates)."""
    row = np.full(netlist.num_gates, -1, np.int64)
    row[netlist.lut_gates] = np.arange(netlist.num_luts)
    return row


def _lut_of(netlist: Netlist, row: np.ndarray, g: int) -> tuple[int, list[int]]:
    r = int(row[g])
    return int(netlist.lut_table[r]), netlist.lut_fanin[r, : int(netlist.lut_arity[r])].tolist()


# ----------------------------------------------------------------------------------- the passes
def _simplify_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rewrite of one gate by :func:`simplify`, tabulated over everything it depends on.

    Index ``((op * 4 + state_a) * 4 + state_b) * 2 + same``: the state of an operand (after its
    wire/constant source is resolved) is 0 or 1 for a constant, 2 for a node, 3 for a NOT gate
    whose operand it now reads; ``same`` says both operands are then one node. The rewrite is the
    sequence of rules in :func:`simplify`'s docstring, applied here once per table entry: negations
    absorbed, constants folded, a repeated operand merged, an ignored operand dropped. Returns the
    new op and, for the new operands a and b, whether each reads the resolved operand b (else a).
    """
    size = gates.NUM_GATES * 4 * 4 * 2
    new_op, a_reads_b, b_reads_b = np.zeros(size, np.uint8), np.zeros(size, bool), np.zeros(size, bool)
    for index in range(size):
        op, rest = divmod(index, 32)
        state_a, state_b, same = rest // 8, rest // 2 % 4, rest % 2
        if state_a == 3:
            op = _NEGATE_A[op]
        if state_b == 3:
            op = _NEGATE_B[op]
        # Slots hold (value, origin): a constant 0/1 or a node name, and the operand it came from.
        a = (state_a if state_a < 2 else "x", "a")
        b = (state_b if state_b < 2 else ("x" if same else "y"), "b")
        if a[0] in (0, 1):
            op, a = _FIX_A[a[0], op], b
        if b[0] in (0, 1):
            op, b = _FIX_B[b[0], op], a
        if a[0] == b[0]:
            op = _SAME[op]
        if _B_TO_A[op] != op:
            op, a = _B_TO_A[op], b
        if _IGNORES_B[op]:
            b = a
        new_op[index], a_reads_b[index], b_reads_b[index] = op, a[1] == "b", b[1] == "b"
    return new_op, a_reads_b, b_reads_b


_SIMPLIFIED_OP, _A_READS_B, _B_READS_B = _simplify_table()
#: What becomes of a gate after its rewrite: its node id is replaced by (0, 1, its operand a) or kept.
_REMOVED = np.isin(np.arange(gates.NUM_GATES), (gates.FALSE, gates.TRUE, gates.A))


def simplify(netlist: Netlist) -> Netlist:
    """Propagate constants, simplify gates and absorb negations.

    Gates are rewritten as follows, in one sweep from the inputs to the outputs:

    - a gate reading a NOT gate reads the NOT's operand instead and switches to the gate with that
      operand negated (negation absorption; ``NOT(NOT x)`` becomes the wire ``x``);
    - a constant operand is folded in (``AND(x, 1) -> x``, ``XOR(x, 1) -> NOT x``);
    - a gate reading one node twice becomes a function of that node (``XOR(x, x) -> 0``);
    - a gate whose function ignores an operand becomes a constant, a wire, or a NOT.

    A LUT node gets the same rules (:func:`lgn.compile.luts.reduce_lut`): negated fan-ins are
    absorbed into its table, constant fan-ins restrict the table, repeated fan-ins merge, fan-ins
    the table ignores are dropped, and the rest are sorted. What is left with 0 fan-ins is a
    constant, with 1 a wire or a NOT, with 2 the two-input gate of that table; 3..6 stay a LUT.

    A constant or wire gate is removed and its readers read the constant or the wire's source.
    Every NOT left is written ``NOT_A x x``. Afterwards no gate reads a constant or a NOT gate,
    reads one node twice (NOT gates excepted) or ignores an operand (NOT gates excepted), and
    every LUT has 3..6 distinct, sorted fan-ins, all of which its table depends on.
    """
    first = netlist.first_gate
    ids = _id_dtype(netlist)
    source = np.arange(netlist.num_nodes, dtype=ids)
    negated = np.full(netlist.num_nodes, -1, dtype=ids)  # operand of each kept NOT gate
    node_level = np.zeros(netlist.num_nodes, dtype=ids)  # in the result, for kept nodes
    op, a, b = netlist.op.copy(), netlist.a.copy(), netlist.b.copy()
    lut_row, lut_rows = (_lut_row(netlist), {}) if netlist.num_luts else (None, None)
    for gate in _levels(netlist):
        gate, lut_gates = _split(netlist, gate)
        g_a, g_b = source[netlist.a[gate]], source[netlist.b[gate]]
        index = netlist.op[gate].astype(np.intp) * 32
        for operand, weight in ((g_a, 8), (g_b, 2)):
            inner = negated[operand]
            hit = inner >= 0
            np.copyto(operand, inner, where=hit)
            index += weight * np.where(hit, 3, np.minimum(operand, 2))
        index += g_a == g_b
        g_op = _SIMPLIFIED_OP[index]
        g_a, g_b = np.where(_A_READS_B[index], g_b, g_a), np.where(_B_READS_B[index], g_b, g_a)
        node = first + gate
        replaced = np.where(g_op == gates.A, g_a, g_op == gates.TRUE)  # 0 FALSE, 1 TRUE, wire
        source[node] = np.where(_REMOVED[g_op], replaced, node)
        negated[node] = np.where(g_op == gates.NOT_A, g_a, -1)
        node_level[node] = np.maximum(node_level[g_a], node_level[g_b]) + 1
        op[gate], a[gate], b[gate] = g_op, g_a, g_b
        for g in lut_gates.tolist():
            _simplify_lut(netlist, g, lut_row, source, negated, node_level, (op, a, b), lut_rows)
    keep = source[first:] == np.arange(first, netlist.num_nodes)
    luts = None if lut_rows is None else _Luts.from_rows(
        {g: row for g, row in lut_rows.items() if keep[g]})
    return _rebuild(netlist, keep, op, a, b, source, node_level[first:], luts)


def _simplify_lut(netlist, g, lut_row, source, negated, node_level, gates_out, lut_rows) -> None:
    """:func:`simplify` of the LUT node ``g``: writes its new definition and its source."""
    op, a, b = gates_out
    node = netlist.first_gate + g
    table, fanins = _lut_of(netlist, lut_row, g)
    for j, v in enumerate(fanins):
        v = int(source[v])
        if negated[v] >= 0:
            v = int(negated[v])
            table = tables.flip(table, len(fanins), j)
        fanins[j] = v
    table, fanins = tables.reduce_lut(table, fanins)
    if not fanins:  # a constant
        source[node] = table
        return
    if len(fanins) == 1 and table == 0b10:  # a wire
        source[node] = fanins[0]
        return
    node_level[node] = 1 + max(int(node_level[v]) for v in fanins)
    if len(fanins) == 1:  # a NOT
        op[g], a[g], b[g] = gates.NOT_A, fanins[0], fanins[0]
        negated[node] = fanins[0]
    elif len(fanins) == 2:
        op[g], a[g], b[g] = tables.gate_of_table(table), fanins[0], fanins[1]
    else:
        op[g], a[g], b[g] = LUT_OP, fanins[0], fanins[-1]
        lut_rows[g] = (table, fanins)


def push_negations(netlist: Netlist) -> Netlist:
    """Fold every NOT gate into the gate it negates.

    For ``n = NOT g`` where ``g`` is a gate that is not itself an output (outputs cannot absorb a
    negation) and not a NOT: ``g`` switches to its complement (``AND -> NAND``; a LUT complements
    its table), every gate that reads ``g`` absorbs the negation (switches to the gate with that
    operand negated; a LUT flips that fan-in in its table), and the readers and outputs of ``n``
    read ``g``. Applied to the result of :func:`simplify` (where no gate reads a NOT), it leaves
    only NOT gates that read an input bit or an output node.
    """
    first = netlist.first_gate
    op, a, b = netlist.op, netlist.a, netlist.b
    operand = np.where(op == gates.NOT_B, b, a)
    is_not = np.zeros(netlist.num_nodes, dtype=bool)
    is_not[first:] = (op == gates.NOT_A) | (op == gates.NOT_B)
    is_output = np.zeros(netlist.num_nodes, dtype=bool)
    is_output[netlist.outputs] = True
    folded = is_not[first:] & (operand >= first) & ~is_not[operand] & ~is_output[operand]
    if not folded.any():
        return netlist
    negate = np.zeros(netlist.num_nodes, dtype=bool)  # gates that switch to their complement
    negate[operand[folded]] = True
    source = np.arange(netlist.num_nodes, dtype=NODE_DTYPE)
    source[first + np.flatnonzero(folded)] = operand[folded]
    two_input = op != LUT_OP
    gate_op = np.where(two_input, op, 0)  # LUT rows are rewritten below
    gate_op = np.where(negate[first:], gate_op ^ 0xF, gate_op)
    gate_op = np.where(negate[a], _NEGATE_A[gate_op], gate_op)
    gate_op = np.where(negate[b], _NEGATE_B[gate_op], gate_op)
    new_op = np.where(two_input, gate_op, op)
    luts = None
    if netlist.num_luts:
        fanin, arity, table = netlist.lut_fanin, netlist.lut_arity, netlist.lut_table.copy()
        full = np.where(arity >= 6, ~np.uint64(0),
                        (np.uint64(1) << (np.uint64(1) << np.minimum(arity, 5).astype(np.uint64)))
                        - np.uint64(1))
        table = np.where(negate[first + netlist.lut_gates], table ^ full, table)
        for j in range(MAX_LUT_INPUTS):
            hit = negate[fanin[:, j]] & (j < arity)
            table = np.where(hit, tables.flip_tables(table, j), table)
        luts = _Luts(netlist.lut_gates, source[fanin], arity, table)
    return _rebuild(netlist, ~folded, new_op, source[a], source[b], source, luts=luts)


def hash_structure(netlist: Netlist) -> Netlist:
    """Merge structurally identical gates (common-subexpression elimination).

    Each gate is first normalised to read its smaller operand id as ``a`` (a non-commutative gate
    switches to its swapped-input twin, :func:`lgn.compile.gates.swap_inputs`); then gates with equal
    ``(op, a, b)`` are merged into the first of them. A LUT is normalised by
    :func:`lgn.compile.luts.sort_fanins` (repeated fan-ins merged, fan-ins sorted, the table
    permuted to match) and merged with the first LUT of equal table and fan-ins. Afterwards no two
    gates share ``(op, a, b)``, every gate has ``a <= b``, no two LUTs share their table and
    fan-ins, and every LUT's fan-ins are distinct and ascending.
    """
    first, n = netlist.first_gate, netlist.num_nodes
    source = np.arange(n, dtype=_id_dtype(netlist))
    op, a, b = netlist.op.copy(), netlist.a.copy(), netlist.b.copy()
    lut_row, lut_rows = (_lut_row(netlist), {}) if netlist.num_luts else (None, None)
    # Identical gates read identical (merged) operands, hence sit at the same level: hash per level.
    for gate in _levels(netlist):
        gate, lut_gates = _split(netlist, gate)
        first_of = {}
        for g in lut_gates.tolist():  # ascending: the first of equal LUTs is kept
            table, fanins = _lut_of(netlist, lut_row, g)
            table, fanins = tables.sort_fanins(table, source[fanins].tolist())
            keeper = first_of.setdefault((table, *fanins), g)
            source[first + g] = first + keeper
            lut_rows[g] = (table, fanins)
        g_a, g_b = source[netlist.a[gate]], source[netlist.b[gate]]
        g_op = np.where(g_a > g_b, _SWAP[netlist.op[gate]], netlist.op[gate])
        g_a, g_b = np.minimum(g_a, g_b), np.maximum(g_a, g_b)
        op[gate], a[gate], b[gate] = g_op, g_a, g_b
        key = (g_op.astype(NODE_DTYPE) * n + g_a) * n + g_b
        by_key = np.argsort(key)
        sorted_key = key[by_key]
        new_key = np.empty(key.shape, bool)
        new_key[:1] = True
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_key[1:])
        if new_key.all():
            continue
        members = gate[by_key]
        keeper = np.minimum.reduceat(members, np.flatnonzero(new_key))  # the lowest gate index
        source[first + members] = first + keeper[np.cumsum(new_key) - 1]
    keep = source[first:] == np.arange(first, n)
    luts = None if lut_rows is None else _Luts.from_rows(
        {g: row for g, row in lut_rows.items() if keep[g]})
    return _rebuild(netlist, keep, op, a, b, source, netlist.level, luts)  # merging keeps levels


def eliminate_dead(netlist: Netlist) -> Netlist:
    """Remove the gates no output depends on; afterwards every gate reaches an output."""
    first = netlist.first_gate
    live = np.zeros(netlist.num_nodes, dtype=bool)
    live[netlist.outputs] = True
    lut_row = _lut_row(netlist) if netlist.num_luts else None
    for gate in reversed(_levels(netlist)):
        used = gate[live[first + gate]]
        live[netlist.a[used]] = True
        live[netlist.b[used]] = True
        if lut_row is not None:
            rows = lut_row[used]
            live[netlist.lut_fanin[rows[rows >= 0]]] = True  # unused columns mark node 0
    source = np.arange(netlist.num_nodes, dtype=NODE_DTYPE)
    luts = _Luts.of(netlist) if netlist.num_luts else None
    return _rebuild(netlist, live[first:], netlist.op, netlist.a, netlist.b, source, netlist.level,
                    luts)


#: Constant outputs become class offsets (:func:`lgn.compile.luts.fold_outputs`): the scores stay
#: exactly equal, so ties still go to the lowest class. An output fed by a NOT cannot be folded
#: the same way: it counts ``1 - y``, and reading ``y`` instead changes the score by ``2y - 1``,
#: which depends on the input (offsets are constants; the IR has no negative-weight outputs).
fold_outputs = tables.fold_outputs

#: The passes :func:`optimize` runs, in order, until none changes the netlist.
PASSES = (simplify, push_negations, hash_structure, eliminate_dead)
#: :data:`PASSES` and then :func:`fold_outputs`: for back ends that honour class offsets (the
#: reference and packed executors today; C, Verilog, BLIF and AIGER refuse offsets until they do).
OFFSET_PASSES = PASSES + (fold_outputs,)


def optimize(netlist: Netlist, passes=PASSES, max_rounds: int = 100) -> Netlist:
    """Run ``passes`` in order, repeatedly, until a whole round leaves the netlist unchanged.

    Parameters
    ----------
    netlist : Netlist
    passes : sequence of callables ``Netlist -> Netlist``
        Defaults to :data:`PASSES`.
    max_rounds : int
        Safety bound on the rounds; each pass only ever shrinks or normalises the netlist, so the
        fixed point comes after a handful of rounds in practice.

    Returns
    -------
    Netlist
        Computes the same scores as ``netlist`` on every input.
    """
    for _ in range(max_rounds):
        before = netlist
        for run_pass in passes:
            netlist = run_pass(netlist)
        if netlist is before:
            break
    return netlist
