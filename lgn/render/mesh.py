"""Triangle meshes, procedural shapes and Lambert shading."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import RenderError

__all__ = ["Mesh", "Lambert", "icosphere", "torus", "asymmetric_shape"]


def _batched(t: torch.Tensor, dims: int, name: str) -> torch.Tensor:
    if t.dim() == dims - 1:
        return t.unsqueeze(0)
    if t.dim() != dims:
        raise RenderError(f"{name} must have {dims - 1} or {dims} dimensions, "
                          f"got shape {tuple(t.shape)}")
    return t


@dataclass(frozen=True)
class Mesh:
    """A batch of triangle meshes sharing one face list (validated on construction).

    Parameters
    ----------
    vertices : Tensor ``(V, 3)`` or ``(batch, V, 3)``
    faces : integer Tensor ``(F, 3)``, counter-clockwise seen from outside
    vertex_colors : Tensor ``(V, C)`` or ``(batch, V, C)``, optional
    face_colors : Tensor ``(F, C)`` or ``(batch, F, C)``, optional (not with vertex_colors)
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    vertex_colors: torch.Tensor | None = None
    face_colors: torch.Tensor | None = None

    def __post_init__(self):
        vertices = _batched(torch.as_tensor(self.vertices), 3, "vertices")
        if vertices.shape[-1] != 3 or not vertices.is_floating_point():
            raise RenderError(f"vertices must be floating with shape (V, 3), got "
                              f"{vertices.dtype} {tuple(vertices.shape)}")
        if not torch.isfinite(vertices).all():
            raise RenderError("vertices contain NaN or infinite coordinates")
        faces = torch.as_tensor(self.faces)
        if faces.dim() != 2 or faces.shape[1] != 3 or faces.is_floating_point():
            raise RenderError("faces must be an integer tensor (F, 3), "
                              f"got {faces.dtype} {tuple(faces.shape)}")
        faces = faces.long()
        nvert = vertices.shape[1]
        if faces.numel() and (faces.min() < 0 or faces.max() >= nvert):
            bad = int(faces[(faces < 0) | (faces >= nvert)][0])
            raise RenderError(f"faces index vertex {bad} but the mesh has {nvert} vertices")
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)
        if self.vertex_colors is not None and self.face_colors is not None:
            raise RenderError("give vertex_colors or face_colors, not both")
        for name, rows in (("vertex_colors", nvert), ("face_colors", faces.shape[0])):
            colors = getattr(self, name)
            if colors is None:
                continue
            colors = _batched(torch.as_tensor(colors, dtype=vertices.dtype), 3, name)
            if colors.shape[1] != rows or colors.shape[0] not in (1, vertices.shape[0]):
                raise RenderError(f"{name} must have shape ({rows}, C) or (batch, {rows}, C), "
                                  f"got {tuple(colors.shape)}")
            if not torch.isfinite(colors).all():
                raise RenderError(f"{name} contain NaN or infinite values")
            object.__setattr__(self, name, colors)
        area = self.face_normals(normalize=False).detach().norm(dim=-1)
        scale = (vertices.detach().amax(1) - vertices.detach().amin(1)).norm(dim=-1, keepdim=True)
        degenerate = area <= 1e-12 * scale * scale
        if degenerate.any():
            face = int(degenerate.nonzero()[0, 1])
            raise RenderError(f"face {face} {self.faces[face].tolist()} is degenerate (zero area)")

    @property
    def batch_size(self) -> int:
        return self.vertices.shape[0]

    def face_vertices(self) -> torch.Tensor:
        """Return the corners of every face, ``(batch, F, 3, 3)``."""
        return self.vertices[:, self.faces]

    def face_normals(self, normalize: bool = True) -> torch.Tensor:
        """Return outward face normals ``(batch, F, 3)`` (length twice the area unless normalised)."""
        v = self.face_vertices()
        n = torch.linalg.cross(v[:, :, 1] - v[:, :, 0], v[:, :, 2] - v[:, :, 0], dim=-1)
        return n / n.norm(dim=-1, keepdim=True).clamp(min=1e-30) if normalize else n

    def corner_colors(self) -> torch.Tensor | None:
        """Return the colour at each face corner ``(batch, F, 3, C)``, or None without colours."""
        if self.vertex_colors is not None:
            return self.vertex_colors.expand(self.batch_size, -1, -1)[:, self.faces]
        if self.face_colors is not None:
            colors = self.face_colors.expand(self.batch_size, -1, -1)
            return colors.unsqueeze(2).expand(-1, -1, 3, -1)
        return None

    def transformed(self, rotation: torch.Tensor | None = None,
                    translation: torch.Tensor | None = None) -> "Mesh":
        """Return the mesh with vertices ``v @ rotation.T + translation`` (``(B, 3, 3)``, ``(B, 3)``)."""
        v = self.vertices
        if rotation is not None:
            v = v @ rotation.transpose(-1, -2)
        if translation is not None:
            v = v + translation.unsqueeze(-2)
        return Mesh(v, self.faces, self.vertex_colors, self.face_colors)


