"""Relaxed permutation matrices from per-comparator swap weights, in O(n^2) work per layer.

Layer ``l`` of a relaxed sorting network is the doubly stochastic matrix ``M_l`` that, for each
comparator ``(i, j)`` with keep weight ``w``, has ``M[i, i] = M[j, j] = w`` and
``M[i, j] = M[j, i] = 1 - w`` (identity elsewhere). The relaxed permutation is
``P = M_L ... M_1``. Instead of a matrix product per layer, every layer mixes only the rows of
the comparators: ``P <- k * P + (1 - k) * P[partner]`` with ``k`` the keep weight of each row.

Three things keep it fast and lean:

* *Block structure.* After the first layers of a bitonic network ``P`` is block diagonal; the
  state is stored as ``(rows, block)`` (row ``r`` holds the columns of its own block) and grows
  to dense only when the comparators have connected enough wires.
* *Checkpointed backward.* The forward pass keeps the state only at segment starts (about
  ``sqrt(layers)`` of them); the backward pass recomputes one segment at a time and walks it in
  reverse, applying the transposed mixing (``M`` is symmetric) to the gradient.
* *Tiles.* Most layers (all but the flips of a bitonic merge) pair rows ``(f + 2 d b + t,
  f + 2 d b + t + d)``: both halves are strided views, so a layer is two ``lerp`` calls without
  gathers, and the backward pass keeps only ``lo - hi`` of such a layer's input (half a state).
* *Left products.* When only a few rows of ``P`` are needed (top-k, ranks), ``E^T P`` is built
  by applying the layers in reverse order to the ``(n, k)`` matrix ``E``.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch

from .networks import SortingNetwork

__all__ = ["Plan", "full_plan", "left_plan", "mix", "mix_chunked", "mix_tiled", "mix_whole_batch",
           "reference_permutation"]


@dataclass(frozen=True)
class Tile:
    """A layer whose pairs lie in the regular tiling ``(f + 2 d b + t, f + 2 d b + t + d)``.

    ``b < blocks``, ``t < d``, ``f = first``: both halves of the pairs are strided views of the
    rows, so mixing them needs no gathers. A slot of the tiling without a comparator has keep
    weight 1. ``columns`` (``(blocks * d,)``) holds the column of ``w`` of each slot (one past
    the last comparator for an empty slot), or is ``None`` when slot ``i`` is the layer's
    comparator ``i``.
    """

    first: int
    d: int
    blocks: int
    columns: torch.Tensor | None

    @property
    def stop(self) -> int:
        return self.first + 2 * self.d * self.blocks

    def halves(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The lower and upper rows of the pairs as ``(B, blocks, d, width)`` views."""
        batch, row, column = state.stride()
        shape = (state.shape[0], self.blocks, self.d, state.shape[2])
        strides = (batch, 2 * self.d * row, row, column)
        offset = state.storage_offset() + self.first * row
        return (state.as_strided(shape, strides, offset),
                state.as_strided(shape, strides, offset + self.d * row))


@dataclass(frozen=True)
class Step:
    """One comparator layer as seen by the mixing kernel (indices in state coordinates)."""

    lo: torch.Tensor        # (m,) wires receiving the minimum
    hi: torch.Tensor        # (m,) wires receiving the maximum
    partner: torch.Tensor   # (rows,) involution: the other wire of each row's comparator
    start: int              # this layer's swap weights are w[:, start:stop]
    stop: int
    width: int              # columns of the state during this layer
    grow_from: int | None   # state width before this layer when it must grow first
    stride: int | None = None  # d when the pairs are exactly (b + t, b + t + d), b = 0, 2d, ...
    tile: Tile | None = None   # the pairs as strided halves of the rows (see :class:`Tile`)

    @property
    def cost(self) -> int:
        return self.partner.numel() * self.width


@dataclass(frozen=True)
class Stage:
    """Steps ``[first, stop)`` that share one state layout (only ``first`` may grow it).

    The columns of the state evolve independently through a stage, so the kernel runs a stage
    on cache-sized column chunks. ``checkpoints`` (stage-local step indices) and ``arena``
    (state rows recomputed per item and column) say how a chunk recomputes its states in the
    backward pass.
    """

    first: int
    stop: int
    checkpoints: tuple[int, ...]
    arena: int


@dataclass(frozen=True)
class Plan:
    """How to apply a network's layers to a state: steps, initial state and output layout.

    ``kind == 'full'``: the state starts as the identity in block form over ``padded`` rows
    (``offset`` leading rows are padding) and ends as the dense ``(n, n)`` matrix ``P``.
    ``kind == 'left'``: the state starts as an ``(n, width)`` matrix ``E`` and the steps run in
    reverse layer order, producing ``P^T E``; it is returned transposed, as ``E^T P``.
    """

    kind: str
    n: int
    padded: int
    offset: int
    steps: tuple[Step, ...]
    checkpoints: tuple[int, ...]  # steps whose input mix_whole_batch's forward pass keeps
    arena: int              # elements per batch item to recompute its largest segment
    stages: tuple[Stage, ...]
    row_offsets: tuple[int, ...]  # step s's rows start here in the rows of all steps, end to end
    keep_rows: torch.Tensor       # (2, comparators): the rows (lo, hi) of each comparator there
    keep_source: torch.Tensor     # (comparators,): its column of w

    # -- state layout changes (forward) and their adjoints (backward) --------------------------
    def grow(self, state: torch.Tensor, old: int, new: int) -> torch.Tensor:
        """Re-embed a block-diagonal state of block width ``old`` in width ``new``."""
        if new == self.n and self.kind == "full":
            full = _expand(state, old, self.padded)
            return full[:, self.offset:, self.offset:].contiguous() if self.offset else full
        return _expand(state, old, new)

    def shrink(self, grad: torch.Tensor, old: int, new: int) -> torch.Tensor:
        """Adjoint of :meth:`grow`: keep the diagonal blocks of width ``old``."""
        if new == self.n and self.kind == "full":
            if self.offset:
                padded = grad.new_zeros(grad.shape[0], self.padded, self.padded)
                padded[:, self.offset:, self.offset:] = grad
                grad = padded
            return _compress(grad, self.padded, old)
        return _compress(grad, new, old)


