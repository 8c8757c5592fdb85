"""Soft rasterisation of screen-space triangles: signed distance, coverage, aggregation.

A face is given by its three vertices in normalised device coordinates (``x`` right and
``y`` up, both in ``[-1, 1]`` across the image) plus a positive view depth per vertex. For a
pixel centre ``p`` and a face with signed distance ``d`` (positive inside), the coverage is
``F(d / tau - mu)`` (or ``F(sign(d) d^2 / tau - mu)`` with ``squared=True``), set to zero where
``F < eps`` (or outside the support of ``F``). Occupancy aggregates coverages with a
T-conorm; colour is a softmax over normalised inverse depth with temperature ``gamma`` and a
background weight ``exp(background_eps / gamma)``.

Culling evaluates only pixels inside each face's bounding box grown by the distance where
coverage reaches zero, so it computes exactly what the dense evaluation computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .cdf import cdf, cdf_cutoff, check_cdf
from .errors import RenderError
from .tconorm import check_tconorm, fold_sorted, tconorm_reduce

__all__ = ["RasterSettings", "rasterize", "rasterize_hard", "signed_distance", "coverage",
           "pixel_centers"]


@dataclass(frozen=True)
class RasterSettings:
    """How to turn screen-space faces into an image (validated on construction).

    Parameters
    ----------
    image_size : int or (height, width)
    tau : float
        Scale of the smoothing CDF, in NDC units (NDC units squared when ``squared``).
    cdf, cdf_param, mu : str, float or None, float
        The CDF (see :data:`lgn.render.CDF_NAMES`), its shape parameter (gamma laws) and
        its location: coverage is ``F(x - mu)`` of the standardised distance ``x``.
    squared : bool
        Smooth the signed squared distance instead of the distance (SoftRas style).
    tconorm, tconorm_param : str, float or None
        Occupancy aggregation (see :data:`lgn.render.TCONORM_NAMES`) and its parameter.
    gamma, background_eps : float
        Temperature of the depth softmax and the depth score of the background.
    background : tuple of float
        Background colour; empty means zeros.
    top_k : int
        Faces folded per pixel by the parametric T-conorms (the largest coverages).
    eps : float
        Coverage below ``eps`` counts as zero (unbounded CDFs only).
    culling : bool
        Evaluate only pixel-face pairs within the coverage cut-off (same result as dense).
    """

    image_size: int | tuple[int, int] = 64
    tau: float = 0.01
    cdf: str = "logistic"
    cdf_param: float | None = None
    mu: float = 0.0
    squared: bool = False
    tconorm: str = "probabilistic"
    tconorm_param: float | None = None
    gamma: float = 1e-4
    background_eps: float = 1e-3
    background: tuple[float, ...] = field(default=())
    top_k: int = 16
    eps: float = 1e-4
    culling: bool = True

    def __post_init__(self):
        check_cdf(self.cdf, self.cdf_param)
        check_tconorm(self.tconorm, self.tconorm_param)
        size = self.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise RenderError(f"image_size must be a positive int or (height, width), got {size!r}")
        object.__setattr__(self, "image_size", size)
        for name in ("tau", "gamma"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise RenderError(f"{name} must be a positive finite number, got {value!r}")
        if not math.isfinite(self.mu) or not math.isfinite(self.background_eps):
            raise RenderError("mu and background_eps must be finite")
        if not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise RenderError(f"top_k must be a positive int, got {self.top_k!r}")
        object.__setattr__(self, "background", tuple(float(c) for c in self.background))
        cdf_cutoff(self.cdf, self.cdf_param, self.eps)  # validates eps

    @property
    def cutoff_x(self) -> float:
        """Smallest standardised argument ``x - mu`` with nonzero coverage."""
        return cdf_cutoff(self.cdf, self.cdf_param, self.eps)

    @property
    def cutoff_distance(self) -> float:
        """Signed distance below which a pixel is uncovered by a face (negative: outside)."""
        s = self.tau * (self.cutoff_x + self.mu)
        return math.copysign(math.sqrt(abs(s)), s) if self.squared else s


def pixel_centers(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Return the ``(height * width, 2)`` NDC centres of the pixels in row-major order."""
    xs = (2 * torch.arange(width, dtype=dtype, device=device) + 1) / width - 1
    ys = 1 - (2 * torch.arange(height, dtype=dtype, device=device) + 1) / height
    return torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1).reshape(-1, 2)


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def signed_area2(xy: torch.Tensor) -> torch.Tensor:
    """Return twice the signed area of triangles ``xy (..., 3, 2)`` (positive: counter-clockwise)."""
    return _cross(xy[..., 1, :] - xy[..., 0, :], xy[..., 2, :] - xy[..., 0, :])


