"""Tabular data: scikit-learn's digits, and your own ``.npz`` and ``.csv`` files.

Files get a seeded, stratified ``test_fraction`` split unless they bring their own test set, and the
default encoder :data:`ENCODING` (per-feature quantile thresholds), since their ranges are unknown.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from lgn.compile.netlist import FEATURE_DTYPES

from .dataset import (
    Dataset,
    DatasetError,
    Encoding,
    LoadOptions,
    check_features,
    encode_labels,
    infer_feature_dtype,
    split,
)

__all__ = ["load_digits", "load_npz", "load_csv", "ENCODING", "DIGITS_ENCODING"]

#: Files: 7 per-feature quantile thresholds (octiles), 8 levels per feature like 3-bit quantization;
#: quantiles adapt to any range and spend thresholds where the data is.
ENCODING = Encoding("quantile", 7)
#: Digits (values 0..16): thresholds 4, 8, 12 -- ink levels none/faint/medium/dark.
DIGITS_ENCODING = Encoding("uniform", 3, 0.0, 16.0)

_MISSING = {"", "?", "na", "nan", "n/a", "null", "none"}


def load_digits(name: str, options: LoadOptions) -> Dataset:
    """Load scikit-learn's 8x8 digits (1797 images, 64 features 0..16, bundled, no download).

    The test set is a seeded stratified ``test_fraction`` split (20 %: 1437 train / 360 test).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    x_train, y_train, x_test, y_test = split(data.data, data.target, options.test_fraction,
                                             options.seed, name)
    return Dataset(name, x_train, y_train, x_test, y_test, num_classes=10, feature_dtype="uint8",
                   encoding=DIGITS_ENCODING, class_names=tuple(str(d) for d in range(10)),
                   source="sklearn.datasets.load_digits", image_shape=(1, 8, 8))


def load_npz(path: str, options: LoadOptions) -> Dataset:
    """Load ``path``: arrays ``X`` ``(N, F)`` and ``y`` ``(N,)``, optionally ``X_test`` and ``y_test``.

    Loaded with ``allow_pickle=False``. Labels may be integers or strings (mapped to sorted class
    indices). The feature type is ``X``'s dtype when it is a C feature type (``bool`` -> ``uint8``),
    the smallest integer type holding the values for other integer dtypes, else ``float32``.
    """
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path}: expected an .npz archive with arrays X and y, got a single array")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except DatasetError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path}: not a readable .npz archive ({error})") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise DatasetError(f"{path}: missing array {key!r} (found {sorted(arrays)})")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: X_test and y_test must be given together (found {sorted(arrays)})")
    xs = [arrays[k] for k in ("X", "X_test") if k in arrays]
    for key, x in zip(("X", "X_test"), xs):
        check_features(x, f"{path}: {key}")
    dtype = str(xs[0].dtype)
    feature_dtype = ("uint8" if dtype == "bool" else dtype if dtype in FEATURE_DTYPES
                     else infer_feature_dtype(*xs) if xs[0].dtype.kind in "iu" else "float32")
    return _finish(path, arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test"),
                   feature_dtype, options)


def load_csv(path: str, options: LoadOptions) -> Dataset:
    """Load ``path``: one example per row, features then the label in the last column.

    An optional header row is recognised by a non-numeric feature field. The delimiter is the
    first of ``,``, tab, ``;`` found in the first line. Labels may be integers or strings (mapped to
    sorted class indices). The feature type is the smallest integer type holding every value when
    all are integers, else ``float32``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read as UTF-8 text ({error})") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = next((d for d in (",", "\t", ";") if d in first), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    stripped = ([f.strip() for f in row] for row in reader)
    rows = [(reader.line_num, fields) for fields in stripped if any(fields)]
    if rows and not all(_is_number(f) for f in rows[0][1][:-1]):
        rows = rows[1:]  # header
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    width = len(rows[0][1])
    if width < 2:
        raise DatasetError(f"{path}: needs at least one feature column and a label column, "
                           f"got {width} column")
    features = np.empty((len(rows), width - 1), dtype=np.float64)
    labels = []
    for i, (line, fields) in enumerate(rows):
        if len(fields) != width:
            raise DatasetError(f"{path} line {line}: {len(fields)} fields, expected {width}")
        for column, value in enumerate(fields[:-1], 1):
            number = _parse_number(value)
            if number is None:
                raise DatasetError(f"{path} line {line}, column {column}: {value!r} is not a number")
            features[i, column - 1] = number
        labels.append(fields[-1])
    if any(label.lower() in _MISSING for label in labels):
        line = rows[next(i for i, v in enumerate(labels) if v.lower() in _MISSING)][0]
        raise DatasetError(f"{path} line {line}: missing label")
    numbers = [_parse_number(label) for label in labels]
    y = np.array(numbers, dtype=np.float64) if all(v is not None for v in numbers) else np.array(labels)
    return _finish(path, features, y, None, None, infer_feature_dtype(features), options)


def _finish(path, x, y, x_test, y_test, feature_dtype: str, options: LoadOptions) -> Dataset:
    """Check shapes, encode labels, split if needed and build the :class:`Dataset` of file ``path``."""
    x = check_features(x, f"{path}: X")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(f"{path}: y has shape {y.shape}, expected ({len(x)},) to match X {x.shape}")
    if x_test is not None:
        x_test = check_features(x_test, f"{path}: X_test")
        y_test = np.asarray(y_test)
        if x_test.shape[1] != x.shape[1]:
            raise DatasetError(f"{path}: X_test has {x_test.shape[1]} features but X has {x.shape[1]}")
        if y_test.ndim != 1 or len(y_test) != len(x_test):
            raise DatasetError(f"{path}: y_test has shape {y_test.shape}, expected ({len(x_test)},) "
                               f"to match X_test {x_test.shape}")
    y, y_test, class_names = encode_labels(y, y[:0] if y_test is None else y_test, f"{path}: y")
    if x_test is None:
        x, y, x_test, y_test = split(x, y, options.test_fraction, options.seed, str(path))
    return Dataset(Path(path).stem, x, y, x_test, y_test, num_classes=len(class_names),
                   feature_dtype=feature_dtype, encoding=ENCODING, class_names=class_names,
                   source=str(path))


def _parse_number(text: str) -> float | None:
    """Return ``text`` as a finite float, or None when it is not a (finite) number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_number(text: str) -> bool:
    return _parse_number(text) is not None
