"""Packed-integer executor: the reference semantics of a :class:`~lgn.compile.netlist.Netlist`.

Samples are packed 64 to a 64-bit word (sample ``s`` is bit ``s % 64`` of word ``s // 64``); gates
run level by level, grouped by op, as whole-array bitwise operations; each class's score is the
per-sample count of its output bits, summed with a bit-sliced adder tree. The same code runs on
numpy arrays (CPU) and on torch int64 tensors (CPU or CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgn.nn import gates

from .netlist import Netlist

__all__ = ["run", "predict", "pack", "unpack", "evaluate", "Schedule", "schedule"]

WORD_BITS = 64
#: Words of samples evaluated together: keeps the node values of a large net in cache.
CHUNK_WORDS = 32

# Each gate as a function of two packed words; ~x flips all 64 bits on uint64 and int64 alike.
_OPS = {
    gates.FALSE: lambda a, b: a ^ a,
    gates.AND: lambda a, b: a & b,
    gates.A_AND_NOT_B: lambda a, b: a & ~b,
    gates.A: lambda a, b: a,
    gates.NOT_A_AND_B: lambda a, b: ~a & b,
    gates.B: lambda a, b: b,
    gates.XOR: lambda a, b: a ^ b,
    gates.OR: lambda a, b: a | b,
    gates.NOR: lambda a, b: ~(a | b),
    gates.XNOR: lambda a, b: ~(a ^ b),
    gates.NOT_B: lambda a, b: ~b,
    gates.B_IMPLIES_A: lambda a, b: a | ~b,
    gates.NOT_A: lambda a, b: ~a,
    gates.A_IMPLIES_B: lambda a, b: ~a | b,
    gates.NAND: lambda a, b: ~(a & b),
    gates.TRUE: lambda a, b: ~(a ^ a),
}


@dataclass(frozen=True)
class Schedule:
    """Gates grouped by (level, op): ``steps[i] = (op, node_ids, a_ids, b_ids)``."""

    steps: tuple


def schedule(netlist: Netlist) -> Schedule:
    """Group the gates of ``netlist`` by level, then op, for vectorised evaluation."""
    if netlist.num_gates == 0:
        return Schedule(())
    key = netlist.level.astype(np.int64) * 16 + netlist.op
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    steps = []
    for chunk in np.split(order, bounds):
        steps.append((int(netlist.op[chunk[0]]), netlist.first_gate + chunk, netlist.a[chunk], netlist.b[chunk]))
    return Schedule(tuple(steps))


def pack(bits) -> np.ndarray:
    """Pack ``(N, num_inputs)`` bits into ``(num_inputs, ceil(N/64))`` uint64 words."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must be 2-d (samples, inputs), got shape {bits.shape}")
    n, width = bits.shape
    words = -(-n // WORD_BITS)
    padded = np.zeros((width, words * WORD_BITS), dtype=np.uint8)
    padded[:, :n] = bits.T != 0
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
    width = words.shape[1]
    if words.shape[0] != netlist.num_inputs:
        raise ValueError(f"expected {netlist.num_inputs} input rows, got {words.shape[0]}")
    if torch is None:
        values = np.empty((netlist.num_nodes, width), dtype=np.uint64)
        values[1] = ~np.uint64(0)
        out = lambda v: v  # noqa: E731
    else:
        values = torch.empty((netlist.num_nodes, width), dtype=torch.int64, device=words.device)
        values[1] = -1
        out = lambda v: torch.tensor(v, device=words.device)  # noqa: E731
    values[0] = 0
    values[2 : netlist.first_gate] = words
    for op, ids, a, b in plan.steps:
        values[out(ids)] = _OPS[op](values[out(a)], values[out(b)])
    return values[out(nodes)]


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
    """Return the class scores ``(N, num_classes)`` (int64 popcounts) for input ``bits (N, num_inputs)``.

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
    chunks = []
    for start in range(0, max(words.shape[1], 1), CHUNK_WORDS):
        part = words[:, start : start + CHUNK_WORDS]
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
