"""Lowering: a trained :class:`~lgn.nn.LogicNet` becomes a :class:`Netlist`."""

from __future__ import annotations

import numpy as np
import torch

from .netlist import Netlist, ThermometerEncoding

__all__ = ["lower"]


@torch.no_grad()
def lower(model, meta: dict | None = None) -> Netlist:
    """Discretize ``model`` (argmax gate per neuron) into a netlist computing the same scores.

    The netlist's popcount scores times ``1 / model.tau`` equal ``model.eval()(x)`` on every
    input, and its encoding applies the model's thermometer to raw features.
    """
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
    ops, a, b = [], [], []
    prev = 2 + np.arange(num_inputs)  # node ids feeding the current layer
    next_id = 2 + num_inputs
    for layer in model.layers:
        ops.append(layer.gate_ops().cpu().numpy().astype(np.uint8))
        a.append(prev[layer.idx_a.cpu().numpy()])
        b.append(prev[layer.idx_b.cpu().numpy()])
        prev = next_id + np.arange(layer.out_dim)
        next_id += layer.out_dim
    return Netlist(
        num_inputs=num_inputs,
        op=np.concatenate(ops),
        a=np.concatenate(a),
        b=np.concatenate(b),
        outputs=prev,
        num_classes=model.num_classes,
        tau=model.tau,
        encoding=encoding,
        meta=dict(meta or {}),
    )
