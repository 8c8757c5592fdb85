"""Modules owning the parameters of a logic gate network; each calls :mod:`lgn.nn.functional`."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import functional as F
from . import gates

__all__ = ["LogicLayer", "GroupSum", "Thermometer", "LogicNet", "CONNECTIONS", "INITS", "PARAMETRIZATIONS"]

CONNECTIONS = ("random", "unique")
INITS = ("random", "residual")
PARAMETRIZATIONS = ("gates", "table")
#: Logit given to the pass-through gate A by ``init='residual'`` (others start at 0).
RESIDUAL_LOGIT = 5.0


def _connections(in_dim: int, out_dim: int, kind: str, generator: torch.Generator):
    if kind == "random":
        # Every input is used about equally often (as in difflogic): a shuffled multiset.
        c = torch.randperm(2 * out_dim, generator=generator) % in_dim
        c = torch.randperm(in_dim, generator=generator)[c]
        return c[:out_dim].clone(), c[out_dim:].clone()
    if kind == "unique":
        if in_dim < 2:
            raise ValueError("connections='unique' needs in_dim >= 2")
        # Each gate reads two distinct inputs; every input is read; pairs repeat only when forced.
        reps = -(-out_dim // in_dim)
        a = torch.cat([torch.randperm(in_dim, generator=generator) for _ in range(reps)])[:out_dim]
        shift = torch.randint(1, in_dim, (out_dim,), generator=generator)
        b = (a + shift) % in_dim
        if out_dim <= in_dim * (in_dim - 1) // 2:
            for _ in range(8):
                key = torch.minimum(a, b) * in_dim + torch.maximum(a, b)
                _, first = np.unique(key.numpy(), return_index=True)
                dup = torch.ones(out_dim, dtype=torch.bool)
                dup[torch.from_numpy(first)] = False
                if not dup.any():
                    break
                shift = torch.randint(1, in_dim, (int(dup.sum()),), generator=generator)
                b[dup] = (a[dup] + shift) % in_dim
        return a, b
    raise ValueError(f"unknown connections {kind!r}, expected one of {CONNECTIONS}")


class LogicLayer(nn.Module):
    """A layer of ``out_dim`` learned two-input gates over ``in_dim`` inputs.

    In training mode each gate is a softmax mixture of the 16 relaxed gates, computed as
    ``c0 + c1*a + c2*b + c3*a*b``. In ``eval()`` mode each gate is its most likely Boolean
    function: inputs are rounded to 0/1 and outputs are exactly 0/1.

    Args:
        in_dim: number of inputs.
        out_dim: number of gates.
        connections: ``'random'`` (every input used about equally) or ``'unique'`` (two distinct
            inputs per gate, no repeated pairs when avoidable).
        init: ``'random'`` (gate logits ~ N(0, 1)) or ``'residual'`` (pass-through gate ``A``
            favoured, which trains deep networks far better).
        parametrization: ``'gates'`` (the paper's softmax over the 16 gates, ``weights`` of shape
            ``(out_dim, 16)``) or ``'table'`` (one logit per truth-table entry, ``(out_dim, 4)``:
            ``g(a, b) = sigmoid(w[2a+b])``, as in light DLGNs; converges in fewer steps).
        generator: random source for connections and weights.

    Shape:
        - Input: ``(..., in_dim)`` with values in [0, 1].
        - Output: ``(..., out_dim)``.

    Examples:
        >>> layer = LogicLayer(16, 32)
        >>> layer(torch.rand(4, 16)).shape
        torch.Size([4, 32])
    """

    def __init__(self, in_dim: int, out_dim: int, connections: str = "random", init: str = "random",
                 parametrization: str = "gates", generator: torch.Generator | None = None):
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"LogicLayer needs in_dim >= 1 and out_dim >= 1, got {in_dim}, {out_dim}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}, expected one of {INITS}")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"unknown parametrization {parametrization!r}, expected one of {PARAMETRIZATIONS}")
        generator = generator or torch.default_generator
        self.in_dim, self.out_dim, self.connections, self.init = in_dim, out_dim, connections, init
        self.parametrization = parametrization
        idx_a, idx_b = _connections(in_dim, out_dim, connections, generator)
        self.register_buffer("idx_a", idx_a)
        self.register_buffer("idx_b", idx_b)
        if init == "random":
            weights = torch.randn(out_dim, 4 if parametrization == "table" else gates.NUM_GATES,
                                  generator=generator)
        else:
            weights = self.pass_through_logits()
        self.weights = nn.Parameter(weights)

    def pass_through_logits(self) -> torch.Tensor:
        """Logits of the pass-through gate ``A`` (the ``'residual'`` init), shaped like ``weights``."""
        if self.parametrization == "table":  # g(a, b) = a: the table (0, 0, 1, 1)
            return torch.tensor([-1.0, -1.0, 1.0, 1.0]).repeat(self.out_dim, 1) * RESIDUAL_LOGIT / 2
        logits = torch.zeros(self.out_dim, gates.NUM_GATES)
        logits[:, gates.A] = RESIDUAL_LOGIT
        return logits

    def coefficients(self) -> torch.Tensor:
        """Gate coefficients ``(out_dim, 4)``: relaxed in training mode, discretized in eval mode."""
        table = self.parametrization == "table"
        if self.training:
            return F.table_coefficients(self.weights) if table else F.gate_coefficients(self.weights)
        return F.hard_table_coefficients(self.weights) if table else F.hard_gate_coefficients(self.weights)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        # eval(): inputs are rounded to 0/1, so the layer computes its Boolean function exactly
        return x if self.training else (x > 0.5).to(self.weights.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"LogicLayer expected {self.in_dim} input features, got shape {tuple(x.shape)}")
        return F.logic_layer(self._inputs(x), self.idx_a, self.idx_b, self.coefficients())

    def forward_feature_major(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on feature-major activations, ``(in_dim, N) -> (out_dim, N)`` (see LogicNet)."""
        if x.dim() != 2 or x.shape[0] != self.in_dim:
            raise ValueError(f"LogicLayer expected ({self.in_dim}, N) feature-major inputs, "
                             f"got shape {tuple(x.shape)}")
        return F.logic_layer_feature_major(self._inputs(x), self.idx_a, self.idx_b, self.coefficients())

    def gate_ops(self) -> torch.Tensor:
        """The discretized gate of each neuron (0..15)."""
        if self.parametrization == "table":
            return F.table_gate_ops(self.weights)
        return self.weights.argmax(dim=-1)

    def extra_repr(self) -> str:
        return (f"{self.in_dim}, {self.out_dim}, connections={self.connections!r}, init={self.init!r}, "
                f"parametrization={self.parametrization!r}")


