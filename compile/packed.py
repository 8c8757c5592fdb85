"""Packed-integer executor: the reference semantics of a :class:`~lgn.compile.netlist.Netlist`.

Samples are packed 64 to a 64-bit word (sample ``s`` is bit ``s % 64`` of word ``s // 64``); gates
run level by level, grouped by op, as whole-array bitwise operations; each class's score is the
per-sample count of its output bits, summed with a bit-sliced adder tree. The same code runs on
numpy arrays (CPU) and on torch int64 tensors (CPU or CUDA).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from lgn.compile import gates

from .netlist import Netlist

__all__ = ["run", "predict", "pack", "unpack", "evaluate", "Schedule", "schedule"]

WORD_BITS = 64
#: Words of samples evaluated together: keeps the node values of a large net in cache.
CHUNK_WORDS = 32

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
    """Gates grouped by (level, op): ``steps[i] = (op, node_ids, a_ids, b_ids)``.

    The numpy evaluator keeps node values in a buffer whose rows hold the constants, the inputs,
    then the gates step after step, so step ``i`` writes the rows ``spans[i][0]:spans[i][1]`` and
    reads the rows ``operand_rows[i]`` (``a``, ``b``); ``row[node]`` is the row of a node id.
    """

    steps: tuple
    row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    spans: tuple = ()
    operand_rows: tuple = ()

    @property
    def widest_step(self) -> int:
        return max((stop - start for start, stop in self.spans), default=0)


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
    shared = netlist.schedule  # gates by (level, op), computed once per netlist
    row[first + shared.order] = np.arange(first, netlist.num_nodes)
    steps, spans, operand_rows = [], [], []
    for (_, op, chunk), start in zip(shared.steps(), shared.step_starts.tolist()):
        a, b = netlist.a[chunk], netlist.b[chunk]
        steps.append((op, first + chunk, a, b))
        spans.append((first + start, first + start + chunk.size))
        operand_rows.append((row[a], row[b]))
    return Schedule(tuple(steps), row, tuple(spans), tuple(operand_rows))


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
    if netlist.num_luts:  # LUTs as the mux trees of decompose, read at the nodes asked for
        from .luts import decompose_with_ids

        plain, new_ids = decompose_with_ids(netlist)
        return evaluate(plain, words, new_ids[nodes])
    plan = plan or schedule(netlist)
    if words.shape[0] != netlist.num_inputs:
        raise ValueError(f"expected {netlist.num_inputs} input rows, got {words.shape[0]}")
    if torch is None:
        values = _evaluate_numpy(plan, netlist.first_gate, np.asarray(words, dtype=np.uint64))
        return values[plan.row[nodes]]
    values = torch.empty((netlist.num_nodes, words.shape[1]), dtype=torch.int64, device=words.device)
    values[0], values[1] = 0, -1
    values[2 : netlist.first_gate] = words
    index = lambda v: torch.tensor(v, device=words.device)  # noqa: E731
    for op, ids, a, b in plan.steps:
        values[index(ids)] = _OPS[op](values[index(a)], values[index(b)])
    return values[index(nodes)]


def _buffers(plan: Schedule, width: int):
    """Node values ``(rows, width)`` and operand scratch ``(2, widest step, width)`` for a plan."""
    return (np.empty((plan.row.shape[0], width), dtype=np.uint64),
            np.empty((2, plan.widest_step, width), dtype=np.uint64))


def _evaluate_numpy(plan: Schedule, first: int, words: np.ndarray, buffers=None) -> np.ndarray:
    """Run ``plan`` on packed ``words``; return the node values in the plan's row order.

    Each step gathers its operand rows into scratch (``np.take(..., out=)``) and writes its
    result straight into its own contiguous block of rows: no temporaries, no scatter.
    """
    if len(plan.spans) != len(plan.steps):
        raise ValueError("this Schedule has no row layout: build it with packed.schedule(netlist)")
    values, scratch = buffers or _buffers(plan, words.shape[1])
    values[0], values[1] = 0, ~np.uint64(0)
    values[2:first] = words
    for (op, *_), (start, stop), (a_rows, b_rows) in zip(plan.steps, plan.spans, plan.operand_rows):
        out, n = values[start:stop], stop - start
        if op in _BINARY:
            negate_a, negate_b, combine, negate_out = _BINARY[op]
            x = np.take(values, a_rows, axis=0, out=scratch[0, :n], mode="clip")
            y = np.take(values, b_rows, axis=0, out=scratch[1, :n], mode="clip")
            if negate_a:
                np.invert(x, out=x)
            if negate_b:
                np.invert(y, out=y)
            combine(x, y, out=out)
            if negate_out:
                np.invert(out, out=out)
        elif op in _UNARY:
            operand, negate = _UNARY[op]
            x = np.take(values, (a_rows, b_rows)[operand], axis=0, out=scratch[0, :n], mode="clip")
            if negate:
                np.invert(x, out=out)
            else:
                np.copyto(out, x)
        else:
            out.fill(_FILL[op])
    return values


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

    LUT nodes are evaluated as the Shannon mux trees of :func:`lgn.compile.luts.decompose`.

    ``bits`` is a numpy bool/0-1 array or a torch tensor (computed on its device).
    """
    torch = _xp(bits)
    if bits.ndim != 2 or bits.shape[1] != netlist.num_inputs:
        raise ValueError(f"input bits have shape {tuple(bits.shape)}, expected (N, {netlist.num_inputs})")
    if netlist.num_luts or netlist.offsets.any():  # LUTs as mux trees of word ops; offsets added
        from .luts import decompose

        offsets = netlist.offsets
        plain = decompose(netlist).replace(offsets=None)
        scores = run(plain, bits)
        if torch is None:
            return scores + offsets
        return scores + torch.as_tensor(offsets.copy(), device=scores.device)  # a writable copy
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
    if torch is None:
        return np.concatenate(chunks, axis=0)[:n] if n else np.zeros((0, netlist.num_classes), np.int64)
    return torch.cat(chunks, dim=0)[:n]


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
