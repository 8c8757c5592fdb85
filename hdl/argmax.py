"""Balanced comparison tree returning the index of the largest score (ties: lowest index)."""

from __future__ import annotations

from amaranth.hdl import C, Module, Mux, Shape, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from .core import PipelinedComponent, checked_init
from .popcount import tree_levels

__all__ = ["Argmax", "index_width"]


def index_width(num_classes: int) -> int:
    """Return the width of a class index port (at least 1 bit)."""
    return max(1, (int(num_classes) - 1).bit_length())


class Argmax(PipelinedComponent):
    """Return the index of the largest of ``num_classes`` scores (``score_shape``: an int is that
    many unsigned bits, or any Amaranth shape, signed included).

    A node of the tree takes its right operand only when that score is strictly larger, and the
    left subtree always holds the lower indices, so ties go to the lowest index. A register row
    follows tree level ``j`` when ``(stage_offset + j) % pipeline == 0``.

    Attributes
    ----------
    scores : In(ArrayLayout(score_shape, num_classes))
    index : Out(index_width(num_classes))
    en : In(1)
        Clock enable of the registers (present only when the tree has registers).
    latency : int
        Register rows between ``scores`` and ``index``.
    """

    @checked_init
    def __init__(self, num_classes: int, score_shape, pipeline: int = 0, stage_offset: int = 0):
        self.score_shape = Shape.cast(score_shape)
        if num_classes < 1 or self.score_shape.width < 1:
            raise ValueError(f"Argmax needs >= 1 class and score bit, got {num_classes}, "
                             f"{self.score_shape}")
        self.num_classes = int(num_classes)
        self.score_width = self.score_shape.width
        self.levels = tree_levels(num_classes)
        members = {
            "scores": In(data.ArrayLayout(self.score_shape, self.num_classes)),
            "index": Out(index_width(num_classes)),
        }
        super().__init__(members, self.levels, pipeline, stage_offset)

    def elaborate(self, platform):
        m = Module()
        width = index_width(self.num_classes)
        nodes = [(C(i, width), self.scores[i]) for i in range(self.num_classes)]
        for level in range(1, self.levels + 1):
            merged = []
            for k in range(0, len(nodes) - 1, 2):
                (li, ls), (ri, rs) = nodes[k], nodes[k + 1]
                right = Signal(name=f"pick{level}_{k // 2}")
                index = Signal(width, name=f"index{level}_{k // 2}")
                score = Signal(self.score_shape, name=f"best{level}_{k // 2}")
                m.d.comb += [right.eq(rs > ls), index.eq(Mux(right, ri, li)),
                             score.eq(Mux(right, rs, ls))]
                merged.append((index, score))
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes = merged
            if level in self.cuts:
                held = []
                for k, (index, score) in enumerate(nodes):
                    index_q = Signal(width, name=f"index{level}_q{k}", reset_less=True)
                    score_q = Signal(self.score_shape, name=f"best{level}_q{k}", reset_less=True)
                    with m.If(self.en):
                        m.d.sync += [index_q.eq(index), score_q.eq(score)]
                    held.append((index_q, score_q))
                nodes = held
        m.d.comb += self.index.eq(nodes[0][0])
        return m
