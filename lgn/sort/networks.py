"""Sorting networks as explicit comparator layers, shared by the relaxation and the hardware twin.

A network on ``n`` wires is a tuple of layers; a layer is a tuple of disjoint comparators
``(i, j)`` with ``i < j``. A comparator writes the minimum of wires ``i`` and ``j`` to ``i`` and
the maximum to ``j``, so a sorting network leaves its wires in ascending order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = [
    "SortError", "SortingNetwork", "NETWORKS", "odd_even_network", "bitonic_network",
    "sorting_network", "top_k_network",
]

#: Names accepted by :func:`sorting_network`.
NETWORKS = ("odd_even", "bitonic")


class SortError(ValueError):
    """Raised for invalid input to :mod:`lgn.sort` (bad values, sizes, dtypes or names)."""


Comparator = tuple[int, int]


@dataclass(frozen=True)
class SortingNetwork:
    """A comparator network on ``n`` wires.

    Attributes
    ----------
    n : int
        Number of wires.
    layers : tuple of tuple of (int, int)
        Comparator layers in execution order; within a layer the comparators touch disjoint
        wires, and each ``(i, j)`` has ``i < j`` (minimum to ``i``, maximum to ``j``).
    outputs : tuple of int
        Wires whose final value is defined: all wires for a sorting network, the top ``k``
        wires for a selection network from :func:`top_k_network`.
    name : str
        How the network was built, for messages and generated code.
    """

    n: int
    layers: tuple[tuple[Comparator, ...], ...]
    outputs: tuple[int, ...]
    name: str = "custom"

    def __post_init__(self):
        if self.n < 1:
            raise SortError(f"a sorting network needs n >= 1 wires, got {self.n}")
        for depth, layer in enumerate(self.layers):
            seen: set[int] = set()
            for i, j in layer:
                if not 0 <= i < j < self.n:
                    raise SortError(f"layer {depth}: comparator ({i}, {j}) needs 0 <= i < j < {self.n}")
                if i in seen or j in seen:
                    raise SortError(f"layer {depth}: wire {i if i in seen else j} used twice")
                seen.update((i, j))
        if any(not 0 <= o < self.n for o in self.outputs):
            raise SortError(f"outputs {self.outputs} out of range for n={self.n}")
        # Networks key caches on every call: hash the (large) comparator tuples once.
        object.__setattr__(self, "_hash", hash((self.n, self.layers, self.outputs, self.name)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def depth(self) -> int:
        """Number of comparator layers."""
        return len(self.layers)

    @property
    def num_comparators(self) -> int:
        """Total number of comparators."""
        return sum(len(layer) for layer in self.layers)

    def apply(self, values: Sequence) -> list:
        """Run the network with hard comparators on one sequence (the reference semantics)."""
        if len(values) != self.n:
            raise SortError(f"expected {self.n} values, got {len(values)}")
        out = list(values)
        for layer in self.layers:
            for i, j in layer:
                if out[j] < out[i]:
                    out[i], out[j] = out[j], out[i]
        return out


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise SortError(f"n must be an int, got {type(n).__name__}")
    if n < 2:
        raise SortError(f"sorting needs n >= 2 elements, got n={n}")
    return n


def odd_even_network(n: int) -> SortingNetwork:
    """Return the odd-even transposition network: ``n`` layers of neighbour comparators."""
    _check_n(n)
    layers = tuple(tuple((i, i + 1) for i in range(d % 2, n - 1, 2)) for d in range(n))
    return SortingNetwork(n, tuple(layer for layer in layers if layer), tuple(range(n)), "odd_even")


def _bitonic_blocks(size_from: int, size_to: int, width: int) -> list[list[Comparator]]:
    """Bitonic merge stages for block sizes ``size_from .. size_to`` on ``width`` wires.

    Every merge of two sorted halves starts with a *flip* layer (``t`` against the mirrored
    wire), so every comparator sends its minimum to the lower wire.
    """
    layers = []
    size = size_from
    while size <= size_to:
        layers.append([(b + t, b + size - 1 - t) for b in range(0, width, size) for t in range(size // 2)])
        d = size // 4
        while d >= 1:
            layers.append([(b + t, b + t + d) for b in range(0, width, 2 * d) for t in range(d)])
            d //= 2
        size *= 2
    return layers


def _hide_padding(layers: Iterable[Iterable[Comparator]], width: int, n: int) -> tuple:
    """Drop the ``width - n`` lowest wires (imagined ``-inf``) and renumber the rest from 0.

    A comparator never moves a ``-inf`` upwards because minima go to the lower wire, so every
    comparator touching a padded wire is a no-op and can be removed.
    """
    pad = width - n
    out = (tuple((i - pad, j - pad) for i, j in layer if i >= pad) for layer in layers)
    return tuple(layer for layer in out if layer)


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def bitonic_network(n: int) -> SortingNetwork:
    """Return Batcher's bitonic sorter for any ``n``.

    Built for the next power of two with the padding hidden: the network has exactly ``n``
    wires and ``log2(N) (log2(N) + 1) / 2`` layers at most, ``N = 2**ceil(log2 n)``.
    """
    _check_n(n)
    width = _pow2(n)
    return SortingNetwork(n, _hide_padding(_bitonic_blocks(2, width, width), width, n),
                          tuple(range(n)), "bitonic")


def _prune(n: int, layers, outputs: Sequence[int]) -> tuple:
    """Remove comparators whose results never reach ``outputs`` (walking the layers backwards)."""
    live = set(outputs)
    kept = []
    for layer in reversed(layers):
        keep = tuple((i, j) for i, j in layer if i in live or j in live)
        for i, j in keep:
            live.update((i, j))
        if keep:
            kept.append(keep)
    return tuple(reversed(kept))


@functools.lru_cache(maxsize=64)
def top_k_network(n: int, k: int) -> SortingNetwork:
    """Return a bitonic selection network leaving the ``k`` largest of ``n`` sorted on top.

    Blocks of ``K = 2**ceil(log2 k)`` wires are sorted, then pairs of sorted blocks are merged
    keeping only the upper half (a flip layer followed by a half-size bitonic merge), until one
    block remains; comparators that cannot reach the top ``k`` wires are pruned. Wires
    ``n - k .. n - 1`` end up holding the ``k`` largest values in ascending order; the other
    wires hold the rest in no particular order.
    """
    _check_n(n)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise SortError(f"k must be an int in [1, n={n}], got {k!r}")
    width, block = _pow2(n), _pow2(k)
    layers = _bitonic_blocks(2, block, width)
    merged = block
    while merged < width:
        # Block B = [b + merged, b + 2 merged) keeps the larger half of A u B, as a bitonic
        # sequence, then only its last `block` wires are merged into ascending order.
        layers.append([(b + merged - 1 - t, b + 2 * merged - block + t)
                       for b in range(0, width, 2 * merged) for t in range(block)])
        d = block // 2
        while d >= 1:
            layers.append([(b + 2 * merged - block + s + t, b + 2 * merged - block + s + t + d)
                           for b in range(0, width, 2 * merged)
                           for s in range(0, block, 2 * d) for t in range(d)])
            d //= 2
        merged *= 2
    outputs = tuple(range(n - k, n))
    layers = _prune(n, _hide_padding(layers, width, n), outputs)
    return SortingNetwork(n, layers, outputs, f"top{k}")


@functools.lru_cache(maxsize=64)
def sorting_network(name: str, n: int) -> SortingNetwork:
    """Return the sorting network called ``name`` (one of :data:`NETWORKS`) on ``n`` wires."""
    builders = {"odd_even": odd_even_network, "bitonic": bitonic_network}
    if name not in builders:
        raise SortError(f"unknown network {name!r}, expected one of {NETWORKS}")
    return builders[name](n)
