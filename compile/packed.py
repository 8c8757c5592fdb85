"""Packed-integer executor: the reference semantics of a :class:`~lgn.compile.netlist.Netlist`.

Samples are packed 64 to a 64-bit word (sample ``s`` is bit ``s % 64`` of word ``s // 64``); gates
run level by level, grouped by op, as whole-array bitwise operations; each class's score is the
per-sample count of its output bits, summed with a bit-sliced adder tree, plus its offset. The
same code runs on numpy arrays (CPU) and on torch int64 tensors (CPU or CUDA).

LUT-k nodes run natively, grouped by level and arity, bit-parallel from their truth tables (as
the C back end does, ``templates/c_lut.c.j2``): the first ``low`` fan-ins (2 for k >= 4, else 1)
are decoded into the ``2^2^low`` words of every function of them, each ``2^low``-bit group of
the table picks one of them as a leaf, and the other fan-ins halve the leaves by one mux each
(a Shannon tree). LUT-6: 16 functions from 4 minterms in 16 operations, 16 picks, 15 muxes of
3 operations: 2.6x faster than the ~45 gates of its decomposition (8000 LUT-6 nodes, 20000
samples, ``bench/packed_lut.py``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from lgn.compile import gates

from .netlist import LUT_OP, Netlist

__all__ = ["run", "predict", "pack", "unpack", "evaluate", "Schedule", "schedule"]

WORD_BITS = 64
#: Words of samples evaluated together: keeps the node values of a large net in cache.
CHUNK_WORDS = 32
#: LUT nodes whose leaf functions ``(16, nodes, CHUNK_WORDS)`` are built together (1 MiB): from
#: 128 to 512 nodes ran equally fast (LUT-6, 20 ms per 2000 nodes and 5000 samples), 32 and 1024 slower.
LUT_CHUNK_NODES = 256

# Each gate as a function of two packed words; ~x flips all 64 bits on uint64 and int64 alike.
_OPS = gates.BITWISE


# The numpy kernels: (negate a, negate b, combine, negate result) for gates of two operands,
# (operand, negate) for gates of one, a fill value for the constants.
_BINARY = {
    gates.AND: (False, False, np.bitwise_and, False),
    gates.A_AND_NOT_B: (False, True, np.bitwise_and, False),
    gates.NOT_A_AND_B: (True, False, np.bitwise_and, False),
    gates.XOR: (False, False, np.bitwise_xor, False),
    gates.OR: (False, False, np.bitwise_or, False),
    gates.NOR: (False, False, np.bitwise_or, True),
    gates.XNOR: (False, False, np.bitwise_xor, True),
    gates.B_IMPLIES_A: (False, True, np.bitwise_or, False),
    gates.A_IMPLIES_B: (True, False, np.bitwise_or, False),
    gates.NAND: (False, False, np.bitwise_and, True),
}
_UNARY = {gates.A: (0, False), gates.NOT_A: (0, True), gates.B: (1, False), gates.NOT_B: (1, True)}
_FILL = {gates.FALSE: np.uint64(0), gates.TRUE: ~np.uint64(0)}


@dataclass(frozen=True, eq=False)
class Schedule:
    """Gates grouped by (level, op), LUT nodes by (level, arity).

    ``steps[i]`` is ``(op, node_ids, a_ids, b_ids)`` for two-input gates and
    ``(LUT_OP, node_ids, fanin_ids (k, n), tables (n,))`` for ``n`` LUT-k nodes.

    The numpy evaluator keeps node values in a buffer whose rows hold the constants, the inputs,
    then the gates step after step, so step ``i`` writes the rows ``spans[i][0]:spans[i][1]`` and
    reads the rows ``operand_rows[i]``: (``a``, ``b``), or for LUT-k nodes (fan-in rows ``(k, n)``,
    leaf codes ``(n, 2^(k - low))``: the ``2^low``-bit groups of each table, see the module doc);
    ``row[node]`` is the row of a node id.
    """

    steps: tuple
    row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    spans: tuple = ()
    operand_rows: tuple = ()

    @property
    def widest_step(self) -> int:
        return max((stop - start for start, stop in self.spans), default=0)

    @property
    def operand_scratch_rows(self) -> int:
        """Rows of operand scratch the widest step gathers (2 per gate, k per LUT-k node)."""
        return max((len(a_rows) * (stop - start) if op == LUT_OP else 2 * (stop - start)
                    for (op, *_), (start, stop), (a_rows, _) in
                    zip(self.steps, self.spans, self.operand_rows)), default=0)


# Netlists are immutable, so a schedule computed once serves every later run on the same object.
_SCHEDULES: "weakref.WeakKeyDictionary[Netlist, Schedule]" = weakref.WeakKeyDictionary()


def schedule(netlist: Netlist) -> Schedule:
    """Group the gates of ``netlist`` by level, then op, for vectorised evaluation (cached)."""
    plan = _SCHEDULES.get(netlist)
    if plan is None:
        plan = _SCHEDULES[netlist] = _make_schedule(netlist)
    return plan


def _make_schedule(netlist: Netlist) -> Schedule:
    first = netlist.first_gate
    row = np.arange(netlist.num_nodes, dtype=np.intp)
    if netlist.num_gates == 0:
        return Schedule((), row)
    groups = []  # (op, gate indices), LUT steps split by arity
    arity = np.zeros(netlist.num_gates, np.int64)
    arity[netlist.lut_gates] = netlist.lut_arity
    for _, op, chunk in netlist.schedule.steps():  # gates by (level, op), computed once per netlist
        if op != LUT_OP:
            groups.append((op, chunk))
            continue
        chunk = chunk[np.argsort(arity[chunk], kind="stable")]
        bounds = np.flatnonzero(np.diff(arity[chunk])) + 1
        groups += [(op, part) for part in np.split(chunk, bounds)]
    row[first + np.concatenate([chunk for _, chunk in groups])] = np.arange(first, netlist.num_nodes)
    steps, spans, operand_rows, start = [], [], [], first
    for op, chunk in groups:
        spans.append((start, start + chunk.size))
        start += chunk.size
        if op == LUT_OP:
            lut = np.searchsorted(netlist.lut_gates, chunk)
            k = int(netlist.lut_arity[lut[0]])
            fanins, tables = netlist.lut_fanin[lut, :k].T, netlist.lut_table[lut]
            steps.append((op, first + chunk, fanins, tables))
            operand_rows.append((row[fanins], _leaf_codes(tables, k)))
            continue
        a, b = netlist.a[chunk], netlist.b[chunk]
        steps.append((op, first + chunk, a, b))
        operand_rows.append((row[a], row[b]))
    return Schedule(tuple(steps), row, tuple(spans), tuple(operand_rows))


def _low_inputs(k: int) -> int:
    """Fan-ins of a LUT-k node decoded into all their functions: 2 (16 words) for k >= 4, else 1."""
    return 2 if k >= 4 else 1


def _leaf_codes(tables: np.ndarray, k: int) -> np.ndarray:
    """``(n, 2^(k - low))`` intp: group ``r`` of ``2^low`` bits of each table, the function of the
    low fan-ins that is the node's value where the other fan-ins spell ``r``."""
    low = _low_inputs(k)
    shifts = np.arange(0, 1 << k, 1 << low, dtype=np.uint64)
    return ((tables[:, None] >> shifts) & np.uint64((1 << (1 << low)) - 1)).astype(np.intp)


