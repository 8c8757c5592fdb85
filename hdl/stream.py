"""The complete classifier: encoder, gate core, popcounts and argmax behind a valid/ready stream."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from lgn.compile.netlist import Netlist

from .argmax import Argmax, index_width
from .core import NetlistCore, check_pipeline, checked_init, constant_nodes
from .encoder import ThermometerEncoder, feature_shape
from .errors import HDLError
from .popcount import MAX_GROUP, PopCount, check_group, offset_fits, popcount_levels, tree_levels

__all__ = ["Classifier", "classifier_signature", "score_shape", "class_counts", "popcount_stages",
           "logic_stages", "latency"]


def class_counts(netlist: Netlist) -> tuple[list[np.ndarray], np.ndarray]:
    """What each class's popcount counts: the positions in ``netlist.outputs`` of its outputs
    that need logic, and its constant part (class offset plus outputs wired to constant 1).

    Constant outputs (:func:`~lgn.hdl.core.constant_nodes`) never enter the adder trees.
    """
    k = netlist.outputs_per_class
    value = constant_nodes(netlist)[netlist.groups]
    variable = [c * k + np.flatnonzero(row < 0) for c, row in enumerate(value)]
    return variable, netlist.offsets + (value == 1).sum(axis=1)


def popcount_stages(netlist: Netlist, popcount_group: int = MAX_GROUP) -> int:
    """Return the stages of the popcounts: those of ``outputs_per_class`` bits, one more if some
    class's constant part finds no room in its tree (only with score offsets)."""
    group = check_group(popcount_group)
    levels = popcount_levels(netlist.outputs_per_class, group)
    variable, base = class_counts(netlist)
    fits = all(offset_fits(len(v), int(o), group, levels) for v, o in zip(variable, base.tolist()))
    return levels + (not fits)


def logic_stages(netlist: Netlist, popcount_group: int = MAX_GROUP) -> int:
    """Return the logic stages of the datapath: netlist levels + popcount and argmax tree levels."""
    return (netlist.depth + popcount_stages(netlist, popcount_group)
            + tree_levels(netlist.num_classes))


def latency(netlist: Netlist, pipeline: int, popcount_group: int = MAX_GROUP) -> int:
    """Return the clock cycles from input to result with a register row every ``pipeline`` stages."""
    pipeline = check_pipeline(pipeline)
    return logic_stages(netlist, popcount_group) // pipeline if pipeline else 0


def score_shape(netlist: Netlist) -> Shape:
    """Return the Amaranth shape of one class score on the ``out_scores`` port: wide enough for
    ``0 .. outputs_per_class`` and every class's ``offset .. offset + outputs``; signed when an
    offset can make a score negative."""
    variable, base = class_counts(netlist)
    low = min([0, *base.tolist()])
    high = max([netlist.outputs_per_class, *(int(o) + len(v) for v, o in zip(variable, base))])
    return Shape.cast(range(low, high + 1))


def classifier_signature(netlist: Netlist, raw_features: bool) -> wiring.Signature:
    """Return the signature of the :class:`Classifier` of ``netlist`` (its ports, in order)."""
    members = {}
    if raw_features:
        enc = netlist.encoding
        members["features"] = In(data.ArrayLayout(feature_shape(enc.dtype), enc.num_features))
    else:
        members["bits"] = In(netlist.num_inputs)
    members.update({
        "in_valid": In(1), "in_ready": Out(1),
        "out_valid": Out(1), "out_ready": In(1),
        "out_class": Out(index_width(netlist.num_classes)),
        "out_scores": Out(data.ArrayLayout(score_shape(netlist), netlist.num_classes)),
    })
    return wiring.Signature(members)


