"""The three MONK's problems (Thrun et al., 1991), generated from their published rules.

Six attributes take the values ``1..k`` for ``k = 3, 3, 2, 3, 4, 2``: 432 robots in all, which are
the test set of every problem (as in the UCI files). The targets are

- MONK-1: ``(a1 == a2) or (a5 == 1)``
- MONK-2: exactly two attributes take their first value (``an == 1`` for exactly two ``n``)
- MONK-3: ``(a5 == 3 and a4 == 1) or (a5 != 4 and a2 != 3)``

The training sets have the standard sizes 124, 169 and 122, drawn from the 432 without
replacement, stratified by class, with ``seed``; MONK-3's training set then has exactly
``round(0.05 * 122) = 6`` labels flipped (its published 5 % noise). The test sets are noise-free.
"""

from __future__ import annotations

import itertools

import numpy as np

from .dataset import Dataset, Encoding, LoadOptions

__all__ = ["load_monk", "monk_examples", "monk_labels", "ATTRIBUTE_VALUES", "TRAIN_SIZES", "ENCODING"]

ATTRIBUTE_VALUES = (3, 3, 2, 3, 4, 2)
TRAIN_SIZES = {1: 124, 2: 169, 3: 122}
NOISE_FRACTION = {1: 0.0, 2: 0.0, 3: 0.05}

#: Thresholds 1.5, 2.5, 3.5 separate every value 1..4 of every attribute (18 input bits, 11 of them
#: non-constant: one fewer than the number of values of each attribute).
ENCODING = Encoding("uniform", 3, 0.5, 4.5)


def monk_examples() -> np.ndarray:
    """Return all 432 attribute vectors, ``(432, 6)`` int64 with values from 1, in lexicographic order."""
    return np.array(list(itertools.product(*(range(1, k + 1) for k in ATTRIBUTE_VALUES))), dtype=np.int64)


def monk_labels(problem: int, a: np.ndarray) -> np.ndarray:
    """Return the noise-free int64 class (0/1) of MONK-``problem`` for attribute vectors ``a`` ``(N, 6)``."""
    a1, a2, a3, a4, a5, a6 = np.asarray(a).T
    if problem == 1:
        target = (a1 == a2) | (a5 == 1)
    elif problem == 2:
        target = (np.asarray(a) == 1).sum(axis=1) == 2
    elif problem == 3:
        target = ((a5 == 3) & (a4 == 1)) | ((a5 != 4) & (a2 != 3))
    else:
        raise ValueError(f"MONK's problem must be 1, 2 or 3, got {problem}")
    return target.astype(np.int64)


def load_monk(name: str, options: LoadOptions) -> Dataset:
    """Load ``'monk1'``, ``'monk2'`` or ``'monk3'`` (see the module docstring).

    ``seed`` picks the training draw and MONK-3's noisy labels.
    """
    from sklearn.model_selection import train_test_split

    problem = int(name[-1])
    x = monk_examples()
    y = monk_labels(problem, x)
    train_idx, _ = train_test_split(np.arange(len(x)), train_size=TRAIN_SIZES[problem], stratify=y,
                                    random_state=options.seed)
    train_idx = np.sort(train_idx)
    y_train = y[train_idx].copy()
    num_noisy = round(NOISE_FRACTION[problem] * len(train_idx))
    if num_noisy:
        flip = np.random.default_rng([options.seed, problem]).choice(len(train_idx), num_noisy, replace=False)
        y_train[flip] ^= 1
    return Dataset(name, x[train_idx].astype(np.float32), y_train, x.astype(np.float32), y,
                   num_classes=2, feature_dtype="uint8", encoding=ENCODING, class_names=("0", "1"),
                   source=f"generated from the MONK-{problem} rules")