def pack(bits) -> np.ndarray:
    """Pack ``(N, num_inputs)`` bits into ``(num_inputs, ceil(N/64))`` uint64 words."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must be 2-d (samples, inputs), got shape {bits.shape}")
    n, width = bits.shape
    words = -(-n // WORD_BITS)
    padded = np.zeros((width, words * WORD_BITS), dtype=np.uint8)
    padded[:, :n] = bits.T if bits.dtype == bool else bits.T != 0
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64, copy=False)


def unpack(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``(rows, W)`` uint64 words to ``(n, rows)`` bool."""
    words = np.ascontiguousarray(words, dtype="<u8")
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :n].T.astype(bool)


def _xp(words):
    if isinstance(words, np.ndarray):
        return None
    import torch  # only when a tensor is passed

    return torch


def evaluate(netlist: Netlist, words, nodes=None, plan: Schedule | None = None):
    """Return the packed values of ``nodes`` (default: the outputs) for packed input ``words``.

    ``words`` is ``(num_inputs, W)``: uint64 numpy, or an int64 torch tensor on any device.
    """
    torch = _xp(words)
    nodes = netlist.outputs if nodes is None else np.asarray(nodes)
    plan = plan or schedule(netlist)
    if len(plan.spans) != len(plan.steps):
        raise ValueError("this Schedule has no row layout: build it with packed.schedule(netlist)")
    if words.shape[0] != netlist.num_inputs:
        raise ValueError(f"expected {netlist.num_inputs} input rows, got {words.shape[0]}")
    if torch is None:
        values = _evaluate_numpy(plan, netlist.first_gate, np.asarray(words, dtype=np.uint64))
        return values[plan.row[nodes]]
    values = torch.empty((netlist.num_nodes, words.shape[1]), dtype=torch.int64, device=words.device)
    values[0], values[1] = 0, -1
    values[2 : netlist.first_gate] = words
    index = lambda v: torch.tensor(v, device=words.device)  # noqa: E731
    for (op, ids, a, b), (_, codes) in zip(plan.steps, plan.operand_rows):
        if op == LUT_OP:
            values[index(ids)] = _lut_torch(values[index(a)], index(codes), torch)
        else:
            values[index(ids)] = _OPS[op](values[index(a)], values[index(b)])
    return values[index(nodes)]


