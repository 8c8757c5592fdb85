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


def _rebuild(netlist: Netlist, keep: np.ndarray, op, a, b, source: np.ndarray) -> Netlist:
    """Return ``netlist`` with only the gates ``keep``, rewired.

    ``op, a, b`` (per gate, old node ids) give the new definition of each kept gate; ``source``
    maps every old node id to the old id of the node that replaces it (itself for kept nodes;
    a kept gate, an input or a constant otherwise). The argument is returned when nothing changes.
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
    return netlist.replace(
        op=np.asarray(op)[kept], a=new_id[np.asarray(a)[kept]], b=new_id[np.asarray(b)[kept]],
        outputs=new_id[outputs],
    )


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
    source = np.arange(netlist.num_nodes, dtype=NODE_DTYPE)
    negated = np.full(netlist.num_nodes, -1, dtype=NODE_DTYPE)  # operand of each kept NOT gate
    op, a, b = netlist.op.copy(), netlist.a.copy(), netlist.b.copy()
    for gate in _levels(netlist):
        g_op, g_a, g_b = netlist.op[gate], source[netlist.a[gate]], source[netlist.b[gate]]
        for operand, table in ((g_a, _NEGATE_A), (g_b, _NEGATE_B)):
            inner = negated[operand]
            hit = inner >= 0
            g_op = np.where(hit, table[g_op], g_op)
            operand[hit] = inner[hit]
        const = g_a < 2
        g_op = np.where(const, _FIX_A[np.minimum(g_a, 1), g_op], g_op)
        g_a = np.where(const, g_b, g_a)
        const = g_b < 2
        g_op = np.where(const, _FIX_B[np.minimum(g_b, 1), g_op], g_op)
        g_b = np.where(const, g_a, g_b)
        g_op = np.where(g_a == g_b, _SAME[g_op], g_op)
        moved = _B_TO_A[g_op] != g_op  # ignores a: make it a function of a, over b's node
        g_op = np.where(moved, _B_TO_A[g_op], g_op)
        g_a = np.where(moved, g_b, g_a)
        g_b = np.where(_IGNORES_B[g_op], g_a, g_b)
        node = first + gate
        source[node[g_op == gates.FALSE]] = 0
        source[node[g_op == gates.TRUE]] = 1
        wire = g_op == gates.A
        source[node[wire]] = g_a[wire]
        is_not = g_op == gates.NOT_A
        negated[node[is_not]] = g_a[is_not]
        op[gate], a[gate], b[gate] = g_op, g_a, g_b
    keep = source[first:] == np.arange(first, netlist.num_nodes)
    return _rebuild(netlist, keep, op, a, b, source)


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
    first = netlist.first_gate
    source = np.arange(netlist.num_nodes, dtype=NODE_DTYPE)
    op, a, b = netlist.op.copy(), netlist.a.copy(), netlist.b.copy()
    # Identical gates read identical (merged) operands, hence sit at the same level: hash per level.
    for gate in _levels(netlist):
        gate = np.sort(gate)  # duplicates merge into the lowest gate index
        g_a, g_b = source[netlist.a[gate]], source[netlist.b[gate]]
        swap = g_a > g_b
        g_op = np.where(swap, _SWAP[netlist.op[gate]], netlist.op[gate])
        g_a, g_b = np.where(swap, g_b, g_a), np.where(swap, g_a, g_b)
        key = (g_op.astype(NODE_DTYPE) * netlist.num_nodes + g_a) * netlist.num_nodes + g_b
        _, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
        source[first + gate] = first + gate[firsts[inverse]]
        op[gate], a[gate], b[gate] = g_op, g_a, g_b
    keep = source[first:] == np.arange(first, netlist.num_nodes)
    return _rebuild(netlist, keep, op, a, b, source)


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
    return _rebuild(netlist, live[first:], netlist.op, netlist.a, netlist.b, source)


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
