"""T-conorms that aggregate the coverage of overlapping faces into one occupancy per pixel.

Every T-conorm ``S`` is symmetric, monotone, associative and has ``S(a, 0) = a``. ``max``
and ``probabilistic`` reduce any number of faces at once; the parametric ones are folded
pairwise over the (at most ``top_k``) largest coverages of a pixel.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import RenderError

__all__ = ["TCONORM_NAMES", "tconorm", "tconorm_reduce", "fold_sorted",
           "check_tconorm"]

# name -> smallest allowed parameter (exclusive unless noted) or None for parameter-free ones
_PARAM_RULES: dict[str, tuple[float, bool] | None] = {
    "hard": None, "max": None, "probabilistic": None, "einstein": None,
    "hamacher": (0.0, True), "frank": (0.0, False), "yager": (0.0, False),
    "aczel_alsina": (0.0, False), "dombi": (0.0, False), "schweizer_sklar": (0.0, False),
}
TCONORM_NAMES: tuple[str, ...] = tuple(_PARAM_RULES)


def check_tconorm(name: str, param: float | None) -> None:
    """Raise :class:`RenderError` for an unknown T-conorm or a parameter outside its domain."""
    if name not in _PARAM_RULES:
        raise RenderError(f"unknown T-conorm {name!r}; expected one of {', '.join(TCONORM_NAMES)}")
    rule = _PARAM_RULES[name]
    if rule is None:
        return
    low, inclusive = rule
    ok = param is not None and math.isfinite(param) and (param >= low if inclusive else param > low)
    if not ok or (name == "frank" and param == 1):
        bound = (">= " if inclusive else "> ") + f"{low:g}" + (" and != 1" if name == "frank" else "")
        raise RenderError(f"T-conorm {name!r} needs a parameter p {bound}, got {param!r}")


def _safe_pow(u: torch.Tensor, e: float) -> torch.Tensor:
    """``u ** e`` for ``u >= 0`` with a zero (not NaN) gradient where ``u == 0``."""
    pos = u > 0
    return torch.where(pos, torch.where(pos, u, torch.ones_like(u)) ** e, torch.zeros_like(u))


def _hamacher(a, b, p):
    x, y = 1 - a, 1 - b
    return 1 - x * y / (p + (1 - p) * (x + y - x * y))


def _frank(a, b, p):
    lp = math.log(p)
    t = torch.log1p(torch.expm1((1 - a) * lp) * torch.expm1((1 - b) * lp) / math.expm1(lp)) / lp
    return 1 - t


def _yager(a, b, p):
    return (a ** p + b ** p).pow(1 / p).clamp(max=1)


def _aczel_alsina(a, b, p):
    return -torch.expm1(-((-torch.log1p(-a)) ** p + (-torch.log1p(-b)) ** p).pow(1 / p))


def _dombi(a, b, p):
    return 1 - 1 / (1 + ((a / (1 - a)) ** p + (b / (1 - b)) ** p).pow(1 / p))


def _schweizer_sklar(a, b, p):
    return 1 - _safe_pow((1 - a) ** p + (1 - b) ** p - 1, 1 / p)


# Interior formulas: evaluated on inputs clamped into (0, 1), where all of them are smooth.
_INTERIOR: dict[str, Callable] = {
    "einstein": lambda a, b, p: (a + b) / (1 + a * b),
    "hamacher": _hamacher, "frank": _frank, "yager": _yager, "aczel_alsina": _aczel_alsina,
    "dombi": _dombi, "schweizer_sklar": _schweizer_sklar,
}


def tconorm(a: torch.Tensor, b: torch.Tensor, name: str = "probabilistic",
            param: float | None = None) -> torch.Tensor:
    """Return ``S(a, b)`` elementwise for ``a, b`` in ``[0, 1]`` (broadcast).

    ``hard`` is the Boolean OR of ``a >= 1/2`` and ``b >= 1/2`` (a T-conorm on ``{0, 1}``).
    Gradients are finite for all inputs in ``[0, 1]``.
    """
    check_tconorm(name, param)
    if name == "max":
        return torch.maximum(a, b)
    if name == "probabilistic":
        return a + b - a * b
    if name == "hard":
        return (torch.maximum(a, b) >= 0.5).to(torch.result_type(a, b))
    delta = 16 * torch.finfo(torch.result_type(a, b)).eps
    inner = _INTERIOR[name](a.clamp(delta, 1 - delta), b.clamp(delta, 1 - delta), param)
    # exact identities at the boundary: S(a, 0) = a, S(a, 1) = 1
    out = torch.where(b <= 0, a, torch.where(a <= 0, b, inner))
    return torch.where((a >= 1) | (b >= 1), torch.ones_like(out), out)


def tconorm_reduce(a: torch.Tensor, dim: int, name: str = "probabilistic",
                   param: float | None = None, top_k: int | None = None) -> torch.Tensor:
    """Aggregate ``a`` along ``dim`` with the T-conorm ``name`` (the reference n-ary form).

    ``max``, ``probabilistic`` and ``hard`` use all entries; the others fold ``S`` over the
    ``top_k`` largest entries (all when ``top_k`` is None) in descending order.
    """
    check_tconorm(name, param)
    if name == "max":
        return a.amax(dim)
    if name == "hard":
        return (a.amax(dim) >= 0.5).to(a.dtype)
    if name == "probabilistic":
        delta = 16 * torch.finfo(a.dtype).eps
        return -torch.expm1(torch.log1p(-a.clamp(max=1 - delta)).sum(dim))
    k = a.shape[dim] if top_k is None else min(top_k, a.shape[dim])
    values = a.topk(k, dim).values if k > 0 else a.narrow(dim, 0, 0)
    return fold_sorted(values.movedim(dim, -1), name, param)


def fold_sorted(values: torch.Tensor, name: str, param: float | None) -> torch.Tensor:
    """Fold ``S`` over the last axis of ``values`` (largest first); zero for an empty axis."""
    if values.shape[-1] == 0:
        return values.sum(-1)
    out = values[..., 0]
    for j in range(1, values.shape[-1]):
        out = tconorm(out, values[..., j], name, param)
    return out
