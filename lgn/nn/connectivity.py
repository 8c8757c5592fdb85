"""Learned connectivity: each node input chooses its source among m candidates, trained with the nodes.

Every input *slot* of a node (2 per two-input gate, k per LUT-k node) holds ``m`` candidate
sources and ``m`` logits. In training mode the slot reads the mixture
``sum_c softmax(logits / temperature)[c] * x[candidates[c]]`` (or the Gumbel-softmax of the
logits, ``selection='gumbel'``); lowering the temperature over the run (see
:func:`temperature_at`) makes the choice hard. In ``eval()`` mode each slot reads its most likely
candidate, exactly: the layer then equals a fixed-wiring layer with :meth:`chosen_sources`
(:meth:`LearnedLogicLayer.to_fixed`), which is what lowering emits.

Memory is ``m x slots`` parameters, never ``inputs x slots``. ``sources='random'`` draws the
candidates once, at construction (distinct within a slot). ``sources='all'`` lets a slot pick
from *all* inputs with a bounded Top-K scheme: the m candidates are the slot's current top m;
:meth:`SourceSelector.regrow` (called every few hundred steps) replaces the least likely of
them, never the most likely, by inputs drawn afresh from all inputs, so over a run every input
can be tried while only m per slot are ever held (when ``m == in_dim`` the choice is exact).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _native
from ._sources import distinct_sources
from .lut import LutLayer, check_k
from .modules import PARAMETRIZATIONS, RESIDUAL_LOGIT, LogicLayer

__all__ = [
    "SELECTIONS", "SOURCES", "WIRING_INITS",
    "select_sources", "selection_probabilities", "temperature_at", "set_temperature", "regrow_all",
    "SourceSelector", "LearnedLogicLayer", "LearnedLutLayer", "feature_candidates",
]

SELECTIONS = ("softmax", "gumbel")
SOURCES = ("random", "all")
#: ``'uniform'``: all candidates equally likely at first; ``'fixed'``: candidate 0 favoured (the
#: layer starts as a fixed random wiring and learns to rewire).
WIRING_INITS = ("uniform", "fixed")
_CHUNK_ELEMENTS = 1 << 18


class _SelectSources(torch.autograd.Function):
    """``yT[s] = sum_c probs[s, c] * xT[candidates[s, c]]`` on transposed inputs; saves inputs."""

    @staticmethod
    def forward(ctx, xT, candidates, probs):
        slots, m = candidates.shape
        batch = xT.shape[1]
        ctx.library = _native.fused_kernels(xT, probs)
        if ctx.library is not None:
            yT = xT.new_empty(slots, batch)
            _native.in_slices(batch, lambda _, s, e: ctx.library.select_forward(
                slots, m, batch, s, e, xT.data_ptr(), candidates.data_ptr(), probs.data_ptr(), yT.data_ptr()))
            ctx.save_for_backward(xT, candidates, probs)
            return yT
        yT = xT.new_empty(slots, 1, batch)
        for s, e in _chunks(slots, m, batch):
            gathered = xT.index_select(0, candidates[s:e].reshape(-1)).view(e - s, m, batch)
            torch.bmm(probs[s:e].unsqueeze(1), gathered, out=yT[s:e])
        ctx.save_for_backward(xT, candidates, probs)
        return yT.view(slots, batch)

    @staticmethod
    def backward(ctx, grad_yT):
        xT, candidates, probs = ctx.saved_tensors
        need_x, _, need_probs = ctx.needs_input_grad
        slots, m = candidates.shape
        batch = xT.shape[1]
        grad_yT = grad_yT.contiguous()
        grad_xT = torch.zeros_like(xT) if need_x else None
        if ctx.library is not None:
            # one gradient partial per batch slice (at most one per thread), summed below
            partials = probs.new_empty(max(1, torch.get_num_threads()), slots, m) if need_probs else None

            def call(i, s, e):
                ctx.library.select_backward(slots, m, batch, s, e, xT.data_ptr(), candidates.data_ptr(),
                                            probs.data_ptr(), grad_yT.data_ptr(),
                                            grad_xT.data_ptr() if need_x else None,
                                            partials[i].data_ptr() if need_probs else None)

            used = _native.in_slices(batch, call)
            grad_probs = (partials[0] if used == 1 else partials[:used].sum(0)) if need_probs else None
            return grad_xT, None, grad_probs
        grad_probs = torch.empty_like(probs) if need_probs else None
        for s, e in _chunks(slots, m, batch):
            index = candidates[s:e].reshape(-1)
            grad = grad_yT[s:e].unsqueeze(1)  # (c, 1, B)
            if need_probs:
                gathered = xT.index_select(0, index).view(e - s, m, batch)
                torch.bmm(gathered, grad.transpose(1, 2), out=grad_probs[s:e].unsqueeze(2))
            if need_x:
                grad_xT.index_add_(0, index, (probs[s:e].unsqueeze(2) * grad).view(-1, batch))
        return grad_xT, None, grad_probs


def _chunks(slots: int, m: int, batch: int) -> list:
    step = max(1, _CHUNK_ELEMENTS // max(m * batch, 1))
    return [(s, min(s + step, slots)) for s in range(0, slots, step)]


def select_sources(x: torch.Tensor, candidates: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Soft source selection: slot ``s`` reads ``sum_c probs[s, c] * x[..., candidates[s, c]]``.

    Parameters
    ----------
    x : Tensor, shape (..., in_dim)
    candidates : LongTensor, shape (slots, m)
    probs : Tensor, shape (slots, m)
        Selection probabilities (rows sum to 1); differentiable, as is ``x``.

    Returns
    -------
    Tensor, shape (..., slots)
        Computed in chunks of slots: memory ``O(batch x slots)``, never ``batch x slots x m``.
    """
    if candidates.dim() != 2 or probs.shape != candidates.shape:
        raise ValueError(f"select_sources: candidates and probs must both be (slots, m), got "
                         f"{tuple(candidates.shape)} and {tuple(probs.shape)}")
    lead = x.shape[:-1]
    xT = x.reshape(-1, x.shape[-1]).t().contiguous()
    yT = _SelectSources.apply(xT, candidates.to(torch.int64).contiguous(), probs.contiguous())
    return yT.t().reshape(*lead, candidates.shape[0])


