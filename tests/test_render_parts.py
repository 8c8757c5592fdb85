"""lgn.render building blocks: CDFs, T-conorms, distances, cameras, meshes, PNG."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import torch

from lgn.render import (CDF_NAMES, TCONORM_NAMES, Camera, Mesh, RenderError, asymmetric_shape,
                        cdf, icosphere, quaternion_to_matrix, rotation_angle, signed_distance,
                        tconorm, tconorm_reduce, torus, write_png)
from lgn.render.cdf import cdf_cutoff

CDF_PARAMS = {"gamma": 2.0, "gamma_reversed": 0.5}
TCONORM_PARAMS = {"hamacher": [0.0, 0.5, 3.0], "frank": [0.5, 4.0], "yager": [0.7, 2.0],
                  "aczel_alsina": [0.6, 2.0], "dombi": [0.5, 2.0], "schweizer_sklar": [0.5, 2.0]}
SYMMETRIC = {"hard", "uniform", "cubic_hermite", "wigner_semicircle", "gaussian", "laplace",
             "logistic", "gudermannian", "cauchy", "reciprocal"}
ALL_TCONORMS = [(name, p) for name in TCONORM_NAMES for p in TCONORM_PARAMS.get(name, [None])]


@pytest.mark.parametrize("name", CDF_NAMES)
def test_cdf_is_monotone_with_limits(name):
    p = CDF_PARAMS.get(name)
    x = torch.linspace(-50, 50, 20001, dtype=torch.float64)
    y = cdf(x, name, p)
    assert torch.all(y.diff() >= 0) and y.min() >= 0 and y.max() <= 1
    far = torch.tensor([-1e9, 1e9], dtype=torch.float64)
    assert cdf(far, name, p).tolist() == pytest.approx([0.0, 1.0], abs=1e-3)
    if name in SYMMETRIC:
        assert float(cdf(torch.zeros(1, dtype=torch.float64), name, p)) == 0.5
        assert torch.allclose(cdf(-x, name, p), 1 - y, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in CDF_NAMES if n != "hard"])
def test_cdf_gradient_is_the_density(name):
    p = CDF_PARAMS.get(name)
    x = torch.tensor([-2.7, -0.61, -0.23, 0.37, 0.83, 2.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: cdf(t, name, p), (x,))


@pytest.mark.parametrize("name", CDF_NAMES)
def test_cdf_gradient_finite_at_kinks(name):
    x = torch.tensor([-1.0, 0.0, 1.0, -1e30, 1e30], dtype=torch.float64, requires_grad=True)
    y = cdf(x, name, CDF_PARAMS.get(name, 0.5) if "gamma" in name else None)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(grad).all() and torch.isfinite(y).all()


@pytest.mark.parametrize("name", [n for n in CDF_NAMES if n != "hard"])
def test_cdf_cutoff_marks_eps(name):
    p = CDF_PARAMS.get(name)
    cut = cdf_cutoff(name, p, 1e-4)
    assert math.isfinite(cut)
    below = cdf(torch.tensor([cut - 1e-3], dtype=torch.float64), name, p)
    above = cdf(torch.tensor([cut + 1e-3], dtype=torch.float64), name, p)
    assert float(below) <= 1e-4 and (float(above) > 0 or name in ("exponential", "gamma", "levy"))


@pytest.mark.parametrize("name,p", ALL_TCONORMS)
def test_tconorm_axioms(name, p):
    grid = torch.linspace(0, 1, 41, dtype=torch.float64)
    if name == "hard":
        grid = torch.tensor([0.0, 1.0], dtype=torch.float64)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    s = tconorm(a, b, name, p)
    assert torch.allclose(tconorm(grid, torch.zeros_like(grid), name, p), grid, atol=1e-12)
    assert torch.allclose(s, tconorm(b, a, name, p), atol=1e-12)
    assert torch.all(s.diff(dim=0) >= -1e-12) and torch.all(s.diff(dim=1) >= -1e-12)
    assert torch.all(s >= torch.maximum(a, b) - 1e-12) and torch.all(s <= 1 + 1e-12)
    assert torch.allclose(tconorm(grid, torch.ones_like(grid), name, p), torch.ones_like(grid))


@pytest.mark.parametrize("name,p", [t for t in ALL_TCONORMS if t[0] != "hard"])
def test_tconorm_associative_and_reduce_matches_fold(name, p):
    gen = torch.Generator().manual_seed(3)
    a, b, c = torch.rand(3, 200, generator=gen, dtype=torch.float64)
    left = tconorm(tconorm(a, b, name, p), c, name, p)
    right = tconorm(a, tconorm(b, c, name, p), name, p)
    assert torch.allclose(left, right, atol=1e-9)
    stacked = torch.stack([c, a, b], 1)
    assert torch.allclose(tconorm_reduce(stacked, 1, name, p), left, atol=1e-9)


@pytest.mark.parametrize("name,p", [t for t in ALL_TCONORMS if t[0] != "hard"])
def test_tconorm_gradcheck(name, p):
    gen = torch.Generator().manual_seed(5)
    a = (0.05 + 0.9 * torch.rand(4, 5, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: tconorm_reduce(t, 1, name, p), (a,))
    edge = torch.tensor([[0.0, 0.0, 0.3], [1.0, 0.2, 0.0]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(tconorm_reduce(edge, 1, name, p).sum(), edge)
    assert torch.isfinite(grad).all()


def test_unknown_names_and_bad_parameters_raise():
    x = torch.zeros(3)
    with pytest.raises(RenderError, match="unknown CDF 'sigmoidal'"):
        cdf(x, "sigmoidal")
    with pytest.raises(RenderError, match="unknown T-conorm"):
        tconorm(x, x, "lukasiewicz")
    with pytest.raises(RenderError, match="needs a parameter"):
        tconorm(x, x, "frank", 1.0)
    with pytest.raises(RenderError, match="shape parameter"):
        cdf(x, "gamma")
    assert issubclass(RenderError, ValueError)


def _distance_brute(p, tri):
    """Signed distance by dense sampling of the boundary (reference for the closed form)."""
    t = np.linspace(0, 1, 20001)
    pts = np.concatenate([tri[i] + t[:, None] * (tri[(i + 1) % 3] - tri[i]) for i in range(3)])
    d = np.sqrt(((pts - p) ** 2).sum(1)).min()
    def cross(u, v):
        return u[0] * v[1] - u[1] * v[0]

    signs = [cross(tri[(i + 1) % 3] - tri[i], p - tri[i]) for i in range(3)]
    inside = all(s > 0 for s in signs) or all(s < 0 for s in signs)
    return d if inside else -d


def test_signed_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(30):
        tri = rng.uniform(-1, 1, (3, 2))
        p = rng.uniform(-1.5, 1.5, 2)
        got = float(signed_distance(torch.tensor(p), torch.tensor(tri)))
        assert got == pytest.approx(_distance_brute(p, tri), abs=2e-4)
        flipped = float(signed_distance(torch.tensor(p), torch.tensor(tri[::-1].copy())))
        assert flipped == pytest.approx(got, abs=1e-12)


def test_signed_distance_gradcheck_and_finite_on_boundary():
    gen = torch.Generator().manual_seed(1)
    tri = torch.tensor([[-0.6, -0.5], [0.7, -0.3], [0.1, 0.8]], dtype=torch.float64, requires_grad=True)
    pts = (torch.rand(12, 2, generator=gen, dtype=torch.float64) * 3 - 1.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, t: signed_distance(p, t), (pts, tri))
    boundary = torch.cat([tri.detach(), (tri.detach() + tri.detach().roll(-1, 0)) / 2]).requires_grad_()
    d = signed_distance(boundary, tri)
    assert torch.allclose(d, torch.zeros_like(d), atol=1e-12)
    g_p, g_t = torch.autograd.grad(d.sum(), (boundary, tri))
    assert torch.isfinite(g_p).all() and torch.isfinite(g_t).all()


def test_camera_look_at_and_projection():
    cam = Camera.look_at([[0.0, 0.0, 5.0]], fov=90.0)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    screen = cam.project(pts)
    assert torch.allclose(screen[0], torch.tensor([[0.0, 0.0, 5.0], [0.2, 0.0, 5.0], [0.0, 0.2, 5.0]]))
    with pytest.raises(RenderError, match="parallel"):
        Camera.look_at([[0.0, 3.0, 0.0]])
    with pytest.raises(RenderError, match="NaN"):
        Camera.look_at([[float("nan"), 0.0, 3.0]])


def test_rotation_helpers():
    q = torch.tensor([math.cos(0.35), 0.0, math.sin(0.35), 0.0], dtype=torch.float64)
    r = quaternion_to_matrix(q)
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert float(rotation_angle(r, torch.eye(3, dtype=torch.float64))) == pytest.approx(40.107, abs=1e-2)


@pytest.mark.parametrize("make", [lambda: icosphere(2), lambda: torus(rings=12, sides=8),
                                  asymmetric_shape])
def test_generated_meshes_are_closed_and_outward(make):
    mesh = make()
    faces = mesh.faces
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = set(map(tuple, edges.tolist()))
    assert len(directed) == edges.shape[0] and all((b, a) in directed for a, b in directed)
    volume = (mesh.face_vertices()[0, :, 0] * mesh.face_normals(normalize=False)[0]).sum() / 6
    assert volume > 0


def test_mesh_rejects_bad_input():
    v = torch.rand(4, 3)
    with pytest.raises(RenderError, match="index vertex 7 but the mesh has 4"):
        Mesh(v, torch.tensor([[0, 1, 7]]))
    with pytest.raises(RenderError, match="NaN"):
        Mesh(torch.tensor([[0.0, 0, 0], [1, 0, 0], [float("nan"), 1, 0]]), torch.tensor([[0, 1, 2]]))
    with pytest.raises(RenderError, match="degenerate"):
        Mesh(torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]]), torch.tensor([[0, 1, 2]]))
    with pytest.raises(RenderError, match="integer"):
        Mesh(v, torch.tensor([[0.0, 1, 2]]))
    with pytest.raises(RenderError, match="face_colors"):
        Mesh(v, torch.tensor([[0, 1, 2]]), face_colors=torch.rand(2, 3))


def test_png_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    write_png(path, image)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, color) == (7, 5, 8, 2)
    length = struct.unpack(">I", data[33:37])[0]
    raw = np.frombuffer(zlib.decompress(data[41:41 + length]), np.uint8).reshape(5, 1 + 21)
    assert (raw[:, 0] == 0).all() and (raw[:, 1:].reshape(5, 7, 3) == image).all()
    with pytest.raises(RenderError, match="shape"):
        write_png(path, np.zeros((2, 2, 5)))