def _expand(state: torch.Tensor, old: int, new: int) -> torch.Tensor:
    batch, rows, _ = state.shape
    groups, sub = rows // new, new // old
    out = state.new_zeros(batch, groups, sub, old, sub, old)
    out.diagonal(dim1=2, dim2=4).copy_(state.view(batch, groups, sub, old, old).permute(0, 1, 3, 4, 2))
    return out.view(batch, rows, new)


def _compress(grad: torch.Tensor, new: int, old: int) -> torch.Tensor:
    batch, rows, _ = grad.shape
    groups, sub = rows // new, new // old
    blocks = grad.reshape(batch, groups, sub, old, sub, old).diagonal(dim1=2, dim2=4)
    return blocks.permute(0, 1, 4, 2, 3).reshape(batch, rows, old)


def _step_tensors(pairs, rows: int, shift: int, device, start: int, empty: int) -> tuple:
    """Index tensors, stride and tile of a layer whose keep weights are ``w[:, start:]``.

    ``empty`` is the column standing for a slot of the tile without a comparator.
    """
    lo = [i + shift for i, _ in pairs]
    hi = [j + shift for _, j in pairs]
    partner = list(range(rows))
    for i, j in zip(lo, hi):
        partner[i], partner[j] = j, i
    as_long = functools.partial(torch.tensor, dtype=torch.long, device=device)
    return (as_long(lo), as_long(hi), as_long(partner), _stride(lo, hi, rows),
            _tile(lo, hi, rows, start, empty, device))


def _tile(lo, hi, rows: int, start: int, empty: int, device) -> Tile | None:
    """The :class:`Tile` holding pairs ``(lo, hi)``, if there is one at least half full."""
    if not lo or any(j - i != hi[0] - lo[0] for i, j in zip(lo, hi)):
        return None
    d, low = hi[0] - lo[0], min(lo)
    for first in range(low, max(-1, low - d), -1):
        places = [divmod(i - first, 2 * d) for i in lo]
        if all(t < d for _, t in places):
            break
    else:
        return None
    blocks = max(b for b, _ in places) + 1
    if first + 2 * d * blocks > rows or 2 * len(lo) < blocks * d:
        return None
    slots = [b * d + t for b, t in places]
    if slots == list(range(blocks * d)):
        return Tile(first, d, blocks, None)
    columns = [empty] * (blocks * d)
    for comparator, slot in enumerate(slots):
        columns[slot] = start + comparator
    return Tile(first, d, blocks, torch.tensor(columns, dtype=torch.long, device=device))


def _stride(lo, hi, rows: int) -> int | None:
    """Return ``d`` if the pairs tile all rows as ``(b + t, b + t + d)``: views replace gathers."""
    if not lo:
        return None
    d = hi[0] - lo[0]
    if rows % (2 * d) or len(lo) * 2 != rows:
        return None
    regular = [b + t for b in range(0, rows, 2 * d) for t in range(d)]
    return d if lo == regular and all(j - i == d for i, j in zip(lo, hi)) else None


def _checkpoints(costs) -> tuple[tuple[int, ...], int]:
    """Choose checkpoint steps minimising backward memory: checkpoints plus one recomputed segment.

    A segment starts at a checkpoint and extends while its states fit a budget; budgets from
    one state to all of them are tried in 5% steps (about ``2 sqrt(total)`` states at best).
    ``costs`` are the state sizes of the steps. Returns the checkpoint step indices and the
    recompute buffer size (in the unit of ``costs``).
    """
    if not costs:
        return (), 0
    prefix = [0, *itertools.accumulate(costs)]
    best = None
    budget = max(costs)
    while True:
        starts, used = [], math.inf
        for index, cost in enumerate(costs):
            if used + cost > budget:
                starts.append(index)
                used = 0
            used += cost
        bounds = starts + [len(costs)]
        arena = max(prefix[b] - prefix[a + 1] for a, b in zip(bounds, bounds[1:]))
        memory = sum(costs[a] for a in starts) + arena
        if best is None or memory < best[0]:
            best = (memory, tuple(starts), arena)
        if budget >= prefix[-1]:
            break
        budget = min(prefix[-1], int(budget * 1.05) + 1)
    return best[1], best[2]


