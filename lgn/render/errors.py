"""The one exception type of :mod:`lgn.render`."""

from __future__ import annotations

__all__ = ["RenderError"]


class RenderError(ValueError):
    """Bad input to the renderer: a shape, an index, a non-finite value or an unknown name."""
