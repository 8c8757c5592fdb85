"""Thin modules over :mod:`lgn.sort.functional` for use inside models."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import functional as F
from .networks import NETWORKS, SortError, SortingNetwork, sorting_network

__all__ = ["SoftSort", "TopKCrossEntropy"]


class SoftSort(nn.Module):
    """Relaxed sorting network over the last dimension; returns ``(values, P)``.

    Args:
        n: number of elements to sort (fixes the network at construction).
        network: ``'bitonic'`` (default) or ``'odd_even'``.
        sigmoid: one of :data:`lgn.sort.SIGMOIDS`; ``'cauchy'`` (monotonic) by default.
        steepness: inverse temperature; ``math.inf`` gives the hard sort.
        art_lambda: exponent of the activation replacement trick (``'logistic_phi'`` only).
        descending: largest first.

    Shape:
        - Input: ``(..., n)`` floating point, finite.
        - Output: values ``(..., n)`` and relaxed permutation ``P`` ``(..., n, n)`` with
          ``values = P @ x``.

    Examples:
        >>> sorter = SoftSort(5, steepness=20.0)
        >>> values, perm = sorter(torch.randn(8, 5))
    """

    def __init__(self, n: int, network: str = "bitonic", sigmoid: str = "cauchy",
                 steepness: float = 10.0, art_lambda: float = 0.25, descending: bool = False):
        super().__init__()
        if network not in NETWORKS:
            raise SortError(f"unknown network {network!r}, expected one of {NETWORKS}")
        self.network: SortingNetwork = sorting_network(network, n)
        F._check_options(sigmoid, steepness, art_lambda)
        self.sigmoid, self.steepness, self.art_lambda = sigmoid, steepness, art_lambda
        self.descending = descending

    def forward(self, x: torch.Tensor):
        return F.soft_sort(x, self.network, self.sigmoid, self.steepness, self.art_lambda,
                           self.descending)

    def extra_repr(self) -> str:
        return (f"n={self.network.n}, network={self.network.name!r}, sigmoid={self.sigmoid!r}, "
                f"steepness={self.steepness}, descending={self.descending}")


class TopKCrossEntropy(nn.Module):
    """Differentiable top-k classification loss; see :func:`lgn.sort.top_k_cross_entropy`.

    Shape:
        - Input: scores ``(B, C)`` and integer labels ``(B,)``.
        - Output: scalar.
    """

    def __init__(self, k: int | Sequence[int] = 1, weights: Sequence[float] | None = None,
                 sigmoid: str = "cauchy", steepness: float = 10.0, art_lambda: float = 0.25):
        super().__init__()
        F._check_options(sigmoid, steepness, art_lambda)
        self.k = (k,) if isinstance(k, int) else tuple(k)
        self.weights = None if weights is None else tuple(weights)
        self.sigmoid, self.steepness, self.art_lambda = sigmoid, steepness, art_lambda

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.top_k_cross_entropy(scores, labels, self.k, self.weights, self.sigmoid,
                                     self.steepness, self.art_lambda)