@functools.lru_cache(maxsize=64)
def full_plan(network: SortingNetwork, device: torch.device) -> Plan:
    """Plan building the dense relaxed permutation ``P`` (``(n, n)``) of ``network``."""
    n = network.n
    padded = 1 << (n - 1).bit_length()
    offset = padded - n
    steps, start, block, dense = [], 0, 1, False
    for layer in network.layers:
        previous = block
        if not dense:
            for i, j in layer:
                while (i + offset) // block != (j + offset) // block:
                    block *= 2
            dense = padded * block >= n * n
        width = n if dense else block
        rows, shift = (n, 0) if dense else (padded, offset)
        lo, hi, partner, stride, tile = _step_tensors(layer, rows, shift, device, start,
                                                      network.num_comparators)
        grow = None if width == previous else previous
        steps.append(Step(lo, hi, partner, start, start + len(layer), width, grow, stride, tile))
        block, start = (n if dense else block), start + len(layer)
    if not dense:  # the network never connected everything: finish with a dense layout
        lo, hi, partner, *_ = _step_tensors((), n, 0, device, start, start)
        steps.append(Step(lo, hi, partner, start, start, n, block))
    return _plan("full", n, padded, offset, steps)


@functools.lru_cache(maxsize=64)
def left_plan(network: SortingNetwork, device: torch.device, width: int) -> Plan:
    """Plan building ``E^T P`` for an ``(n, width)`` matrix ``E`` (layers applied in reverse)."""
    n, steps, start = network.n, [], network.num_comparators
    for layer in reversed(network.layers):
        lo, hi, partner, stride, tile = _step_tensors(layer, n, 0, device, start - len(layer),
                                                      network.num_comparators)
        steps.append(Step(lo, hi, partner, start - len(layer), start, width, None, stride, tile))
        start -= len(layer)
    return _plan("left", n, n, 0, steps)


#: A stage whose states, summed, are at most this many times its largest is recomputed in one
#: segment per chunk (all of its states kept); longer ones (odd-even) are checkpointed.
STAGE_STATES = 16


def _plan(kind: str, n: int, padded: int, offset: int, steps) -> Plan:
    bounds = [i for i, step in enumerate(steps) if i == 0 or step.grow_from is not None]
    stages = []
    for first, stop in zip(bounds, bounds[1:] + [len(steps)]):
        rows = [step.partner.numel() for step in steps[first:stop]]
        if sum(rows) <= STAGE_STATES * max(rows):
            stages.append(Stage(first, stop, (0,), sum(rows[1:])))
        else:
            stages.append(Stage(first, stop, *_checkpoints(rows)))
    offsets = [0, *itertools.accumulate(step.partner.numel() for step in steps)]
    device = steps[0].lo.device if steps else torch.device("cpu")
    none = [torch.zeros(0, dtype=torch.long)]
    keep_rows = torch.stack([torch.cat([step.lo + o for step, o in zip(steps, offsets)] or none),
                             torch.cat([step.hi + o for step, o in zip(steps, offsets)] or none)]).to(device)
    source = torch.cat([torch.arange(step.start, step.stop) for step in steps] or
                       [torch.zeros(0, dtype=torch.long)]).to(device)
    return Plan(kind, n, padded, offset, tuple(steps), *_checkpoints([s.cost for s in steps]),
                tuple(stages), tuple(offsets), keep_rows, source)


def _keep(w: torch.Tensor, step: Step, rows: int) -> torch.Tensor:
    """Per-row weight ``k`` of the row itself (1 for rows without a comparator), ``(B, rows, 1)``."""
    seg = w[:, step.start:step.stop]
    keep = w.new_ones(w.shape[0], rows)
    keep.index_copy_(1, step.lo, seg).index_copy_(1, step.hi, seg)
    return keep.unsqueeze(-1)


class _Arena:
    """Reusable flat buffers handing out contiguous views.

    Large temporaries are otherwise fresh ``mmap`` allocations whose page faults cost more than
    the arithmetic at ``n = 1024``.
    """

    def __init__(self, like: torch.Tensor):
        self.like, self.buffers = like, {}

    def view(self, key, shape, offset: int = 0) -> torch.Tensor:
        size = offset + math.prod(shape)
        buf = self.buffers.get(key)
        if buf is None or buf.numel() < size:
            self.buffers[key] = buf = self.like.new_empty(size)
        return buf[offset:size].view(shape)


def _mix_(state: torch.Tensor, step: Step, w: torch.Tensor, arena: _Arena) -> torch.Tensor:
    """In place: ``state <- k * state + (1 - k) * state[partner]`` (also ``M^T`` since M = M^T)."""
    return _mix(state, step, w, arena, state)


def _mix(state: torch.Tensor, step: Step, w: torch.Tensor, arena: _Arena, out: torch.Tensor):
    """Write ``k * state + (1 - k) * state[partner]`` to ``out`` (which may be ``state``)."""
    if not step.lo.numel():
        return out if out is state else out.copy_(state)
    return _mix_weighted(state, step, 1 - _keep(w, step, state.shape[1]), arena, out)


