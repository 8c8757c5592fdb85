"""Shared check for the fused C kernels of lgn.nn: the same op under both kernels."""

from __future__ import annotations

import torch

from lgn.nn import _native


def assert_fused_equals_torch(monkeypatch, op, inputs, weights, atol):
    """``op(*inputs)`` and the gradients of ``(op(*inputs) * weights).sum()`` with respect to
    every input agree within ``atol`` between the fused kernel and the torch path."""
    results = []
    for kernel in ("native", "torch"):
        monkeypatch.setattr(_native, "KERNEL", kernel)
        y = op(*inputs)
        results.append((y, *torch.autograd.grad((y * weights).sum(), inputs)))
    for fused, plain in zip(*results):
        torch.testing.assert_close(fused, plain, rtol=0, atol=atol)
