"""CIFAR-10 from its binary version (``cifar-10-binary.tar.gz``), never the pickled one.

Each ``*.bin`` batch is a run of 3073-byte records: one label byte (0..9) then 3072 pixel bytes,
channel-major (1024 red, 1024 green, 1024 blue, each 32x32 row-major). Features keep that order.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError, Encoding, LoadOptions
from .download import Remote, fetch_files, find_files, missing_message, search_dirs

__all__ = ["load_cifar10", "parse_batch", "SOURCE", "ENCODING"]

ARCHIVE = "cifar-10-binary.tar.gz"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META = "batches.meta.txt"
RECORD = 1 + 3072

#: The official archive and its published md5 (https://www.cs.toronto.edu/~kriz/cifar.html).
SOURCE = Remote("https://www.cs.toronto.edu/~kriz", {ARCHIVE: "md5:c32a1d4ab5d03f1284b67883e8d87530"})

#: 3 thresholds (63.75, 127.5, 191.25): the "cifar-10-3-thresholds" input of Petersen et al. (2022),
#: 9216 input bits; finer (31 thresholds) is their large-model setting.
ENCODING = Encoding("uniform", 3, 0.0, 255.0)

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10(name: str, options: LoadOptions) -> Dataset:
    """Load CIFAR-10: 50000 train / 10000 test images, 3072 uint8 features, 10 classes.

    Reads an extracted ``cifar-10-batches-bin/`` directory if present, else the archive straight
    from the tar (nothing is extracted), downloading and verifying it when missing.
    """
    dirs = search_dirs(name, options.data_dir)
    batches = TRAIN_BATCHES + (TEST_BATCH,)
    extracted = find_files([d / MEMBER_DIR for d in dirs] + dirs, [(b,) for b in batches])
    if extracted is not None:
        blobs = {path.name: _read(path) for path in extracted}
        meta = extracted[0].parent / META
        names = _class_names(meta.read_text(errors="replace"), meta) if meta.is_file() else CLASS_NAMES
        source = str(extracted[0].parent)
    else:
        archive = find_files(dirs, [(ARCHIVE,)])
        if archive is None:
            if not options.download:
                raise DatasetError(missing_message(
                    name, f"{ARCHIVE} or {MEMBER_DIR}/*.bin", dirs,
                    "pass --data-dir DIR holding it, or enable downloading"))
            archive = fetch_files(name, SOURCE, [ARCHIVE], options.data_dir, options.mirror)
        blobs, meta_text = _read_archive(archive[0], batches)
        names = _class_names(meta_text, archive[0]) if meta_text is not None else CLASS_NAMES
        source = str(archive[0])
    train = [parse_batch(blobs[b], b) for b in TRAIN_BATCHES]
    x_test, y_test = parse_batch(blobs[TEST_BATCH], TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train]).astype(np.float32)
    y_train = np.concatenate([y for _, y in train])
    return Dataset(name, x_train, y_train, x_test.astype(np.float32), y_test, num_classes=10,
                   feature_dtype="uint8", encoding=ENCODING, class_names=names, source=source,
                   image_shape=(3, 32, 32))


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse one binary batch into ``(uint8 (N, 3072) pixels, int64 (N,) labels)``."""
    if len(data) == 0 or len(data) % RECORD:
        raise DatasetError(f"{where}: {len(data)} bytes is not a positive multiple of the "
                           f"{RECORD}-byte CIFAR-10 record (truncated or wrong file)")
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DatasetError(f"{where}: label {labels.max()} in record {int(labels.argmax())} "
                           "out of range 0..9")
    return records[:, 1:], labels


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None


def _read_archive(path: Path, batches: tuple[str, ...]) -> tuple[dict[str, bytes], str | None]:
    """Read the batch members (regular files under ``cifar-10-batches-bin/``) and the class list."""
    wanted = {f"{MEMBER_DIR}/{b}": b for b in batches + (META,)}
    blobs = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name is not None and member.isfile():
                    blobs[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt or truncated archive ({error})") from None
    missing = [b for b in batches if b not in blobs]
    if missing:
        raise DatasetError(f"{path}: archive lacks {MEMBER_DIR}/{missing[0]} "
                           "(not the CIFAR-10 binary version?)")
    meta = blobs.pop(META, None)
    return blobs, None if meta is None else meta.decode(errors="replace")


def _class_names(text: str, where) -> tuple[str, ...]:
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 10:
        raise DatasetError(f"{where}: {META} lists {len(names)} class names, expected 10")
    return names