def _lut_torch(x, codes, torch):
    """LUT-k node values ``(n, W)`` from fan-in words ``x (k, n, W)`` and leaf codes ``(n, L)``."""
    k, n, width = x.shape
    if _low_inputs(k) == 2:
        both = x[0] & x[1]
        minterms = (~(x[0] | x[1]), x[0] ^ both, x[1] ^ both, both)
        functions = [x[0] ^ x[0]]
        for m in minterms:
            functions += [f | m for f in functions]
    else:
        functions = [x[0] ^ x[0], ~x[0], x[0], ~(x[0] ^ x[0])]
    table = torch.stack(functions, dim=1)  # (n, 2^2^low, W)
    leaf = torch.gather(table, 1, codes.unsqueeze(-1).expand(-1, -1, width))
    for j in range(k - 1, _low_inputs(k) - 1, -1):  # mux over fan-in j: the halves of the leaves
        h = leaf.shape[1] // 2
        leaf = leaf[:, :h] ^ ((leaf[:, :h] ^ leaf[:, h:]) & x[j].unsqueeze(1))
    return leaf[:, 0]


def _buffers(plan: Schedule, width: int):
    """Node values ``(rows, width)``, operand scratch ``(rows, width)`` (gathered operands of the
    widest step) and flat LUT scratch (``16 x LUT_CHUNK_NODES x width`` words) for a plan."""
    has_luts = any(op == LUT_OP for op, *_ in plan.steps)
    return (np.empty((plan.row.shape[0], width), dtype=np.uint64),
            np.empty((plan.operand_scratch_rows, width), dtype=np.uint64),
            np.empty(16 * LUT_CHUNK_NODES * width if has_luts else 0, dtype=np.uint64))


