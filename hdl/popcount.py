"""Balanced adder tree counting the set bits of a vector (one per class), plus a constant offset.

Optionally the bits are first counted in groups of up to six by LUT-sized compressors: bit ``k``
of the count of a group is the elementary symmetric polynomial of degree ``2**k`` over GF(2)
(Lucas' theorem), a pure AND/XOR function of the group that a 6-input LUT holds whole. On LUT6
devices this roughly halves the popcount's LUTs; on LUT4 parts a plain adder tree is smaller.

The offset (a class's score offset plus its constant-1 outputs, which never enter the tree) is
one more leaf of the adder tree where the tree has room for it; else it is baked into the
compressor of the last, partly filled group (a table lookup of that group's bits); else it
needs one more level (:func:`offset_fits`).
"""

from __future__ import annotations

import itertools
from functools import reduce
from operator import and_, xor

from amaranth.hdl import C, Cat, Module, Shape, Signal
from amaranth.lib.wiring import In, Out

from .core import PipelinedComponent, checked_init
from .errors import HDLError

__all__ = ["PopCount", "tree_levels", "popcount_levels", "offset_fits", "count_shape", "MAX_GROUP"]

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


def _compresses(width: int, group: int) -> bool:
    return bool(group) and width > 1


def offset_fits(width: int, offset: int, group: int, levels: int) -> bool:
    """Whether ``popcount(width bits) + offset`` takes at most ``levels`` stages."""
    if not offset or not width:
        return popcount_levels(width, group) <= levels
    if not _compresses(width, group):
        return width + 1 <= 1 << levels
    terms = -(-width // group)
    return (levels >= 1 and terms + 1 <= 1 << (levels - 1)) or 0 < offset <= terms * group - width


def count_shape(width: int, offset: int = 0) -> Shape:
    """The shape holding ``offset .. offset + width`` (and 0): unsigned unless ``offset < 0``."""
    return Shape.cast(range(min(0, offset), max(0, offset + width) + 1))


def _extend(value, width: int):
    """``value`` sign- (signed) or zero-extended (unsigned) to ``width`` bits, keeping its sign."""
    pad = width - len(value)
    if pad <= 0:
        return value
    if value.shape().signed:
        return Cat(value, value[-1].replicate(pad)).as_signed()
    return Cat(value, C(0, pad))


def _symmetric(values: list, degree: int):
    """XOR of the ANDs of every ``degree`` of ``values``: bit log2(degree) of their count."""
    return reduce(xor, (reduce(and_, chosen) for chosen in itertools.combinations(values, degree)))


class PopCount(PipelinedComponent):
    """Count the ones of ``bits`` with a balanced tree of adders, plus the constant ``offset``.

    With ``group > 0`` level 1 counts groups of ``group`` bits with compressors; the other levels
    add neighbouring pairs (an odd last operand passes through). A nonzero ``offset`` joins the
    tree as a constant leaf, or the last group's compressor when the tree has no room (see
    :func:`offset_fits`). ``levels`` (at least the natural depth) pads the tree with pass-through
    stages so that counts of different widths line up; ``shape`` (default
    ``count_shape(width, offset)``) is the shape of ``count``. A register row follows level ``j``
    when ``(stage_offset + j) % pipeline == 0``.

    Attributes
    ----------
    bits : In(width)
    count : Out(shape)
    en : In(1)
        Clock enable of the registers (present only when the tree has registers).
    latency : int
        Register rows between ``bits`` and ``count``.
    """

    @checked_init
    def __init__(self, width: int, pipeline: int = 0, stage_offset: int = 0, group: int = 0,
                 offset: int = 0, levels: int | None = None, shape=None):
        if width < 0 or (width == 0 and not offset and levels is None):
            raise HDLError(f"PopCount needs at least one bit, got width {width}")
        self.width = int(width)
        self.group = check_group(group)
        self.offset = int(offset)
        natural = popcount_levels(width, self.group)
        if not offset_fits(self.width, self.offset, self.group, natural):
            natural += 1
        self.levels = natural if levels is None else int(levels)
        if self.levels < natural or not offset_fits(self.width, self.offset, self.group, self.levels):
            raise HDLError(f"a popcount of {width} bits plus {offset} needs {natural} levels, "
                           f"got {levels}")
        self.shape = count_shape(self.width, self.offset) if shape is None else Shape.cast(shape)
        members = {"bits": In(self.width), "count": Out(self.shape)}
        super().__init__(members, self.levels, pipeline, stage_offset)

    def elaborate(self, platform):
        m = Module()
        # Terms: (value, lowest, highest value); constants are never registered.
        terms = [(self.bits[i], 0, 1) for i in range(self.width)]
        pending = self.offset
        compress = _compresses(self.width, self.group)
        for level in range(1, self.levels + 1):
            if level == 1 and compress:
                remaining = self.levels - 1
                fold = pending > 0 and -(-self.width // self.group) + 1 > 1 << remaining
                terms = self._compress(m, pending if fold else 0)
                pending = 0 if fold else pending
            else:
                if pending:
                    terms.append((C(pending, count_shape(0, pending)), pending, pending))
                    pending = 0
                terms = self._add_pairs(m, terms, level)
            if level in self.cuts:
                terms = [self._register(m, term, level, k) for k, term in enumerate(terms)]
        if pending or not terms:
            terms.append((C(pending, count_shape(0, pending)), pending, pending))
        m.d.comb += self.count.eq(terms[0][0])
        return m

    def _register(self, m, term, level: int, k: int):
        value, low, high = term
        if isinstance(value, C):
            return term
        reg = Signal(count_shape(high - low, low), name=f"sum{level}_q{k}", reset_less=True)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg, low, high

    def _compress(self, m, offset: int):
        """Count each group of ``group`` bits: bit k is the XOR of all ANDs of 2**k of them.

        Vectorised across groups: lane ``i`` holds bit ``i`` of every full group, so each
        symmetric polynomial is one wide expression over the lanes. A positive ``offset`` is
        added inside the last, partly filled group, as table lookups of its bits.
        """
        full, rest = divmod(self.width, self.group)
        if offset and not rest:
            raise HDLError("no partly filled group to hold the offset")  # offset_fits excludes it
        counted = []
        if full:
            lanes = [self.bits[i : full * self.group : self.group] for i in range(self.group)]
            weights = []
            for k in range(self.group.bit_length()):
                weight = Signal(full, name=f"weight{1 << k}")
                m.d.comb += weight.eq(_symmetric(lanes, 1 << k))
                weights.append(weight)
            counted += [(Cat(*(w[j] for w in weights)), 0, self.group) for j in range(full)]
        if rest:
            bits = [self.bits[i] for i in range(full * self.group, self.width)]
            top = rest + offset
            tail = Signal(top.bit_length(), name="weight_tail")
            if offset:
                index = Cat(*bits)
                m.d.comb += tail.eq(Cat(*(
                    C(sum(((bin(r).count("1") + offset) >> k & 1) << r for r in range(1 << rest)),
                      1 << rest).bit_select(index, 1)
                    for k in range(top.bit_length()))))
            else:
                m.d.comb += tail.eq(Cat(*(_symmetric(bits, 1 << k)
                                          for k in range(rest.bit_length()))))
            counted.append((tail, offset, top))
        return counted

    def _add_pairs(self, m, terms, level):
        """Add neighbouring terms; an odd last term passes through."""
        paired = []
        for k in range(0, len(terms) - 1, 2):
            (x, xlow, xhigh), (y, ylow, yhigh) = terms[k], terms[k + 1]
            low, high = xlow + ylow, xhigh + yhigh
            if low >= 0:
                total = Signal(count_shape(high - low, low), name=f"sum{level}_{k // 2}")
                m.d.comb += total.eq(x + y)
            else:
                # Signed sums are formed at the width of ``count``: extending a narrower one
                # would copy its sign bit, a bit of the output port once flattened, which
                # Verilator takes for a combinational loop (UNOPTFLAT).
                total = Signal(self.shape, name=f"sum{level}_{k // 2}")
                m.d.comb += total.eq(_extend(x, self.shape.width - 1)
                                     + _extend(y, self.shape.width - 1))
            paired.append((total, low, high))
        if len(terms) % 2:
            paired.append(terms[-1])
        return paired
