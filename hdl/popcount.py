"""Balanced adder tree counting the set bits of a vector (one per class).

Optionally the bits are first counted in groups of up to six by LUT-sized compressors: bit ``k``
of the count of a group is the elementary symmetric polynomial of degree ``2**k`` over GF(2)
(Lucas' theorem), a pure AND/XOR function of the group that a 6-input LUT holds whole. On LUT6
devices this roughly halves the popcount's LUTs; on LUT4 parts a plain adder tree is smaller.
"""

from __future__ import annotations

import itertools
from functools import reduce
from operator import and_, xor

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib.wiring import In, Out

from .core import PipelinedComponent, checked_init
from .errors import HDLError

__all__ = ["PopCount", "tree_levels", "popcount_levels", "MAX_GROUP"]

#: Largest compressor group (bits counted by one LUT-sized function).
MAX_GROUP = 6


def tree_levels(leaves: int) -> int:
    """Return the depth of a balanced binary tree over ``leaves`` leaves (0 for one leaf)."""
    return max(0, (int(leaves) - 1).bit_length())


def check_group(group) -> int:
    """Return ``group`` as an int, or raise :class:`HDLError` unless it is 0 or 2..MAX_GROUP."""
    if isinstance(group, bool) or not isinstance(group, int) or not (
            group == 0 or 2 <= group <= MAX_GROUP):
        raise HDLError(f"popcount group must be 0 (plain adder tree) or 2..{MAX_GROUP}, got {group!r}")
    return group


def popcount_levels(width: int, group: int = 0) -> int:
    """Return the logic stages of a popcount of ``width`` bits with compressors of ``group`` bits."""
    if width <= 1:
        return 0
    if not group:
        return tree_levels(width)
    return 1 + tree_levels(-(-width // group))


def _symmetric(values: list, degree: int):
    """XOR of the ANDs of every ``degree`` of ``values``: bit log2(degree) of their count."""
    return reduce(xor, (reduce(and_, chosen) for chosen in itertools.combinations(values, degree)))


class PopCount(PipelinedComponent):
    """Count the ones of ``bits`` with a balanced tree of adders.

    With ``group > 0`` level 1 counts groups of ``group`` bits with compressors; the other levels
    add neighbouring pairs (an odd last operand passes through). A register row follows level
    ``j`` when ``(stage_offset + j) % pipeline == 0``.

    Attributes
    ----------
    bits : In(width)
    count : Out(width.bit_length())
    en : In(1)
        Clock enable of the registers (present only when the tree has registers).
    latency : int
        Register rows between ``bits`` and ``count``.
    """

    @checked_init
    def __init__(self, width: int, pipeline: int = 0, stage_offset: int = 0, group: int = 0):
        if width < 1:
            raise HDLError(f"PopCount needs at least one bit, got width {width}")
        self.width = int(width)
        self.group = check_group(group)
        self.levels = popcount_levels(width, self.group)
        members = {"bits": In(self.width), "count": Out(self.width.bit_length())}
        super().__init__(members, self.levels, pipeline, stage_offset)

    def elaborate(self, platform):
        m = Module()
        terms = [(self.bits[i], 1) for i in range(self.width)]  # (value, largest possible value)
        for level in range(1, self.levels + 1):
            if level == 1 and self.group:
                terms = self._compress(m)
            else:
                terms = self._add_pairs(m, terms, level)
            if level in self.cuts:
                held = []
                for k, (value, top) in enumerate(terms):
                    reg = Signal(top.bit_length(), name=f"sum{level}_q{k}", reset_less=True)
                    with m.If(self.en):
                        m.d.sync += reg.eq(value)
                    held.append((reg, top))
                terms = held
        m.d.comb += self.count.eq(terms[0][0])
        return m

    def _compress(self, m):
        """Count each group of ``group`` bits: bit k is the XOR of all ANDs of 2**k of them.

        Vectorised across groups: lane ``i`` holds bit ``i`` of every full group, so each
        symmetric polynomial is one wide expression over the lanes.
        """
        full, rest = divmod(self.width, self.group)
        counted = []
        if full:
            lanes = [self.bits[i : full * self.group : self.group] for i in range(self.group)]
            weights = []
            for k in range(self.group.bit_length()):
                weight = Signal(full, name=f"weight{1 << k}")
                m.d.comb += weight.eq(_symmetric(lanes, 1 << k))
                weights.append(weight)
            counted += [(Cat(*(w[j] for w in weights)), self.group) for j in range(full)]
        if rest:
            bits = [self.bits[i] for i in range(full * self.group, self.width)]
            tail = Signal(rest.bit_length(), name="weight_tail")
            m.d.comb += tail.eq(Cat(*(_symmetric(bits, 1 << k) for k in range(rest.bit_length()))))
            counted.append((tail, rest))
        return counted

    def _add_pairs(self, m, terms, level):
        """Add neighbouring terms; an odd last term passes through."""
        paired = []
        for k in range(0, len(terms) - 1, 2):
            (x, xmax), (y, ymax) = terms[k], terms[k + 1]
            top = xmax + ymax
            total = Signal(top.bit_length(), name=f"sum{level}_{k // 2}")
            m.d.comb += total.eq(x + y)
            paired.append((total, top))
        if len(terms) % 2:
            paired.append(terms[-1])
        return paired
