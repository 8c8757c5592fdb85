"""lgn.render rasterisation: culled == dense, gradients, the hard limit, meshes, bad input."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from lgn.render import (CDF_NAMES, Camera, Lambert, Mesh, RasterSettings, RenderError,
                        SoftRenderer, icosphere, rasterize, rasterize_hard, render_mesh,
                        render_triangles, signed_distance, torus)
from lgn.render.raster import pixel_centers

from test_render_parts import ALL_TCONORMS, CDF_PARAMS


def _scene(seed, batch=2, faces=6, size=0.8, dtype=torch.float64, channels=3):
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(batch, faces, 1, 2, generator=gen, dtype=dtype) * 1.6 - 0.8
    tri = centre + (torch.rand(batch, faces, 3, 2, generator=gen, dtype=dtype) - 0.5) * size
    depth = 0.6 + 1.3 * torch.rand(batch, faces, 3, generator=gen, dtype=dtype)
    colors = torch.rand(batch, faces, 3, channels, generator=gen, dtype=dtype)
    return torch.cat([tri, depth[..., None]], -1), colors


def _settings(**kw):
    base = dict(image_size=(12, 10), tau=0.02, gamma=0.05, background=(0.2, 0.3, 0.4))
    base.update(kw)
    return RasterSettings(**base)


def _both(faces, colors, settings, **kw):
    culled = rasterize(faces, settings, colors, depth_range=(0.5, 2.0), **kw)
    dense = rasterize(faces, dataclasses.replace(settings, culling=False), colors,
                      depth_range=(0.5, 2.0), **kw)
    return culled, dense


@pytest.mark.parametrize("name,p", ALL_TCONORMS)
def test_culled_equals_dense_for_every_tconorm(name, p):
    faces, colors = _scene(11, faces=14)
    settings = _settings(tconorm=name, tconorm_param=p, top_k=3)
    culled, dense = _both(faces, colors, settings)
    assert torch.allclose(culled, dense, atol=1e-10)
    assert torch.isfinite(culled).all()


@pytest.mark.parametrize("name", CDF_NAMES)
@pytest.mark.parametrize("squared", [False, True])
def test_culled_equals_dense_for_every_cdf(name, squared):
    faces, colors = _scene(7, faces=8, size=0.6)
    tau = 0.02 ** 2 if squared else 0.02
    eps = 1e-2 if name in ("cauchy", "reciprocal", "levy_reversed") else 1e-4
    settings = _settings(cdf=name, cdf_param=CDF_PARAMS.get(name), squared=squared, tau=tau,
                         mu=0.3, eps=eps)
    culled, dense = _both(faces, colors, settings)
    assert torch.allclose(culled, dense, atol=1e-10)


def test_culling_skips_far_pixels():
    faces, colors = _scene(2, faces=4, size=0.2)
    settings = _settings(image_size=64, tau=0.005, culling=True)
    from lgn.render.raster import _pairs
    margin = -settings.cutoff_distance
    valid = torch.ones(faces.shape[:2], dtype=torch.bool)
    face, *_ = _pairs(faces[..., :2], valid, margin, 64, 64)
    assert 0 < face.numel() < 0.2 * faces.shape[0] * faces.shape[1] * 64 * 64


@pytest.mark.parametrize("culling", [True, False])
@pytest.mark.parametrize("name,p", [("probabilistic", None), ("max", None), ("einstein", None),
                                    ("yager", 2.0), ("dombi", 1.5)])
def test_rasterize_gradcheck(culling, name, p):
    faces, colors = _scene(5, batch=1, faces=3, size=1.0)
    settings = _settings(image_size=(5, 4), tau=0.3, cdf="uniform", tconorm=name,
                         tconorm_param=p, culling=culling, gamma=0.3)
    faces.requires_grad_()
    colors.requires_grad_()
    fn = lambda f, c: rasterize(f, settings, c, depth_range=(0.5, 2.0))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (faces, colors), atol=1e-6)


def test_coverage_gradcheck_squared_logistic():
    faces, _ = _scene(9, batch=1, faces=2, size=1.2)
    settings = _settings(image_size=(4, 4), tau=0.05, squared=True)
    faces.requires_grad_()
    assert torch.autograd.gradcheck(lambda f: rasterize(f, settings, depth_range=(0.5, 2.0)),
                                    (faces,))


def test_small_tau_equals_hard_rasterisation():
    for seed in range(50):
        faces, colors = _scene(seed, batch=2, faces=5, size=0.9)
        points = pixel_centers(16, 16, torch.float64)
        gap = signed_distance(points, faces[..., None, :, :2]).abs().min()
        if gap > 1e-4:
            break
    else:
        pytest.fail("no scene without pixel centres near edges")
    hard = rasterize_hard(faces, 16, colors, depth_range=(0.5, 2.0), background=(0.2, 0.3, 0.4))
    for culling in (True, False):
        settings = _settings(image_size=16, tau=1e-8, gamma=1e-6, culling=culling)
        soft = rasterize(faces, settings, colors, depth_range=(0.5, 2.0))
        assert torch.allclose(soft, hard, atol=1e-6)
        assert 0 < hard[:, 3].mean() < 1
        hard_settings = dataclasses.replace(settings, cdf="hard", tconorm="hard")
        exact = rasterize(faces, hard_settings, colors, depth_range=(0.5, 2.0))
        assert torch.equal(exact[:, 3], hard[:, 3])


@pytest.mark.parametrize("name", CDF_NAMES)
@pytest.mark.parametrize("culling", [True, False])
def test_gradients_finite_on_edges_and_vertices(name, culling):
    # vertices and edges exactly on pixel centres of an 8x8 image (centres at odd/8 - 1)
    c = [(2 * k + 1) / 8 - 1 for k in range(8)]
    tri = torch.tensor([[[[c[1], c[1]], [c[6], c[1]], [c[1], c[6]]],
                         [[c[2], c[2]], [c[2], c[5]], [c[5], c[5]]]]], dtype=torch.float64)
    eps = 1e-2 if name in ("cauchy", "reciprocal", "levy_reversed") else 1e-4
    for squared in (False, True):
        settings = _settings(image_size=8, cdf=name, cdf_param=CDF_PARAMS.get(name),
                             culling=culling, squared=squared, eps=eps, tconorm="yager",
                             tconorm_param=2.0)
        t = tri.clone().requires_grad_()
        colors = torch.rand(1, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        image = render_triangles(t, settings, colors.requires_grad_())
        (grad,) = torch.autograd.grad(image.sum(), t)
        assert torch.isfinite(image).all() and torch.isfinite(grad).all()


def test_render_triangles_rejects_bad_input():
    good = torch.tensor([[[[-0.5, -0.5], [0.5, -0.5], [0.0, 0.5]]]])
    settings = RasterSettings(image_size=8)
    with pytest.raises(RenderError, match="triangle 1 of image 0 is degenerate"):
        render_triangles(torch.cat([good, good[:, :, [0, 0, 1]]], 1), settings)
    with pytest.raises(RenderError, match="NaN"):
        render_triangles(good.clone().index_fill_(1, torch.tensor([0]), float("nan")), settings)
    with pytest.raises(RenderError, match="shape"):
        render_triangles(good[..., :1], settings)
    with pytest.raises(RenderError, match="unknown CDF"):
        RasterSettings(cdf="sigmoid")
    with pytest.raises(RenderError, match="unknown T-conorm"):
        RasterSettings(tconorm="lukasiewicz")
    with pytest.raises(RenderError, match="tau"):
        RasterSettings(tau=0.0)
    with pytest.raises(RenderError, match="channels"):
        render_triangles(good, RasterSettings(image_size=8, background=(0.0,)), torch.ones(1, 1, 3))


def test_mesh_rendering_backface_and_edge_on_faces():
    sphere = icosphere(2, dtype=torch.float64)
    cam = Camera.look_at(torch.tensor([[0.0, 0.0, 4.0], [2.5, 2.0, -2.0]], dtype=torch.float64))
    settings = RasterSettings(image_size=24, tau=0.01)
    front = render_mesh(sphere, cam, settings)
    both = render_mesh(sphere, cam, settings, backface="keep")
    assert front.shape == (2, 1, 24, 24)
    screen = cam.project(sphere.vertices.expand(2, -1, -1))[:, sphere.faces]
    hard = rasterize_hard(screen, 24)
    e1, e2 = screen[:, :, 1, :2] - screen[:, :, 0, :2], screen[:, :, 2, :2] - screen[:, :, 0, :2]
    facing = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0] > 0
    assert 0.3 < facing.double().mean() < 0.7
    assert torch.equal(rasterize_hard(screen, 24, face_mask=facing), hard)  # closed mesh
    assert ((hard[:, 0] > 0) & (front[:, 0] > 0.99)).sum() > 100
    assert torch.all(both >= front - 1e-12) and (both - front).max() > 0.01
    # a flat square seen exactly edge-on projects to zero-area faces: skipped, no NaN
    square = Mesh(torch.tensor([[-1.0, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]]),
                  torch.tensor([[0, 1, 2], [0, 2, 3]]))
    edge_on = render_mesh(square, Camera.look_at([[0.0, 0.0, 3.0]]), settings, light=Lambert())
    assert torch.isfinite(edge_on).all() and edge_on[:, 3].max() == 0
    behind = render_mesh(square, Camera.look_at([[0.0, 0.0, 3.0]], at=[[0.0, 0.0, 6.0]]),
                         settings, light=Lambert())
    assert torch.isfinite(behind).all()


def test_lambert_shading_and_module():
    mesh = torus(rings=16, sides=8)
    renderer = SoftRenderer(RasterSettings(image_size=32, tau=0.01), light=Lambert(direction=(0, 0, 1)))
    cam = Camera.look_at([[0.0, 3.0, 3.0]])
    image = renderer(mesh, cam)
    assert image.shape == (1, 4, 32, 32) and torch.isfinite(image).all()
    lit = image[0, :3][:, image[0, 3] > 0.99]
    assert lit.min() >= 0.35 - 1e-4 and lit.max() <= 1.0 + 1e-4 and lit.std() > 0.01
    mesh_colored = Mesh(mesh.vertices, mesh.faces, face_colors=torch.rand(mesh.faces.shape[0], 3))
    vertices = mesh.vertices.clone().requires_grad_()
    colored = Mesh(vertices, mesh.faces, vertex_colors=torch.rand(vertices.shape[1], 3))
    out = render_mesh(colored, cam, renderer.settings)
    out[:, 3].sum().backward()
    assert torch.isfinite(vertices.grad).all() and vertices.grad.abs().sum() > 0
    assert render_mesh(mesh_colored, cam, renderer.settings).shape == (1, 4, 32, 32)
    with pytest.raises(RenderError, match="backface"):
        SoftRenderer(renderer.settings, backface="front")


def _reference_pixel(point, faces, colors, settings, depth_range):
    """Alpha and colour of one pixel by a plain loop over faces (the documented formulas)."""
    from lgn.render import cdf, tconorm

    near, far = depth_range
    alpha = torch.zeros((), dtype=torch.float64)
    weights, values = [], []
    for tri, col in zip(faces, colors):
        d = signed_distance(point, tri[:, :2])
        x = d / settings.tau
        a = cdf(x, settings.cdf) if x >= settings.cutoff_x else torch.zeros(())
        alpha = tconorm(alpha, a, settings.tconorm)
        if a > 0:
            v0, v1, v2 = tri[:, :2]
            area = (v1 - v0)[0] * (v2 - v0)[1] - (v1 - v0)[1] * (v2 - v0)[0]
            lam = torch.stack([((v2 - v1)[0] * (point - v1)[1] - (v2 - v1)[1] * (point - v1)[0]),
                               ((v0 - v2)[0] * (point - v2)[1] - (v0 - v2)[1] * (point - v2)[0]),
                               ((v1 - v0)[0] * (point - v0)[1] - (v1 - v0)[1] * (point - v0)[0])])
            lam = (lam / area).clamp(0, 1)
            lam = lam / lam.sum()
            z = 1 / (lam / tri[:, 2]).sum()
            w = lam / tri[:, 2] * z
            weights.append((a, (far - z) / (far - near)))
            values.append((w[:, None] * col).sum(0))
    logits = [math.log(a) + s / settings.gamma for a, s in weights]
    logits.append(settings.background_eps / settings.gamma)
    probs = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)
    bg = torch.tensor(settings.background, dtype=torch.float64)
    rgb = sum((p * v for p, v in zip(probs[:-1], values)), probs[-1] * bg)
    return alpha, rgb


def test_rasterize_matches_per_pixel_reference():
    faces, colors = _scene(21, batch=1, faces=7, size=0.9)
    settings = _settings(image_size=(6, 5), tau=0.05, gamma=0.1, tconorm="einstein")
    image = rasterize(faces, settings, colors, depth_range=(0.5, 2.0))
    points = pixel_centers(6, 5, torch.float64)
    for index in range(points.shape[0]):
        alpha, rgb = _reference_pixel(points[index], faces[0], colors[0], settings, (0.5, 2.0))
        row, col = divmod(index, 5)
        assert float(image[0, 3, row, col]) == pytest.approx(float(alpha), abs=1e-10)
        assert image[0, :3, row, col].tolist() == pytest.approx(rgb.tolist(), abs=1e-10)


@hypothesis_settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), cdf_name=st.sampled_from(CDF_NAMES),
       tconorm_index=st.integers(0, len(ALL_TCONORMS) - 1), squared=st.booleans(),
       size=st.floats(0.05, 1.5), mu=st.floats(-1.0, 1.0), top_k=st.integers(1, 6))
def test_culled_equals_dense_property(seed, cdf_name, tconorm_index, squared, size, mu, top_k):
    faces, colors = _scene(seed, batch=2, faces=9, size=size)
    name, p = ALL_TCONORMS[tconorm_index]
    eps = 1e-2 if cdf_name in ("cauchy", "reciprocal", "levy_reversed") else 1e-4
    raster = _settings(image_size=(9, 11), tau=0.03 ** 2 if squared else 0.03, cdf=cdf_name,
                       cdf_param=CDF_PARAMS.get(cdf_name), squared=squared, mu=mu, eps=eps,
                       tconorm=name, tconorm_param=p, top_k=top_k)
    culled, dense = _both(faces, colors, raster)
    assert torch.isfinite(culled).all()
    assert torch.allclose(culled, dense, atol=1e-10)
