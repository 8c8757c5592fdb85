"""Recover the pose of an asymmetric mesh from its silhouette (GenDR's protocol, scaled down).

For every (CDF, T-conorm) choice, random target rotations are drawn; each trial starts from
the target rotated by a random axis through an angle in 15-35, 35-55 or 55-75 degrees and
minimises with Adam over a quaternion the squared error between the silhouette and the
target silhouette rendered by the same renderer (a hard target would move the optimum away
from the true pose by the blur of the soft edges). A trial succeeds when the final angle
error is below 5 degrees. All trials of one choice run as one batch. Writes PNGs of the progress and prints a table.

Run: ``python examples/render_pose.py [--quick] [--out out/render_pose]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from lgn.render import (Camera, Mesh, RasterSettings, asymmetric_shape,  # noqa: E402
                        axis_angle_to_matrix, image_grid, quaternion_to_matrix, random_rotation,
                        render_mesh, rotation_angle, write_png)

RANGES = ((15, 35), (35, 55), (55, 75))
# (cdf, tau, T-conorm, parameter): tau chosen so every law spreads over about two pixels
CHOICES = (("logistic", 0.015, "probabilistic", None), ("uniform", 0.05, "probabilistic", None),
           ("gaussian", 0.025, "einstein", None), ("laplace", 0.02, "max", None),
           ("cubic_hermite", 0.05, "yager", 2.0), ("gumbel_min", 0.02, "aczel_alsina", 2.0))


def _matrix_to_quaternion(r: torch.Tensor) -> torch.Tensor:
    """Quaternions (w, x, y, z) of rotations ``(n, 3, 3)`` (Shepperd's method via eigenvectors)."""
    m = r.double()
    k = torch.zeros(r.shape[0], 4, 4, dtype=torch.float64)
    k[:, 0, 0] = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    k[:, 0, 1] = k[:, 1, 0] = m[:, 2, 1] - m[:, 1, 2]
    k[:, 0, 2] = k[:, 2, 0] = m[:, 0, 2] - m[:, 2, 0]
    k[:, 0, 3] = k[:, 3, 0] = m[:, 1, 0] - m[:, 0, 1]
    k[:, 1, 1] = m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2]
    k[:, 1, 2] = k[:, 2, 1] = m[:, 0, 1] + m[:, 1, 0]
    k[:, 1, 3] = k[:, 3, 1] = m[:, 0, 2] + m[:, 2, 0]
    k[:, 2, 2] = m[:, 1, 1] - m[:, 0, 0] - m[:, 2, 2]
    k[:, 2, 3] = k[:, 3, 2] = m[:, 1, 2] + m[:, 2, 1]
    k[:, 3, 3] = m[:, 2, 2] - m[:, 0, 0] - m[:, 1, 1]
    return torch.linalg.eigh(k / 3).eigenvectors[..., -1].to(r.dtype)


def make_trials(trials_per_range: int, seed: int):
    """Target rotations and starting rotations ``(n, 3, 3)`` plus the range index of each."""
    gen = torch.Generator().manual_seed(seed)
    n = trials_per_range * len(RANGES)
    target = random_rotation(n, gen)
    group = torch.arange(len(RANGES)).repeat_interleave(trials_per_range)
    low = torch.tensor([r[0] for r in RANGES], dtype=torch.float32)[group]
    angle = torch.deg2rad(low + 20 * torch.rand(n, generator=gen))
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    start = axis_angle_to_matrix(axis * angle[:, None]) @ target
    return target, start, group


def recover(mesh: Mesh, camera: Camera, target, start, settings: RasterSettings, steps: int,
            snapshot=None):
    """Optimise quaternions from ``start`` to match the silhouettes of ``target``; return errors."""
    batch = target.shape[0]
    with torch.no_grad():
        goal = render_mesh(mesh.transformed(target), camera, settings)[:, 0]
    quat = _matrix_to_quaternion(start).requires_grad_()
    optimizer = torch.optim.Adam([quat], lr=0.05)
    for step in range(steps + 1):
        rotation = quaternion_to_matrix(quat)
        alpha = render_mesh(mesh.transformed(rotation), camera, settings)[:, 0]
        if snapshot is not None and step in snapshot:
            snapshot[step] = (goal, alpha.detach())
        if step == steps:
            break
        loss = (alpha - goal).square().sum() / batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return rotation_angle(quaternion_to_matrix(quat.detach()), target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials, steps and choices")
    parser.add_argument("--out", type=Path, default=Path("out/render_pose"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    trials, steps, size = (4, 120, 48) if args.quick else (8, 200, 64)
    choices = CHOICES[:3] if args.quick else CHOICES
    mesh = asymmetric_shape(2)
    camera = Camera.look_at([[0.0, 0.0, 4.5]], fov=30.0)
    target, start, group = make_trials(trials, args.seed)
    print(f"pose recovery: {mesh.faces.shape[0]} faces, {size}x{size}, {trials} trials per range, "
          f"{steps} Adam steps, success = error < 5 deg, {torch.get_num_threads()} threads")
    header = f"{'CDF':14s} {'tau':>6s} {'T-conorm':16s}" + "".join(
        f" {f'{lo}-{hi} deg':>10s}" for lo, hi in RANGES) + f" {'median err':>10s} {'time':>6s}"
    print(header)
    for index, (cdf_name, tau, tconorm, param) in enumerate(choices):
        settings = RasterSettings(image_size=size, tau=tau, cdf=cdf_name, tconorm=tconorm,
                                  tconorm_param=param)
        marks = [0, steps // 4, steps] if index == 0 else []
        snapshot = dict.fromkeys(marks)
        began = time.perf_counter()
        error = recover(mesh, camera, target, start, settings, steps, snapshot)
        elapsed = time.perf_counter() - began
        rates = [float((error[group == g] < 5).float().mean()) for g in range(len(RANGES))]
        name = tconorm + (f"({param:g})" if param is not None else "")
        print(f"{cdf_name:14s} {tau:6.3f} {name:16s}" + "".join(f" {r:10.0%}" for r in rates)
              + f" {float(error.median()):9.1f}d {elapsed:5.0f}s")
        if marks:
            shown = list(range(0, target.shape[0], max(1, trials // 2)))
            tiles = [snapshot[marks[0]][0][i] for i in shown]
            for m in marks:
                tiles += [0.5 * snapshot[m][0][i] + 0.5 * snapshot[m][1][i] for i in shown]
            path = args.out / f"pose_{cdf_name}_{tconorm}.png"
            write_png(path, image_grid(tiles, len(shown)))
            print(f"  wrote {path}: rows = target, then target/estimate overlay at steps {marks}")


if __name__ == "__main__":
    main()
