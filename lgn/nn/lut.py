"""k-input lookup-table (LUT) nodes, k = 1..6: functional ops and the :class:`LutLayer` module.

A LUT node computes any Boolean function of its k inputs, given by its truth table. Bit order,
used everywhere (tables, logits, :meth:`LutLayer.truth_tables` words): **input j is bit j of
the pattern index**, so entry ``i`` of a node's table is its output when input ``j`` equals
``(i >> j) & 1``.

Relaxation: the exact expectation of the node's output when input ``j`` is an independent
Bernoulli variable with mean ``x_j`` (the multilinear extension of the table)::

    y = sum_i table[i] * prod_j (x_j if (i >> j) & 1 else 1 - x_j)

with ``table = sigmoid(logits)``: one logit per entry, the ``'table'`` parametrization of
:class:`lgn.nn.LogicLayer` (the k = 2 case, with its operand ``a`` as input 1 and ``b`` as
input 0). :func:`lut_layer` never forms the ``2^k`` products per node: it splits the inputs
into a low half (``p = k // 2`` inputs) and a high half, contracts the table with the
``2^p`` low pattern probabilities (a ``2^q x 2^p`` matrix-vector product, ``q = k - p``), then
interpolates linearly over the high inputs one at a time (``q`` rounds halving the rows). Its
backward pass recomputes this from the saved inputs, so memory stays ``O(batch x nodes)``.

Two kernels compute it on CPU (:data:`lgn.nn._native.KERNEL`). The fused one (``kernels.c``,
built once per machine by :mod:`lgn.nn._native`) keeps one block of samples in a vector register per value, so
a node's whole forward and backward stays in registers; the torch path (also the CUDA one) runs
the same split as batched matrix products and lerps over chunks of nodes. On this repository's
2-core machine (``bench/lut.py``, LUT-6, 8000 nodes, batch 128, 1 thread) a training step of the
fused kernel is about 3.6x faster than the torch path's and 2.2x a two-input layer's.

Why this split (torch path, same bench): successive halving of the 64-entry table with a
hand-written recomputing backward (``lut6-halve``: 63 element writes per node and sample against
~30 plus one 8 x 8 product here) is 2.3x slower; splitting 2/4 or 4/2 instead of 3/3 is 1.25x /
1.4x slower; the bilinear form ``high^T M low`` with both halves' patterns built as one block,
outer-product patterns, and chunks of 2^16 to 2^19 elements all measured within noise of this
one. Below 2^16 the per-chunk Python dispatch (about 1 ms per chunk, forward and backward)
dominates. For the fused kernel, a first version that halved the 64-entry table over per-lane
arrays in memory took 3x the time of this one overall (forward 22.5 vs 1.4 ms, backward 36 vs
9.1 ms).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import _native
from . import functional as F
from ._sources import balanced_sources, distinct_sources
from .modules import RESIDUAL_LOGIT

__all__ = [
    "MAX_K", "LUT_CONNECTIONS", "LUT_INITS",
    "lut_table", "hard_lut_table", "lut_layer", "lut_layer_hard", "lut_layer_reference",
    "truth_table_words", "evaluate_truth_tables", "lut_sources", "check_k", "LutLayer",
]

MAX_K = 6
LUT_CONNECTIONS = ("random", "unique")
LUT_INITS = ("random", "residual")
#: Elements of the largest temporary ``(nodes, entries, batch)`` block one chunk may hold.
_CHUNK_ELEMENTS = 1 << 17


def check_k(k, owner: str = "LutLayer") -> int:
    """Return ``k`` if it is an int in 1..6, else raise a one-line ValueError naming ``k``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"{owner}: k must be an integer in 1..{MAX_K}, got {k!r}")
    return int(k)


def lut_table(weights: torch.Tensor) -> torch.Tensor:
    """Relaxed truth tables ``sigmoid(weights)`` of LUT nodes (``weights`` is ``(nodes, 2^k)``)."""
    return torch.sigmoid(weights)


def hard_lut_table(weights: torch.Tensor) -> torch.Tensor:
    """Discretized truth tables: entry 1 where its logit is > 0, else 0 (same dtype)."""
    return (weights > 0).to(weights.dtype)


