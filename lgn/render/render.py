"""Entry points: render meshes through a camera, or triangles given in NDC; a thin module."""

from __future__ import annotations

import torch

from .camera import Camera
from .errors import RenderError
from .mesh import Lambert, Mesh
from .raster import RasterSettings, rasterize, signed_area2

__all__ = ["render_mesh", "render_triangles", "SoftRenderer"]

_BACKFACE = ("cull", "keep")


def render_mesh(mesh: Mesh, camera: Camera, settings: RasterSettings, *,
                light: Lambert | None = None, backface: str = "cull") -> torch.Tensor:
    """Render ``mesh`` seen by ``camera`` into ``(batch, C + 1, H, W)`` (colours, then alpha).

    Colour channels appear when the mesh has colours or ``light`` is given (Lambert shading;
    white where the mesh has no colour); otherwise only the silhouette is returned.
    ``backface="cull"`` skips faces turned away from the camera, ``"keep"`` draws both sides.
    A mesh or camera of batch 1 broadcasts against the other.
    """
    if backface not in _BACKFACE:
        raise RenderError(f"unknown backface mode {backface!r}; expected one of {_BACKFACE}")
    batch = max(mesh.batch_size, camera.rotation.shape[0])
    if {mesh.batch_size, camera.rotation.shape[0]} - {1, batch}:
        raise RenderError(f"mesh batch {mesh.batch_size} and camera batch "
                          f"{camera.rotation.shape[0]} do not broadcast")
    vertices = mesh.vertices.expand(batch, -1, -1)
    screen = camera.project(vertices)[:, mesh.faces]  # (B, F, 3, 3)
    colors = light.shade(mesh) if light is not None else mesh.corner_colors()
    if colors is not None:
        colors = colors.expand(batch, -1, -1, -1)
    mask = None
    if backface == "cull":
        mask = signed_area2(screen[..., :2].detach()) > 0
    return rasterize(screen, settings, colors, depth_range=(camera.near, camera.far),
                     face_mask=mask)


def render_triangles(triangles: torch.Tensor, settings: RasterSettings,
                     colors: torch.Tensor | None = None, depth: torch.Tensor | None = None,
                     *, depth_range: tuple[float, float] = (0.5, 2.0)) -> torch.Tensor:
    """Render 2D ``triangles (batch, F, 3, 2)`` given in NDC into ``(batch, C + 1, H, W)``.

    ``colors`` is per face ``(batch, F, C)`` or per corner ``(batch, F, 3, C)``; ``depth``
    ``(batch, F)`` or ``(batch, F, 3)`` orders overlapping faces (smaller is nearer; default 1).
    Raises :class:`RenderError` for degenerate (zero-area) or non-finite triangles.
    """
    if triangles.dim() != 4 or triangles.shape[-2:] != (3, 2):
        raise RenderError(f"triangles must have shape (batch, F, 3, 2), got {tuple(triangles.shape)}")
    if not torch.isfinite(triangles).all():
        raise RenderError("triangles contain NaN or infinite coordinates")
    area = signed_area2(triangles.detach()).abs()
    scale = (triangles.detach().amax(-2) - triangles.detach().amin(-2)).amax(-1)
    degenerate = area <= 1e-12 * scale * scale
    if degenerate.any():
        b, f = degenerate.nonzero()[0].tolist()
        raise RenderError(f"triangle {f} of image {b} is degenerate (zero area)")
    shape = triangles.shape[:2]
    if depth is None:
        depth = triangles.new_ones(shape + (3,))
    elif depth.shape == shape:
        depth = depth.unsqueeze(-1).expand(shape + (3,))
    elif depth.shape != shape + (3,):
        raise RenderError(f"depth must have shape {tuple(shape)} or {tuple(shape) + (3,)}, "
                          f"got {tuple(depth.shape)}")
    if colors is not None and colors.dim() == 3:
        colors = colors.unsqueeze(2).expand(-1, -1, 3, -1)
    screen = torch.cat([triangles, depth.unsqueeze(-1).to(triangles.dtype)], -1)
    return rasterize(screen, settings, colors, depth_range=depth_range)


class SoftRenderer(torch.nn.Module):
    """Module form of :func:`render_mesh`: holds the settings, light and back-face mode.

    Examples
    --------
    >>> from lgn.render import Camera, RasterSettings, SoftRenderer, icosphere
    >>> renderer = SoftRenderer(RasterSettings(image_size=32, tau=0.01))
    >>> image = renderer(icosphere(2), Camera.look_at([[0.0, 0.0, 4.0]]))
    >>> tuple(image.shape)
    (1, 1, 32, 32)
    """

    def __init__(self, settings: RasterSettings, light: Lambert | None = None,
                 backface: str = "cull"):
        super().__init__()
        if backface not in _BACKFACE:
            raise RenderError(f"unknown backface mode {backface!r}; expected one of {_BACKFACE}")
        self.settings, self.light, self.backface = settings, light, backface

    def forward(self, mesh: Mesh, camera: Camera) -> torch.Tensor:
        return render_mesh(mesh, camera, self.settings, light=self.light, backface=self.backface)

    def extra_repr(self) -> str:
        return f"settings={self.settings}, light={self.light}, backface={self.backface!r}"
