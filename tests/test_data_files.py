"""lgn.data file formats and downloads: IDX, MNIST-style datasets, CIFAR-10 binary, loopback HTTP.

Nothing here touches the internet: downloads come from an ``http.server`` on 127.0.0.1 serving
files the test writes, with the checksum tables monkeypatched to match them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import tarfile
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import missing

from lgn.data import DatasetError, load
from lgn.data import cifar, download, mnist
from lgn.data.download import Remote
from lgn.data.idx import IDX_DTYPES, read_idx, write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Point the cache and the system directory at empty temporary folders."""
    monkeypatch.setenv("LGN_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "SYSTEM_ROOT", tmp_path / "system")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ``root``; ``requests`` records every requested path."""
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_port}/", requests=requests)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


# --- IDX ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.dtype(v).newbyteorder("=") for v in IDX_DTYPES.values()])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, rng, dtype, name):
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == dtype and back.dtype.isnative and np.array_equal(back, array)
    back[0, 0, 0] = 1  # writable


def test_idx_layout_is_big_endian(tmp_path):
    write_idx(tmp_path / "x", np.array([[1, 2, 3]], dtype=np.int16))
    assert (tmp_path / "x").read_bytes() == bytes.fromhex("0000 0b02 00000001 00000003 0001 0002 0003")
    assert read_idx(tmp_path / "x").tolist() == [[1, 2, 3]]


def _idx_bytes(array) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        write_idx(Path(directory) / "f", array)
        return (Path(directory) / "f").read_bytes()


