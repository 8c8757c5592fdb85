"""Drawing the input sources of a layer's nodes at construction (shared by LUT and learned wiring)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["balanced_sources", "distinct_sources"]

#: Redraw rounds for duplicate rows before the exact (memory ``rows x in_dim``) fallback.
_REDRAW_ROUNDS = 8


def balanced_sources(count: int, in_dim: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` input indices in which every input occurs about equally often (a shuffled multiset)."""
    c = torch.randperm(count, generator=generator) % in_dim
    return torch.randperm(in_dim, generator=generator)[c]


def distinct_sources(rows: int, count: int, in_dim: int, generator: torch.Generator,
                     avoid_repeats: bool = True) -> torch.Tensor:
    """A ``(rows, count)`` index tensor whose rows hold ``count`` distinct inputs out of ``in_dim``.

    Column 0 uses every input about equally often (so every input is read when ``rows >= in_dim``);
    the other columns are uniform among the remaining inputs. With ``avoid_repeats``, rows that
    hold the same set of inputs are redrawn a few times when the number of sets allows it.
    Memory stays ``O(rows x count)`` except for the rare rows left after the redraw rounds.
    """
    if count > in_dim:
        raise ValueError(f"cannot draw {count} distinct inputs out of {in_dim}")
    first = balanced_sources(rows, in_dim, generator)
    if count == 1:
        return first.unsqueeze(1)
    # The others as distinct non-zero offsets from the first input, modulo in_dim.
    offsets = torch.randint(1, in_dim, (rows, count - 1), generator=generator)
    for _ in range(_REDRAW_ROUNDS):
        bad = _has_duplicates(offsets)
        if not bad.any():
            break
        offsets[bad] = torch.randint(1, in_dim, (int(bad.sum()), count - 1), generator=generator)
    bad = _has_duplicates(offsets)
    if bad.any():  # exact draw without replacement for the few rows left
        keys = torch.rand(int(bad.sum()), in_dim - 1, generator=generator)
        offsets[bad] = keys.argsort(dim=1)[:, : count - 1] + 1
    sources = torch.cat([first.unsqueeze(1), (first.unsqueeze(1) + offsets) % in_dim], dim=1)
    if avoid_repeats and rows <= _num_subsets(in_dim, count):
        for _ in range(_REDRAW_ROUNDS):
            repeated = _repeated_rows(sources)
            if not repeated.any():
                break
            sources[repeated] = distinct_sources(int(repeated.sum()), count, in_dim, generator, False)
    return sources


def _has_duplicates(rows: torch.Tensor) -> torch.Tensor:
    ordered = rows.sort(dim=1).values
    return (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)


def _repeated_rows(sources: torch.Tensor) -> torch.Tensor:
    """Rows whose set of inputs already occurred in an earlier row."""
    _, first = np.unique(sources.sort(dim=1).values.numpy(), axis=0, return_index=True)
    repeated = torch.ones(len(sources), dtype=torch.bool)
    repeated[torch.from_numpy(first)] = False
    return repeated


def _num_subsets(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)