def _geometry(points: torch.Tensor, tri: torch.Tensor):
    """Signed distance ``(...)`` and barycentric coordinates ``(..., 3)`` of points to triangles.

    ``points (..., 2)`` and ``tri (..., 3, 2)`` broadcast; triangles have nonzero area.
    """
    start = tri
    edge = tri.roll(-1, dims=-2) - start
    rel = points.unsqueeze(-2) - start
    area = signed_area2(tri)
    cross = _cross(edge, rel)
    length2 = (edge * edge).sum(-1)
    line = cross * area.sign().unsqueeze(-1) / length2.sqrt()  # > 0 on the inner side
    t = (rel * edge).sum(-1) / length2
    foot = rel - t.clamp(0, 1).unsqueeze(-1) * edge
    corner = (foot * foot).sum(-1).clamp(min=torch.finfo(tri.dtype).tiny).sqrt()
    segment = torch.where((t >= 0) & (t <= 1), line.abs(), corner)
    inner = line.amin(-1)
    distance = torch.where(inner >= 0, inner, -segment.amin(-1))
    bary = cross.roll(-1, dims=-1) / area.unsqueeze(-1)
    return distance, bary


def signed_distance(points: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Return the signed Euclidean distance of ``points (..., 2)`` to ``triangles (..., 3, 2)``.

    Positive inside, negative outside, zero on the boundary; either winding. Shapes
    broadcast. Gradients are finite everywhere, on edges and vertices included.
    """
    return _geometry(points, triangles)[0]


def coverage(distance: torch.Tensor, settings: RasterSettings) -> torch.Tensor:
    """Return the coverage ``F(x - mu)`` of signed ``distance``, zero below the cut-off."""
    d = distance
    x = (d.sign() * d * d if settings.squared else d) / settings.tau - settings.mu
    value = cdf(x, settings.cdf, settings.cdf_param)
    return torch.where(x >= settings.cutoff_x, value, torch.zeros_like(value))


def _shade(bary, depth, colors, depth_range):
    """Perspective-correct normalised inverse depth ``(...)`` and colour ``(..., C)``."""
    near, far = depth_range
    lam = bary.clamp(0, 1)
    lam = lam / lam.sum(-1, keepdim=True)
    inv = lam / depth
    z = 1 / inv.sum(-1)
    score = (far - z) / (far - near)
    if colors is None:
        return score, None
    weights = (inv * z.unsqueeze(-1)).unsqueeze(-1)
    return score, (weights * colors).sum(-2)


def _check_inputs(faces, colors, face_mask, depth_range):
    if faces.dim() != 4 or faces.shape[-2:] != (3, 3):
        raise RenderError(f"faces must have shape (batch, faces, 3, 3), got {tuple(faces.shape)}")
    if not faces.is_floating_point():
        raise RenderError(f"faces must be a floating tensor, got {faces.dtype}")
    if not torch.isfinite(faces).all():
        raise RenderError("faces contain NaN or infinite coordinates")
    if colors is not None:
        if colors.dim() != 4 or colors.shape[:3] != faces.shape[:3]:
            raise RenderError(f"colors must have shape {tuple(faces.shape[:3])} + (channels,), "
                              f"got {tuple(colors.shape)}")
        if not torch.isfinite(colors).all():
            raise RenderError("colors contain NaN or infinite values")
    if face_mask is not None and face_mask.shape != faces.shape[:2]:
        raise RenderError(f"face_mask must have shape {tuple(faces.shape[:2])}, "
                          f"got {tuple(face_mask.shape)}")
    near, far = depth_range
    if not 0 < near < far:
        raise RenderError(f"depth_range must satisfy 0 < near < far, got {depth_range!r}")


def _valid_faces(faces, face_mask, depth_range):
    """Faces that can be drawn: nonzero screen area, depth inside ``depth_range``, in the mask."""
    xy, z = faces[..., :2], faces[..., 2]
    area = signed_area2(xy)
    scale = (xy.amax(-2) - xy.amin(-2)).abs().amax(-1)
    valid = (area.abs() > 1e-12 * scale * scale) & (area != 0)
    valid &= (z >= depth_range[0]).all(-1) & (z <= depth_range[1]).all(-1)
    return valid if face_mask is None else valid & face_mask.bool()


def rasterize(faces: torch.Tensor, settings: RasterSettings, colors: torch.Tensor | None = None,
              *, depth_range: tuple[float, float] = (0.1, 100.0),
              face_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Render screen-space faces softly into a ``(batch, channels + 1, height, width)`` image.

    Parameters
    ----------
    faces : Tensor ``(batch, faces, 3, 3)``
        Per face vertex ``(x_ndc, y_ndc, depth)``; depth is the positive view distance.
    settings : RasterSettings
    colors : Tensor ``(batch, faces, 3, channels)`` or None
        Colour at each face corner. None renders the occupancy only.
    depth_range : (near, far)
        Faces with a vertex outside it are dropped; inside, depth maps to a score in [0, 1].
    face_mask : bool Tensor ``(batch, faces)`` or None
        Faces to draw (e.g. front faces); faces of zero screen area are always skipped.

    Returns
    -------
    Tensor: the colour channels (if ``colors`` is given) followed by occupancy (alpha).
    """
    _check_inputs(faces, colors, face_mask, depth_range)
    valid = _valid_faces(faces.detach(), face_mask, depth_range)
    if settings.culling:
        return _rasterize_culled(faces, colors, valid, settings, depth_range)
    return _rasterize_dense(faces, colors, valid, settings, depth_range)


def _background(settings, channels, like):
    bg = settings.background or (0.0,) * channels
    if len(bg) != channels:
        raise RenderError(f"background has {len(bg)} channels, colors have {channels}")
    return like.new_tensor(bg)


def _rasterize_dense(faces, colors, valid, settings, depth_range):
    (height, width), batch = settings.image_size, faces.shape[0]
    dummy = faces.new_tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0]])
    dummy[:, 2] = (depth_range[0] + depth_range[1]) / 2
    safe = torch.where(valid[..., None, None], faces, dummy)
    points = pixel_centers(height, width, faces.dtype, faces.device)
    tri = safe[..., :2].unsqueeze(2)  # (B, F, 1, 3, 2)
    distance, bary = _geometry(points, tri)  # (B, F, P), (B, F, P, 3)
    a = coverage(distance, settings) * valid.unsqueeze(-1)
    alpha = tconorm_reduce(a, 1, settings.tconorm, settings.tconorm_param, settings.top_k)
    channels = [alpha.unsqueeze(1)]
    if colors is not None:
        score, rgb = _shade(bary, safe[..., 2].unsqueeze(2), colors.unsqueeze(2), depth_range)
        covered = a > 0
        top = torch.where(covered, score, -math.inf).detach().amax(1, keepdim=True)
        top = top.clamp(min=settings.background_eps)
        e = torch.where(covered, a * torch.exp((score - top).clamp(max=0) / settings.gamma), 0)
        e_bg = torch.exp((settings.background_eps - top.squeeze(1)) / settings.gamma)
        bg = _background(settings, colors.shape[-1], colors)
        num = (e.unsqueeze(-1) * rgb).sum(1) + e_bg.unsqueeze(-1) * bg
        channels.insert(0, (num / (e.sum(1) + e_bg).unsqueeze(-1)).movedim(-1, 1))
    return torch.cat(channels, 1).reshape(batch, -1, height, width)


