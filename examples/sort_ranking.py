"""Learn to rank four-digit numbers from ordering supervision alone (lgn.sort).

Each number is rendered from four real 8x8 scikit-learn ``digits`` images side by side (an
8x32 picture). A small CNN maps a picture to one score; a set of ``n`` pictures is sorted by a
relaxed sorting network and the relaxed permutation is trained against the true order with
binary cross-entropy (Petersen et al., ICML 2021). The network never sees a number's value,
only which of the ``n`` is larger. Test sets are built from held-out digit images.

Reports, for each ``n``: exact match (the whole set is ordered correctly) and element-wise
accuracy (an element's predicted rank is its true rank).

Usage: ``python examples/sort_ranking.py [--quick] [--sizes 3 5 7 9 15] [--threads 2]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from lgn.sort import SoftSort, ranking_loss

DIGITS = 4


def digit_pools(seed: int):
    """Return train and test pools: for each class, a float tensor of 8x8 images in [0, 1]."""
    data = load_digits()
    images = data.images.astype(np.float32) / 16.0
    train_x, test_x, train_y, test_y = train_test_split(
        images, data.target, test_size=0.3, random_state=seed, stratify=data.target)
    pool = lambda x, y: [torch.from_numpy(x[y == d]) for d in range(10)]  # noqa: E731
    return pool(train_x, train_y), pool(test_x, test_y)


def sample_sets(pool, num_sets: int, n: int, gen: torch.Generator):
    """Return pictures ``(num_sets, n, 1, 8, 32)`` and their values ``(num_sets, n)``.

    Values within a set are distinct, so the true order is unique.
    """
    values = torch.stack([torch.randperm(10 ** DIGITS, generator=gen)[:n] for _ in range(num_sets)])
    digits = [(values // 10 ** (DIGITS - 1 - p)) % 10 for p in range(DIGITS)]
    columns = []
    for d in digits:
        flat = d.reshape(-1)
        picks = torch.empty(flat.numel(), 8, 8)
        for cls in range(10):
            where = (flat == cls).nonzero(as_tuple=True)[0]
            if where.numel():
                choice = torch.randint(0, pool[cls].shape[0], (where.numel(),), generator=gen)
                picks[where] = pool[cls][choice]
        columns.append(picks)
    pictures = torch.cat(columns, dim=-1).view(num_sets, n, 1, 8, 8 * DIGITS)
    return pictures, values


class Scorer(nn.Module):
    """CNN mapping an 8x32 picture of a four-digit number to one real score."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 4 * 16, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        shape = pictures.shape[:-3]
        return self.features(pictures.reshape(-1, *pictures.shape[-3:])).view(shape)


def evaluate(model, pictures, values):
    with torch.no_grad():
        scores = model(pictures)
    predicted = torch.argsort(torch.argsort(scores, -1), -1)
    truth = torch.argsort(torch.argsort(values, -1), -1)
    correct = predicted == truth
    return correct.all(-1).float().mean().item(), correct.float().mean().item()


def train_one(n: int, args, pools, seed: int):
    train_pool, test_pool = pools
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Scorer()
    sorter = SoftSort(n, network=args.network, sigmoid=args.sigmoid, steepness=args.steepness)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sets_per_step = max(1, args.batch // n)
    for _ in range(args.steps):
        pictures, values = sample_sets(train_pool, sets_per_step, n, gen)
        _, perm = sorter(model(pictures))
        loss = ranking_loss(perm, torch.argsort(values, -1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_gen = torch.Generator().manual_seed(seed + 1)
    test_pictures, test_values = sample_sets(test_pool, args.test_sets, n, test_gen)
    return evaluate(model, test_pictures, test_values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 7, 9, 15])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a few minutes on 2 cores)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per size")
    parser.add_argument("--batch", type=int, default=120, help="pictures per step (sets of n)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--network", default="odd_even", choices=["odd_even", "bitonic"])
    parser.add_argument("--sigmoid", default="cauchy")
    parser.add_argument("--steepness", type=float, default=10.0)
    parser.add_argument("--test-sets", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 300 if args.quick else 2000
    torch.set_num_threads(args.threads)
    pools = digit_pools(args.seed)
    print(f"four-digit numbers from sklearn digits, {args.network} network, {args.sigmoid} "
          f"sigmoid, steepness {args.steepness}, {args.steps} steps of {args.batch} pictures, "
          f"{args.test_sets} held-out test sets per n")
    print(f"{'n':>3} {'exact match':>12} {'element-wise':>13} {'seconds':>8}")
    for n in args.sizes:
        start = time.perf_counter()
        exact, elementwise = train_one(n, args, pools, args.seed + n)
        print(f"{n:>3} {exact:>12.3f} {elementwise:>13.3f} {time.perf_counter() - start:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
