"""Differentiable sorting, ranking and top-k through relaxed sorting networks.

Each comparator ``(i, j)`` of a network is relaxed: with ``d = x_j - x_i`` and keep weight
``w = f(steepness * d)`` (a sigmoid ``f``, the probability that the pair is already in order),

    min' = w x_i + (1 - w) x_j,    max' = (1 - w) x_i + w x_j.

Composing the layers gives the sorted values and a doubly stochastic relaxed permutation ``P``
with ``sorted = P @ x``: ``P[..., r, c]`` is the weight of input ``c`` in output position ``r``.
As ``steepness -> inf`` this is the hard network; ``steepness=math.inf`` computes it exactly.

Sigmoids (Petersen et al., ICML 2021 and ICLR 2022), ``z = steepness * d``:

=================  =========================================================  ============
``logistic``       ``1 / (1 + exp(-z))``                                       not monotonic
``logistic_phi``   logistic of ``z / (|d| + 1e-10) ** art_lambda`` (ART)       not monotonic
``gaussian``       standard normal CDF of ``z``                                not monotonic
``reciprocal``     ``(z / (2 + |z|) + 1) / 2``                                 monotonic
``cauchy``         ``atan(z) / pi + 1 / 2`` (default)                          monotonic
``optimal``        ``z + 1/2`` on ``|z| <= 1/4``, else ``1 - 1/(16 z)`` or     monotonic
                   ``-1/(16 z)``
=================  =========================================================  ============

*Monotonic* sigmoids (heavy ``1/z^2`` tails) make every sorted output a non-decreasing function
of every input, so gradients never point the wrong way; that is why ``cauchy`` is the default.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from . import _mixing
from .networks import NETWORKS, SortError, SortingNetwork, sorting_network, top_k_network

__all__ = [
    "SIGMOIDS", "swap_weight", "conditional_swap", "relaxed_network", "soft_sort", "soft_rank",
    "soft_top_k", "ranking_loss", "top_k_cross_entropy",
]

#: Names of the sigmoids accepted by every function taking ``sigmoid=``.
SIGMOIDS = ("logistic", "logistic_phi", "gaussian", "reciprocal", "cauchy", "optimal")

_SQRT1_2 = 1 / math.sqrt(2)


def _optimal(z: torch.Tensor) -> torch.Tensor:
    # Piecewise: linear core, reciprocal tails; the tails are evaluated on |z| >= 1/4 only so
    # that neither branch produces inf/NaN that would leak into the gradient.
    far = z.abs().clamp(min=0.25)
    tail = torch.where(z > 0, 1 - 1 / (16 * far), 1 / (16 * far))
    return torch.where(z.abs() <= 0.25, z + 0.5, tail)


def _check_options(sigmoid: str, steepness: float, art_lambda: float) -> None:
    if sigmoid not in SIGMOIDS:
        raise SortError(f"unknown sigmoid {sigmoid!r}, expected one of {SIGMOIDS}")
    if isinstance(steepness, bool) or not isinstance(steepness, (int, float)) or not steepness > 0:
        raise SortError(f"steepness must be a positive number (or math.inf), got {steepness!r}")
    if not isinstance(art_lambda, (int, float)) or not 0 <= art_lambda < 1:
        raise SortError(f"art_lambda must be in [0, 1), got {art_lambda!r}")


def swap_weight(diff: torch.Tensor, sigmoid: str = "cauchy", steepness: float = 10.0,
                art_lambda: float = 0.25) -> torch.Tensor:
    """Return the keep weight ``f(steepness * diff)`` of comparators with ``diff = x_hi - x_lo``.

    ``1`` means "already in order, keep", ``0`` means "swap". With ``steepness=math.inf`` the
    weight is the hard step ``diff >= 0`` (ties keep the order).
    """
    _check_options(sigmoid, steepness, art_lambda)
    if math.isinf(steepness):
        return (diff >= 0).to(diff.dtype)
    z = steepness * diff
    if sigmoid == "logistic":
        return torch.sigmoid(z)
    if sigmoid == "logistic_phi":
        return torch.sigmoid(z / (diff.abs() + 1e-10) ** art_lambda)
    if sigmoid == "gaussian":
        return 0.5 * (1 + torch.erf(z * _SQRT1_2))
    if sigmoid == "reciprocal":
        return 0.5 * (z / (2 + z.abs()) + 1)
    if sigmoid == "cauchy":
        return torch.atan(z) / math.pi + 0.5
    return _optimal(z)


def conditional_swap(a: torch.Tensor, b: torch.Tensor, sigmoid: str = "cauchy",
                     steepness: float = 10.0, art_lambda: float = 0.25):
    """Return the relaxed ``(min(a, b), max(a, b))`` of one comparator."""
    w = swap_weight(b - a, sigmoid, steepness, art_lambda)
    return torch.lerp(b, a, w), torch.lerp(a, b, w)


def _check_input(x: torch.Tensor, what: str = "x") -> int:
    if not isinstance(x, torch.Tensor):
        raise SortError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise SortError(f"{what} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] < 2:
        raise SortError(f"{what} must have n >= 2 elements along the last dim, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise SortError(f"{what} contains NaN or infinite values")
    return x.shape[-1]


def _network(network: str | SortingNetwork, n: int) -> SortingNetwork:
    if isinstance(network, SortingNetwork):
        if network.n != n:
            raise SortError(f"network has {network.n} wires but x has n={n} elements")
        return network
    if network not in NETWORKS:
        raise SortError(f"unknown network {network!r}, expected one of {NETWORKS}")
    return sorting_network(network, n)


def relaxed_network(x: torch.Tensor, network: SortingNetwork, sigmoid: str = "cauchy",
                    steepness: float = 10.0, art_lambda: float = 0.25):
    """Run the relaxed network on ``x`` ``(B, n)``.

    Returns
    -------
    values : Tensor, shape (B, n)
        The wires after the last layer (sorted values for a sorting network).
    w : Tensor, shape (B, num_comparators)
        Keep weight of every comparator, layer after layer (the input of the mixing kernel).
    """
    plan = _mixing.left_plan(network, x.device, 1)
    weights = []
    for step in reversed(plan.steps):
        lo, hi = x.index_select(-1, step.lo), x.index_select(-1, step.hi)
        w = swap_weight(hi - lo, sigmoid, steepness, art_lambda)
        x = x.index_copy(-1, step.lo, torch.lerp(hi, lo, w)).index_copy(-1, step.hi, torch.lerp(lo, hi, w))
        weights.append(w)
    w = torch.cat(weights, -1) if weights else x.new_zeros(x.shape[0], 0)
    return x, w


def soft_sort(x: torch.Tensor, network: str | SortingNetwork = "bitonic", sigmoid: str = "cauchy",
              steepness: float = 10.0, art_lambda: float = 0.25, descending: bool = False):
    """Sort ``x`` along its last dimension with a relaxed sorting network.

    Parameters
    ----------
    x : Tensor, shape (..., n)
        Finite floating-point values, ``n >= 2``, any leading batch dimensions, any device.
    network : {'bitonic', 'odd_even'} or SortingNetwork
        Bitonic has ``O(log^2 n)`` layers (any ``n``); odd-even transposition has ``n``.
    sigmoid : str
        One of :data:`SIGMOIDS`; ``'cauchy'`` (monotonic) by default.
    steepness : float
        Inverse temperature ``beta``; larger is closer to the hard sort; ``math.inf`` is hard.
    art_lambda : float
        Exponent of the activation replacement trick, used by ``'logistic_phi'`` only.
    descending : bool
        Largest first.

    Returns
    -------
    values : Tensor, shape (..., n)
        Relaxed sorted values, ``values = (P @ x[..., None])[..., 0]``.
    P : Tensor, shape (..., n, n)
        Relaxed permutation, doubly stochastic: ``P[..., r, c]`` is the weight of input ``c`` in
        output position ``r``.
    """
    n = _check_input(x)
    net = _network(network, n)
    flat = x.reshape(-1, n)
    values, w = relaxed_network(flat, net, sigmoid, steepness, art_lambda)
    perm = _mixing.mix(w, _mixing.full_plan(net, x.device))
    if descending:
        values, perm = values.flip(-1), perm.flip(-2)
    return values.reshape(x.shape), perm.reshape(*x.shape, n)


def soft_rank(x: torch.Tensor, network: str | SortingNetwork = "bitonic", sigmoid: str = "cauchy",
              steepness: float = 10.0, art_lambda: float = 0.25, descending: bool = False):
    """Return relaxed 1-based ranks of ``x`` along its last dimension, shape ``(..., n)``.

    ``rank[..., c] = sum_r (r + 1) P[..., r, c]``: the expected output position of input ``c``
    (1 is the smallest, or the largest when ``descending``). Computed without forming ``P``
    (``O(n)`` work per layer). Arguments as in :func:`soft_sort`.
    """
    n = _check_input(x)
    net = _network(network, n)
    flat = x.reshape(-1, n)
    _, w = relaxed_network(flat, net, sigmoid, steepness, art_lambda)
    positions = torch.arange(1, n + 1, dtype=x.dtype, device=x.device).unsqueeze(-1)
    ranks = _mixing.mix(w, _mixing.left_plan(net, x.device, 1), positions)[:, 0]
    if descending:
        ranks = (n + 1) - ranks
    return ranks.reshape(x.shape)


def soft_top_k(x: torch.Tensor, k: int, sigmoid: str = "cauchy", steepness: float = 10.0,
               art_lambda: float = 0.25):
    """Return the relaxed ``k`` largest values of ``x`` (largest first) and their ``P`` rows.

    Uses :func:`~lgn.sort.networks.top_k_network`, which only resolves the top ``k`` of
    ``n``, and builds only the ``k`` needed rows of ``P`` (``O(k n)`` work per layer).

    Returns
    -------
    values : Tensor, shape (..., k)
        ``values[..., r]`` is the relaxed ``(r + 1)``-th largest value.
    P : Tensor, shape (..., k, n)
        ``P[..., r, c]``: weight of input ``c`` in rank ``r``; rows sum to 1, columns to <= 1.
    """
    n = _check_input(x)
    net = top_k_network(n, k)
    flat = x.reshape(-1, n)
    values, w = relaxed_network(flat, net, sigmoid, steepness, art_lambda)
    select = torch.zeros(n, k, dtype=x.dtype, device=x.device)
    select[torch.arange(n - 1, n - k - 1, -1), torch.arange(k)] = 1
    rows = _mixing.mix(w, _mixing.left_plan(net, x.device, k), select)
    return values[:, n - k:].flip(-1).reshape(*x.shape[:-1], k), rows.reshape(*x.shape[:-1], k, n)


def _check_probabilities(perm: torch.Tensor) -> int:
    if not isinstance(perm, torch.Tensor) or not perm.is_floating_point() or perm.dim() < 2:
        raise SortError("P must be a floating-point tensor of shape (..., n, n)")
    if perm.shape[-1] != perm.shape[-2]:
        raise SortError(f"P must be square in its last two dims, got shape {tuple(perm.shape)}")
    return perm.shape[-1]


def ranking_loss(perm: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between a relaxed permutation and the true one (mean over entries).

    Parameters
    ----------
    perm : Tensor, shape (..., n, n)
        Relaxed permutation from :func:`soft_sort` (same ``descending`` as ``target``).
    target : Tensor
        Either the true order as indices, shape ``(..., n)`` (``target[..., r]`` is the input that
        belongs at position ``r``, e.g. ``torch.argsort(true_scores)``), or the true permutation
        matrix, shape ``(..., n, n)``, in the layout of ``perm``.
    """
    n = _check_probabilities(perm)
    if not isinstance(target, torch.Tensor):
        raise SortError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if not target.is_floating_point():
        if target.shape != perm.shape[:-1]:
            raise SortError(f"index target must have shape {tuple(perm.shape[:-1])}, "
                            f"got {tuple(target.shape)}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n):
            raise SortError(f"index target has entries outside [0, {n})")
        if perm.numel() == 0:
            return torch.nn.functional.binary_cross_entropy(perm, perm.detach())  # NaN, as torch's
        return _IndexBCE.apply(perm, target.long())
    if target.shape != perm.shape:
        raise SortError(f"matrix target must have shape {tuple(perm.shape)}, got {tuple(target.shape)}")
    return torch.nn.functional.binary_cross_entropy(perm.clamp(0, 1), target)


def _item_chunks(items: int, n: int):
    """Item ranges whose ``(n, n)`` temporaries stay near a million elements."""
    step = max(1, (1 << 20) // max(1, n * n))
    return [(i, min(i + step, items)) for i in range(0, items, step)]


class _IndexBCE(torch.autograd.Function):
    """``binary_cross_entropy(perm.clamp(0, 1), one_hot(index))`` (mean), equal in value and
    gradient, without building the clamped ``P``, the one-hot target or elementwise losses:
    the temporaries are chunk-sized and only ``perm`` and ``index`` are kept for backward."""

    @staticmethod
    def forward(ctx, perm, index):
        n = perm.shape[-1]
        flat, rows = perm.reshape(-1, n, n), index.reshape(-1, n, 1)
        total = perm.new_zeros((), dtype=torch.float64)
        for a, b in _item_chunks(flat.shape[0], n):
            # BCE is -max(log1p(-p), -100) off the target and -max(log p, -100) on it
            total -= torch.log1p(-flat[a:b].clamp(0, 1)).clamp_(min=-100).sum(dtype=torch.float64)
        hit = flat.gather(-1, rows).clamp_(0, 1)
        total += (torch.log1p(-hit).clamp_(min=-100) - torch.log(hit).clamp_(min=-100)).sum(dtype=torch.float64)
        ctx.save_for_backward(perm, index)
        return (total / perm.numel()).to(perm.dtype)

    @staticmethod
    def backward(ctx, grad):
        perm, index = ctx.saved_tensors
        n = perm.shape[-1]
        flat, rows = perm.reshape(-1, n, n), index.reshape(-1, n, 1)
        scale = grad / perm.numel()
        out = torch.empty_like(flat)
        for a, b in _item_chunks(flat.shape[0], n):
            p = flat[a:b]
            # d/dp of BCE(clamp(p)): (q - t) / max(q (1 - q), 1e-12) where 0 <= p <= 1, else 0
            q = p.clamp(0, 1)
            denominator = (q * (1 - q)).clamp_(min=1e-12)
            out[a:b] = q.mul_(scale).div_(denominator).mul_((p >= 0) & (p <= 1))
        hit = flat.gather(-1, rows)
        q = hit.clamp(0, 1)
        inside = (hit >= 0) & (hit <= 1)
        fix = (q - 1) * scale / (q * (1 - q)).clamp_(min=1e-12) * inside
        out.scatter_(-1, rows, fix)
        return out.view(perm.shape), None


def top_k_cross_entropy(scores: torch.Tensor, labels: torch.Tensor, k: int | Sequence[int] = 1,
                        weights: Sequence[float] | None = None, sigmoid: str = "cauchy",
                        steepness: float = 10.0, art_lambda: float = 0.25,
                        eps: float = 1e-7) -> torch.Tensor:
    """Differentiable top-k classification loss (mean over the batch).

    ``loss = -log sum_i weights[i] * Pr(label among the top k[i] scores)``, where the
    probability is read off the relaxed top-k rows of ``P`` (Petersen et al., ICML 2022). With
    ``k=(1, 5)`` and ``weights=(0.5, 0.5)`` it trains top-1 and top-5 accuracy together.

    Parameters
    ----------
    scores : Tensor, shape (B, C)
        Class scores (logits).
    labels : LongTensor, shape (B,)
        True class of each sample.
    k : int or sequence of int
        Ranks to reward; each ``1 <= k <= C``.
    weights : sequence of float, optional
        Non-negative weight of each ``k`` summing to 1; uniform by default.
    """
    ks = (k,) if isinstance(k, int) else tuple(k)
    if scores.dim() != 2:
        raise SortError(f"scores must have shape (B, C), got {tuple(scores.shape)}")
    classes = _check_input(scores, "scores")
    if labels.shape != scores.shape[:1] or labels.is_floating_point():
        raise SortError(f"labels must be an integer tensor of shape ({scores.shape[0]},)")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise SortError(f"labels must lie in [0, {classes})")
    if not ks or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= classes for v in ks):
        raise SortError(f"k must be ints in [1, {classes}], got {k!r}")
    weights = tuple(weights) if weights is not None else (1 / len(ks),) * len(ks)
    if len(weights) != len(ks) or any(v < 0 for v in weights) or not math.isclose(sum(weights), 1):
        raise SortError(f"weights must be {len(ks)} non-negative numbers summing to 1, got {weights}")
    _, rows = soft_top_k(scores, max(ks), sigmoid, steepness, art_lambda)
    # Pr(label at rank r), r = 0 .. max(ks) - 1, then cumulative: Pr(label within top r + 1).
    at_rank = rows.gather(-1, labels.view(-1, 1, 1).expand(-1, rows.shape[1], 1))[..., 0]
    within = at_rank.cumsum(-1)
    prob = sum(wt * within[:, kk - 1] for wt, kk in zip(weights, ks))
    return -torch.log(prob.clamp(min=eps)).mean()