class Classifier(wiring.Component):
    """Classify one sample per handshake: ``features`` (or ``bits``) in, class index and scores out.

    The datapath is a chain of logic stages: the netlist's levels, then the popcount's levels
    (compressors, then the adder tree), then the argmax tree's levels. A class's score is the
    popcount of its outputs that need logic plus a constant: its score offset and its outputs
    wired to constant 1 (constant outputs never enter the adder trees; see :func:`class_counts`). With ``pipeline=N > 0`` a
    register row follows every ``N``-th stage, so ``latency = stages // N`` clock cycles; the whole pipeline advances whenever the output
    is not stalled (``en = ~out_valid | out_ready``), which accepts one sample per cycle while the
    consumer is ready. ``pipeline=0`` is purely combinational (no clock, ``out_valid = in_valid``,
    ``in_ready = out_ready``).

    Parameters
    ----------
    netlist : Netlist
    pipeline : int
        Logic stages per register row (0: none).
    raw_features : bool or None
        Take raw features through the netlist's thermometer encoding (default: whenever the netlist
        has one) instead of input bits.
    popcount_group : int
        Count each class's bits in groups of this many (2..6) with LUT-sized compressors before
        the adder tree; 6 suits LUT6 devices (Xilinx, Intel), 0 (plain adder tree) LUT4 parts.

    Attributes
    ----------
    features : In(ArrayLayout(shape, num_features))
        Raw features (``uint8``/``int8``/... per the encoding; ``float32`` as IEEE-754 bits). Only
        with ``raw_features``; otherwise ``bits : In(num_inputs)``.
    in_valid, in_ready : In(1), Out(1)
    out_valid, out_ready : Out(1), In(1)
    out_class : Out(index_width(num_classes))
        Predicted class; ties go to the lowest index.
    out_scores : Out(ArrayLayout(score_shape(netlist), num_classes))
        Score of each class: popcount plus offset (the trained model's score times ``tau``);
        signed when an offset can make a score negative.
    """

    @checked_init
    def __init__(self, netlist: Netlist, pipeline: int = 0, raw_features: bool | None = None,
                 popcount_group: int = MAX_GROUP):
        self.netlist = netlist
        self.pipeline = check_pipeline(pipeline)
        if raw_features is None:
            raw_features = netlist.encoding is not None
        if raw_features and netlist.encoding is None:
            raise HDLError("raw_features=True needs a netlist with a thermometer encoding")
        self.raw_features = bool(raw_features)
        self.popcount_group = check_group(popcount_group)
        self.score_shape = score_shape(netlist)
        self.score_width = self.score_shape.width
        self.stages = logic_stages(netlist, self.popcount_group)
        super().__init__(classifier_signature(netlist, self.raw_features))

    @property
    def inputs(self):
        """The input port as one value: ``features`` (all raw features) or ``bits``."""
        return self.features.as_value() if self.raw_features else self.bits

    @property
    def latency(self) -> int:
        """Clock cycles from accepting a sample to presenting its result."""
        return self.stages // self.pipeline if self.pipeline else 0

    def elaborate(self, platform):
        m = Module()
        net = self.netlist
        n = self.pipeline
        m.submodules.core = core = NetlistCore(net, n)
        if self.raw_features:
            m.submodules.encoder = encoder = ThermometerEncoder(net.encoding)
            m.d.comb += [encoder.features.eq(self.features), core.bits.eq(encoder.bits)]
        else:
            m.d.comb += core.bits.eq(self.bits)
        offset = net.depth
        levels = popcount_stages(net, self.popcount_group)
        argmax = Argmax(net.num_classes, self.score_shape, n, offset + levels)
        m.submodules.argmax = argmax
        units = [core, argmax]
        variable, base = class_counts(net)
        for c, (outputs, constant) in enumerate(zip(variable, base.tolist())):
            count = PopCount(len(outputs), n, offset, self.popcount_group, constant, levels,
                             self.score_shape)
            m.submodules[f"popcount{c}"] = count
            units.append(count)
            if len(outputs):
                m.d.comb += count.bits.eq(core.outputs_at(outputs))
            m.d.comb += argmax.scores[c].eq(count.count)
        if not self.latency:
            m.d.comb += [self.out_valid.eq(self.in_valid), self.in_ready.eq(self.out_ready),
                         self.out_class.eq(argmax.index), self.out_scores.eq(argmax.scores)]
            return m
        en = Signal()
        m.d.comb += [en.eq(~self.out_valid | self.out_ready), self.in_ready.eq(en)]
        for unit in units:
            if "en" in unit.signature.members:
                m.d.comb += unit.en.eq(en)
        valid = Signal(self.latency, name="valid")  # valid[i]: register row i holds a sample
        scores = argmax.scores.as_value()
        with m.If(en):
            m.d.sync += valid.eq(Cat(self.in_valid, valid[:-1]))
            for row in range(argmax.latency):  # scores travel beside the argmax tree
                held = Signal(len(scores), name=f"scores_q{row}", reset_less=True)
                m.d.sync += held.eq(scores)
                scores = held
        m.d.comb += [self.out_valid.eq(valid[-1]), self.out_class.eq(argmax.index),
                     self.out_scores.eq(scores)]
        return m
