"""Function-preserving netlist passes and :func:`optimize`, which runs them to a fixed point.

Every pass is a pure ``Netlist -> Netlist`` function: the result computes the same class scores
as its argument on every input, keeps ``num_inputs``, ``num_classes``, ``tau``, ``encoding`` and
``meta``, and is returned as the argument itself when the pass finds nothing to do. The IR has no
wire node, so a gate that becomes a wire is removed and its readers (and outputs) read its source
instead; outputs may therefore end up on input bits or constants.

The passes sweep the gates level by level (all gates of one logic level at once, as numpy array
operations): the cost is array work proportional to the gates plus roughly 0.1 ms of Python per
logic level. A 784 -> 8 x 50,000-gate network optimizes in well under a second; only a netlist
that is one very long chain (hundreds of thousands of levels) would take a minute.
"""

from __future__ import annotations

import functools

import numpy as np

from lgn.compile import gates

from .netlist import NODE_DTYPE, Netlist, NetlistError

__all__ = ["PASSES", "optimize", "simplify", "push_negations", "hash_structure", "eliminate_dead"]


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


def _rebuild(netlist: Netlist, keep: np.ndarray, op, a, b, source: np.ndarray,
             level: np.ndarray | None = None) -> Netlist:
    """Return ``netlist`` with only the gates ``keep``, rewired.

    ``op, a, b`` (per gate, old node ids) give the new definition of each kept gate; ``source``
    maps every old node id to the old id of the node that replaces it (itself for kept nodes;
    a kept gate, an input or a constant otherwise). ``level`` (per old gate), when the pass knows
    it, is the logic level each kept gate has in the result: the result caches it instead of
    computing it again. The argument is returned when nothing changes.
    """
    first = netlist.first_gate
    outputs = source[netlist.outputs]
    if (keep.all() and np.array_equal(op, netlist.op) and np.array_equal(a, netlist.a)
            and np.array_equal(b, netlist.b) and np.array_equal(outputs, netlist.outputs)):
        return netlist
    kept = np.flatnonzero(keep)
    new_id = np.full(netlist.num_nodes, -1, dtype=NODE_DTYPE)
    new_id[:first] = np.arange(first)
    new_id[first + kept] = first + np.arange(kept.size)
    result = netlist.replace(
        op=np.asarray(op)[kept], a=new_id[np.asarray(a)[kept]], b=new_id[np.asarray(b)[kept]],
        outputs=new_id[outputs],
    )
    if level is not None:
        result._cache_level(level[kept])
    return result


# ----------------------------------------------------------------------------------- the passes
def _two_input_gates_only(rewrite):
    """Make the pass ``rewrite`` refuse a netlist with LUT nodes in one line (it rewrites gates)."""
    @functools.wraps(rewrite)
    def checked(netlist: Netlist) -> Netlist:
        if netlist.num_luts:
            raise NetlistError(f"the {rewrite.__name__} pass does not rewrite LUT nodes yet; run "
                               "lgn.compile.luts.decompose first")
        return rewrite(netlist)

    return checked


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


@_two_input_gates_only
def simplify(netlist: Netlist) -> Netlist:
    """Propagate constants, simplify gates and absorb negations.

    Gates are rewritten as follows, in one sweep from the inputs to the outputs:

    - a gate reading a NOT gate reads the NOT's operand instead and switches to the gate with that
      operand negated (negation absorption; ``NOT(NOT x)`` becomes the wire ``x``);
    - a constant operand is folded in (``AND(x, 1) -> x``, ``XOR(x, 1) -> NOT x``);
    - a gate reading one node twice becomes a function of that node (``XOR(x, x) -> 0``);
    - a gate whose function ignores an operand becomes a constant, a wire, or a NOT.

    A constant or wire gate is removed and its readers read the constant or the wire's source.
    Every NOT left is written ``NOT_A x x``. Afterwards no gate reads a constant or a NOT gate,
    reads one node twice (NOT gates excepted) or ignores an operand (NOT gates excepted).
    """
    first = netlist.first_gate
    ids = _id_dtype(netlist)
    source = np.arange(netlist.num_nodes, dtype=ids)
    negated = np.full(netlist.num_nodes, -1, dtype=ids)  # operand of each kept NOT gate
    node_level = np.zeros(netlist.num_nodes, dtype=ids)  # in the result, for kept nodes
    op, a, b = netlist.op.copy(), netlist.a.copy(), netlist.b.copy()
    for gate in _levels(netlist):
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
    keep = source[first:] == np.arange(first, netlist.num_nodes)
    return _rebuild(netlist, keep, op, a, b, source, node_level[first:])


@_two_input_gates_only
def push_negations(netlist: Netlist) -> Netlist:
    """Fold every NOT gate into the gate it negates.

    For ``n = NOT g`` where ``g`` is a gate that is not itself an output (outputs cannot absorb a
    negation) and not a NOT: ``g`` switches to its complement (``AND -> NAND``), every gate that
    reads ``g`` absorbs the negation (switches to the gate with that operand negated), and the
    readers and outputs of ``n`` read ``g``. Applied to the result of :func:`simplify` (where no
    gate reads a NOT), it leaves only NOT gates that read an input bit or an output node.
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
    new_op = np.where(negate[first:], op ^ 0xF, op)
    new_op = np.where(negate[a], _NEGATE_A[new_op], new_op)
    new_op = np.where(negate[b], _NEGATE_B[new_op], new_op)
    return _rebuild(netlist, ~folded, new_op, source[a], source[b], source)


@_two_input_gates_only
def hash_structure(netlist: Netlist) -> Netlist:
    """Merge structurally identical gates (common-subexpression elimination).

    Each gate is first normalised to read its smaller operand id as ``a`` (a non-commutative gate
    switches to its swapped-input twin, :func:`lgn.compile.gates.swap_inputs`); then gates with equal
    ``(op, a, b)`` are merged into the first of them. Afterwards no two gates share
    ``(op, a, b)`` and every gate has ``a <= b``.
    """
    first, n = netlist.first_gate, netlist.num_nodes
    source = np.arange(n, dtype=_id_dtype(netlist))
    op, a, b = netlist.op.copy(), netlist.a.copy(), netlist.b.copy()
    # Identical gates read identical (merged) operands, hence sit at the same level: hash per level.
    for gate in _levels(netlist):
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
    return _rebuild(netlist, keep, op, a, b, source, netlist.level)  # merging keeps levels


@_two_input_gates_only
def eliminate_dead(netlist: Netlist) -> Netlist:
    """Remove the gates no output depends on; afterwards every gate reaches an output."""
    first = netlist.first_gate
    live = np.zeros(netlist.num_nodes, dtype=bool)
    live[netlist.outputs] = True
    for gate in reversed(_levels(netlist)):
        used = gate[live[first + gate]]
        live[netlist.a[used]] = True
        live[netlist.b[used]] = True
    source = np.arange(netlist.num_nodes, dtype=NODE_DTYPE)
    return _rebuild(netlist, live[first:], netlist.op, netlist.a, netlist.b, source, netlist.level)


#: The passes :func:`optimize` runs, in order, until none changes the netlist.
PASSES = (simplify, push_negations, hash_structure, eliminate_dead)


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