def _split(k: int) -> tuple[int, int]:
    """(low, high) input counts: low inputs are contracted by a matrix product, high ones lerped."""
    return k // 2, k - k // 2


def _low_patterns(xs: torch.Tensor) -> list:
    """Pattern probabilities of the ``p`` inputs ``xs`` ``(p, c, 1, B)``: one per stage.

    Stage ``j`` is ``(c, 2^(j+1), B)``, the patterns of inputs ``0..j`` (input i = bit i); the
    last stage is the one the table is contracted with.
    """
    stage = torch.cat([1 - xs[0], xs[0]], dim=1)
    stages = [stage]
    for j in range(1, xs.shape[0]):
        h = 1 << j
        nxt = xs.new_empty(stage.shape[0], 2 * h, stage.shape[2])
        torch.mul(stage, xs[j], out=nxt[:, h:])
        torch.sub(stage, nxt[:, h:], out=nxt[:, :h])
        stages.append(stage := nxt)
    return stages


def _high_levels(rows: torch.Tensor, xs: torch.Tensor, p: int) -> list:
    """Interpolate ``rows`` ``(c, 2^q, B or 1)`` over inputs k-1, ..., p+1: the list of levels.

    Level ``i`` has ``2^(q-i)`` entries; the output (interpolating level ``q-1`` over input ``p``)
    is left to the caller.
    """
    levels = [rows]
    for j in range(xs.shape[0] - 1, p, -1):
        level = levels[-1]
        h = level.shape[1] // 2
        levels.append(torch.lerp(level[:, :h], level[:, h:], xs[j]))
    return levels


