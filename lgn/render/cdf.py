"""Smoothing CDFs: coverage of a pixel by a face is ``F(d / tau - mu)`` of the signed distance.

Every CDF is stored with its density, and gradients flow through the density (a custom
autograd function), so they stay finite where the closed form of ``F`` has a kink or a
singular derivative (the edge of a bounded support, ``x = 0`` of one-sided laws).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import RenderError

__all__ = ["CDF_NAMES", "cdf", "cdf_cutoff", "check_cdf"]

Fn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class _Law:
    cdf: Fn
    pdf: Fn
    lower: float  # infimum of the support (-inf when unbounded)
    symmetric: bool
    needs_param: bool = False


def _uniform(x, p):
    return ((x + 1) / 2).clamp(0, 1)


def _uniform_pdf(x, p):
    return (x.abs() <= 1).to(x.dtype) / 2


def _hermite(x, p):
    t = ((x + 1) / 2).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _hermite_pdf(x, p):
    t = ((x + 1) / 2).clamp(0, 1)
    return 3 * t * (1 - t)


def _wigner(x, p):
    c = x.clamp(-1, 1)
    return 0.5 + (c * (1 - c * c).sqrt() + c.asin()) / math.pi


def _wigner_pdf(x, p):
    c = x.clamp(-1, 1)
    return (2 / math.pi) * (1 - c * c).clamp(min=0).sqrt()


def _laplace(x, p):
    half = 0.5 * torch.exp(-x.abs())
    return torch.where(x < 0, half, 1 - half)


def _gamma(x, p):
    return torch.special.gammainc(torch.full_like(x, p), x.clamp(min=0))


def _gamma_pdf(x, p):
    tiny = torch.finfo(x.dtype).tiny
    xs = x.clamp(min=tiny)
    dens = torch.exp((p - 1) * xs.log() - xs - math.lgamma(p))
    return torch.where(x > 0, dens, torch.zeros_like(x))


def _levy(x, p):
    xs = x.clamp(min=torch.finfo(x.dtype).tiny)
    return torch.where(x > 0, torch.erfc((0.5 / xs).sqrt()), torch.zeros_like(x))


def _levy_pdf(x, p):
    xs = x.clamp(min=torch.finfo(x.dtype).tiny)
    dens = torch.exp(-0.5 / xs) / (2 * math.pi * xs ** 3).sqrt()
    return torch.where(x > 0, dens, torch.zeros_like(x))


def _reversed(law: _Law) -> _Law:
    """``1 - F(-x)``: the law mirrored, so its support reaches out of the face instead of in."""
    return _Law(lambda x, p: 1 - law.cdf(-x, p), lambda x, p: law.pdf(-x, p), -math.inf,
                law.symmetric, law.needs_param)


_SQRT2 = math.sqrt(2.0)
_LAWS: dict[str, _Law] = {
    "hard": _Law(lambda x, p: (x > 0).to(x.dtype) + (x == 0).to(x.dtype) / 2,
                 lambda x, p: torch.zeros_like(x), 0.0, True),
    "uniform": _Law(_uniform, _uniform_pdf, -1.0, True),
    "cubic_hermite": _Law(_hermite, _hermite_pdf, -1.0, True),
    "wigner_semicircle": _Law(_wigner, _wigner_pdf, -1.0, True),
    "gaussian": _Law(lambda x, p: 0.5 * torch.erfc(-x / _SQRT2),
                     lambda x, p: torch.exp(-x * x / 2) / math.sqrt(2 * math.pi), -math.inf, True),
    "laplace": _Law(_laplace, lambda x, p: 0.5 * torch.exp(-x.abs()), -math.inf, True),
    "logistic": _Law(lambda x, p: torch.sigmoid(x),
                     lambda x, p: torch.sigmoid(x) * torch.sigmoid(-x), -math.inf, True),
    "gudermannian": _Law(lambda x, p: 0.5 + (2 / math.pi) * torch.atan(torch.tanh(x / 2)),
                         lambda x, p: 1 / (math.pi * torch.cosh(x)), -math.inf, True),
    "cauchy": _Law(lambda x, p: 0.5 + torch.atan(x) / math.pi,
                   lambda x, p: 1 / (math.pi * (1 + x * x)), -math.inf, True),
    "reciprocal": _Law(lambda x, p: 0.5 + x / (2 * (1 + x.abs())),
                       lambda x, p: 1 / (2 * (1 + x.abs()) ** 2), -math.inf, True),
    "gumbel_max": _Law(lambda x, p: torch.exp(-torch.exp(-x)),
                       lambda x, p: torch.exp(-x - torch.exp(-x)), -math.inf, False),
    "gumbel_min": _Law(lambda x, p: -torch.expm1(-torch.exp(x)),
                       lambda x, p: torch.exp(x - torch.exp(x)), -math.inf, False),
    "exponential": _Law(lambda x, p: -torch.expm1(-x.clamp(min=0)),
                        lambda x, p: torch.where(x >= 0, torch.exp(-x.clamp(min=0)), 0 * x),
                        0.0, False),
    "gamma": _Law(_gamma, _gamma_pdf, 0.0, False, needs_param=True),
    "levy": _Law(_levy, _levy_pdf, 0.0, False),
}
for _name in ("exponential", "gamma", "levy"):
    _LAWS[_name + "_reversed"] = _reversed(_LAWS[_name])

CDF_NAMES: tuple[str, ...] = tuple(_LAWS)


def check_cdf(name: str, param: float | None) -> _Law:
    """Return the law called ``name``; raise :class:`RenderError` for an unknown name or bad ``p``."""
    if name not in _LAWS:
        raise RenderError(f"unknown CDF {name!r}; expected one of {', '.join(CDF_NAMES)}")
    law = _LAWS[name]
    if law.needs_param and (param is None or not param > 0):
        raise RenderError(f"CDF {name!r} needs a shape parameter p > 0, got {param!r}")
    return law


class _SmoothStep(torch.autograd.Function):
    """``F(x)`` whose derivative is the stored density, so it is finite wherever ``f`` is."""

    @staticmethod
    def forward(ctx, x, law, param):
        ctx.save_for_backward(x)
        ctx.law, ctx.param = law, param
        return law.cdf(x, param)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.law.pdf(x, ctx.param), None, None


def cdf(x: torch.Tensor, name: str = "logistic", param: float | None = None) -> torch.Tensor:
    """Evaluate the standard CDF ``name`` (shape parameter ``param`` for gamma) at ``x``.

    Returns values in ``[0, 1]``, non-decreasing in ``x``, with ``F(0) = 1/2`` for the
    symmetric laws. The gradient is the density, finite everywhere for every law
    (gamma with ``p < 1`` included: its density is evaluated at the smallest positive float).
    """
    law = check_cdf(name, param)
    return _SmoothStep.apply(x, law, None if param is None else float(param))


@functools.lru_cache(maxsize=256)
def cdf_cutoff(name: str, param: float | None = None, eps: float = 1e-4) -> float:
    """Return the smallest standardised ``x`` where coverage is kept (``F(x) >= eps``).

    For laws with a support bounded below this is the lower end of the support, where
    ``F`` is exactly zero, so truncation changes nothing. Otherwise ``F(x) < eps`` below it
    and the renderer treats such pixel-face pairs as uncovered (both dense and culled).
    """
    law = check_cdf(name, param)
    if math.isfinite(law.lower):
        return law.lower
    if not 0 < eps < 0.5:
        raise RenderError(f"coverage cut-off eps must lie in (0, 1/2), got {eps!r}")
    lo, hi = -1.0, 0.0
    f = lambda v: float(law.cdf(torch.tensor(v, dtype=torch.float64), param))  # noqa: E731
    while f(lo) >= eps:
        lo *= 2
        if lo < -1e12:
            raise RenderError(f"CDF {name!r} does not fall below eps={eps} (p={param})")
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < eps else (lo, mid)
    return lo
