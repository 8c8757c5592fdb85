"""Differentiable rendering in the GenDR family: CDF coverage, T-conorm occlusion, cameras."""

from .camera import Camera, axis_angle_to_matrix, quaternion_to_matrix, random_rotation, rotation_angle
from .cdf import CDF_NAMES, cdf
from .errors import RenderError
from .mesh import Lambert, Mesh, asymmetric_shape, icosphere, torus
from .png import image_grid, write_png
from .raster import RasterSettings, coverage, rasterize, rasterize_hard, signed_distance
from .render import SoftRenderer, render_mesh, render_triangles
from .tconorm import TCONORM_NAMES, tconorm, tconorm_reduce

__all__ = [
    "RenderError", "CDF_NAMES", "TCONORM_NAMES", "cdf", "tconorm", "tconorm_reduce",
    "signed_distance", "coverage", "RasterSettings", "rasterize", "rasterize_hard",
    "Mesh", "Lambert", "icosphere", "torus", "asymmetric_shape",
    "Camera", "quaternion_to_matrix", "axis_angle_to_matrix", "rotation_angle", "random_rotation",
    "render_mesh", "render_triangles", "SoftRenderer", "write_png", "image_grid",
]
