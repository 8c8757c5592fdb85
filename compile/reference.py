"""The reference interpreter: what a :class:`~lgn.compile.netlist.Netlist` computes.

A few obviously-correct lines that define the meaning of a netlist; every back end (the packed
executor, C, Amaranth, Verilog, BLIF/AIGER readers) is tested against it. Speed is not a goal:
one Python loop over the gates, each gate a truth-table lookup on a bool array of all samples.

- :func:`encode`: input bits of raw features, ``bit[s, i] = features[s, feature[i]] >
  threshold[i]`` compared as real numbers (NaN is above nothing; ``-0.0`` equals ``0.0``).
  Without an encoding the features are the bits themselves (nonzero is 1).
- :func:`outputs`: the value of every output node, ``(N, num_outputs)`` bool.
- LUT nodes: bit ``sum_j fanin_j << j`` of the truth-table word.
- :func:`scores`: per-class count of the outputs that are 1 plus the class offset, ``(N, num_classes)`` int64.
- :func:`predict`: the class with the highest score, ties going to the lowest class index.

Examples
--------
>>> net = Netlist.from_text("inputs 2\\ng4 = XOR x0 x1\\noutputs g4 x0 | x1 c1\\n")
>>> scores(net, [[0, 1], [1, 1]]).tolist(), predict(net, [[0, 1], [1, 1]]).tolist()
([[1, 2], [1, 2]], [1, 1])
"""

from __future__ import annotations

import numpy as np

from lgn.compile.gates import TRUTH_TABLE

from .netlist import Netlist, NetlistError

__all__ = ["encode", "outputs", "scores", "predict"]


def encode(netlist: Netlist, features) -> np.ndarray:
    """Return the input bits ``(N, num_inputs)`` bool of raw ``features (N, num_features)``.

    Features must be values of the encoding's declared type (any numeric array holding them).
    """
    x = np.asarray(features)
    enc = netlist.encoding
    width = netlist.num_inputs if enc is None else enc.num_features
    if x.ndim != 2 or x.shape[1] != width:
        raise NetlistError(f"features have shape {x.shape}, expected (N, {width})")
    if enc is None:
        return x != 0
    with np.errstate(all="ignore"):  # out-of-type values are caught below; NaN casts quietly
        typed = x.astype(enc.dtype)
        exact = typed.astype(np.float64)  # every value of every feature type is exact in float64
    if not np.array_equal(typed, x, equal_nan=typed.dtype.kind == "f"):
        raise NetlistError(f"features are not all exact {enc.dtype} values")
    return exact[:, enc.feature] > enc.threshold


def _bits(netlist: Netlist, bits) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] != netlist.num_inputs:
        raise NetlistError(f"bits have shape {bits.shape}, expected (N, {netlist.num_inputs})")
    return bits != 0


def outputs(netlist: Netlist, bits) -> np.ndarray:
    """Return the output node values ``(N, num_outputs)`` bool of input ``bits (N, num_inputs)``."""
    bits = _bits(netlist, bits)
    n = bits.shape[0]
    value = [np.zeros(n, bool), np.ones(n, bool)] + [bits[:, i] for i in range(netlist.num_inputs)]
    fanins = netlist.fanins()
    tables = dict(zip(netlist.lut_gates.tolist(), netlist.lut_table.tolist()))
    for g, (op, a, b) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        if g in fanins:
            row = sum(value[v].astype(np.uint64) << np.uint64(j) for j, v in enumerate(fanins[g]))
            value.append((np.uint64(tables[g]) >> row) & np.uint64(1) == 1)
            continue
        value.append(TRUTH_TABLE[op][2 * value[a].astype(np.intp) + value[b]] == 1)
    return np.stack([value[node] for node in netlist.outputs.tolist()], axis=1)


def scores(netlist: Netlist, bits) -> np.ndarray:
    """Return the scores ``(N, num_classes)`` int64: each class's outputs that are 1, plus its offset."""
    values = outputs(netlist, bits)
    groups = values.reshape(len(values), netlist.num_classes, netlist.outputs_per_class)
    return groups.sum(axis=2, dtype=np.int64) + netlist.offsets


def predict(netlist: Netlist, bits) -> np.ndarray:
    """Return the predicted class ``(N,)`` int64 of input ``bits``; ties go to the lowest class."""
    return scores(netlist, bits).argmax(axis=1).astype(np.int64)
