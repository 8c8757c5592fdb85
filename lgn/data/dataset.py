"""The :class:`Dataset` every loader returns, its default :class:`Encoding`, and shared checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lgn.compile.netlist import FEATURE_DTYPES

__all__ = ["DatasetError", "Encoding", "Dataset"]

#: Integer feature types, smallest first: the order :func:`infer_feature_dtype` tries them in.
_INTEGER_DTYPES = ("uint8", "int8", "uint16", "int16", "int32")
#: Integers beyond this magnitude are not exact in float32, the type raw features travel in.
_FLOAT32_EXACT = 2 ** 24


class DatasetError(ValueError):
    """A dataset could not be found, fetched or parsed; the message names the file, field or shape."""


@dataclass(frozen=True)
class Encoding:
    """The documented default thermometer encoder of a dataset.

    Attributes
    ----------
    method : {'uniform', 'quantile'}
        ``'uniform'``: ``bits`` thresholds equally spaced strictly inside ``[low, high]``, the same
        for every feature. ``'quantile'``: per-feature thresholds at the training-set quantiles
        ``t / (bits + 1)``.
    bits : int
        Thresholds per feature; the encoded input has ``num_features * bits`` bits.
    low, high : float, optional
        Range of the raw features, required by (and only meaningful for) ``'uniform'``.
    """

    method: str
    bits: int
    low: float | None = None
    high: float | None = None

    def __post_init__(self):
        if self.method not in ("uniform", "quantile"):
            raise DatasetError(f"encoding: method must be 'uniform' or 'quantile', got {self.method!r}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or self.bits < 1:
            raise DatasetError(f"encoding: bits must be a positive integer, got {self.bits!r}")
        if self.method == "uniform":
            if self.low is None or self.high is None:
                raise DatasetError("encoding: 'uniform' needs low and high")
            if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
                raise DatasetError(f"encoding: need finite low < high, got [{self.low}, {self.high}]")
        elif self.low is not None or self.high is not None:
            raise DatasetError("encoding: low and high apply to 'uniform' only")

    def thresholds(self, x_train: np.ndarray) -> np.ndarray:
        """Return the ``(num_features, bits)`` float64 thresholds for raw training features ``x_train``.

        Equal to ``self.thermometer(x_train).thresholds`` (which is float32).
        """
        return self.thermometer(x_train).thresholds.double().numpy()

    def thermometer(self, x_train: np.ndarray):
        """Build the :class:`lgn.nn.Thermometer` this encoding describes, fitted to ``x_train`` ``(N, F)``."""
        import torch

        from lgn.nn import Thermometer

        x = np.asarray(x_train)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DatasetError(f"encoding: x_train must be a non-empty (N, F) array, got shape {x.shape}")
        if self.method == "uniform":
            return Thermometer.uniform(x.shape[1], self.bits, self.low, self.high)
        return Thermometer.quantile(torch.as_tensor(x), self.bits)

    def __str__(self) -> str:
        if self.method == "uniform":
            return f"uniform [{self.low:g}, {self.high:g}] x {self.bits}"
        return f"quantile x {self.bits}"


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A classification dataset with a fixed train/test split, validated on construction.

    Attributes
    ----------
    name : str
        Registered name (``'digits'``) or, for files, the file's stem.
    x_train, x_test : ndarray of float32, shape (N, F)
        Raw feature values (pixels 0..255, digits 0..16, ...), finite.
    y_train, y_test : ndarray of int64, shape (N,)
        Labels in ``0 .. num_classes-1``.
    num_classes : int
        At least 2.
    feature_dtype : str
        C type of the raw features for compiled back ends, one of
        :data:`lgn.compile.netlist.FEATURE_DTYPES`; every feature value fits it exactly.
    encoding : Encoding
        The documented default thermometer encoder.
    class_names : tuple of str
        Human-readable name of each class (the original label text for files).
    source : str
        Where the data came from: a path, a URL's file, or the generator.
    image_shape : tuple of int or None
        ``(channels, height, width)`` of image datasets, whose features are the pixels
        channel-major then row-major (``c*H*W + y*W + x``); ``None`` for tabular data.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    feature_dtype: str
    encoding: Encoding
    class_names: tuple[str, ...] = field(default=())
    source: str = ""
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self):
        where = self.name
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, (int, np.integer)):
            raise DatasetError(f"{where}: num_classes must be an int, got {self.num_classes!r}")
        if self.num_classes < 2:
            raise DatasetError(f"{where}: needs at least 2 classes, got {self.num_classes}")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise DatasetError(f"{where}: feature_dtype {self.feature_dtype!r} not one of {FEATURE_DTYPES}")
        if not isinstance(self.encoding, Encoding):
            raise DatasetError(f"{where}: encoding must be an Encoding, got {type(self.encoding).__name__}")
        names = tuple(str(n) for n in self.class_names) or tuple(str(c) for c in range(self.num_classes))
        if len(names) != self.num_classes:
            raise DatasetError(f"{where}: {len(names)} class names for {self.num_classes} classes")
        object.__setattr__(self, "class_names", names)
        num_features = None
        for split in ("train", "test"):
            x = check_features(getattr(self, f"x_{split}"), f"{where}: x_{split}")
            y = np.asarray(getattr(self, f"y_{split}"))
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise DatasetError(f"{where}: y_{split} must be a 1-d integer array, got {y.dtype} {y.shape}")
            if len(y) != len(x):
                raise DatasetError(f"{where}: x_{split} has {len(x)} rows but y_{split} has {len(y)} labels")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise DatasetError(f"{where}: y_{split} labels must lie in 0..{self.num_classes - 1}, "
                                   f"got {y.min()}..{y.max()}")
            if num_features is not None and x.shape[1] != num_features:
                raise DatasetError(f"{where}: x_train has {num_features} features "
                                   f"but x_test has {x.shape[1]}")
            num_features = x.shape[1]
            check_fits(x, self.feature_dtype, f"{where}: x_{split}")
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y.astype(np.int64, copy=False))
        if self.image_shape is not None:
            shape = tuple(self.image_shape) if isinstance(self.image_shape, (tuple, list)) else ()
            if (len(shape) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                           and v >= 1 for v in shape)
                    or int(np.prod(shape)) != num_features):
                raise DatasetError(f"{where}: image_shape {self.image_shape!r} must be three positive "
                                   f"integers (C, H, W) whose product is the {num_features} features")
            object.__setattr__(self, "image_shape", tuple(int(v) for v in shape))

    @property
    def num_features(self) -> int:
        """Length of the raw feature vector."""
        return self.x_train.shape[1]

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"features={self.num_features}, classes={self.num_classes}, {self.feature_dtype}, "
                f"encoding={self.encoding})")


def check_features(x, where: str) -> np.ndarray:
    """Return ``x`` as a float32 ``(N, F)`` array with ``N, F >= 1``, or raise on shape, type or NaN."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: features must be numeric, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise DatasetError(f"{where}: features must be a non-empty 2-d (N, F) array, got shape {x.shape}")
    if x.dtype.kind in "iu" and x.size and max(abs(int(x.min())), abs(int(x.max()))) > _FLOAT32_EXACT:
        raise DatasetError(f"{where}: integer features beyond +-2**24 are not exact in float32")
    x32 = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x32)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DatasetError(f"{where}: non-finite feature {x[row, col]} at row {row}, column {col}")
    return x32