class GroupSum(nn.Module):
    """Sum the inputs in ``k`` contiguous groups and divide by ``tau``: class scores.

    Shape:
        - Input: ``(..., n)`` with ``n`` divisible by ``k``.
        - Output: ``(..., k)``.
    """

    def __init__(self, k: int, tau: float = 1.0):
        super().__init__()
        if k < 1 or not tau > 0:
            raise ValueError(f"GroupSum needs k >= 1 and tau > 0, got k={k}, tau={tau}")
        self.k, self.tau = k, float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.k:
            raise ValueError(f"GroupSum({self.k}) got {x.shape[-1]} inputs, not divisible by {self.k}")
        return F.group_sum(x, self.k, self.tau)

    def extra_repr(self) -> str:
        return f"k={self.k}, tau={self.tau}"


class Thermometer(nn.Module):
    """Fixed thermometer encoding of raw features: bit ``(f, t)`` is ``x[f] > thresholds[f, t]``.

    The thresholds are a buffer, so they travel with the model into checkpoints and compiled
    circuits, which then take raw features. Build it with :meth:`uniform` or :meth:`quantile`.

    Shape:
        - Input: ``(..., num_features)`` raw values.
        - Output: ``(..., num_features * num_bits)`` of 0/1, feature-major.
    """

    def __init__(self, thresholds: torch.Tensor):
        super().__init__()
        if thresholds.dim() != 2 or not torch.isfinite(thresholds).all():
            raise ValueError("Thermometer thresholds must be a finite (num_features, num_bits) tensor")
        self.register_buffer("thresholds", thresholds.to(torch.float32).contiguous())

    @property
    def num_features(self) -> int:
        return self.thresholds.shape[0]

    @property
    def num_bits(self) -> int:
        return self.thresholds.shape[1]

    @classmethod
    def uniform(cls, num_features: int, num_bits: int, low: float, high: float) -> "Thermometer":
        """Thresholds equally spaced strictly inside ``[low, high]``, the same for every feature."""
        steps = torch.arange(1, num_bits + 1, dtype=torch.float64) / (num_bits + 1)
        return cls((low + (high - low) * steps).expand(num_features, num_bits).clone())

    @classmethod
    def quantile(cls, x: torch.Tensor, num_bits: int) -> "Thermometer":
        """Per-feature thresholds at the quantiles ``t/(num_bits+1)`` of the training data ``x``."""
        q = torch.arange(1, num_bits + 1, dtype=torch.float64) / (num_bits + 1)
        return cls(torch.quantile(x.to(torch.float64), q, dim=0).T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.num_features:
            raise ValueError(f"Thermometer expected {self.num_features} features, got shape {tuple(x.shape)}")
        return F.thermometer(x.to(self.thresholds.dtype), self.thresholds)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, num_bits={self.num_bits}"


class LogicNet(nn.Module):
    """Thermometer encoder -> ``layers`` LogicLayers of ``width`` gates -> GroupSum.

    Args:
        encoder: the input :class:`Thermometer`.
        num_classes: number of output groups (``width`` must be divisible by it).
        layers: number of logic layers.
        width: gates per layer.
        tau: GroupSum temperature.
        connections, init, parametrization: passed to every :class:`LogicLayer`.
        seed: seeds connections and initial weights.
        feature_dtype: the raw features' type (e.g. ``'uint8'`` pixels), for compiled back ends.

    Shape:
        - Input: ``(N, num_features)`` raw features.
        - Output: ``(N, num_classes)`` scores.
    """

    def __init__(self, encoder: Thermometer, num_classes: int, layers: int = 4, width: int = 8000,
                 tau: float | None = None, connections: str = "random", init: str = "random", seed: int = 0,
                 feature_dtype: str = "float32", parametrization: str = "gates"):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if num_classes < 1 or width % num_classes:
            raise ValueError(f"width {width} must be a positive multiple of num_classes {num_classes}")
        generator = torch.Generator().manual_seed(seed)
        self.encoder = encoder
        dims = [encoder.num_features * encoder.num_bits] + [width] * layers
        self.layers = nn.ModuleList(
            LogicLayer(i, o, connections=connections, init=init, parametrization=parametrization,
                       generator=generator)
            for i, o in zip(dims[:-1], dims[1:])
        )
        self.tau = float(tau) if tau is not None else default_tau(width, num_classes)
        self.group_sum = GroupSum(num_classes, self.tau)
        self.num_classes = num_classes
        self.feature_dtype = feature_dtype

    def features_to_bits(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bits = self.encoder(x)
        # Feature-major inside, (features, N): every layer gathers and scatters whole rows.
        h = bits.reshape(-1, bits.shape[-1]).t()
        for layer in self.layers:
            h = layer.forward_feature_major(h)
        scores = F.group_sum_feature_major(h, self.group_sum.k, self.group_sum.tau)
        return scores.t().contiguous().view(*bits.shape[:-1], self.group_sum.k)

    @property
    def num_gates(self) -> int:
        return sum(layer.out_dim for layer in self.layers)


def default_tau(width: int, num_classes: int) -> float:
    """A GroupSum temperature that scales with the group size (``sqrt(width / classes)``)."""
    return round(math.sqrt(width / num_classes), 3)
