"""Fit an icosphere to the silhouettes of a target shape seen from several views.

The target (the asymmetric shape of :func:`lgn.render.asymmetric_shape`) is rendered hard
from ``views`` cameras around it; an icosphere's vertex offsets are optimised with Adam to
maximise the soft IoU of its silhouettes, with a Laplacian smoothness penalty. The hard IoU
is reported on the training views and on held-out views; PNGs show the progress.

Run: ``python examples/render_fit.py [--quick] [--out out/render_fit]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from lgn.render import (Camera, Lambert, Mesh, RasterSettings, asymmetric_shape, icosphere,  # noqa: E402
                        image_grid, rasterize_hard, render_mesh, write_png)


def ring_cameras(count: int, distance: float, seed: int) -> Camera:
    """Cameras spread over the sphere (a jittered Fibonacci spiral) looking at the origin."""
    k = torch.arange(count, dtype=torch.float64) + 0.5
    gen = torch.Generator().manual_seed(seed)
    height = 1 - 2 * k / count
    angle = k * 2.399963 + torch.rand(count, generator=gen, dtype=torch.float64)
    radius = (1 - height * height).sqrt()
    eye = torch.stack([radius * angle.cos(), height, radius * angle.sin()], -1) * distance
    return Camera.look_at(eye.float())


def silhouettes(mesh: Mesh, camera: Camera, size: int) -> torch.Tensor:
    screen = camera.project(mesh.vertices.expand(camera.rotation.shape[0], -1, -1))[:, mesh.faces]
    return rasterize_hard(screen, size, depth_range=(camera.near, camera.far))[:, 0]


def hard_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of two binary silhouette batches."""
    inter = (a * b).sum((1, 2))
    return inter / (a + b - a * b).sum((1, 2)).clamp(min=1)


def laplacian(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Uniform Laplacian ``v - mean(neighbours of v)`` of ``vertices (V, 3)``."""
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = torch.cat([edges, edges.flip(1)]).unique(dim=0)
    total = torch.zeros_like(vertices).index_add(0, edges[:, 0], vertices[edges[:, 1]])
    degree = torch.bincount(edges[:, 0], minlength=vertices.shape[0]).to(vertices.dtype)
    return vertices - total / degree[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and a coarser sphere")
    parser.add_argument("--out", type=Path, default=Path("out/render_fit"))
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    steps, size, level = (150, 64, 2) if args.quick else (400, 64, 3)
    target = asymmetric_shape(3)
    cameras, held_out = ring_cameras(args.views, 4.0, 0), ring_cameras(6, 4.0, 1)
    goal, goal_held = silhouettes(target, cameras, size), silhouettes(target, held_out, size)
    sphere = icosphere(level, radius=0.6)
    offset = torch.zeros_like(sphere.vertices, requires_grad=True)
    optimizer = torch.optim.Adam([offset], lr=0.01)
    # coarse to fine: the logistic's scale shrinks geometrically from 0.8 to 0.1 pixels
    taus = torch.logspace(-1.6, -2.5, steps + 1).tolist()
    print(f"fit icosphere ({sphere.faces.shape[0]} faces) to {args.views} silhouettes "
          f"{size}x{size}, {steps} steps, {torch.get_num_threads()} threads")
    print(f"{'step':>5s} {'soft IoU loss':>13s} {'IoU train':>9s} {'IoU held-out':>12s}")
    frames, began = [], time.perf_counter()
    reports = {0, steps // 3, 2 * steps // 3, steps}
    for step in range(steps + 1):
        settings = RasterSettings(image_size=size, tau=taus[step], cdf="logistic",
                                  tconorm="probabilistic")
        mesh = Mesh(sphere.vertices + offset, sphere.faces)
        alpha = render_mesh(mesh, cameras, settings)[:, 0]
        soft_iou = (alpha * goal).sum((1, 2)) / (alpha + goal - alpha * goal).sum((1, 2))
        smooth = laplacian(mesh.vertices[0], mesh.faces).square().sum(1).mean()
        loss = (1 - soft_iou).mean() + 0.5 * smooth
        if step in reports:
            with torch.no_grad():
                train = hard_iou(silhouettes(mesh, cameras, size), goal).mean()
                held = hard_iou(silhouettes(mesh, held_out, size), goal_held).mean()
                print(f"{step:5d} {float(1 - soft_iou.mean()):13.4f} {float(train):9.3f} "
                      f"{float(held):12.3f}")
                shaded = render_mesh(mesh, Camera(
                    held_out.rotation[:3], held_out.position[:3]), settings, light=Lambert())
                frames.append([alpha[i].detach() * 0.5 + goal[i] * 0.5 for i in range(3)]
                              + [shaded[i, :3] * shaded[i, 3] for i in range(3)])
        if step == steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tiles = []
    for row in frames:
        tiles += [t.unsqueeze(0).expand(3, -1, -1) if t.dim() == 2 else t for t in row]
    path = args.out / "fit_progress.png"
    write_png(path, image_grid(tiles, 6))
    print(f"wrote {path}: one row per report; left: silhouette over target (train views), "
          f"right: shaded fit (held-out views); {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()