def _chunks(nodes: int, batch: int, k: int) -> list:
    step = max(1, _CHUNK_ELEMENTS // (max(batch, 1) << max(_split(k))))
    return [(s, min(s + step, nodes)) for s in range(0, nodes, step)]


def _gather(xT: torch.Tensor, index: torch.Tensor, k: int) -> torch.Tensor:
    """Rows ``index`` (input-major) of ``xT`` as ``(k, c, 1, B)``."""
    return xT.index_select(0, index).view(k, len(index) // k, 1, xT.shape[1])


class _LutLayer(torch.autograd.Function):
    """Relaxed LUT layer on the transposed input ``xT`` ``(in, B)``; saves only its inputs."""

    @staticmethod
    def forward(ctx, xT, inputs_t, table):
        k, nodes = inputs_t.shape
        batch = xT.shape[1]
        ctx.library = _native.fused_kernels(xT, table)
        if ctx.library is not None:
            ctx.save_for_backward(xT, inputs_t, table)
            ctx.k = k
            yT = xT.new_empty(nodes, batch)
            _native.in_slices(batch, lambda _, s, e: ctx.library.lut_forward(
                k, nodes, batch, s, e, xT.data_ptr(), inputs_t.data_ptr(), table.data_ptr(), yT.data_ptr()))
            return yT
        p, q = _split(k)
        matrices = table.view(nodes, 1 << q, 1 << p)
        yT = xT.new_empty(nodes, 1, batch)
        chunks = _chunks(nodes, batch, k)
        indices = [inputs_t[:, s:e].reshape(-1) for s, e in chunks]
        for (s, e), index in zip(chunks, indices):
            xs = _gather(xT, index, k)
            rows = torch.bmm(matrices[s:e], _low_patterns(xs[:p])[-1]) if p else matrices[s:e]
            last = _high_levels(rows, xs, p)[-1]
            torch.lerp(last[:, 0:1], last[:, 1:2], xs[p], out=yT[s:e])
        ctx.save_for_backward(xT, table)
        ctx.chunks, ctx.indices, ctx.k = chunks, indices, k
        return yT.view(nodes, batch)

    @staticmethod
    def backward(ctx, grad_yT):
        if ctx.library is not None:
            return _fused_backward(ctx, grad_yT)
        xT, table = ctx.saved_tensors
        need_x, _, need_table = ctx.needs_input_grad
        k, nodes, batch = ctx.k, table.shape[0], xT.shape[1]
        p, q = _split(k)
        matrices = table.view(nodes, 1 << q, 1 << p)
        grad_yT = grad_yT.contiguous().view(nodes, 1, batch)
        grad_xT = torch.zeros_like(xT) if need_x else None
        grad_table = torch.empty_like(matrices) if need_table else None
        for (s, e), index in zip(ctx.chunks, ctx.indices):
            c = e - s
            xs = _gather(xT, index, k)
            grad_xs = xT.new_empty(k, c, 1, batch) if need_x else None
            stages = _low_patterns(xs[:p]) if p else None
            patterns = stages[-1] if p else None
            rows = torch.bmm(matrices[s:e], patterns) if p else matrices[s:e]
            levels = _high_levels(rows, xs, p)
            grad = grad_yT[s:e]  # (c, 1, B): gradient of the output
            for i in range(q - 1, -1, -1):  # back through the lerps, input k-1-i
                level, j = levels[i], k - 1 - i
                h = level.shape[1] // 2
                if need_x and h == 1:
                    torch.mul(grad, level[:, 1:2] - level[:, 0:1], out=grad_xs[j])
                elif need_x:
                    torch.sum(grad * (level[:, h:] - level[:, :h]), dim=1, keepdim=True, out=grad_xs[j])
                below = xT.new_empty(c, 2 * h, batch)
                torch.mul(grad, xs[j], out=below[:, h:])
                torch.sub(grad, below[:, h:], out=below[:, :h])
                grad = below
            if need_table:  # grad is now d/d rows, (c, 2^q, B)
                if p:
                    torch.bmm(grad, patterns.transpose(1, 2), out=grad_table[s:e])
                else:
                    torch.sum(grad, dim=2, keepdim=True, out=grad_table[s:e])
            if need_x and p:
                _low_patterns_backward(torch.bmm(matrices[s:e].transpose(1, 2), grad), stages, xs, grad_xs)
            if need_x:
                grad_xT.index_add_(0, index, grad_xs.view(k * c, batch))
        return grad_xT, None, (grad_table.view(nodes, -1) if need_table else None)


def _fused_backward(ctx, grad_yT):
    xT, inputs_t, table = ctx.saved_tensors
    need_x, _, need_table = ctx.needs_input_grad
    k, (nodes, batch) = ctx.k, grad_yT.shape
    grad_yT = grad_yT.contiguous()
    grad_xT = torch.zeros_like(xT) if need_x else None
    # one table-gradient partial per slice (at most one per thread), summed below
    partials = table.new_empty(max(1, torch.get_num_threads()), nodes, table.shape[1]) if need_table else None

    def call(i, s, e):
        ctx.library.lut_backward(k, nodes, batch, s, e, xT.data_ptr(), inputs_t.data_ptr(), table.data_ptr(),
                                 grad_yT.data_ptr(), grad_xT.data_ptr() if need_x else None,
                                 partials[i].data_ptr() if need_table else None)

    used = _native.in_slices(batch, call)
    grad_table = (partials[0] if used == 1 else partials[:used].sum(0)) if need_table else None
    return grad_xT, None, grad_table


def _low_patterns_backward(grad: torch.Tensor, stages: list, xs: torch.Tensor, grad_xs: torch.Tensor) -> None:
    """Write into ``grad_xs[j]`` the gradient of the low inputs from the patterns' gradient."""
    for j in range(len(stages) - 1, 0, -1):
        h = 1 << j
        low, high = grad[:, :h], grad[:, h:]
        torch.sum((high - low) * stages[j - 1], dim=1, keepdim=True, out=grad_xs[j])
        grad = torch.lerp(low, high, xs[j])
    torch.sub(grad[:, 1:2], grad[:, 0:1], out=grad_xs[0])


def _check_shapes(x: torch.Tensor, inputs: torch.Tensor, table: torch.Tensor) -> int:
    if inputs.dim() != 2 or table.dim() != 2 or table.shape != (inputs.shape[0], 1 << inputs.shape[1]):
        raise ValueError(f"LUT layer: inputs (nodes, k) and table (nodes, 2^k) expected, got "
                         f"{tuple(inputs.shape)} and {tuple(table.shape)}")
    return check_k(inputs.shape[1], "LUT layer")


def lut_layer(x: torch.Tensor, inputs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Apply a layer of relaxed k-input LUT nodes (the exact expectation, see the module doc).

    Parameters
    ----------
    x : Tensor, shape (..., in_dim)
        Inputs in [0, 1] (probabilities of each input bit being 1).
    inputs : LongTensor, shape (nodes, k)
        ``inputs[n, j]`` is the input feeding input ``j`` (bit ``j`` of the pattern) of node ``n``.
    table : Tensor, shape (nodes, 2^k)
        Relaxed truth tables in [0, 1] (see :func:`lut_table`); differentiable.

    Returns
    -------
    Tensor, shape (..., nodes)
    """
    _check_shapes(x, inputs, table)
    lead = x.shape[:-1]
    xT = x.reshape(-1, x.shape[-1]).t().contiguous()
    yT = _LutLayer.apply(xT, inputs.t().to(torch.int64).contiguous(), table.contiguous())
    return yT.t().reshape(*lead, inputs.shape[0])


def lut_layer_hard(x: torch.Tensor, inputs: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Evaluate Boolean LUT nodes: inputs rounded at 0.5, output ``bits[n, pattern]`` exactly 0/1.

    ``bits`` is ``(nodes, 2^k)`` of 0/1 (see :func:`hard_lut_table`); the output has its dtype.
    """
    _check_shapes(x, inputs, bits)
    k = inputs.shape[1]
    pattern = torch.zeros(x.shape[:-1] + (inputs.shape[0],), dtype=torch.long, device=x.device)
    for j in range(k):
        pattern |= (x[..., inputs[:, j]] > 0.5).long() << j
    offsets = torch.arange(inputs.shape[0], device=x.device) << k
    return bits.reshape(-1)[pattern + offsets]


def lut_layer_reference(x: torch.Tensor, inputs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The definition by enumeration: sum over all ``2^k`` patterns of probability times entry."""
    _check_shapes(x, inputs, table)
    k = inputs.shape[1]
    out = torch.zeros(x.shape[:-1] + (inputs.shape[0],), dtype=x.dtype, device=x.device)
    for i in range(1 << k):
        probability = torch.ones_like(out)
        for j in range(k):
            xj = x[..., inputs[:, j]]
            probability = probability * (xj if (i >> j) & 1 else 1 - xj)
        out = out + probability * table[:, i]
    return out


def truth_table_words(bits: torch.Tensor) -> np.ndarray:
    """Pack ``(nodes, 2^k)`` 0/1 tables into ``uint64`` words: bit ``i`` is entry ``i``."""
    if isinstance(bits, torch.Tensor):
        bits = bits.detach().cpu().numpy()
    bits = (np.asarray(bits) != 0).astype(np.uint64)
    shifts = np.arange(bits.shape[1], dtype=np.uint64)
    return np.bitwise_or.reduce(bits << shifts, axis=1).astype(np.uint64)


def evaluate_truth_tables(words: np.ndarray, k: int, inputs: np.ndarray, x_bits: np.ndarray) -> np.ndarray:
    """Reference evaluation of LUT words on 0/1 inputs ``x_bits`` ``(N, in_dim)``: ``(N, nodes)`` uint8."""
    inputs = np.asarray(inputs)
    pattern = np.zeros((x_bits.shape[0], inputs.shape[0]), dtype=np.uint64)
    for j in range(k):
        pattern |= x_bits[:, inputs[:, j]].astype(np.uint64) << np.uint64(j)
    return ((np.asarray(words, dtype=np.uint64)[None, :] >> pattern) & np.uint64(1)).astype(np.uint8)


def lut_sources(in_dim: int, nodes: int, k: int, connections: str, generator: torch.Generator) -> torch.Tensor:
    """Draw the ``(nodes, k)`` inputs of a LUT layer.

    ``'random'``: every input used about equally often (inputs may repeat within a node);
    ``'unique'``: k distinct inputs per node, every input used, repeated sets avoided.
    """
    if connections == "random":
        return balanced_sources(nodes * k, in_dim, generator).view(k, nodes).t().contiguous()
    if connections == "unique":
        if in_dim < k:
            raise ValueError(f"LutLayer: connections='unique' needs in_dim >= k, got in_dim={in_dim}, k={k}")
        return distinct_sources(nodes, k, in_dim, generator)
    raise ValueError(f"LutLayer: unknown connections {connections!r}, expected one of {LUT_CONNECTIONS}")


class LutLayer(nn.Module):
    """A layer of ``out_dim`` learned k-input LUT nodes over ``in_dim`` inputs, k = 1..6.

    In training mode node ``n`` outputs the expectation of its table ``sigmoid(weights[n])`` under
    independent Bernoulli inputs (:func:`lut_layer`). In ``eval()`` mode inputs are rounded to
    0/1, each table entry is 1 where its logit is > 0, and outputs are exactly 0/1. For k = 2 the
    layer computes exactly what :class:`lgn.nn.LogicLayer` with ``parametrization='table'`` does
    (operand ``a`` = input 1, ``b`` = input 0).

    Args:
        in_dim: number of inputs.
        out_dim: number of LUT nodes.
        k: inputs per node, 1..6.
        connections: ``'random'`` (every input used about equally) or ``'unique'`` (k distinct
            inputs per node).
        init: ``'random'`` (logits ~ N(0, 1)) or ``'residual'`` (every node starts as a
            pass-through of its input 0).
        generator: random source for connections and weights.

    Shape:
        - Input: ``(..., in_dim)`` with values in [0, 1].
        - Output: ``(..., out_dim)``.

    Examples:
        >>> layer = LutLayer(64, 32, k=6)
        >>> layer(torch.rand(4, 64)).shape
        torch.Size([4, 32])
        >>> layer.truth_tables().dtype
        dtype('uint64')
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 6, connections: str = "random",
                 init: str = "random", generator: torch.Generator | None = None):
        super().__init__()
        k = check_k(k)
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"LutLayer needs in_dim >= 1 and out_dim >= 1, got {in_dim}, {out_dim}")
        if init not in LUT_INITS:
            raise ValueError(f"LutLayer: unknown init {init!r}, expected one of {LUT_INITS}")
        generator = generator or torch.default_generator
        self.in_dim, self.out_dim, self.k, self.connections, self.init = in_dim, out_dim, k, connections, init
        self.register_buffer("inputs", lut_sources(in_dim, out_dim, k, connections, generator))
        if init == "random":
            weights = torch.randn(out_dim, 1 << k, generator=generator)
        else:
            weights = self.pass_through_logits()
        self.weights = nn.Parameter(weights)

    def pass_through_logits(self) -> torch.Tensor:
        """Logits of the pass-through of input 0 (the ``'residual'`` init), shaped like ``weights``."""
        entry = torch.arange(1 << self.k) & 1  # the table of input 0: entry i is bit 0 of i
        return ((2.0 * entry - 1) * RESIDUAL_LOGIT / 2).repeat(self.out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"LutLayer expected {self.in_dim} input features, got shape {tuple(x.shape)}")
        if self.k == 2:  # the two-input table gate, computed by the very same kernel
            a, b = self.inputs[:, 1], self.inputs[:, 0]
            if self.training:
                return F.logic_layer(x, a, b, F.table_coefficients(self.weights))
            x = (x > 0.5).to(self.weights.dtype)
            return F.logic_layer(x, a, b, F.hard_table_coefficients(self.weights))
        if self.training:
            return lut_layer(x, self.inputs, lut_table(self.weights))
        return lut_layer_hard(x, self.inputs, hard_lut_table(self.weights))

    def truth_tables(self) -> np.ndarray:
        """The discretized table of each node as a ``uint64`` word: bit ``i`` is the output for the
        input pattern ``i``, where input ``j`` is bit ``j`` of ``i``; bits ``>= 2^k`` are 0."""
        return truth_table_words(self.weights > 0)

    def extra_repr(self) -> str:
        return (f"{self.in_dim}, {self.out_dim}, k={self.k}, connections={self.connections!r}, "
                f"init={self.init!r}")