def selection_probabilities(logits: torch.Tensor, temperature: float, selection: str = "softmax",
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """``softmax(logits / temperature)`` over the last dim, or its Gumbel-softmax (fresh noise)."""
    if selection == "gumbel":
        uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        logits = logits - torch.log(-torch.log(uniform.clamp_min(1e-20)))
    elif selection != "softmax":
        raise ValueError(f"unknown selection {selection!r}, expected one of {SELECTIONS}")
    return torch.softmax(logits / temperature, dim=-1)


def temperature_at(step: int, total_steps: int, start: float = 1.0, end: float = 0.1) -> float:
    """Exponential temperature schedule: ``start`` at step 0, ``end`` at ``total_steps``."""
    if not (start > 0 and end > 0):
        raise ValueError(f"temperatures must be > 0, got start={start}, end={end}")
    fraction = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return start * math.exp(fraction * math.log(end / start))


def set_temperature(model: nn.Module, temperature: float) -> None:
    """Set the selection temperature of every :class:`SourceSelector` in ``model``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    for module in model.modules():
        if isinstance(module, SourceSelector):
            module.temperature = float(temperature)


def regrow_all(model: nn.Module, fraction: float, optimizer: torch.optim.Optimizer | None = None,
               generator: torch.Generator | None = None) -> int:
    """Call :meth:`SourceSelector.regrow` on every ``sources='all'`` selector; return the count."""
    return sum(module.regrow(fraction, optimizer, generator) for module in model.modules()
               if isinstance(module, SourceSelector) and module.sources == "all")


def _check_dims(owner: str, in_dim: int, out_dim: int) -> None:
    if in_dim < 1 or out_dim < 1:
        raise ValueError(f"{owner} needs in_dim >= 1 and out_dim >= 1, got {in_dim}, {out_dim}")


class SourceSelector(nn.Module):
    """``slots`` learned source choices, each among ``m`` candidates of ``in_dim`` inputs.

    Args:
        in_dim: number of inputs.
        slots: number of choices (node inputs).
        candidates: m, candidates per slot, ``1 <= m <= in_dim``.
        sources: ``'random'`` (candidates drawn once) or ``'all'`` (bounded Top-K over all
            inputs through :meth:`regrow`).
        selection: ``'softmax'`` or ``'gumbel'`` (Gumbel-softmax, fresh noise each step).
        temperature: initial temperature (see :func:`set_temperature`, :func:`temperature_at`).
        wiring_init: ``'uniform'`` or ``'fixed'`` (candidate 0 favoured), see :data:`WIRING_INITS`.
        generator: random source for the candidates (the Gumbel noise uses torch's global one).
        tied: runs of ``tied`` consecutive slots share one row of logits (``logits`` is
            ``(slots // tied, m)``), so the slots of a run choose the same candidate column;
            :class:`LearnedLutLayer` uses it for ``feature_bits``.

    Shape:
        - Input: ``(..., in_dim)``.
        - Output: ``(..., slots)``; in ``eval()`` mode exactly ``x[..., chosen()]``.
    """

    def __init__(self, in_dim: int, slots: int, candidates: int = 8, sources: str = "random",
                 selection: str = "softmax", temperature: float = 1.0, wiring_init: str = "uniform",
                 generator: torch.Generator | None = None, owner: str = "SourceSelector", tied: int = 1):
        super().__init__()
        if in_dim < 1 or slots < 1:
            raise ValueError(f"{owner} needs in_dim >= 1 and slots >= 1, got {in_dim}, {slots}")
        if isinstance(tied, bool) or not isinstance(tied, int) or tied < 1 or slots % tied:
            raise ValueError(f"{owner}: tied must be a positive integer dividing slots ({slots}), got {tied!r}")
        if tied > 1 and sources != "random":
            raise ValueError(f"{owner}: tied slots need sources='random', got {sources!r}")
        if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= in_dim:
            raise ValueError(f"{owner}: candidates (m) must be an integer in 1..in_dim ({in_dim}), "
                             f"got {candidates!r}")
        for name, value, allowed in (("sources", sources, SOURCES), ("selection", selection, SELECTIONS),
                                     ("wiring_init", wiring_init, WIRING_INITS)):
            if value not in allowed:
                raise ValueError(f"{owner}: unknown {name} {value!r}, expected one of {allowed}")
        if not temperature > 0:
            raise ValueError(f"{owner}: temperature must be > 0, got {temperature}")
        self.in_dim, self.slots, self.m = in_dim, slots, candidates
        self.sources, self.selection, self.temperature = sources, selection, float(temperature)
        self.wiring_init, self.tied = wiring_init, tied
        self.register_buffer("candidates", distinct_sources(slots, candidates, in_dim,
                                                            generator or torch.default_generator,
                                                            avoid_repeats=False))
        logits = torch.zeros(slots // tied, candidates)
        if wiring_init == "fixed":
            logits[:, 0] = RESIDUAL_LOGIT
        self.logits = nn.Parameter(logits)

    def probabilities(self) -> torch.Tensor:
        """The current selection probabilities ``(slots, m)`` (with fresh noise for ``'gumbel'``)."""
        probs = selection_probabilities(self.logits, self.temperature, self.selection)
        return probs.repeat_interleave(self.tied, dim=0) if self.tied > 1 else probs

    def chosen(self) -> torch.Tensor:
        """The discretized wiring: the most likely candidate's input index of each slot, ``(slots,)``."""
        best = self.logits.argmax(dim=1, keepdim=True).repeat_interleave(self.tied, dim=0)
        return self.candidates.gather(1, best).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"{type(self).__name__} expected {self.in_dim} input features, "
                             f"got shape {tuple(x.shape)}")
        if self.training:
            return select_sources(x, self.candidates, self.probabilities())
        return x[..., self.chosen()]

    @torch.no_grad()
    def regrow(self, fraction: float, optimizer: torch.optim.Optimizer | None = None,
               generator: torch.Generator | None = None) -> int:
        """Replace the ``fraction`` least likely candidates of every slot by fresh random inputs.

        The most likely candidate is always kept; a new candidate gets its slot's mean logit (and
        fresh Adam moments when ``optimizer`` holds them). Returns the number replaced.
        """
        if not 0 <= fraction < 1:
            raise ValueError(f"regrow fraction must lie in [0, 1), got {fraction}")
        count = min(int(fraction * self.m), self.m - 1)
        if count == 0 or self.m == self.in_dim:
            return 0
        if self.tied > 1:
            raise ValueError("regrow does not support tied slots")
        generator = generator or torch.default_generator
        order = self.logits.argsort(dim=1)[:, :count]  # least likely first, never the argmax
        fresh = torch.randint(0, self.in_dim, (self.slots, count), generator=generator,
                              device=self.candidates.device)
        kept = torch.ones_like(self.candidates, dtype=torch.bool).scatter_(1, order, False)
        # Redraw new sources that collide with a kept candidate of the same slot (a few rounds).
        for _ in range(4):
            clash = (fresh.unsqueeze(2) == torch.where(kept, self.candidates, -1).unsqueeze(1)).any(2)
            if not clash.any():
                break
            fresh[clash] = torch.randint(0, self.in_dim, (int(clash.sum()),), generator=generator,
                                         device=fresh.device)
        self.candidates.scatter_(1, order, fresh)
        self.logits.scatter_(1, order, self.logits.mean(dim=1, keepdim=True).expand(-1, count))
        state = optimizer.state.get(self.logits, {}) if optimizer is not None else {}
        for name in ("exp_avg", "exp_avg_sq"):
            if name in state:
                state[name].scatter_(1, order, 0.0)
        return self.slots * count

    def extra_repr(self) -> str:
        return (f"{self.in_dim}, slots={self.slots}, candidates={self.m}, sources={self.sources!r}, "
                f"selection={self.selection!r}, temperature={self.temperature:.4g}")


class LearnedLogicLayer(nn.Module):
    """A :class:`lgn.nn.LogicLayer` of ``out_dim`` two-input gates whose wiring is learned.

    Each gate operand chooses among ``candidates`` sources (see the module doc); the gates are
    the usual ones (``parametrization`` ``'gates'`` or ``'table'``, ``init`` as for LogicLayer).
    ``eval()`` equals :meth:`to_fixed` exactly.

    Args:
        in_dim, out_dim: inputs and gates.
        candidates, sources, selection, temperature, wiring_init: see :class:`SourceSelector`.
        parametrization, init: see :class:`lgn.nn.LogicLayer`.
        generator: random source.

    Shape:
        - Input: ``(..., in_dim)`` in [0, 1]; output ``(..., out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int, candidates: int = 8, sources: str = "random",
                 selection: str = "softmax", temperature: float = 1.0, wiring_init: str = "uniform",
                 parametrization: str = "table", init: str = "random",
                 generator: torch.Generator | None = None):
        super().__init__()
        _check_dims("LearnedLogicLayer", in_dim, out_dim)
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"LearnedLogicLayer: unknown parametrization {parametrization!r}, "
                             f"expected one of {PARAMETRIZATIONS}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.selector = SourceSelector(in_dim, 2 * out_dim, candidates, sources, selection,
                                       temperature, wiring_init, generator, owner="LearnedLogicLayer")
        self.gates = LogicLayer(2 * out_dim, out_dim, init=init, parametrization=parametrization,
                                generator=generator)
        self.gates.connections = "learned"
        self.gates.idx_a = torch.arange(0, 2 * out_dim, 2)  # slot 2n is operand a of gate n
        self.gates.idx_b = torch.arange(1, 2 * out_dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gates(self.selector(x))

    def chosen_sources(self) -> torch.Tensor:
        """``(out_dim, 2)``: the input index of operand a and b of each gate after discretization."""
        return self.selector.chosen().view(self.out_dim, 2)

    def gate_ops(self) -> torch.Tensor:
        """The discretized gate of each neuron (0..15)."""
        return self.gates.gate_ops()

    def to_fixed(self) -> LogicLayer:
        """The equivalent fixed-wiring :class:`LogicLayer` (chosen sources, same gate weights)."""
        fixed = LogicLayer(self.in_dim, self.out_dim, init=self.gates.init,
                           parametrization=self.gates.parametrization, generator=torch.Generator())
        chosen = self.chosen_sources()
        fixed.idx_a, fixed.idx_b = chosen[:, 0].clone(), chosen[:, 1].clone()
        fixed.weights = nn.Parameter(self.gates.weights.detach().clone())
        return fixed.train(self.training)


def feature_candidates(groups: int, m: int, features: int, bits: int, levels: int,
                       generator: torch.Generator) -> torch.Tensor:
    """Candidates of ``groups`` tied runs of ``bits`` slots: ``(groups * bits, m)`` thermometer-bit
    indices, run ``r``'s candidate ``c`` being ``bits`` ascending thresholds of one raw feature.

    The features of a run are distinct (as :func:`distinct_sources` draws them); the thresholds
    are a uniform random ``bits``-subset of the feature's ``levels``, drawn per candidate.
    """
    feature = distinct_sources(groups, m, features, generator, avoid_repeats=False)  # (groups, m)
    keys = torch.rand(groups, m, levels, generator=generator)
    thresholds = keys.argsort(dim=2)[..., :bits].sort(dim=2).values  # (groups, m, bits)
    index = feature.unsqueeze(2) * levels + thresholds
    return index.permute(0, 2, 1).reshape(groups * bits, m).contiguous()


class LearnedLutLayer(nn.Module):
    """A :class:`lgn.nn.lut.LutLayer` of ``out_dim`` k-input LUT nodes whose wiring is learned.

    Input ``j`` of node ``n`` is slot ``n * k + j``, choosing among ``candidates`` sources.
    ``eval()`` equals :meth:`to_fixed` exactly.

    With ``feature_bits=(g, B)`` the inputs are thermometer bits, ``B`` per raw feature
    (feature-major, as :class:`lgn.nn.Thermometer` lays them out), and each run of ``g``
    consecutive inputs of a node chooses one *raw feature* among ``candidates``: a candidate is
    a feature with ``g`` of its ``B`` thresholds (drawn at construction, ascending), and the ``g``
    slots share one set of logits, so they always read the same feature. A LUT-6 with
    ``g = 3`` is then a function of two pixels; after uniform 8-bit thresholds at multiples of
    ``256 / (B + 1)`` with ``B + 1`` a power of two, it depends on the top bits of two pixels only,
    so the first layer maps onto one LUT per node.

    Args:
        in_dim, out_dim, k: inputs, nodes and inputs per node (1..6).
        candidates, sources, selection, temperature, wiring_init: see :class:`SourceSelector`.
        init: see :class:`lgn.nn.lut.LutLayer`.
        generator: random source.
        feature_bits: ``None``, or ``(g, B)`` with ``g`` dividing ``k``, ``g <= B`` and ``B``
            dividing ``in_dim``.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 6, candidates: int = 8, sources: str = "random",
                 selection: str = "softmax", temperature: float = 1.0, wiring_init: str = "uniform",
                 init: str = "random", generator: torch.Generator | None = None,
                 feature_bits: tuple[int, int] | None = None):
        super().__init__()
        k = check_k(k, "LearnedLutLayer")
        _check_dims("LearnedLutLayer", in_dim, out_dim)
        self.in_dim, self.out_dim, self.k = in_dim, out_dim, k
        generator = generator or torch.default_generator
        tied = 1
        if feature_bits is not None:
            tied, levels = feature_bits
            if not (1 <= tied <= levels and k % tied == 0 and in_dim % levels == 0):
                raise ValueError(f"LearnedLutLayer: feature_bits (g={tied}, B={levels}) needs g dividing "
                                 f"k ({k}), g <= B and B dividing in_dim ({in_dim})")
            if candidates > in_dim // levels:
                raise ValueError(f"LearnedLutLayer: candidates (m) must be at most the number of raw "
                                 f"features ({in_dim // levels}), got {candidates}")
        self.feature_bits = feature_bits
        self.selector = SourceSelector(in_dim, k * out_dim, candidates, sources, selection,
                                       temperature, wiring_init, generator, owner="LearnedLutLayer",
                                       tied=tied)
        if feature_bits is not None:
            self.selector.candidates = feature_candidates(k * out_dim // tied, candidates, in_dim // levels,
                                                          tied, levels, generator)
        self.luts = LutLayer(k * out_dim, out_dim, k=k, init=init, generator=generator)
        self.luts.connections = "learned"
        self.luts.inputs = torch.arange(k * out_dim).view(out_dim, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.luts(self.selector(x))

    def chosen_sources(self) -> torch.Tensor:
        """``(out_dim, k)``: the input index feeding input ``j`` of each node after discretization."""
        return self.selector.chosen().view(self.out_dim, self.k)

    def truth_tables(self):
        """See :meth:`lgn.nn.lut.LutLayer.truth_tables` (bit ``i`` = output for pattern ``i``)."""
        return self.luts.truth_tables()

    def to_fixed(self) -> LutLayer:
        """The equivalent fixed-wiring :class:`LutLayer` (chosen sources, same table logits)."""
        fixed = LutLayer(self.in_dim, self.out_dim, k=self.k, init=self.luts.init, generator=torch.Generator())
        fixed.inputs = self.chosen_sources().clone()
        fixed.weights = nn.Parameter(self.luts.weights.detach().clone())
        return fixed.train(self.training)