def _evaluate_numpy(plan: Schedule, first: int, words: np.ndarray, buffers=None) -> np.ndarray:
    """Run ``plan`` on packed ``words``; return the node values in the plan's row order.

    Each step gathers its operand rows into scratch (``np.take(..., out=)``) and writes its
    result straight into its own contiguous block of rows: no temporaries, no scatter.
    """
    values, scratch, leaves = buffers or _buffers(plan, words.shape[1])
    values[0], values[1] = 0, ~np.uint64(0)
    values[2:first] = words
    for (op, *_), (start, stop), (a_rows, b_rows) in zip(plan.steps, plan.spans, plan.operand_rows):
        out, n = values[start:stop], stop - start
        if op == LUT_OP:
            k = a_rows.shape[0]
            x = np.take(values, a_rows.reshape(-1), axis=0, out=scratch[: k * n], mode="clip")
            _lut_numpy(x.reshape(k, n, values.shape[1]), b_rows, out, leaves)
        elif op in _BINARY:
            negate_a, negate_b, combine, negate_out = _BINARY[op]
            x = np.take(values, a_rows, axis=0, out=scratch[:n], mode="clip")
            y = np.take(values, b_rows, axis=0, out=scratch[n : 2 * n], mode="clip")
            if negate_a:
                np.invert(x, out=x)
            if negate_b:
                np.invert(y, out=y)
            combine(x, y, out=out)
            if negate_out:
                np.invert(out, out=out)
        elif op in _UNARY:
            operand, negate = _UNARY[op]
            x = np.take(values, (a_rows, b_rows)[operand], axis=0, out=scratch[:n], mode="clip")
            if negate:
                np.invert(x, out=out)
            else:
                np.copyto(out, x)
        else:
            out.fill(_FILL[op])
    return values


def _lut_numpy(x: np.ndarray, codes: np.ndarray, out: np.ndarray, leaves: np.ndarray) -> None:
    """Write into ``out (n, W)`` the LUT-k values of fan-in words ``x (k, n, W)`` (module doc).

    ``LUT_CHUNK_NODES`` nodes at a time, function-major (``(functions, nodes, W)``, so every
    operation runs over one contiguous ``nodes x W`` plane per function): the functions of the low
    fan-ins fill the flat scratch ``leaves``, the codes pick the leaves into a fresh block, and
    each mux halves it in place.
    """
    k, n, width = x.shape
    low = _low_inputs(k)
    functions = 1 << (1 << low)
    for s in range(0, n, LUT_CHUNK_NODES):
        e = min(s + LUT_CHUNK_NODES, n)
        c, x0, x1 = e - s, x[0, s:e], x[min(1, k - 1), s:e]
        f = leaves[: functions * c * width].reshape(functions, c, width)
        f[0] = 0
        if low == 2:  # f[t] is 1 where the minterm x0 + 2 x1 = r has bit r of t set
            np.bitwise_and(x0, x1, out=f[8])
            np.bitwise_xor(x0, f[8], out=f[2])
            np.bitwise_xor(x1, f[8], out=f[4])
            np.bitwise_or(x0, x1, out=f[1])
            np.invert(f[1], out=f[1])
            for m in (2, 4, 8):
                np.bitwise_or(f[1:m], f[m], out=f[m + 1 : 2 * m])
        else:
            np.invert(x0, out=f[1])
            f[2] = x0
            f[3] = ~np.uint64(0)
        picks = codes[s:e].T * c + np.arange(c)  # (2^(k - low), c): row of f of each leaf
        leaf = f.reshape(functions * c, width).take(picks, axis=0)  # (2^(k - low), c, W)
        for j in range(k - 1, low - 1, -1):  # mux over fan-in j: lo ^ ((lo ^ hi) & x_j)
            h = leaf.shape[0] // 2
            lo, hi = leaf[:h], leaf[h:]
            np.bitwise_xor(hi, lo, out=hi)
            np.bitwise_and(hi, x[j, s:e], out=hi)
            np.bitwise_xor(lo, hi, out=lo)
            leaf = lo
        out[s:e] = leaf[0]


def _add_planes(x, y, xp_zero):
    """Bit-sliced addition of two lists of bit planes (LSB first) of equal length."""
    carry = None
    total = []
    for p, q in zip(x, y):
        if carry is None:
            total.append(p ^ q)
            carry = p & q
        else:
            s = p ^ q
            total.append(s ^ carry)
            carry = (p & q) | (s & carry)
    total.append(carry)
    return total


