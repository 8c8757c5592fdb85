"""Dataset names -> loaders, and :func:`load`, the one entry point."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cifar import load_cifar10
from .dataset import Dataset, DatasetError, LoadOptions
from .mnist import load_mnist
from .monk import load_monk
from .tabular import load_csv, load_digits, load_npz

__all__ = ["load", "names", "describe", "DEFAULT"]

#: The built-in default dataset: bundled with scikit-learn, so it never needs a download.
DEFAULT = "digits"


@dataclass(frozen=True)
class _Entry:
    loader: Callable[[str, LoadOptions], Dataset]
    summary: str


_REGISTRY = {
    "digits": _Entry(load_digits, "scikit-learn 8x8 digits, 64 features 0..16, 10 classes (bundled)"),
    "mnist": _Entry(load_mnist, "MNIST handwritten digits, 784 pixels 0..255, 10 classes (IDX files)"),
    "fashion-mnist": _Entry(load_mnist, "Fashion-MNIST clothing, 784 pixels 0..255, 10 classes (IDX files)"),
    "cifar10": _Entry(load_cifar10, "CIFAR-10 colour images, 3072 values 0..255, 10 classes (binary version)"),
    "monk1": _Entry(load_monk, "MONK-1 (a1 = a2) or (a5 = 1): 6 attributes, 124 train / 432 test"),
    "monk2": _Entry(load_monk, "MONK-2 exactly two attributes equal 1: 6 attributes, 169 train / 432 test"),
    "monk3": _Entry(load_monk, "MONK-3 with 5% train label noise: 6 attributes, 122 train / 432 test"),
}
_FILE_LOADERS = {"npz": load_npz, "csv": load_csv}
#: Spellings accepted besides the names, compared without case, ``-`` or ``_``.
_ALIASES = {"fashion": "fashion-mnist", "fmnist": "fashion-mnist",
            "monks1": "monk1", "monks2": "monk2", "monks3": "monk3"}
_LOOKUP = {**{n.replace("-", ""): n for n in _REGISTRY}, **_ALIASES}


def names() -> list[str]:
    """Return the registered dataset names, the default first (``npz:PATH``/``csv:PATH`` load files)."""
    return list(_REGISTRY)


def describe(name: str) -> str:
    """Return a one-line description of the registered dataset ``name``."""
    return _REGISTRY[_canonical(name)].summary


def load(spec: str, data_dir: str | os.PathLike | None = None, *, download: bool = True,
         mirror: str | None = None, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load a dataset by name (see :func:`names`) or from a file, ``'npz:PATH'`` or ``'csv:PATH'``.

    Parameters
    ----------
    spec : str
        A registered name (case, ``-`` and ``_`` ignored: ``FASHION_MNIST``), ``'npz:PATH'`` or
        ``'csv:PATH'`` (a bare path ending in ``.npz`` or ``.csv`` works too).
    data_dir : path, optional
        Directory holding the files of file-based datasets (directly or in a subdirectory named
        after the dataset), and where downloads go. Default: ``$LGN_DATA``, else ``~/.cache/lgn``,
        then ``/usr/share/datasets`` (Debian).
    download : bool
        Download missing files (verified against their published checksum); when off, missing
        files raise a :class:`DatasetError` saying where they were looked for.
    mirror : str, optional
        Base URL replacing a dataset's official download location.
    test_fraction : float
        Held-out fraction for datasets without an official test set (digits, files without
        ``X_test``), in (0, 1).
    seed : int
        Seeds that split (stratified by class) and MONK's training draw and noise.

    Raises
    ------
    DatasetError
        With a one-line message: unknown name, missing or corrupt files, a failed download, or
        data of the wrong shape or type.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError(f"dataset spec must be a non-empty string, got {spec!r}")
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0 < test_fraction < 1):
        raise DatasetError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")
    options = LoadOptions(None if data_dir is None else os.fspath(data_dir), bool(download), mirror,
                          float(test_fraction), seed)
    kind, colon, path = spec.partition(":")
    if colon and kind.lower() in _FILE_LOADERS:
        if not path:
            raise DatasetError(f"dataset spec {spec!r} lacks a path after '{kind}:'")
        return _FILE_LOADERS[kind.lower()](os.path.expanduser(path), options)
    suffix = Path(spec).suffix.lower().lstrip(".")
    if suffix in _FILE_LOADERS:
        return _FILE_LOADERS[suffix](os.path.expanduser(spec), options)
    name = _canonical(spec)
    return _REGISTRY[name].loader(name, options)


def _canonical(spec: str) -> str:
    name = _LOOKUP.get(spec.strip().lower().replace("_", "").replace("-", ""))
    if name is None:
        raise DatasetError(f"unknown dataset {spec!r}; known: {', '.join(_REGISTRY)}, or npz:PATH / csv:PATH")
    return name