def _pairs(xy, valid, margin, height, width):
    """Enumerate (face, pixel) pairs inside each valid face's box grown by ``margin``."""
    slack = 1e-5 + margin
    lo, hi = xy.amin(-2) - slack, xy.amax(-2) + slack
    col_lo = torch.ceil(((lo[..., 0] + 1) * width - 1) / 2).clamp(0, width)
    col_hi = torch.floor(((hi[..., 0] + 1) * width - 1) / 2).clamp(-1, width - 1)
    row_lo = torch.ceil(((1 - hi[..., 1]) * height - 1) / 2).clamp(0, height)
    row_hi = torch.floor(((1 - lo[..., 1]) * height - 1) / 2).clamp(-1, height - 1)
    ncol = (col_hi - col_lo + 1).clamp(min=0).long().flatten()
    nrow = (row_hi - row_lo + 1).clamp(min=0).long().flatten()
    count = ncol * nrow * valid.flatten()
    face = torch.repeat_interleave(torch.arange(count.numel(), device=xy.device), count)
    offset = torch.arange(face.numel(), device=xy.device) - (count.cumsum(0) - count)[face]
    col = col_lo.long().flatten()[face] + offset % ncol[face]
    row = row_lo.long().flatten()[face] + offset // ncol[face]
    image = face // xy.shape[1]
    return face, (image * height + row) * width + col, row, col


