"""Stateless logic-gate operations; the modules in :mod:`lgn.nn.modules` call these in one line."""

from __future__ import annotations

import torch

from . import gates

__all__ = [
    "gate_coefficients", "hard_gate_coefficients", "table_coefficients", "hard_table_coefficients",
    "table_gate_ops", "logic_layer", "logic_layer_reference",
    "group_sum", "thermometer",
]

_COEFFICIENTS = torch.from_numpy(gates.COEFFICIENTS.copy())
_TRUTH = torch.from_numpy(gates.TRUTH_TABLE.astype("float64"))


def gate_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Return ``(out, 4)`` coefficients over ``{1, a, b, ab}`` of ``softmax(weights)`` ``(out, 16)``."""
    return torch.softmax(weights, dim=-1) @ _COEFFICIENTS.to(weights)


def hard_gate_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Return the coefficients of the most likely gate of each neuron (the discretized layer)."""
    return _COEFFICIENTS.to(weights)[weights.argmax(dim=-1)]


def _bilinear(table: torch.Tensor) -> torch.Tensor:
    """Coefficients over ``{1, a, b, ab}`` of the table ``(..., 4)`` of g(0,0), g(0,1), g(1,0), g(1,1)."""
    t00, t01, t10, t11 = table.unbind(-1)
    return torch.stack([t00, t10 - t00, t01 - t00, t11 - t10 - t01 + t00], dim=-1)


def table_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Coefficients of gates parametrized by their truth table: ``g(a,b) = sigmoid(weights[2a+b])``.

    ``weights`` is ``(out, 4)``: one logit per input pattern instead of one per gate (the
    truth-table parametrization of light DLGNs), which trains in far fewer steps.
    """
    return _bilinear(torch.sigmoid(weights))


def hard_table_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Coefficients of the discretized truth-table gates (each entry 1 where its logit is > 0)."""
    return _bilinear((weights > 0).to(weights.dtype))


def table_gate_ops(weights: torch.Tensor) -> torch.Tensor:
    """Gate number of each discretized truth-table gate: bit ``3 - (2a+b)`` holds g(a, b)."""
    bits = (weights > 0).long()
    return (bits * torch.tensor([8, 4, 2, 1], device=weights.device)).sum(-1)


class _LogicLayer(torch.autograd.Function):
    """``y = c0 + c1*a + c2*b + c3*a*b`` with ``a, b`` gathered from ``x``; saves only ``x``."""

    @staticmethod
    def forward(ctx, x, idx_a, idx_b, coef):
        a = x.index_select(-1, idx_a)
        b = x.index_select(-1, idx_b)
        c0, c1, c2, c3 = coef.unbind(-1)
        ctx.save_for_backward(x, idx_a, idx_b, coef)
        # y = a*(c1 + c3*b) + (c0 + c2*b)
        return torch.addcmul(c0 + c2 * b, a, torch.addcmul(c1, c3, b))

    @staticmethod
    def backward(ctx, grad):
        x, idx_a, idx_b, coef = ctx.saved_tensors
        a = x.index_select(-1, idx_a)
        b = x.index_select(-1, idx_b)
        c0, c1, c2, c3 = coef.unbind(-1)
        grad_x = grad_coef = None
        batch_dims = tuple(range(grad.dim() - 1))
        if ctx.needs_input_grad[3]:
            ga_b = grad * a
            grad_coef = torch.stack(
                [grad.sum(batch_dims), ga_b.sum(batch_dims), (grad * b).sum(batch_dims), (ga_b * b).sum(batch_dims)],
                dim=-1,
            )
        if ctx.needs_input_grad[0]:
            grad_a = grad * torch.addcmul(c1, c3, b)
            grad_b = grad * torch.addcmul(c2, c3, a)
            grad_x = torch.zeros_like(x).index_add_(-1, idx_a, grad_a).index_add_(-1, idx_b, grad_b)
        return grad_x, None, None, grad_coef


def logic_layer(x: torch.Tensor, idx_a: torch.Tensor, idx_b: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Apply a layer of relaxed two-input gates.

    Parameters
    ----------
    x : Tensor, shape (..., in_dim)
        Inputs in [0, 1].
    idx_a, idx_b : LongTensor, shape (out_dim,)
        Input index of each gate's first and second operand.
    coef : Tensor, shape (out_dim, 4)
        Gate coefficients over ``{1, a, b, ab}`` (see :func:`gate_coefficients`).

    Returns
    -------
    Tensor, shape (..., out_dim)
    """
    return _LogicLayer.apply(x, idx_a, idx_b, coef)


def logic_layer_reference(x, idx_a, idx_b, weights):
    """The naive definition: evaluate all 16 relaxed gates and mix them by ``softmax(weights)``."""
    a = x[..., idx_a].unsqueeze(-1)
    b = x[..., idx_b].unsqueeze(-1)
    t = _TRUTH.to(x)
    # g_i(a,b) = sum over the four input patterns of their probability times the truth value
    pattern = torch.cat([(1 - a) * (1 - b), (1 - a) * b, a * (1 - b), a * b], dim=-1)  # (..., out, 4)
    outputs = pattern @ t.T  # (..., out, 16): all 16 gate outputs materialized
    return (outputs * torch.softmax(weights, dim=-1)).sum(-1)


def group_sum(x: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Sum ``x`` ``(..., n)`` in ``k`` contiguous groups and divide by ``tau``: ``(..., k)``."""
    return x.unflatten(-1, (k, x.shape[-1] // k)).sum(-1) / tau


def thermometer(x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` ``(..., F)`` as bits ``x[f] > thresholds[f, t]``, flattened feature-major."""
    return (x.unsqueeze(-1) > thresholds).flatten(-2).to(thresholds.dtype)