@dataclass(frozen=True)
class Lambert:
    """Flat Lambert shading: ``color * (ambient + diffuse * max(0, n . l))``.

    ``direction`` points from the scene towards the light (world coordinates, normalised here).
    """

    direction: tuple[float, float, float] = (0.3, 0.6, 1.0)
    ambient: float = 0.35
    diffuse: float = 0.65

    def shade(self, mesh: Mesh) -> torch.Tensor:
        """Return shaded corner colours ``(batch, F, 3, C)`` (white where the mesh has none)."""
        normals = mesh.face_normals()
        light = normals.new_tensor(self.direction)
        if not torch.isfinite(light).all() or light.norm() == 0:
            raise RenderError(f"light direction must be a finite nonzero vector, got {self.direction}")
        intensity = self.ambient + self.diffuse * (normals @ (light / light.norm())).clamp(min=0)
        colors = mesh.corner_colors()
        if colors is None:
            colors = normals.new_ones(normals.shape[:2] + (3, 3))
        return colors * intensity[..., None, None]


def icosphere(subdivisions: int = 3, radius: float = 1.0, dtype=torch.float32) -> Mesh:
    """Return a unit icosphere: ``20 * 4**subdivisions`` faces (3 gives 1280)."""
    t = (1 + math.sqrt(5)) / 2
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
             (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
             (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [tuple(c / math.sqrt(1 + t * t) for c in v) for v in verts]
    for _ in range(subdivisions):
        midpoint: dict[tuple[int, int], int] = {}

        def middle(i: int, j: int) -> int:
            key = (min(i, j), max(i, j))
            if key not in midpoint:
                m = [(a + b) / 2 for a, b in zip(verts[i], verts[j])]
                norm = math.sqrt(sum(c * c for c in m))
                verts.append(tuple(c / norm for c in m))
                midpoint[key] = len(verts) - 1
            return midpoint[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return Mesh(torch.tensor(verts, dtype=dtype) * radius, torch.tensor(faces))


def torus(major: float = 1.0, minor: float = 0.35, rings: int = 32, sides: int = 16,
          dtype=torch.float32) -> Mesh:
    """Return a torus around the ``y`` axis with ``2 * rings * sides`` faces."""
    u = torch.arange(rings, dtype=torch.float64) * (2 * math.pi / rings)
    v = torch.arange(sides, dtype=torch.float64) * (2 * math.pi / sides)
    uu, vv = torch.meshgrid(u, v, indexing="ij")
    r = major + minor * vv.cos()
    verts = torch.stack([r * uu.cos(), minor * vv.sin(), r * uu.sin()], -1).reshape(-1, 3)
    i, j = torch.meshgrid(torch.arange(rings), torch.arange(sides), indexing="ij")
    a = i * sides + j
    b = ((i + 1) % rings) * sides + j
    c = ((i + 1) % rings) * sides + (j + 1) % sides
    d = i * sides + (j + 1) % sides
    faces = torch.stack([torch.stack([a, d, b], -1), torch.stack([b, d, c], -1)], 2).reshape(-1, 3)
    return Mesh(verts.to(dtype), faces)


def asymmetric_shape(subdivisions: int = 3, dtype=torch.float32) -> Mesh:
    """Return a closed shape with no rotational or mirror symmetry (a bumpy ellipsoid).

    An icosphere stretched to axes (1.0, 0.65, 0.45) with three bumps of different size in
    directions that share no symmetry plane: a long nose, a fin and a small knob.
    """
    sphere = icosphere(subdivisions, dtype=torch.float64)
    unit = sphere.vertices[0]
    radius = torch.ones(unit.shape[0], dtype=torch.float64)
    for direction, height, width in (((1.0, 0.25, 0.1), 0.8, 0.25), ((-0.3, 0.9, 0.35), 0.5, 0.3),
                                     ((-0.5, -0.4, -0.75), 0.3, 0.2)):
        d = torch.tensor(direction, dtype=torch.float64)
        cos = unit @ (d / d.norm())
        radius = radius + height * torch.exp((cos - 1) / (width * width))
    verts = unit * radius[:, None] * torch.tensor([1.0, 0.65, 0.45], dtype=torch.float64)
    return Mesh((verts / verts.norm(dim=-1).max()).to(dtype), sphere.faces)
