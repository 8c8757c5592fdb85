"""Models of the peer libraries difflogic and TorchLogix as netlists.

:func:`from_difflogic` and :func:`from_torchlogix` read an in-memory model of those libraries by
duck typing (nothing of them, nor torch, is imported here): a ``Sequential`` (nested ones are
flattened) of logic layers, ``Flatten`` modules and a final ``GroupSum``. The netlist computes the
model's eval-mode function (the argmax gate of every neuron, whatever mode the model is in): its
popcount scores divided by ``tau`` are the model's class scores, and its argmax the model's
prediction. Those models take bits in [0, 1] (the input bits of the netlist, in the flattened
order the first logic layer reads); pass ``encoding`` (a
:class:`~lgn.compile.netlist.ThermometerEncoding`) to have the netlist binarize raw features.

difflogic (``difflogic.LogicLayer``: ``weights`` ``(out, 16)``, ``indices`` ``(a, b)``): its 16
ops are numbered as lgn's gate table (:data:`DIFFLOGIC_OPS`, checked against
``difflogic.functional.bin_op`` in the tests).

TorchLogix (``torchlogix.layers.LogicDense``): the truth table of every neuron is read from the
layer's own eval-mode parametrization (raw, warp or light) applied to every input combination, so
no basis convention is assumed; ``lut_rank`` 2 gives gates, 1 gates that read one input, 3..6
k-input LUT nodes. Fixed connections are ``indices`` ``(lut_rank, out)``; learnable ones (without
Gumbel noise) choose the argmax candidate, as their forward does. ``GroupSum(beta=...)`` must be
an integer: it becomes the class offsets.

Examples
--------
>>> net = from_difflogic(torch.nn.Sequential(LogicLayer(64, 120, device="cpu",   # doctest: +SKIP
...                      implementation="python"), GroupSum(10, tau=3)))
>>> packed.predict(net, bits)                                                        # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from .gates import NUM_GATES
from .netlist import LUT_OP, MAX_LUT_INPUTS, Netlist, NetlistError

__all__ = ["from_difflogic", "from_torchlogix", "PeerModelError", "DIFFLOGIC_OPS"]

#: ``DIFFLOGIC_OPS[i]`` is the lgn gate (:mod:`lgn.compile.gates`) of difflogic's op ``i``: the
#: same order (Petersen et al., 2022), checked truth table by truth table in tests/test_peers.py.
DIFFLOGIC_OPS = np.arange(NUM_GATES, dtype=np.uint8)


class PeerModelError(NetlistError):
    """A peer model has a module or setting the conversion does not support; the message names it."""


def _numpy(tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    try:
        return np.asarray(tensor.numpy())
    except TypeError:  # a dtype numpy lacks (bfloat16): float32 holds it exactly
        return np.asarray(tensor.float().numpy())


def _is_container(module) -> bool:
    return any(cls.__name__ in ("Sequential", "ModuleList") for cls in type(module).__mro__)


def _leaves(model, where: str = "model"):
    """``(where, module)`` of every module run in order, nested Sequentials flattened."""
    if _is_container(model):
        for i, child in enumerate(model):  # iteration keeps a module that runs twice
            yield from _leaves(child, f"{where}[{i}]")
    else:
        yield where, model


class _Builder:
    """Gate and LUT arrays in node order (every node reads earlier ones)."""

    def __init__(self, num_inputs: int):
        self.num_inputs = num_inputs
        self.next_id = 2 + num_inputs
        self.op, self.a, self.b, self.fanin, self.arity, self.table = [], [], [], [], [], []

    def gates(self, op: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ids = self.next_id + np.arange(op.size, dtype=np.int64)
        self.op.append(op.astype(np.uint8))
        self.a.append(a.astype(np.int64))
        self.b.append(b.astype(np.int64))
        self.next_id += op.size
        return ids

    def luts(self, fanin: np.ndarray, table: np.ndarray) -> np.ndarray:
        """LUTs over ``fanin`` ``(n, k)`` node ids (column j is bit j of the row index)."""
        n, k = fanin.shape
        self.fanin.append(np.pad(fanin, ((0, 0), (0, MAX_LUT_INPUTS - k))))
        self.arity.append(np.full(n, k, np.uint8))
        self.table.append(table.astype(np.uint64))
        return self.gates(np.full(n, LUT_OP), fanin[:, 0], fanin[:, -1])

    def netlist(self, outputs, num_classes, tau, offsets, encoding, meta) -> Netlist:
        def cat(parts, dtype, shape=(0,)):
            return np.concatenate(parts) if parts else np.zeros(shape, dtype)

        return Netlist(
            num_inputs=self.num_inputs, op=cat(self.op, np.uint8), a=cat(self.a, np.int64),
            b=cat(self.b, np.int64), outputs=outputs, num_classes=num_classes, tau=tau,
            encoding=encoding, meta=dict(meta or {}), offsets=offsets,
            lut_fanin=cat(self.fanin, np.int64, (0, MAX_LUT_INPUTS)),
            lut_arity=cat(self.arity, np.uint8), lut_table=cat(self.table, np.uint64),
        )


# --------------------------------------------------------------------------- difflogic
def _difflogic_layer(layer, where: str):
    """``(in_dim, op, fanin)`` of a difflogic LogicLayer, or ``None`` for another module."""
    if not (hasattr(layer, "weights") and hasattr(layer, "indices") and hasattr(layer, "in_dim")):
        return None
    weights = _numpy(layer.weights)
    if weights.ndim != 2 or weights.shape[1] != NUM_GATES or len(layer.indices) != 2:
        raise PeerModelError(f"{where}: a LogicLayer needs weights (out, 16) and indices (a, b), got "
                             f"weights {weights.shape} and {len(layer.indices)} index tensors")
    a, b = (_numpy(i).astype(np.int64) for i in layer.indices)
    return int(layer.in_dim), DIFFLOGIC_OPS[weights.argmax(-1)], np.stack([a, b], axis=1)


# --------------------------------------------------------------------------- TorchLogix
def _torchlogix_fanin(connections, rank: int, out_dim: int, where: str) -> np.ndarray:
    """``(out_dim, rank)`` input index of each neuron's fan-ins, as the connections' forward picks."""
    indices = _numpy(connections.indices).astype(np.int64)
    if hasattr(connections, "weights"):  # learnable: the argmax candidate of every (fan-in, neuron)
        if getattr(connections, "gumbel", False):
            raise PeerModelError(f"{where}: learnable connections with gumbel=True are random in eval mode")
        choice = _numpy(connections.weights).argmax(0)  # (rank, out)
        indices = indices[choice, np.arange(rank)[:, None], np.arange(out_dim)[None, :]]
    if indices.shape != (rank, out_dim):
        raise PeerModelError(f"{where}: connection indices have shape {indices.shape}, expected "
                             f"({rank}, {out_dim}) (dense connections)")
    return indices.T


def _torchlogix_tables(layer, rank: int, out_dim: int, where: str) -> np.ndarray:
    """Truth table of every neuron: bit r is its eval-mode output when fan-in j is bit j of r."""
    rows = np.arange(1 << rank)
    bits = ((rows[:, None] >> np.arange(rank)[None, :]) & 1).astype(np.float32)  # (rows, rank)
    x = layer.weight.new_tensor(np.broadcast_to(bits[:, :, None], (rows.size, rank, out_dim)).copy())
    out = _numpy(layer.parametrization.forward(x, layer.weight.detach(), False, contraction="n,bn->bn"))
    if out.shape != (rows.size, out_dim) or not np.isin(out, (0.0, 1.0)).all():
        raise PeerModelError(f"{where}: the eval-mode LUTs did not give one bit per neuron and input row")
    return (out.astype(np.uint64) << rows[:, None].astype(np.uint64)).sum(axis=0, dtype=np.uint64)


def _torchlogix_layer(layer, where: str):
    """``(in_dim, op, fanin)`` of a TorchLogix LogicDense (``op`` None for LUT nodes), or ``None``."""
    if not all(hasattr(layer, k) for k in ("parametrization", "connections", "lut_rank", "weight")):
        return None
    if not hasattr(layer, "in_dim") or not hasattr(layer.connections, "indices"):
        raise PeerModelError(f"{where}: {type(layer).__name__} is not a dense logic layer "
                             "(only LogicDense converts)")
    rank, out_dim = int(layer.lut_rank), int(layer.out_dim)
    if not 1 <= rank <= MAX_LUT_INPUTS:
        raise PeerModelError(f"{where}: lut_rank {rank} is outside 1..{MAX_LUT_INPUTS}")
    fanin = _torchlogix_fanin(layer.connections, rank, out_dim, where)
    table = _torchlogix_tables(layer, rank, out_dim, where)
    if rank > 2:
        return int(layer.in_dim), None, (fanin, table)
    if rank == 1:  # g(a, b) = f(a): rows (a, b) = 00, 01, 10, 11 are f(0), f(0), f(1), f(1)
        fanin = np.repeat(fanin, 2, axis=1)
        table = (table & 1) * 0b11 | (table >> 1 & 1) * 0b1100
    # lgn gate op has bit 3 - 2a - b = g(a, b); the table has bit a + 2b
    op = sum(((table >> np.uint64(a + 2 * b)) & np.uint64(1)) << np.uint64(3 - 2 * a - b)
             for a in (0, 1) for b in (0, 1))
    return int(layer.in_dim), op.astype(np.uint8), fanin


# --------------------------------------------------------------------------- shared
def _convert(model, read_layer, library: str, encoding, meta) -> Netlist:
    modules = list(_leaves(model))
    builder, nodes, head = None, None, None
    for i, (where, module) in enumerate(modules):
        name = type(module).__name__
        if head is not None:
            raise PeerModelError(f"{head[0]}: GroupSum must be the last module, but {where} ({name}) follows it")
        if name in ("Flatten", "Identity", "Dropout"):  # no effect on (N, bits) in eval mode
            continue
        layer = read_layer(module, where)
        if layer is not None:
            in_dim, op, fanin = layer
            if nodes is None:
                builder = _Builder(in_dim)
                nodes = 2 + np.arange(in_dim, dtype=np.int64)
            if in_dim != nodes.size:
                raise PeerModelError(f"{where}: the layer reads {in_dim} inputs, but the previous one gives "
                                     f"{nodes.size}")
            if op is None:
                fanin, table = fanin
                nodes = builder.luts(nodes[fanin], table)
            else:
                nodes = builder.gates(op, nodes[fanin[:, 0]], nodes[fanin[:, 1]])
        elif hasattr(module, "k") and hasattr(module, "tau"):
            head = (where, module)
        else:
            raise PeerModelError(f"{where}: cannot convert a {name} module (a {library} model is logic "
                                 "layers, Flatten and a final GroupSum)")
    if head is None or nodes is None:
        raise PeerModelError(f"model: a {library} model needs logic layers and a final GroupSum, "
                             f"found {[type(m).__name__ for _, m in modules]}")
    where, group = head
    classes, tau = int(group.k), float(group.tau)
    if classes < 1 or nodes.size % classes:
        raise PeerModelError(f"{where}: GroupSum k={classes} does not divide the {nodes.size} outputs")
    beta = float(getattr(group, "beta", 0.0) or 0.0)
    if beta != int(beta):
        raise PeerModelError(f"{where}: GroupSum beta={beta} is not an integer (a netlist's class offsets are)")
    if encoding is not None and encoding.feature.size != builder.num_inputs:
        raise PeerModelError(f"encoding: {encoding.feature.size} input bits, but the model reads "
                             f"{builder.num_inputs}")
    offsets = np.full(classes, int(beta), np.int64) if beta else None
    return builder.netlist(nodes, classes, tau, offsets, encoding, {"library": library, **(meta or {})})


def from_difflogic(model, encoding=None, meta: dict | None = None) -> Netlist:
    """Convert a difflogic model (``LogicLayer`` s and a ``GroupSum``) into a :class:`Netlist`.

    ``encoding``: an optional :class:`~lgn.compile.netlist.ThermometerEncoding` from raw features
    to the model's input bits; ``meta``: provenance stored with the netlist (e.g. ``class_names``),
    beside ``library`` (``"difflogic"``).
    Raises :class:`PeerModelError` naming a module that does not convert.
    """
    return _convert(model, _difflogic_layer, "difflogic", encoding, meta)


def from_torchlogix(model, encoding=None, meta: dict | None = None) -> Netlist:
    """Convert a TorchLogix model (``LogicDense`` layers and a ``GroupSum``) into a :class:`Netlist`.

    As :func:`from_difflogic`; ``lut_rank`` above 2 gives k-input LUT nodes (see
    :func:`lgn.compile.luts.decompose` for back ends that take two-input gates only).
    """
    return _convert(model, _torchlogix_layer, "torchlogix", encoding, meta)