def _rasterize_culled(faces, colors, valid, settings, depth_range):
    (height, width), (batch, nfaces) = settings.image_size, faces.shape[:2]
    npix = batch * height * width
    margin = max(0.0, -settings.cutoff_distance)
    face, pixel, row, col = _pairs(faces.detach()[..., :2], valid, margin, height, width)
    flat = faces.reshape(batch * nfaces, 3, 3)[face]
    col, row = col.to(faces.dtype), row.to(faces.dtype)
    points = torch.stack([(2 * col + 1) / width - 1, 1 - (2 * row + 1) / height], -1)
    distance, bary = _geometry(points, flat[..., :2])
    a = coverage(distance, settings)
    alpha = _aggregate_pairs(a, pixel, npix, settings)
    channels = [alpha.reshape(batch, 1, height, width)]
    if colors is not None:
        ncol = colors.shape[-1]
        score, rgb = _shade(bary, flat[..., 2], colors.reshape(-1, 3, ncol)[face], depth_range)
        covered = a > 0
        top = faces.new_full((npix,), settings.background_eps).scatter_reduce(
            0, pixel, torch.where(covered, score, -math.inf).detach(), "amax")
        e = torch.where(covered, a * torch.exp((score - top[pixel]).clamp(max=0) / settings.gamma), 0)
        e_bg = torch.exp((settings.background_eps - top) / settings.gamma)
        bg = _background(settings, ncol, colors)
        num = (e_bg.unsqueeze(-1) * bg).index_add(0, pixel, e.unsqueeze(-1) * rgb)
        den = e_bg.index_add(0, pixel, e)
        image = (num / den.unsqueeze(-1)).reshape(batch, height, width, ncol).movedim(-1, 1)
        channels.insert(0, image)
    return torch.cat(channels, 1)


def _aggregate_pairs(a, pixel, npix, settings):
    """Aggregate pair coverages ``a`` into ``npix`` pixel occupancies, as the dense reduction."""
    name, param = settings.tconorm, settings.tconorm_param
    if name in ("max", "hard"):
        alpha = a.new_zeros(npix).scatter_reduce(0, pixel, a, "amax")
        return (alpha >= 0.5).to(a.dtype) if name == "hard" else alpha
    if name == "probabilistic":
        delta = 16 * torch.finfo(a.dtype).eps
        return -torch.expm1(a.new_zeros(npix).index_add(0, pixel, torch.log1p(-a.clamp(max=1 - delta))))
    by_value = torch.argsort(a.detach(), descending=True, stable=True)
    order = by_value[torch.argsort(pixel[by_value], stable=True)]
    sorted_pixel = pixel[order]
    count = torch.bincount(sorted_pixel, minlength=npix)
    rank = torch.arange(order.numel(), device=a.device) - (count.cumsum(0) - count)[sorted_pixel]
    keep = rank < settings.top_k
    k = min(settings.top_k, int(count.max()) if count.numel() else 0)
    table = a.new_zeros(npix, k).index_put((sorted_pixel[keep], rank[keep]), a[order][keep])
    return fold_sorted(table, name, param)


def rasterize_hard(faces: torch.Tensor, image_size: int | tuple[int, int],
                   colors: torch.Tensor | None = None, *,
                   depth_range: tuple[float, float] = (0.1, 100.0),
                   face_mask: torch.Tensor | None = None,
                   background: tuple[float, ...] = ()) -> torch.Tensor:
    """Render faces with a hard z-buffer: the reference that soft rendering approaches.

    A pixel is covered when its centre lies strictly inside a face; its colour is that of
    the nearest covering face (perspective-correct interpolation). Same shapes as
    :func:`rasterize`; no gradient.
    """
    settings = RasterSettings(image_size=image_size, background=background)
    _check_inputs(faces, colors, face_mask, depth_range)
    (height, width), batch = settings.image_size, faces.shape[0]
    valid = _valid_faces(faces, face_mask, depth_range)
    with torch.no_grad():
        points = pixel_centers(height, width, faces.dtype, faces.device)
        out = []
        for b in range(batch):  # one image at a time keeps memory at faces x pixels
            f = faces[b][valid[b]]
            distance, bary = _geometry(points, f[:, None, :, :2])
            inside = distance > 0
            score, rgb = _shade(bary, f[:, None, :, 2],
                                None if colors is None else colors[b][valid[b]][:, None],
                                depth_range)
            score = torch.where(inside, score, -math.inf)
            best = score.argmax(0) if f.shape[0] else None
            alpha = inside.any(0).to(faces.dtype)
            channels = [alpha]
            if colors is not None:
                bg = _background(settings, colors.shape[-1], colors)
                if best is None:
                    pix = bg.expand(points.shape[0], -1)
                else:
                    pix = rgb.gather(0, best[None, :, None].expand(1, -1, rgb.shape[-1]))[0]
                pix = torch.where(alpha[:, None] > 0, pix, bg)
                channels = list(pix.unbind(-1)) + channels
            out.append(torch.stack(channels).reshape(-1, height, width))
    return torch.stack(out)
