"""Benchmark lgn.render: culled soft rasterisation against dense pixel x face evaluation.

64 x 64 images, an icosphere with 1280 faces, a batch of 8 random views, forward + backward
(gradient to the vertices) on CPU. The dense baseline evaluates every pixel-face pair and is
measured in the same run on fewer views (its cost is linear in the views); both are reported
per view. Run: ``python bench/render.py [--threads N]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from lgn.render import Camera, Lambert, RasterSettings, icosphere, render_mesh  # noqa: E402


def _views(batch: int, distance: float) -> Camera:
    gen = torch.Generator().manual_seed(0)
    eye = torch.nn.functional.normalize(torch.randn(batch, 3, generator=gen), dim=-1) * distance
    return Camera.look_at(eye)


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def _step(mesh, camera, settings, light):
    vertices = mesh.vertices.detach().requires_grad_()
    image = render_mesh(dataclasses.replace(mesh, vertices=vertices), camera, settings, light=light)
    image.square().sum().backward()
    return vertices.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dense-views", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mesh = icosphere(3)
    cams = _views(args.batch, 4.5)
    dense_cams = Camera(cams.rotation[:args.dense_views], cams.position[:args.dense_views])
    base = RasterSettings(image_size=64, tau=0.005)
    configs = [
        ("silhouette, logistic + probabilistic", base, None),
        ("shaded RGB, logistic + probabilistic", base, Lambert()),
        ("silhouette, uniform + max",
         dataclasses.replace(base, cdf="uniform", tau=0.03, tconorm="max"), None),
        ("silhouette, gaussian + yager(2), top-16", dataclasses.replace(
            base, cdf="gaussian", tau=0.01, tconorm="yager", tconorm_param=2.0), None),
    ]
    print(f"lgn.render forward+backward, 64x64, {mesh.faces.shape[0]} faces, batch {args.batch}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'configuration':42s} {'culled ms/view':>15s} {'dense ms/view':>14s} {'speed-up':>9s}")
    for name, settings, light in configs:
        culled = _time(lambda: _step(mesh, cams, settings, light), args.repeats) / args.batch
        dense_settings = dataclasses.replace(settings, culling=False)
        dense = _time(lambda: _step(mesh, dense_cams, dense_settings, light), 1) / args.dense_views
        print(f"{name:42s} {culled * 1e3:15.1f} {dense * 1e3:14.1f} {dense / culled:8.1f}x")


if __name__ == "__main__":
    main()
