"""MNIST and Fashion-MNIST from their official IDX files (60000 train / 10000 test, 28x28 uint8)."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, DatasetError, Encoding, LoadOptions
from .download import Remote, fetch_files, find_files, missing_message, search_dirs
from .idx import read_idx

__all__ = ["load_mnist", "SOURCES", "ENCODINGS"]

#: The four files of each dataset, in the order train images, train labels, test images, test labels.
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: Official download locations and the md5 sums of the gzipped files (as published and used by
#: torchvision). Local copies (``data_dir``, Debian's package) are not checksummed: Debian
#: recompresses them; they are parsed strictly instead.
_FASHION_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"
SOURCES = {
    "mnist": Remote("https://ossci-datasets.s3.amazonaws.com/mnist", {
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": Remote(_FASHION_URL, {
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    }),
}

#: Default encoders. MNIST: one threshold at 127.5, the binarisation of Petersen et al. (2022)
#: (``x.round()`` on [0, 1] pixels); its strokes are nearly binary. Fashion-MNIST: 3 thresholds
#: (63.75, 127.5, 191.25), as the 3-threshold CIFAR-10 setting of the same paper, because cloth
#: texture and shading carry class information that one threshold discards.
ENCODINGS = {
    "mnist": Encoding("uniform", 1, 0.0, 255.0),
    "fashion-mnist": Encoding("uniform", 3, 0.0, 255.0),
}

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"),
}

_HOW = {
    "mnist": "pass --data-dir DIR holding the four IDX files, or enable downloading",
    "fashion-mnist": "run `apt-get install dataset-fashion-mnist`, pass --data-dir DIR holding the four "
                     "IDX files, or enable downloading",
}


def load_mnist(name: str, options: LoadOptions) -> Dataset:
    """Load ``'mnist'`` or ``'fashion-mnist'``: 784 uint8 pixel features, row-major, 10 classes.

    The official split is kept (``test_fraction`` does not apply). Files are looked up and
    downloaded as described in :mod:`lgn.data.download`.
    """
    dirs = search_dirs(name, options.data_dir)
    paths = find_files(dirs, [(f"{f}.gz", f) for f in FILES])
    if paths is None:
        if not options.download:
            raise DatasetError(missing_message(name, "IDX files (train-images-idx3-ubyte[.gz], ...)", dirs,
                                               _HOW[name]))
        paths = fetch_files(name, SOURCES[name], [f"{f}.gz" for f in FILES], options.data_dir, options.mirror)
    x_train, y_train = _read_pair(paths[0], paths[1])
    x_test, y_test = _read_pair(paths[2], paths[3])
    return Dataset(name, x_train, y_train, x_test, y_test, num_classes=10, feature_dtype="uint8",
                   encoding=ENCODINGS[name], class_names=CLASS_NAMES[name], source=str(paths[0].parent),
                   image_shape=(1, 28, 28))


def _read_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check one images/labels IDX pair; return ``(float32 (N, 784), int64 (N,))``."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_path}: expected uint8 images of shape (N, 28, 28), "
                           f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(f"{labels_path}: expected a 1-d uint8 label array, "
                           f"got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DatasetError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    if len(labels) and labels.max() > 9:
        raise DatasetError(f"{labels_path}: label {labels.max()} out of range 0..9")
    return images.reshape(len(images), -1).astype(np.float32), labels.astype(np.int64)