def check_fits(x: np.ndarray, dtype: str, where: str) -> None:
    """Raise unless every value of ``x`` is exactly representable in the C type ``dtype``."""
    if dtype == "float32":
        return
    info = np.iinfo(dtype)
    if x.min() < info.min or x.max() > info.max or not np.array_equal(x, np.round(x)):
        raise DatasetError(f"{where}: values {x.min():g}..{x.max():g} are not all integers in the range "
                           f"{info.min}..{info.max} of feature type {dtype}")


def infer_feature_dtype(*xs: np.ndarray) -> str:
    """Return the smallest integer type of :data:`FEATURE_DTYPES` holding every value, else ``'float32'``."""
    values = np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in xs])
    if not np.array_equal(values, np.round(values)):
        return "float32"
    low, high = values.min(), values.max()
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    return "float32"


def encode_labels(y_train, y_test, where: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Map raw labels (integers or strings) to indices of their sorted distinct values.

    Labels already numbered ``0..K-1`` keep their values. Returns ``(y_train, y_test, class_names)``
    with int64 labels and the original values as class names.
    """
    ys = [np.asarray(y) for y in (y_train, y_test)]
    for y in ys:
        if y.ndim != 1:
            raise DatasetError(f"{where}: labels must be a 1-d array, got shape {y.shape}")
    kinds = {y.dtype.kind for y in ys if len(y)}
    if kinds <= {"U", "S"}:
        ys = [y.astype(str) for y in ys]
    elif kinds <= set("biuf"):
        for y in ys:
            if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
                raise DatasetError(f"{where}: labels are not integers (found {y[y != np.round(y)][:1]})")
        ys = [y.astype(np.int64) for y in ys]
    else:
        raise DatasetError(f"{where}: labels must be integers or strings, got {[y.dtype for y in ys]}")
    classes = np.unique(np.concatenate(ys))
    if len(classes) < 2:
        raise DatasetError(f"{where}: needs at least 2 classes, found {len(classes)} ({classes.tolist()})")
    indexed = [np.searchsorted(classes, y).astype(np.int64) for y in ys]
    return indexed[0], indexed[1], tuple(str(c) for c in classes.tolist())


def split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, where: str):
    """Split ``(x, y)`` into ``(x_train, y_train, x_test, y_test)``, stratified where possible.

    The split is seeded and so reproducible; it is stratified by class whenever each class has at
    least two examples and both parts can hold every class, and plainly shuffled otherwise.
    """
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_test = math.ceil(test_fraction * n)
    if n_test < 1 or n - n_test < 1:
        raise DatasetError(f"{where}: test_fraction {test_fraction} of {n} rows leaves an empty split")
    counts = np.unique(y, return_counts=True)[1]
    stratify = y if counts.min() >= 2 and min(n_test, n - n_test) >= len(counts) else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=n_test, random_state=seed, stratify=stratify)
    return x_train, y_train, x_test, y_test


@dataclass(frozen=True)
class LoadOptions:
    """The arguments of :func:`lgn.data.load` every loader receives (see there)."""

    data_dir: str | None = None
    download: bool = True
    mirror: str | None = None
    test_fraction: float = 0.2
    seed: int = 0