def _mix_weighted(state: torch.Tensor, step: Step, weight: torch.Tensor, arena: _Arena,
                  out: torch.Tensor) -> torch.Tensor:
    """:func:`_mix` with the partner weights ``1 - k`` given, ``(B, rows, 1)``."""
    if not step.lo.numel():
        return out if out is state else out.copy_(state)
    gathered = torch.index_select(state, 1, step.partner, out=arena.view("gather", state.shape))
    if out is state:
        return state.lerp_(gathered, weight)
    return torch.lerp(state, gathered, weight, out=out)


def _pair_grad(grad: torch.Tensor, before: torch.Tensor, step: Step, arena: _Arena) -> torch.Tensor:
    """Return ``dL/dw = sum_c (G[lo] - G[hi]) * (S[lo] - S[hi])`` per comparator, ``(B, m)``.

    Large layers are processed in chunks of pairs so that the three gathered buffers stay near a
    quarter of a state instead of one and a half states.
    """
    batch, rows, width = grad.shape
    pairs = step.lo.numel()
    if step.stride is not None:  # both halves are strided views: no gathers needed
        shape = (batch, rows // (2 * step.stride), 2, step.stride, width)
        g, s = grad.view(shape), before.view(shape)
        d_grad = torch.sub(g[:, :, 0], g[:, :, 1], out=arena.view("d_grad", g[:, :, 0].shape))
        d_state = torch.sub(s[:, :, 0], s[:, :, 1], out=arena.view("d_state", s[:, :, 0].shape))
        return d_grad.mul_(d_state).sum(-1).view(batch, pairs)
    chunk = min(pairs, max(-(-pairs // 4), (1 << 20) // max(1, batch * width)))
    out = []
    for first in range(0, pairs, chunk):
        lo, hi = step.lo[first:first + chunk], step.hi[first:first + chunk]
        shape = (batch, lo.numel(), width)
        other = arena.view("hi", shape)
        d_grad = torch.index_select(grad, 1, lo, out=arena.view("d_grad", shape))
        d_grad.sub_(torch.index_select(grad, 1, hi, out=other))
        d_state = torch.index_select(before, 1, lo, out=arena.view("d_state", shape))
        d_state.sub_(torch.index_select(before, 1, hi, out=other))
        out.append(d_grad.mul_(d_state).sum(-1))
    return torch.cat(out, -1)


#: Elements of a chunk (items x rows x columns) on the CPU: a chunk goes through all steps of
#: a stage, and back, while its states stay in the cache (tuned with bench/sort.py).
CPU_CHUNK_ELEMENTS = 1 << 18


def _l2_bytes(path: str = "/sys/devices/system/cpu/cpu0/cache/index2/size", default: int = 2 << 20) -> int:
    """The per-core L2 cache size (Linux sysfs), or ``default`` where it cannot be read."""
    try:
        with open(path) as size:
            text = size.read().strip().upper()
        return int(text[:-1]) << {"K": 10, "M": 20}[text[-1]] if text[-1] in "KM" else int(text)
    except (OSError, ValueError, KeyError, IndexError):
        return default


#: The same for :func:`mix_tiled`, whose chunks keep half as much per layer: a sixteenth of the
#: L2 cache in float32 elements (a chunk's states, tape and gradients then stay in L2; with a
#: 2 MiB L2 that is 2^17, 1.2x faster at n = 1024 than 2^19, see bench/sort.py).
TILED_CHUNK_ELEMENTS = max(1 << 15, min(1 << 20, _l2_bytes() // 16))


def _chunks(shape, device: torch.device, align: int, elements: int) -> list[tuple[int, int, int, int]]:
    """Item and column ranges ``(b0, b1, c0, c1)`` of a ``(B, rows, width)`` state, cache-sized.

    Column ranges never cross a multiple of ``align``.
    """
    batch, rows, width = shape
    if device.type != "cpu":
        return [(0, batch, a, min(a + align, width)) for a in range(0, width, align)]
    columns = min(align, max(1, elements // max(1, rows)))
    items = max(1, min(batch, elements // max(1, rows * columns)))
    return [(b, min(b + items, batch), c, min(c + columns, a + align, width))
            for b in range(0, batch, items)
            for a in range(0, width, align) for c in range(a, min(a + align, width), columns)]


def _partner_weights(plan: Plan, w: torch.Tensor) -> list[torch.Tensor]:
    """``1 - k`` of the rows of each step, ``(B, rows, 1)``, from one scatter for all steps."""
    keep = w.new_ones(w.shape[0], plan.row_offsets[-1])
    source = w.index_select(1, plan.keep_source)
    keep.index_copy_(1, plan.keep_rows[0], source).index_copy_(1, plan.keep_rows[1], source)
    weights = keep.neg_().add_(1).unsqueeze(-1)
    return [weights[:, a:b] for a, b in zip(plan.row_offsets, plan.row_offsets[1:])]


def _entry(plan: Plan, stage: Stage, state: torch.Tensor) -> torch.Tensor:
    """The state entering ``stage``: its input, grown to the stage's layout if it grows."""
    step = plan.steps[stage.first]
    return state if step.grow_from is None else plan.grow(state, step.grow_from, step.width)


#: Narrowest old block a stage grows from lazily (see :class:`_Layout`).
LAZY_COLUMNS = 64


class _Layout:
    """How a stage's chunks read its entry state and hand back the gradient there.

    When the stage grows the block width ``old -> new`` (CPU, no padding rows dropped, ``old``
    at least 64 columns or a chunk's width), chunks read their columns straight from the narrow
    input, zeros elsewhere, and write only the diagonal blocks of the gradient: the wide
    ``(B, rows, new)`` entry and its gradient are never built. Otherwise the entry is grown once
    and chunks slice it.
    """

    def __init__(self, plan: Plan, stage: Stage, state: torch.Tensor, elements: int):
        step = plan.steps[stage.first]
        self.width = step.width
        # lazy only where old blocks are wide enough for chunks of 64 columns (or a full chunk)
        self.elements = elements
        natural = min(step.width, LAZY_COLUMNS, max(1, elements // max(1, state.shape[1])))
        self.lazy = (step.grow_from is not None and step.grow_from >= natural and state.device.type == "cpu"
                     and not (plan.kind == "full" and step.width == plan.n and plan.offset))
        if self.lazy:
            self.old, self.input = step.grow_from, state
            self.shape = (state.shape[0], state.shape[1], step.width)
        else:
            self.old, self.input = step.width, _entry(plan, stage, state)
            self.shape = self.input.shape

    def chunks(self):
        return _chunks(self.shape, self.input.device, self.old, self.elements)

    def _blocks(self, tensor: torch.Tensor, width: int) -> torch.Tensor:
        rows = tensor.shape[1]
        return tensor.view(tensor.shape[0], rows // self.width, self.width // self.old, self.old, width)

    def source(self, b0, b1, c0, c1, arena: _Arena) -> torch.Tensor:
        """The entry's chunk: a view when it exists, else built in a buffer."""
        if not self.lazy:
            return self.input[b0:b1, :, c0:c1]
        block, first = c0 // self.old, c0 % self.old
        out = arena.view("entry", (b1 - b0, self.shape[1], c1 - c0)).zero_()
        self._blocks(out, c1 - c0)[:, :, block] = \
            self._blocks(self.input, self.old)[b0:b1, :, block, :, first:first + c1 - c0]
        return out

    def new_gradient(self) -> torch.Tensor:
        return self.input.new_empty(self.input.shape)

    def put_gradient(self, grad_in: torch.Tensor, grad: torch.Tensor, b0, b1, c0, c1) -> None:
        """Store a chunk's gradient at the entry (only its diagonal block when ``lazy``)."""
        if not self.lazy:
            grad_in[b0:b1, :, c0:c1] = grad
            return
        block, first = c0 // self.old, c0 % self.old
        self._blocks(grad_in, self.old)[b0:b1, :, block, :, first:first + c1 - c0] = \
            self._blocks(grad, c1 - c0)[:, :, block]


def _stage_forward(plan: Plan, stage: Stage, layout: _Layout, weights, arena: _Arena) -> torch.Tensor:
    """Return the state after the steps of ``stage``, computed chunk by chunk."""
    out = layout.input.new_empty(layout.shape)
    chunks = layout.chunks()
    for b0, b1, c0, c1 in chunks:
        source = layout.source(b0, b1, c0, c1, arena)
        state = out if len(chunks) == 1 else arena.view("chunk", source.shape)
        for s in range(stage.first, stage.stop):
            previous = source if s == stage.first else state
            _mix_weighted(previous, plan.steps[s], weights[s][b0:b1], arena, state)
        if state is not out:
            out[b0:b1, :, c0:c1] = state
    return out


def _stage_backward(plan: Plan, stage: Stage, layout: _Layout, grad_out: torch.Tensor, weights,
                    grad_w: torch.Tensor, arena: _Arena) -> torch.Tensor:
    """Return the gradient at the entry of ``stage`` (narrow when it grows) from ``grad_out``.

    Chunk by chunk: run the chunk from the entry to its checkpoints, then recompute each
    segment's states and walk them in reverse, adding the chunk's share of ``dL/dw`` (a sum
    over columns) to ``grad_w`` and mixing the gradient by the transposed layers (``M = M^T``).
    """
    grad_in = layout.new_gradient()
    bounds = [stage.first + c for c in stage.checkpoints] + [stage.stop]
    segments = list(zip(bounds, bounds[1:]))
    for b0, b1, c0, c1 in layout.chunks():
        shape = (b1 - b0, layout.shape[1], c1 - c0)
        size = math.prod(shape)
        arena.view("segment", (stage.arena * size // shape[1],))  # allocated once at full size
        arena.view("checkpoints", (len(segments) * size,))
        saved = [arena.view("checkpoints", shape).copy_(layout.source(b0, b1, c0, c1, arena))]
        for k, (first, stop) in enumerate(segments[:-1]):
            state = arena.view("checkpoints", shape, (k + 1) * size)
            for s in range(first, stop):
                previous = saved[-1] if s == first else state
                _mix_weighted(previous, plan.steps[s], weights[s][b0:b1], arena, state)
            saved.append(state)
        grad = arena.view("grad", shape).copy_(grad_out[b0:b1, :, c0:c1])
        for first, stop in reversed(segments):
            inputs = [saved.pop()]
            for s in range(first + 1, stop):
                target = arena.view("segment", shape, (s - first - 1) * size)
                weight = weights[s - 1][b0:b1]
                inputs.append(_mix_weighted(inputs[-1], plan.steps[s - 1], weight, arena, target))
            for s in reversed(range(first, stop)):
                step, before = plan.steps[s], inputs.pop()
                if step.lo.numel():
                    grad_w[b0:b1, step.start:step.stop] += _pair_grad(grad, before, step, arena)
                _mix_weighted(grad, step, weights[s][b0:b1], arena, grad)
        layout.put_gradient(grad_in, grad, b0, b1, c0, c1)
    return grad_in


class _Mix(torch.autograd.Function):
    """Stage by stage, each stage chunk by chunk (items x columns) so that states stay cached.

    The forward pass keeps each stage's input (before it grows: about one ``P`` in all for a
    bitonic network); the backward pass recomputes each chunk's states within its stage from
    there (:func:`_stage_backward`).
    """

    @staticmethod
    def forward(ctx, w, plan, init):
        weights, arena = _partner_weights(plan, w), _Arena(w)
        state, inputs = _initial(plan, init, w), []
        for stage in plan.stages:
            inputs.append(state)
            state = _stage_forward(plan, stage, _Layout(plan, stage, state, CPU_CHUNK_ELEMENTS),
                                   weights, arena)
        ctx.plan = plan
        ctx.save_for_backward(w, *(inputs if ctx.needs_input_grad[0] else ()))
        return state if plan.kind == "full" else state.transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.plan
        w, *inputs = ctx.saved_tensors
        weights, arena = _partner_weights(plan, w), _Arena(w)
        grad_w = torch.zeros_like(w)
        grad_state = grad if plan.kind == "full" else grad.transpose(1, 2)
        for stage, state in zip(reversed(plan.stages), reversed(inputs)):
            layout = _Layout(plan, stage, state, CPU_CHUNK_ELEMENTS)
            grad_state = _stage_backward(plan, stage, layout, grad_state, weights, grad_w, arena)
            step = plan.steps[stage.first]
            if step.grow_from is not None and not layout.lazy:
                grad_state = plan.shrink(grad_state, step.grow_from, step.width)
        return grad_w, None, None


def _tile_weights(plan: Plan, w: torch.Tensor) -> list[torch.Tensor]:
    """Partner weights ``1 - k`` of each step: ``(B, blocks, d, 1)`` per slot of a tiled step
    (0 for an empty slot), ``(B, rows, 1)`` per row of another one."""
    rows = _partner_weights(plan, w)
    if not any(step.tile is not None and step.tile.columns is not None for step in plan.steps):
        padded = w
    else:
        padded = torch.cat([w, w.new_ones(w.shape[0], 1)], 1)
    weights = []
    for step, per_row in zip(plan.steps, rows):
        tile = step.tile
        if tile is None:
            weights.append(per_row)
            continue
        keep = w[:, step.start:step.stop] if tile.columns is None else padded.index_select(1, tile.columns)
        weights.append((1 - keep).view(w.shape[0], tile.blocks, tile.d, 1))
    return weights


def _mix_tiled(state: torch.Tensor, step: Step, weight: torch.Tensor, arena: _Arena,
               out: torch.Tensor) -> torch.Tensor:
    """Write the layer's mixing of ``state`` to ``out`` (never ``state``): for a tiled step, one
    ``lerp`` per half of the pairs on strided views; otherwise gather the partners."""
    tile = step.tile
    if tile is None:
        return _mix_weighted(state, step, weight, arena, out)
    lo, hi = tile.halves(state)
    out_lo, out_hi = tile.halves(out)
    torch.lerp(lo, hi, weight, out=out_lo)
    torch.lerp(hi, lo, weight, out=out_hi)
    if tile.first:
        out[:, :tile.first] = state[:, :tile.first]
    if tile.stop < state.shape[1]:
        out[:, tile.stop:] = state[:, tile.stop:]
    return out


class _PingPong:
    """Two chunk buffers of an arena: :meth:`other` is the one that is not ``state``."""

    def __init__(self, arena: _Arena, name: str, shape):
        self.buffers = arena.view(name + "-a", shape), arena.view(name + "-b", shape)

    def other(self, state: torch.Tensor) -> torch.Tensor:
        return self.buffers[self.buffers[0].data_ptr() == state.data_ptr()]


def _tape_rows(step: Step) -> int:
    """Rows a step keeps for its backward pass: ``lo - hi`` per tile slot, else its input."""
    if step.tile is not None:
        return step.tile.blocks * step.tile.d
    return step.partner.numel() if step.lo.numel() else 0


def _tiled_stage_forward(plan: Plan, stage: Stage, layout: _Layout, weights, arena: _Arena) -> torch.Tensor:
    """Return the state after the steps of ``stage``, chunk by chunk, the last step writing
    straight into the output."""
    out = layout.input.new_empty(layout.shape)
    for b0, b1, c0, c1 in layout.chunks():
        state = layout.source(b0, b1, c0, c1, arena)
        buffers = _PingPong(arena, "state", state.shape)
        for s in range(stage.first, stage.stop):
            target = out[b0:b1, :, c0:c1] if s == stage.stop - 1 else buffers.other(state)
            state = _mix_tiled(state, plan.steps[s], weights[s][b0:b1], arena, target)
    return out


def _tiled_stage_backward(plan: Plan, stage: Stage, layout: _Layout, grad_out: torch.Tensor, weights,
                          grad_w: torch.Tensor, arena: _Arena) -> torch.Tensor:
    """Return the gradient at the entry of ``stage`` (narrow when it grows) from ``grad_out``.

    Chunk by chunk: run the chunk from the entry to its checkpoints, then recompute each
    segment keeping what the backward pass needs (for a tiled step only ``lo - hi``, half a
    state) and walk it in reverse, adding ``dL/dw`` to ``grad_w`` (a column past the last
    comparator collects empty slots) and mixing the gradient by the transposed layers.
    """
    grad_in = layout.new_gradient()
    bounds = [stage.first + c for c in stage.checkpoints] + [stage.stop]
    segments = list(zip(bounds, bounds[1:]))
    tape_rows = max(sum(_tape_rows(plan.steps[s]) for s in range(a, b)) for a, b in segments)
    for b0, b1, c0, c1 in layout.chunks():
        shape = (b1 - b0, layout.shape[1], c1 - c0)
        per_row = (b1 - b0) * (c1 - c0)
        states, grads = _PingPong(arena, "state", shape), _PingPong(arena, "grad", shape)
        arena.view("tape", (tape_rows * per_row,))  # allocated once at full size
        arena.view("checkpoints", ((len(segments) - 1) * math.prod(shape),))
        saved = [layout.source(b0, b1, c0, c1, arena)]
        for k, (first, stop) in enumerate(segments[:-1]):
            state = saved[-1]
            for s in range(first, stop):
                target = arena.view("checkpoints", shape, k * math.prod(shape)) if s == stop - 1 \
                    else states.other(state)
                state = _mix_tiled(state, plan.steps[s], weights[s][b0:b1], arena, target)
            saved.append(state)
        grad = grad_out[b0:b1, :, c0:c1]  # read in place by a tiled step, copied before another
        for first, stop in reversed(segments):
            tape, used, state = [], 0, saved.pop()
            for s in range(first, stop):
                step = plan.steps[s]
                if step.tile is not None:
                    lo, hi = step.tile.halves(state)
                    tape.append(torch.sub(lo, hi, out=arena.view("tape", lo.shape, used)))
                elif step.lo.numel():
                    tape.append(state)
                else:
                    tape.append(None)
                used += _tape_rows(step) * per_row
                if s + 1 < stop:
                    following = plan.steps[s + 1]
                    if following.tile is None and following.lo.numel():  # its input is kept
                        target = arena.view("tape", shape, used)
                    else:
                        target = states.other(state)
                    state = _mix_tiled(state, step, weights[s][b0:b1], arena, target)
            for s in reversed(range(first, stop)):
                step, kept, weight = plan.steps[s], tape.pop(), weights[s][b0:b1]
                if step.tile is not None:
                    lo, hi = step.tile.halves(grad)
                    diff = torch.sub(lo, hi, out=arena.view("diff", lo.shape))
                    grad = _mix_tiled(grad, step, weight, arena, grads.other(grad))
                    pair = diff.mul_(kept).sum(-1).view(b1 - b0, -1)
                    if step.tile.columns is None:
                        grad_w[b0:b1, step.start:step.stop] += pair
                    else:
                        grad_w[b0:b1].index_add_(1, step.tile.columns, pair)
                elif step.lo.numel():
                    if grad.data_ptr() not in {b.data_ptr() for b in grads.buffers}:
                        grad = grads.buffers[0].copy_(grad)
                    grad_w[b0:b1, step.start:step.stop] += _pair_grad(grad, kept, step, arena)
                    _mix_weighted(grad, step, weight, arena, grad)
        layout.put_gradient(grad_in, grad, b0, b1, c0, c1)
    return grad_in


class _MixTiled(torch.autograd.Function):
    """:class:`_Mix` with tiled steps mixed on strided views (no gathers) and a backward pass
    that keeps ``lo - hi`` of a tiled step's input instead of the input itself."""

    @staticmethod
    def forward(ctx, w, plan, init):
        weights, arena = _tile_weights(plan, w), _Arena(w)
        state, inputs = _initial(plan, init, w), []
        for stage in plan.stages:
            inputs.append(state)
            state = _tiled_stage_forward(plan, stage, _Layout(plan, stage, state, TILED_CHUNK_ELEMENTS),
                                         weights, arena)
        ctx.plan = plan
        ctx.save_for_backward(w, *(inputs if ctx.needs_input_grad[0] else ()))
        return state if plan.kind == "full" else state.transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.plan
        w, *inputs = ctx.saved_tensors
        weights, arena = _tile_weights(plan, w), _Arena(w)
        grad_w = w.new_zeros(w.shape[0], w.shape[1] + 1)
        grad_state = grad if plan.kind == "full" else grad.transpose(1, 2)
        for stage, state in zip(reversed(plan.stages), reversed(inputs)):
            layout = _Layout(plan, stage, state, TILED_CHUNK_ELEMENTS)
            grad_state = _tiled_stage_backward(plan, stage, layout, grad_state, weights, grad_w, arena)
            step = plan.steps[stage.first]
            if step.grow_from is not None and not layout.lazy:
                grad_state = plan.shrink(grad_state, step.grow_from, step.width)
        return grad_w[:, :-1], None, None


class _MixWholeBatch(torch.autograd.Function):
    """The first kernel: the whole batch goes through each layer, and the forward pass keeps
    memory-optimal checkpoints over all layers. Each layer streams ``(B, rows, width)`` states
    through memory, so it is the faster one only while those fit in the cache (small ``n``)."""

    @staticmethod
    def forward(ctx, w, plan, init):
        state = _initial(plan, init, w)
        arena = _Arena(w)
        keep = set(plan.checkpoints) if ctx.needs_input_grad[0] else set()
        saved = []
        for s, step in enumerate(plan.steps):
            if step.grow_from is not None:
                state = plan.grow(state, step.grow_from, step.width)
            if s in keep:
                saved.append(state.clone())
            _mix_(state, step, w, arena)
        ctx.plan = plan
        ctx.save_for_backward(w, *saved)
        return state if plan.kind == "full" else state.transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad):
        plan, starts = ctx.plan, list(ctx.plan.checkpoints)
        w, *saved = ctx.saved_tensors
        if plan.kind == "full":
            grad_state = grad.clone(memory_format=torch.contiguous_format)
        else:
            grad_state = grad.transpose(1, 2).contiguous()
        grad_w = torch.zeros_like(w)
        arena = _Arena(w)
        bounds = starts + [len(plan.steps)]
        for seg in reversed(range(len(starts))):
            first, stop = bounds[seg], bounds[seg + 1]
            # Recompute the inputs of this segment's steps into one reused buffer ("segment")
            # of plan.arena elements per batch item, allocated once at full size.
            inputs, state, offset = [saved[seg]], saved[seg], 0
            arena.view("segment", (w.shape[0] * plan.arena,))
            for s in range(first + 1, stop):
                step = plan.steps[s]
                if step.grow_from is None:
                    target = arena.view("segment", state.shape, offset)
                    nxt = _mix(state, plan.steps[s - 1], w, arena, target)
                else:
                    mixed = _mix_(state.clone(), plan.steps[s - 1], w, arena)
                    grown = plan.grow(mixed, step.grow_from, step.width)
                    nxt = arena.view("segment", grown.shape, offset).copy_(grown)
                    del mixed, grown
                offset += nxt.numel()
                inputs.append(nxt)
                state = nxt
            del state
            for s in reversed(range(first, stop)):
                step, before = plan.steps[s], inputs.pop()
                if step.lo.numel():
                    grad_w[:, step.start:step.stop] = _pair_grad(grad_state, before, step, arena)
                del before
                _mix_(grad_state, step, w, arena)
                if step.grow_from is not None:
                    grad_state = plan.shrink(grad_state, step.grow_from, step.width)
        return grad_w, None, None


def _initial(plan: Plan, init, w: torch.Tensor) -> torch.Tensor:
    batch = w.shape[0]
    if plan.kind == "full":
        return w.new_ones(batch, plan.padded, 1)
    return init.to(w).expand(batch, *init.shape).clone()


def mix_whole_batch(w: torch.Tensor, plan: Plan, init: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`mix` as first written (whole batch per layer; the baseline of ``bench/sort.py``)."""
    return _MixWholeBatch.apply(w, plan, init)


def mix_chunked(w: torch.Tensor, plan: Plan, init: torch.Tensor | None = None) -> torch.Tensor:
    """The previous :func:`mix` above a chunk (partners gathered; the baseline of ``bench/sort.py``)."""
    return _Mix.apply(w, plan, init)


def mix_tiled(w: torch.Tensor, plan: Plan, init: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`mix_chunked` mixing tiled steps on strided views, keeping half states for backward."""
    return _MixTiled.apply(w, plan, init)


def mix(w: torch.Tensor, plan: Plan, init: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the relaxed layers with keep weights ``w`` ``(B, comparators)``.

    Returns ``P`` ``(B, n, n)`` for a full plan, ``E^T P`` ``(B, width, n)`` for a left plan
    with ``init = E`` ``(n, width)``.

    On the CPU, when the batch's largest state exceeds a cache-sized chunk, this is
    :func:`mix_tiled` (memory in the backward pass: the stage inputs, about one ``P`` for a
    bitonic network, plus cache-sized chunk buffers); otherwise, and on other devices, it is
    :func:`mix_whole_batch` (the segment checkpoints plus one segment of states, about
    ``2 sqrt(layers)`` states of the block-compressed size).
    """
    largest = max((step.cost for step in plan.steps), default=0)
    if w.device.type == "cpu" and w.shape[0] * largest > CPU_CHUNK_ELEMENTS:
        return _MixTiled.apply(w, plan, init)
    return _MixWholeBatch.apply(w, plan, init)


def reference_permutation(w: torch.Tensor, network: SortingNetwork) -> torch.Tensor:
    """Build ``P = M_L ... M_1`` with one dense ``(n, n)`` matrix product per layer (baseline)."""
    n, batch = network.n, w.shape[0]
    perm = torch.eye(n, dtype=w.dtype, device=w.device).expand(batch, n, n)
    plan = left_plan(network, w.device, 1)  # same index tensors, dense coordinates
    for step in reversed(plan.steps):
        keep = _keep(w, step, n)
        layer = torch.diag_embed(keep.squeeze(-1)) + torch.zeros_like(perm).scatter(
            2, step.partner.expand(batch, n).unsqueeze(-1), 1 - keep)
        perm = layer @ perm
    return perm