def _count(bits, n: int, torch):
    """Per-sample count of set bits over axis 1 of packed ``bits (C, k, W)`` -> ``(n, C)``."""
    planes = [bits]  # list of (C, m, W) arrays: an m-vector of numbers, one plane per list entry
    while planes[0].shape[1] > 1:
        m = planes[0].shape[1]
        if m % 2:  # pad with a zero number
            pad = planes[0][:, :1] ^ planes[0][:, :1]
            planes = [_cat(torch, (p, pad)) for p in planes]
        planes = _add_planes([p[:, 0::2] for p in planes], [p[:, 1::2] for p in planes], None)
    counts = None
    for weight, plane in enumerate(planes):
        bit = _unpack_bits(plane[:, 0], n, torch)  # (C, n)
        counts = bit << weight if counts is None else counts + (bit << weight)
    return counts.T


def _cat(torch, parts):
    return np.concatenate(parts, axis=1) if torch is None else torch.cat(parts, dim=1)


def _unpack_bits(words, n: int, torch):
    """``(C, W)`` packed words to ``(C, n)`` int64 bits."""
    if torch is None:
        return unpack(words, n).T.astype(np.int64)
    shifts = torch.arange(WORD_BITS, device=words.device, dtype=torch.int64)
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(words.shape[0], -1)[:, :n]


def run(netlist: Netlist, bits):
    """Return the class scores ``(N, num_classes)`` (int64 popcounts plus the class offsets).

    ``bits`` is a numpy bool/0-1 array or a torch tensor (computed on its device).
    """
    torch = _xp(bits)
    if bits.ndim != 2 or bits.shape[1] != netlist.num_inputs:
        raise ValueError(f"input bits have shape {tuple(bits.shape)}, expected (N, {netlist.num_inputs})")
    n = bits.shape[0]
    if torch is None:
        words = pack(bits)
    else:
        words = _pack_torch(bits, torch)
    plan = schedule(netlist)
    output_rows = plan.row[netlist.outputs]
    chunks, buffers = [], None
    for start in range(0, max(words.shape[1], 1), CHUNK_WORDS):
        part = words[:, start : start + CHUNK_WORDS]
        if torch is None:
            if buffers is None or buffers[0].shape[1] != part.shape[1]:
                buffers = _buffers(plan, part.shape[1])
            outs = _evaluate_numpy(plan, netlist.first_gate, part, buffers)[output_rows]
        else:
            outs = evaluate(netlist, part, plan=plan)
        groups = outs.reshape(netlist.num_classes, netlist.outputs_per_class, part.shape[1])
        chunks.append(_count(groups, min(n - start * WORD_BITS, part.shape[1] * WORD_BITS), torch))
    offsets = netlist.offsets
    if torch is None:
        scores = np.concatenate(chunks, axis=0)[:n] if n else np.zeros((0, netlist.num_classes), np.int64)
        return scores + offsets if offsets.any() else scores
    scores = torch.cat(chunks, dim=0)[:n]
    return scores + torch.as_tensor(offsets.copy(), device=scores.device) if offsets.any() else scores


def _pack_torch(bits, torch):
    n, width = bits.shape
    words = -(-n // WORD_BITS)
    padded = torch.zeros((words * WORD_BITS, width), dtype=torch.int64, device=bits.device)
    padded[:n] = (bits != 0).to(torch.int64)
    shifts = torch.arange(WORD_BITS, device=bits.device, dtype=torch.int64)
    lanes = padded.reshape(words, WORD_BITS, width) << shifts.view(1, -1, 1)
    return lanes.sum(dim=1).T.contiguous()  # disjoint bits: the sum is the bitwise or


def predict(netlist: Netlist, bits):
    """Return the predicted class per sample (ties go to the lowest class index)."""
    scores = run(netlist, bits)
    return scores.argmax(axis=1) if isinstance(scores, np.ndarray) else scores.argmax(dim=1)
