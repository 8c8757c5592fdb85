"""Balanced adder tree counting the set bits of a vector (one per class)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .core import check_pipeline, checked_init, register_after

__all__ = ["PopCount", "tree_levels"]


def tree_levels(leaves: int) -> int:
    """Return the depth of a balanced binary tree over ``leaves`` leaves (0 for one leaf)."""
    return max(0, (int(leaves) - 1).bit_length())


class PopCount(wiring.Component):
    """Count the ones of ``bits`` with a balanced tree of adders.

    Level ``j`` of the tree adds neighbouring pairs (an odd last operand passes through); a register
    row follows level ``j`` when ``(stage_offset + j) % pipeline == 0``.

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
    def __init__(self, width: int, pipeline: int = 0, stage_offset: int = 0):
        if width < 1:
            raise ValueError(f"PopCount needs at least one bit, got width {width}")
        self.width = int(width)
        self.pipeline = check_pipeline(pipeline)
        self.stage_offset = int(stage_offset)
        self.levels = tree_levels(width)
        self.cuts = [j for j in range(1, self.levels + 1)
                     if register_after(self.stage_offset + j, self.pipeline)]
        members = {"bits": In(self.width), "count": Out(self.width.bit_length())}
        if self.cuts:
            members["en"] = In(1)
        super().__init__(members)

    @property
    def latency(self) -> int:
        return len(self.cuts)

    def elaborate(self, platform):
        m = Module()
        terms = [(self.bits[i], 1) for i in range(self.width)]  # (value, largest possible value)
        for level in range(1, self.levels + 1):
            paired = []
            for k in range(0, len(terms) - 1, 2):
                (x, xmax), (y, ymax) = terms[k], terms[k + 1]
                top = xmax + ymax
                total = Signal(top.bit_length(), name=f"sum{level}_{k // 2}")
                m.d.comb += total.eq(x + y)
                paired.append((total, top))
            if len(terms) % 2:
                paired.append(terms[-1])
            terms = paired
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