GOOD = _idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize("data, match", [
    (GOOD[:-1], r"truncated: 39 bytes, expected 40 for a uint8 array of shape \(2, 3, 4\)"),
    (GOOD + b"\0", "has trailing bytes"),
    (GOOD[:10], "truncated IDX header"),
    (GOOD[:3], "too short for an IDX header"),
    (b"", "too short"),
    (b"\x01" + GOOD[1:], "bad magic number 0x01000803"),
    (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX data type code 0x0a"),
    (GOOD[:3] + b"\x00", "0 dimensions"),
    (gzip.compress(GOOD)[:-9], "corrupt or truncated gzip"),
    (gzip.compress(GOOD)[:12] + b"garbage" * 4, "corrupt or truncated gzip"),
], ids=["truncated", "trailing", "short-header", "tiny", "empty", "magic", "type-code", "no-dims", "gzip-cut",
        "gzip-garbage"])
def test_idx_rejects(tmp_path, data, match):
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_missing_and_unwritable_dtype(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DatasetError, match="cannot store dtype int64"):
        write_idx(tmp_path / "x", np.zeros(2, np.int64))


# --- MNIST-style datasets -----------------------------------------------------------------------

def write_mnist(directory: Path, rng, n_train=30, n_test=10, gz=True) -> dict:
    """Write the four IDX files of a tiny MNIST into ``directory``; return the arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / (name + ".gz" if gz else name), array)
    return arrays


def check_mnist(ds, arrays):
    assert ds.x_train.shape == (30, 784) and ds.x_test.shape == (10, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.array_equal(ds.x_train, arrays["train-images-idx3-ubyte"].reshape(30, 784))
    assert np.array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.num_classes == 10 and ds.feature_dtype == "uint8"


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("subdir", [True, False])
def test_mnist_from_data_dir(tmp_path, rng, gz, subdir):
    arrays = write_mnist(tmp_path / "d" / "mnist" if subdir else tmp_path / "d", rng, gz=gz)
    ds = load("mnist", tmp_path / "d", download=False)
    check_mnist(ds, arrays)
    assert ds.encoding.bits == 1 and ds.encoding.low == 0 and ds.encoding.high == 255


def test_mnist_from_lgn_data(tmp_path, rng):
    arrays = write_mnist(tmp_path / "cache" / "mnist", rng)
    check_mnist(load("mnist", download=False), arrays)


def test_fashion_mnist_from_system_dir(tmp_path, rng):
    arrays = write_mnist(tmp_path / "system" / "fashion-mnist", rng)
    ds = load("fashion-mnist", download=False)
    check_mnist(ds, arrays)
    assert ds.class_names[0] == "T-shirt/top" and ds.encoding.bits == 3


def test_fashion_mnist_debian(monkeypatch):
    if not FASHION_DIR.is_dir():
        missing("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(download, "SYSTEM_ROOT", FASHION_DIR.parent)
    ds = load("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [6000] * 10 and np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.x_train.min() == 0 and ds.x_train.max() == 255
    assert ds.source == str(FASHION_DIR)


def test_missing_without_download_says_where_and_how(tmp_path):
    with pytest.raises(DatasetError) as info:
        load("fashion-mnist", download=False)
    message = str(info.value)
    assert "not found in" in message and str(tmp_path / "cache" / "fashion-mnist") in message
    assert str(tmp_path / "system" / "fashion-mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert "\n" not in message


@pytest.mark.parametrize("name, array, match", [
    ("train-images-idx3-ubyte.gz", np.zeros((30, 28, 27), np.uint8), r"expected uint8 images of shape \(N, 28, 28\)"),
    ("train-images-idx3-ubyte.gz", np.zeros((30, 28, 28), np.int16), "expected uint8 images"),
    ("train-labels-idx1-ubyte.gz", np.zeros(29, np.uint8), "29 labels for 30 images"),
    ("t10k-labels-idx1-ubyte.gz", np.full(10, 10, np.uint8), "label 10 out of range"),
    ("t10k-labels-idx1-ubyte.gz", np.zeros((10, 1), np.uint8), "1-d uint8 label array"),
])
def test_mnist_rejects_wrong_files(tmp_path, rng, name, array, match):
    write_mnist(tmp_path / "d", rng)
    write_idx(tmp_path / "d" / name, array)
    with pytest.raises(DatasetError, match=match) as info:
        load("mnist", tmp_path / "d", download=False)
    assert name in str(info.value)


def test_mnist_truncated_file_names_it(tmp_path, rng):
    write_mnist(tmp_path / "d", rng, gz=False)
    path = tmp_path / "d" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=f"{path}: truncated"):
        load("mnist", tmp_path / "d", download=False)


# --- downloads ----------------------------------------------------------------------------------

@pytest.fixture
def mnist_server(server, rng, monkeypatch):
    """The loopback server publishing a tiny MNIST, with the checksum table set to match."""
    server.arrays = write_mnist(server.root, rng)
    checksums = {p.name: md5(p) for p in server.root.iterdir()}
    monkeypatch.setitem(mnist.SOURCES, "mnist", Remote("http://unused.invalid", checksums))
    return server


def test_download_verify_and_reuse_cache(tmp_path, mnist_server):
    ds = load("mnist", mirror=mnist_server.url)
    check_mnist(ds, mnist_server.arrays)
    assert sorted(mnist_server.requests) == sorted(f"/{f}.gz" for f in mnist.FILES)
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(f"{f}.gz" for f in mnist.FILES)  # no temporary files left over
    again = load("mnist", mirror=mnist_server.url)
    assert len(mnist_server.requests) == 4  # served from the cache: no second request
    assert np.array_equal(again.x_test, ds.x_test)


def test_download_completes_a_partial_cache(tmp_path, mnist_server):
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (cache / name).write_bytes((mnist_server.root / name).read_bytes())
    check_mnist(load("mnist", mirror=mnist_server.url), mnist_server.arrays)
    assert sorted(mnist_server.requests) == ["/t10k-images-idx3-ubyte.gz", "/train-labels-idx1-ubyte.gz"]


def test_download_into_data_dir(tmp_path, mnist_server):
    check_mnist(load("mnist", tmp_path / "mine", mirror=mnist_server.url), mnist_server.arrays)
    assert len(list((tmp_path / "mine" / "mnist").glob("*.gz"))) == 4
    assert not (tmp_path / "cache").exists()


def test_download_from_default_base_url(monkeypatch, mnist_server):
    remote = mnist.SOURCES["mnist"]
    monkeypatch.setitem(mnist.SOURCES, "mnist", Remote(mnist_server.url, remote.checksums))
    check_mnist(load("mnist"), mnist_server.arrays)


def test_download_checksum_mismatch_rejected(tmp_path, monkeypatch, mnist_server):
    checksums = dict(mnist.SOURCES["mnist"].checksums)
    checksums["t10k-images-idx3-ubyte.gz"] = "md5:" + "0" * 32
    monkeypatch.setitem(mnist.SOURCES, "mnist", Remote("http://unused.invalid", checksums))
    with pytest.raises(DatasetError, match=r"download of http://127\.0\.0\.1:\d+/t10k-images-idx3-ubyte\.gz "
                                           r"is corrupt: md5 [0-9a-f]{32}, expected 0{32} \(file discarded\)"):
        load("mnist", mirror=mnist_server.url)
    left = {p.name for p in (tmp_path / "cache" / "mnist").iterdir()}
    assert "t10k-images-idx3-ubyte.gz" not in left and not any(n.endswith(".part") for n in left)


def test_corrupted_download_rejected(mnist_server):
    path = mnist_server.root / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-5])  # a truncated transfer of the official file
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz is corrupt"):
        load("mnist", mirror=mnist_server.url)


def test_sha256_checksums(tmp_path, server):
    (server.root / "f.bin").write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    assert download.fetch(server.url + "f.bin", tmp_path / "f.bin", "sha256:" + digest.upper()).read_bytes() == b"hello"
    with pytest.raises(DatasetError, match="bad checksum spec"):
        download.fetch(server.url + "f.bin", tmp_path / "g.bin", "crc32:1234")


def test_download_404(mnist_server):
    (mnist_server.root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"cannot download http://127\.0\.0\.1:\d+/t10k-labels-idx1-ubyte\.gz: "
                                           r"HTTP 404"):
        load("mnist", mirror=mnist_server.url)


def test_download_unreachable():
    with pytest.raises(DatasetError, match="cannot download http://127.0.0.1:1/"):
        load("mnist", mirror="http://127.0.0.1:1")


def test_download_unwritable_cache(tmp_path, monkeypatch, mnist_server):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LGN_DATA", str(tmp_path / "file" / "sub"))
    with pytest.raises(DatasetError, match="cannot write to"):
        load("mnist", mirror=mnist_server.url)


# --- CIFAR-10 binary ----------------------------------------------------------------------------

CIFAR_BATCHES = cifar.TRAIN_BATCHES + (cifar.TEST_BATCH,)


def cifar_batches(rng, sizes=(3, 2, 2, 1, 2, 4)) -> dict[str, bytes]:
    """Tiny CIFAR-10 batches: ``sizes`` records for data_batch_1..5 and test_batch."""
    return {name: _records(rng, n) for name, n in zip(CIFAR_BATCHES, sizes)}


def _records(rng, n) -> bytes:
    records = rng.integers(0, 256, (n, cifar.RECORD), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, n)
    return records.tobytes()


def write_cifar_tar(path: Path, batches: dict[str, bytes], meta: str | None = None, prefix="cifar-10-batches-bin/"):
    with tarfile.open(path, "w:gz") as tar:
        members = dict(batches) if meta is None else {**batches, cifar.META: meta.encode()}
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def check_cifar(ds, batches):
    train = np.concatenate([np.frombuffer(batches[b], np.uint8).reshape(-1, cifar.RECORD) for b in cifar.TRAIN_BATCHES])
    test = np.frombuffer(batches[cifar.TEST_BATCH], np.uint8).reshape(-1, cifar.RECORD)
    assert ds.x_train.shape == (len(train), 3072) and ds.x_test.shape == (len(test), 3072)
    assert np.array_equal(ds.x_train, train[:, 1:]) and np.array_equal(ds.y_train, train[:, 0])
    assert np.array_equal(ds.x_test, test[:, 1:]) and np.array_equal(ds.y_test, test[:, 0])
    assert ds.feature_dtype == "uint8" and ds.num_classes == 10 and ds.x_train.dtype == np.float32
    assert ds.encoding.method == "uniform" and ds.encoding.bits == 3 and ds.encoding.high == 255


def test_cifar_download(tmp_path, rng, server, monkeypatch):
    batches = cifar_batches(rng)
    write_cifar_tar(server.root / cifar.ARCHIVE, batches, meta="a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
    monkeypatch.setattr(cifar, "SOURCE", Remote(server.url, {cifar.ARCHIVE: md5(server.root / cifar.ARCHIVE)}))
    ds = load("cifar10")
    check_cifar(ds, batches)
    assert ds.class_names == tuple("abcdefghij")
    assert (tmp_path / "cache" / "cifar10" / cifar.ARCHIVE).is_file()
    load("cifar10")
    assert server.requests == [f"/{cifar.ARCHIVE}"]


def test_cifar_extracted_directory(tmp_path, rng):
    batches = cifar_batches(rng, (2,) * 6)
    directory = tmp_path / "d" / "cifar10" / cifar.MEMBER_DIR
    directory.mkdir(parents=True)
    for name, data in batches.items():
        (directory / name).write_bytes(data)
    ds = load("cifar10", tmp_path / "d", download=False)
    check_cifar(ds, batches)
    assert ds.class_names == cifar.CLASS_NAMES


def test_cifar_channel_major_features(rng):
    record = np.zeros(cifar.RECORD, np.uint8)
    record[0] = 7
    record[1 + 1024 + 32 * 2 + 5] = 200  # green, row 2, column 5
    x, y = cifar.parse_batch(record.tobytes(), "one")
    assert y.tolist() == [7] and x.reshape(3, 32, 32)[1, 2, 5] == 200 and x.sum() == 200


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b.update({"data_batch_3.bin": b["data_batch_3.bin"][:-1]}), r"data_batch_3\.bin: 6145 bytes is not a"),
    (lambda b: b.update({"test_batch.bin": b""}), r"test_batch\.bin: 0 bytes"),
    (lambda b: b.update({"data_batch_1.bin": b"\x0a" + b["data_batch_1.bin"][1:]}), "label 10 in record 0 out of range"),
    (lambda b: b.pop("data_batch_5.bin"), r"lacks cifar-10-batches-bin/data_batch_5\.bin"),
])
def test_cifar_rejects(tmp_path, rng, mutate, match):
    batches = cifar_batches(rng, (2,) * 6)
    mutate(batches)
    (tmp_path / "d").mkdir()
    write_cifar_tar(tmp_path / "d" / cifar.ARCHIVE, batches)
    with pytest.raises(DatasetError, match=match):
        load("cifar10", tmp_path / "d", download=False)


def test_cifar_rejects_bad_archives(tmp_path, rng):
    (tmp_path / "d").mkdir()
    archive = tmp_path / "d" / cifar.ARCHIVE
    batches = cifar_batches(rng, (2,) * 6)
    write_cifar_tar(archive, batches, meta="only\nthree\nnames\n")
    with pytest.raises(DatasetError, match="lists 3 class names, expected 10"):
        load("cifar10", tmp_path / "d", download=False)
    write_cifar_tar(archive, batches, prefix="cifar-10-batches-py/")  # the pickled layout
    with pytest.raises(DatasetError, match="not the CIFAR-10 binary version"):
        load("cifar10", tmp_path / "d", download=False)
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DatasetError, match=f"{archive}: corrupt or truncated archive"):
        load("cifar10", tmp_path / "d", download=False)


def test_cifar_missing(tmp_path):
    with pytest.raises(DatasetError, match=r"cifar10: cifar-10-binary\.tar\.gz or cifar-10-batches-bin/\*\.bin "
                                           r"not found in .*--data-dir"):
        load("cifar10", download=False)
