"""Cameras (look-at, perspective) and rotation helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import RenderError

__all__ = ["Camera", "quaternion_to_matrix", "axis_angle_to_matrix", "rotation_angle",
           "random_rotation"]


def _as_batch(value, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=None if like is None else like.dtype)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    t = t.reshape(-1, 3) if t.dim() == 1 else t
    if t.dim() != 2 or t.shape[-1] != 3:
        raise RenderError(f"{name} must have shape (3,) or (batch, 3), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise RenderError(f"{name} contains NaN or infinite values")
    return t


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``view = (x - position) @ rotation.T``, looking along view ``+z``.

    ``rotation (batch, 3, 3)`` has the camera's right, up and forward axes as rows
    (world coordinates); ``fov`` is the vertical field of view in degrees and ``aspect`` the
    image width over height. Projection maps to NDC ``x`` right, ``y`` up, plus view depth.
    """

    rotation: torch.Tensor
    position: torch.Tensor
    fov: float = 30.0
    aspect: float = 1.0
    near: float = 0.1
    far: float = 100.0

    def __post_init__(self):
        if self.rotation.dim() != 3 or self.rotation.shape[1:] != (3, 3):
            raise RenderError("rotation must have shape (batch, 3, 3), "
                              f"got {tuple(self.rotation.shape)}")
        if self.position.shape != (self.rotation.shape[0], 3):
            raise RenderError(f"position must have shape ({self.rotation.shape[0]}, 3), "
                              f"got {tuple(self.position.shape)}")
        if not 0 < self.fov < 180 or not self.aspect > 0 or not 0 < self.near < self.far:
            raise RenderError(f"need 0 < fov < 180, aspect > 0 and 0 < near < far, got "
                              f"fov={self.fov}, aspect={self.aspect}, near={self.near}, far={self.far}")

    @classmethod
    def look_at(cls, eye, at=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), **options) -> "Camera":
        """Place cameras at ``eye (batch, 3)`` looking at ``at`` with ``up`` pointing up."""
        eye = _as_batch(eye, "eye")
        at, up = _as_batch(at, "at", eye), _as_batch(up, "up", eye)
        forward = at - eye
        right = torch.linalg.cross(forward, up.expand_as(forward), dim=-1)
        length = forward.norm(dim=-1)
        if (length == 0).any() or (right.norm(dim=-1) <= 1e-9 * length).any():
            raise RenderError("look_at needs eye != at and up not parallel to the view direction")
        forward = forward / forward.norm(dim=-1, keepdim=True)
        right = right / right.norm(dim=-1, keepdim=True)
        true_up = torch.linalg.cross(right, forward, dim=-1)
        return cls(torch.stack([right, true_up, forward], 1), eye, **options)

    def transform(self, vertices: torch.Tensor) -> torch.Tensor:
        """Return view coordinates ``(batch, V, 3)`` of world ``vertices (batch, V, 3)``."""
        return (vertices - self.position[:, None, :]) @ self.rotation.transpose(1, 2)

    def project(self, vertices: torch.Tensor) -> torch.Tensor:
        """Return ``(x_ndc, y_ndc, depth)`` per vertex ``(batch, V, 3)``."""
        view = self.transform(vertices)
        depth = view[..., 2]
        scale = 1 / math.tan(math.radians(self.fov) / 2)
        safe = torch.where(depth > 0, depth, torch.ones_like(depth))  # dropped later by near
        x = view[..., 0] * scale / (self.aspect * safe)
        y = view[..., 1] * scale / safe
        return torch.stack([x, y, depth], -1)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Return rotation matrices ``(..., 3, 3)`` of quaternions ``(..., 4)`` (w, x, y, z; any norm)."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, -1).reshape(q.shape[:-1] + (3, 3))


def axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:
    """Return rotations ``(..., 3, 3)`` by ``|v|`` radians about ``v (..., 3)``."""
    angle = v.norm(dim=-1, keepdim=True)
    half = angle / 2
    axis = v / angle.clamp(min=1e-12)
    return quaternion_to_matrix(torch.cat([half.cos(), axis * half.sin()], -1))


def rotation_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the angle in degrees of the rotation taking ``b`` to ``a`` (both ``(..., 3, 3)``)."""
    trace = (a * b).sum((-2, -1))
    return torch.rad2deg(torch.acos(((trace - 1) / 2).clamp(-1, 1)))


def random_rotation(n: int, generator: torch.Generator | None = None,
                    dtype=torch.float32) -> torch.Tensor:
    """Return ``n`` rotations ``(n, 3, 3)`` drawn uniformly (Haar) via random unit quaternions."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    return quaternion_to_matrix(q).to(dtype)
