"""Lowering: a trained :class:`~lgn.nn.LogicNet` or :class:`~lgn.nn.LogicStack` becomes a :class:`Netlist`.

Convolutions are unrolled: one gate per tree node per output position, the same gate function at
every position; a leaf on the zero padding reads the constant-0 node. OR pooling becomes a
balanced tree of OR gates per output. The netlist stays flat: every back end takes it unchanged.

k-input LUT layers (:class:`~lgn.nn.lut.LutLayer`) become native LUT nodes (``op`` 16) with their
truth-table words, except that k = 1 and k = 2 nodes become the equivalent two-input gate (the
common case every pass and back end knows best). Layers with learned connectivity
(:class:`~lgn.nn.connectivity.LearnedLogicLayer`, :class:`~lgn.nn.connectivity.LearnedLutLayer`)
are lowered as their fixed-wiring equivalent: each input reads its most likely source.
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.compile import gates

from .netlist import LUT_OP, MAX_LUT_INPUTS, Netlist, ThermometerEncoding

__all__ = ["lower"]


class _Gates:
    """Accumulates gates; node ids are handed out in order, so every gate reads earlier nodes."""

    def __init__(self, first_id: int):
        self.next_id = first_id
        self.op, self.a, self.b = [], [], []
        self.lut_fanin, self.lut_arity, self.lut_table = [], [], []

    def add(self, op, a, b) -> np.ndarray:
        """Append gates ``op(a, b)`` (arrays of one shape, broadcast); return their ids in that shape."""
        op, a, b = np.broadcast_arrays(np.asarray(op, np.uint8), np.asarray(a, np.int64), np.asarray(b, np.int64))
        ids = self.next_id + np.arange(op.size, dtype=np.int64).reshape(op.shape)
        self.op.append(op.ravel())
        self.a.append(a.ravel())
        self.b.append(b.ravel())
        self.next_id += op.size
        return ids

    def add_luts(self, fanin: np.ndarray, tables: np.ndarray) -> np.ndarray:
        """Append LUT nodes: ``fanin`` ``(n, k)`` node ids, ``tables`` ``(n,)`` uint64 words."""
        n, k = fanin.shape
        ids = self.add(np.full(n, LUT_OP), fanin[:, 0], fanin[:, -1])
        padded = np.zeros((n, MAX_LUT_INPUTS), np.int64)
        padded[:, :k] = fanin
        self.lut_fanin.append(padded)
        self.lut_arity.append(np.full(n, k, np.uint8))
        self.lut_table.append(np.asarray(tables, np.uint64))
        return ids


def _gate_of_table(tables: np.ndarray, k: int) -> np.ndarray:
    """The gate numbers (0..15) computing k = 1 or 2 LUT tables with a = fan-in k-1, b = fan-in 0.

    Gate ``op`` holds the output for ``(a, b)`` in bit ``3 - (2a + b)``; LUT entry ``i`` is the
    output for fan-in ``j`` = bit ``j`` of ``i``. A 1-input table reads its fan-in as both operands
    and becomes a gate of ``a`` only (``A``, ``NOT_A``, or a constant).
    """
    tables = tables.astype(np.int64)
    entry = [(tables >> i) & 1 for i in range(1 << k)]
    if k == 1:
        entry = [entry[0], entry[0], entry[1], entry[1]]  # pattern 2a + b depends on a only
    return sum(entry[i] << (3 - i) for i in range(4)).astype(np.uint8)


def _lut(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    fanin = nodes[layer.inputs.cpu().numpy()]  # (out_dim, k)
    tables = layer.truth_tables()
    if layer.k <= 2:
        return out.add(_gate_of_table(tables, layer.k), fanin[:, -1], fanin[:, 0])
    return out.add_luts(fanin, tables)


def _learned_gates(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    """Gates with learned connectivity: the fixed-wiring twin (the argmax sources)."""
    return _dense(layer.to_fixed(), nodes, out)


def _learned_luts(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    return _lut(layer.to_fixed(), nodes, out)


def _dense(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    return out.add(layer.gate_ops().cpu().numpy(), nodes[layer.idx_a.cpu().numpy()],
                   nodes[layer.idx_b.cpu().numpy()])


def _conv(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    """``nodes`` ``(C, H, W)`` -> ``(out_channels, H_out, W_out)``: the trees at every position."""
    padded = np.append(nodes.ravel(), 0)  # the index one past the image is the padding: node 0
    level = padded[layer.leaf_index(nodes.shape).cpu().numpy()]  # (positions, out, leaves)
    ops, start = layer.gate_ops().cpu().numpy(), 0
    while level.shape[-1] > 1:  # the same pairing as lgn.nn.functional.logic_tree
        m = level.shape[-1] // 2
        level = out.add(ops[:, start : start + m], level[..., 0::2], level[..., 1::2])
        start += m
    height, width = layer.output_size(*nodes.shape[1:])
    return level.reshape(height, width, -1).transpose(2, 0, 1)


def _or_pool(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    """``nodes`` ``(C, H, W)`` -> the OR of each window, a balanced tree of OR gates."""
    windows = torch.from_numpy(nodes).unfold(1, layer.window, layer.stride).unfold(2, layer.window, layer.stride)
    level = windows.reshape(*windows.shape[:3], -1).numpy()
    while level.shape[-1] > 1:
        pairs = level.shape[-1] // 2
        ored = out.add(gates.OR, level[..., 0 : 2 * pairs : 2], level[..., 1 : 2 * pairs : 2])
        level = np.concatenate([ored, level[..., 2 * pairs :]], axis=-1)
    return level[..., 0]


def _reshape(layer, nodes: np.ndarray, out: _Gates) -> np.ndarray:
    """A block that only moves values (ThermometerImage, Flatten): apply it to the node ids."""
    return layer(torch.from_numpy(nodes)[None])[0].numpy()


@torch.no_grad()
def lower(model, meta: dict | None = None) -> Netlist:
    """Discretize ``model`` (argmax gate per neuron) into a netlist computing the same scores.

    The netlist's popcount scores times ``1 / model.tau`` equal ``model.eval()(x)`` on every
    input, and its encoding applies the model's thermometer to raw features.
    """
    from torch import nn

    from lgn.nn import (LearnedLogicLayer, LearnedLutLayer, LogicConv2d, LogicLayer, LutLayer, OrPool2d,
                        ThermometerImage)

    lowerings = {LogicLayer: _dense, LogicConv2d: _conv, OrPool2d: _or_pool, ThermometerImage: _reshape,
                 nn.Flatten: _reshape, LutLayer: _lut, LearnedLogicLayer: _learned_gates,
                 LearnedLutLayer: _learned_luts}
    encoder = model.encoder
    thresholds = encoder.thresholds.detach().cpu().to(torch.float64).numpy()
    num_features, num_bits = thresholds.shape
    num_inputs = num_features * num_bits
    encoding = ThermometerEncoding(
        num_features=num_features,
        feature=np.repeat(np.arange(num_features), num_bits),
        threshold=thresholds.reshape(-1),
        dtype=getattr(model, "feature_dtype", "float32"),
    )
    nodes = 2 + np.arange(num_inputs)  # node ids feeding the current layer
    out = _Gates(2 + num_inputs)
    for layer in model.layers:
        lowering = lowerings.get(type(layer))
        if lowering is None:
            raise TypeError(f"cannot lower a {type(layer).__name__} layer")
        nodes = lowering(layer, nodes, out)
    empty = np.zeros(0, np.int64)
    luts = {}
    if out.lut_table:
        luts = dict(lut_fanin=np.concatenate(out.lut_fanin), lut_arity=np.concatenate(out.lut_arity),
                    lut_table=np.concatenate(out.lut_table))
    return Netlist(
        num_inputs=num_inputs,
        op=np.concatenate(out.op) if out.op else empty.astype(np.uint8),
        a=np.concatenate(out.a) if out.a else empty,
        b=np.concatenate(out.b) if out.b else empty,
        outputs=nodes.reshape(-1),
        num_classes=model.num_classes,
        tau=model.tau,
        encoding=encoding,
        meta=dict(meta or {}),
        **luts,
    )
