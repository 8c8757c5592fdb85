"""Damaged model files: every outcome is a valid model or the one clean error, within time and memory.

Valid files of each kind (netlist ``.npz``, text netlist, training checkpoint ``.pt``; with and
without a checksum) are mutated many ways: bit flips, overwrites, truncation, splices, zip
directory and local header fields, entries rebuilt with valid CRCs (damaged ``.npy`` headers,
header JSON fields, array dtypes, shapes and values), checkpoint configs, weights and training
state (saved with the checksum dropped, stale or recomputed, so that every check behind it is
reached), and text lines and tokens. One worker process (``fuzz_worker.py``) loads them all,
each under an address-space limit and a time limit, so a load that hangs, crashes or allocates
without bound is caught and reported with the mutation that caused it.
"""

from __future__ import annotations

import copy
import io
import json
import os
import select
import struct
import subprocess
import sys
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import random_netlist
from lgn.compile import formats
from lgn.compile.netlist import ThermometerEncoding

MEMORY_LIMIT = 2 << 30  # bytes a single load may add to the worker's address space
TIME_LIMIT = 10.0  # seconds a single load may take
WORKER = Path(__file__).with_name("fuzz_worker.py")

NASTY_NUMBERS = [0, 1, -1, 2, 7, 255, 256, 65535, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**62, 2**63 - 1,
                 2**63, 2**64, 10**18, 10**30, 10**400, -2**63, -10**30, 0.0, 0.5, 1.5, -0.0, 1e308,
                 float("inf"), float("-inf"), float("nan"), True, False, None, "", "7", "x" * 300,
                 [], [1, 2], {}, {"a": 1}]


# --------------------------------------------------------------------------------- the worker
class Worker:
    """One loader process; :meth:`load` kills and restarts it when a load outlives the limit."""

    def __init__(self, directory: Path):
        self.directory, self.proc = directory, None

    def start(self):
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        self.stderr = open(self.directory / "worker.stderr", "ab")
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(MEMORY_LIMIT)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)

    def load(self, path: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(f"{path}\n".encode())
        self.proc.stdin.flush()
        startup = 60 if not getattr(self, "warm", False) else 0  # the first load waits for imports
        ready, _, _ = select.select([self.proc.stdout], [], [], TIME_LIMIT + startup)
        line = self.proc.stdout.readline() if ready else b""
        if not line:  # nothing within the limit (a hang), or end of output (the worker died)
            self.stop()
            self.warm = False
            return {"outcome": "crash" if ready else "timeout", "seconds": TIME_LIMIT, "peak_bytes": 0}
        self.warm = True
        return json.loads(line)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.stderr.close()
            self.proc = None


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    worker = Worker(tmp_path_factory.mktemp("fuzz-worker"))
    yield worker
    worker.stop()


# ------------------------------------------------------------------------------ valid files
def npz_bytes(arrays: dict, compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npz_arrays(data: bytes) -> dict:
    """The raw ``.npy`` bytes of each entry of an npz archive, by entry name."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of ``entries`` (a dict or pairs of name, bytes[, method]) with valid CRCs."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        for name, raw, *method in (entries.items() if isinstance(entries, dict) else entries):
            archive.writestr(zipfile.ZipInfo(name), raw, compress_type=method[0] if method else compression)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def netlist():
    rng = np.random.default_rng(7)
    net = random_netlist(rng, num_inputs=10, num_gates=50, num_classes=3, outputs_per_class=3, encoding=True)
    enc = net.encoding
    encoding = ThermometerEncoding(enc.num_features, enc.feature, enc.threshold - 200.25, "int16")
    return net.replace(encoding=encoding, tau=2.5, meta={"dataset": "digits", "accuracy": 0.875})


def old_npz(net, compressed: bool) -> bytes:
    """The netlist as the release before checksums wrote it (``compressed``) or uncompressed."""
    header = {"format": "lgn-netlist", "version": 1, "num_inputs": net.num_inputs,
              "num_gates": net.num_gates, "num_classes": net.num_classes, "tau": net.tau,
              "encoding": net.encoding.to_json(), "meta": net.meta}
    return npz_bytes({"header": np.frombuffer(json.dumps(header).encode(), np.uint8), "op": net.op,
                      "a": net.a, "b": net.b, "outputs": net.outputs, "feature": net.encoding.feature,
                      "threshold": net.encoding.threshold}, compressed)


@pytest.fixture(scope="module")
def valid_files(netlist, tmp_path_factory):
    """Valid files of each kind: ``{kind: [bytes, ...]}`` (with and without a checksum)."""
    from sklearn.datasets import load_digits

    from lgn.data import Encoding
    from lgn.train import TrainConfig, train

    directory = tmp_path_factory.mktemp("fuzz-valid")
    formats.save(netlist, directory / "m.npz")
    formats.save_text(netlist, directory / "m.lgn")
    d = load_digits()
    x, y = d.data[:300].astype(np.float32), d.target[:300].astype(np.int64)
    data = SimpleNamespace(name="digits", x_train=x[:250], y_train=y[:250], x_test=x[250:], y_test=y[250:],
                           num_classes=10, feature_dtype="uint8", encoding=Encoding("uniform", 2, 0.0, 16.0))
    config = TrainConfig.for_dataset("digits", layers=2, width=30, tau=3.0, steps=3, batch_size=64,
                                     encoder_bits=2, init="residual", parametrization="table")
    train(config, data, out=directory / "m.pt", progress=False, log=lambda s: None)
    state = torch.load(directory / "m.pt", weights_only=True)
    del state["checksum"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return {
        "npz": [(directory / "m.npz").read_bytes(), old_npz(netlist, compressed=False)],
        "text": [(directory / "m.lgn").read_bytes(), netlist.to_text().encode()],
        "checkpoint": [(directory / "m.pt").read_bytes(), buffer.getvalue()],
    }


# -------------------------------------------------------------------------- byte mutations
def flip_bits(rng, data: bytes) -> bytes:
    buf = bytearray(data)
    for pos in rng.integers(0, len(buf), rng.integers(1, 9)):
        buf[pos] ^= 1 << int(rng.integers(8))
    return bytes(buf)


def overwrite(rng, data: bytes) -> bytes:
    buf = bytearray(data)
    pos, n = int(rng.integers(0, len(buf))), int(rng.integers(1, 9))
    fill = [rng.integers(0, 256, n, dtype=np.uint8).tobytes(), b"\x00" * n, b"\xff" * n, b"\x7f" * n]
    buf[pos: pos + n] = fill[rng.integers(len(fill))]
    return bytes(buf)


def truncate(rng, data: bytes) -> bytes:
    if rng.random() < 0.5:
        return data[: rng.integers(0, len(data))]
    i, j = sorted(rng.integers(0, len(data), 2))
    return data[:i] + data[j:]


def splice(rng, data: bytes) -> bytes:
    i, j = sorted(rng.integers(0, len(data), 2))
    k = int(rng.integers(0, len(data)))
    return data[:k] + data[i:j] + data[k:]


def insert(rng, data: bytes) -> bytes:
    k = int(rng.integers(0, len(data) + 1))
    return data[:k] + rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes() + data[k:]


BYTE_MUTATIONS = [flip_bits, overwrite, truncate, splice, insert]


# --------------------------------------------------------------------------- zip mutations
#: Offsets of the numeric fields of a central directory entry, a local header and the end record.
CD_FIELDS = {"flags": (8, "H"), "method": (10, "H"), "crc": (16, "I"), "csize": (20, "I"), "usize": (24, "I"),
             "name_len": (28, "H"), "extra_len": (30, "H"), "comment_len": (32, "H"), "offset": (42, "I")}
LOCAL_FIELDS = {"flags": (6, "H"), "method": (8, "H"), "crc": (14, "I"), "csize": (18, "I"),
                "usize": (22, "I"), "name_len": (26, "H"), "extra_len": (28, "H")}
EOCD_FIELDS = {"disk_entries": (8, "H"), "entries": (10, "H"), "cd_size": (12, "I"), "cd_offset": (16, "I"),
               "comment_len": (20, "H")}


def patch_field(rng, data: bytes, signature: bytes, fields: dict) -> bytes:
    starts = [i for i in range(len(data) - 4) if data.startswith(signature, i)]
    if not starts:
        return flip_bits(rng, data)
    start = starts[rng.integers(len(starts))]
    offset, fmt = list(fields.values())[rng.integers(len(fields))]
    width = struct.calcsize("<" + fmt)
    if start + offset + width > len(data):
        return flip_bits(rng, data)
    (old,) = struct.unpack_from("<" + fmt, data, start + offset)
    top = (1 << (8 * width)) - 1
    value = [0, 1, top, top - 1, old + 1, old - 1, old * 2, old // 2, int(rng.integers(0, top + 1)), 8, 12, 14,
             99, 1 << (8 * width - 1)][rng.integers(14)] & top
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, start + offset, value)
    return bytes(buf)


def zip_directory(rng, data: bytes) -> bytes:
    signature, fields = [(b"PK\x01\x02", CD_FIELDS), (b"PK\x03\x04", LOCAL_FIELDS),
                         (b"PK\x05\x06", EOCD_FIELDS)][rng.integers(3)]
    return patch_field(rng, data, signature, fields)


def zip_entries(rng, data: bytes) -> bytes:
    """Drop, duplicate, rename, reorder or recompress entries (the rebuilt zip has valid CRCs)."""
    entries = list(npz_arrays(data).items())
    kind = rng.integers(6)
    i = int(rng.integers(len(entries)))
    if kind == 0:
        del entries[i]
    elif kind == 1:
        entries.insert(int(rng.integers(len(entries))), entries[i])
    elif kind == 2:
        name, raw = entries[i]
        entries[i] = (name[:-1] + chr(ord(name[-1]) ^ 1) if rng.random() < 0.5 else name.upper(), raw)
    elif kind == 3:
        rng.shuffle(entries)
    elif kind == 4:  # an entry replaced by junk of any size
        entries[i] = (entries[i][0], rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8).tobytes())
    else:
        methods = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
        return rezip([(name, raw, methods[rng.integers(len(methods))]) for name, raw in entries])
    return rezip(entries, zipfile.ZIP_STORED)


def zip_entry_bytes(rng, data: bytes) -> bytes:
    """Damage the bytes of one entry and rebuild the zip with valid CRCs (reaches the parsers)."""
    entries = npz_arrays(data)
    name = list(entries)[rng.integers(len(entries))]
    entries[name] = BYTE_MUTATIONS[rng.integers(len(BYTE_MUTATIONS))](rng, entries[name])
    return rezip(entries, zipfile.ZIP_STORED)


# --------------------------------------------------------------------------- npz mutations
def npz_header_field(rng, data: bytes) -> bytes:
    entries = npz_arrays(data)
    header = json.loads(np.load(io.BytesIO(entries["header.npy"])).tobytes())
    keys = list(header) + ["extra"]
    key = keys[rng.integers(len(keys))]
    if key == "encoding" and header[key] and rng.random() < 0.6:
        sub = list(header[key])[rng.integers(len(header[key]))]
        header[key][sub] = NASTY_NUMBERS[rng.integers(len(NASTY_NUMBERS))] if rng.random() < 0.8 else "float64"
    elif key in header and rng.random() < 0.15:
        del header[key]
    elif key in ("num_gates", "num_inputs", "num_classes") and rng.random() < 0.4:
        header[key] += int(rng.integers(-3, 4))
    elif key == "meta" and rng.random() < 0.5:
        header[key] = "DEEP" if rng.random() < 0.5 else {"x": [1e308] * 50, "y": {"z": [None, True]}}
    else:
        header[key] = copy.deepcopy(NASTY_NUMBERS[rng.integers(len(NASTY_NUMBERS))])
    depth = int(rng.integers(1, 5000))
    text = json.dumps(header).replace('"DEEP"', "[" * depth + "]" * depth)  # nested deeply
    if rng.random() < 0.1:  # damaged JSON text
        cut = int(rng.integers(0, len(text)))
        text = text[:cut] + ["", "}", "\x00", "\udcff", "9" * 5000, "[" * 100000][rng.integers(6)] + text[cut:]
    raw = text.encode("utf-8", "surrogatepass")
    entries["header.npy"] = npy_bytes(np.frombuffer(raw, np.uint8))
    return rezip(entries)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npz_array(rng, data: bytes) -> bytes:
    """Replace one array by another dtype, shape or values (a valid .npy, valid CRCs)."""
    entries = npz_arrays(data)
    name = list(entries)[rng.integers(len(entries))]
    array = np.load(io.BytesIO(entries[name]))
    kind = rng.integers(5)
    if kind == 0:
        dtypes = ["float16", "float64", "int8", "uint8", "int32", "uint64", "bool", "complex64", "<U3", "S2",
                  ">i8", "datetime64[s]", "O", "i1,i1"]
        dtype = dtypes[rng.integers(len(dtypes))]
        try:
            array = array.astype(dtype)
        except (TypeError, ValueError):
            array = np.zeros(array.shape, dtype)
    elif kind == 1:
        shapes = [(0,), (array.size + 1,), (max(array.size - 1, 0),), (1, array.size), (array.size, 1),
                  (2, array.size)]
        shape = shapes[rng.integers(len(shapes))]
        array = np.resize(array, shape)
    elif kind == 2 and array.size:
        array = array.copy()
        values = [-1, 0, 1, 2**31, 2**62, 2**63 - 1, -2**63, 255, 16, array.size + 3, 10**9]
        index = rng.integers(0, array.size, rng.integers(1, 4))
        value = values[rng.integers(len(values))]
        if array.dtype.kind == "f":
            value = [np.nan, np.inf, -np.inf, 1e308, -0.0, float(value)][rng.integers(6)]
        array.reshape(-1)[index] = np.array(value).astype(array.dtype) if array.dtype.kind != "f" else value
    elif kind == 3:
        array = np.array(7, dtype=array.dtype)  # a 0-d array
    else:
        array = array[::-1].copy()
    entries[name] = npy_bytes(array)
    return rezip(entries)


def npy_header(rng, data: bytes) -> bytes:
    """Edit the text of one ``.npy`` header (shape, dtype, order, syntax), valid CRCs."""
    entries = npz_arrays(data)
    name = list(entries)[rng.integers(len(entries))]
    raw = entries[name]
    header_len = struct.unpack_from("<H", raw, 8)[0]
    header = raw[10: 10 + header_len].decode("latin1")
    body = raw[10 + header_len:]
    edits = ["'shape': (1099511627776,)", "'shape': (4611686018427387904, 4611686018427387904)",
             "'shape': (-1,)", "'shape': (-4, -2)", "'shape': ()", "'shape': (3.5,)", "'shape': ('a',)",
             "'descr': '|O'", "'descr': '<f8'", "'descr': '>i8'", "'descr': 'V8'", "'descr': 'zz'",
             "'descr': '<U1'", "'fortran_order': True", "'fortran_order': 7", "'shape': (0,)",
             "'shape': (" + "9" * 5000 + ",)", "'shape': ((((((((1,),),),),),),),)"]
    if rng.random() < 0.7:
        edit = edits[rng.integers(len(edits))]
        key = edit.split(":")[0]
        start = header.index(key)
        end = header.index(", '", start) if ", '" in header[start:] else header.index("}", start)
        header = header[:start] + edit + header[end:]
    else:  # damaged syntax
        cut = int(rng.integers(0, len(header)))
        header = header[:cut] + ["", "(", ")", "{", "\x00", "'", "#", "\\", "\xff", "lambda: 0"][rng.integers(10)] \
            + header[cut + int(rng.integers(0, 3)):]
    encoded = header.encode("latin1", "replace")
    entries[name] = raw[:8] + struct.pack("<H", len(encoded)) + encoded + body
    return rezip(entries)


NPZ_MUTATIONS = BYTE_MUTATIONS + [zip_directory, zip_entries, zip_entry_bytes, npz_header_field, npz_array,
                                  npy_header]


# -------------------------------------------------------------------------- text mutations
NASTY_TOKENS = ["-1", "0", "1", "99999999999999999999", "9" * 5000, "1.5", "nan", "inf", "-inf", "1e999",
                "g0", "g99999999999999999999", "x-1", "x99", "c2", "c-1", "|", "=", ">", "#", "AND", "FOO",
                "\u00e9", "\x00", "f-1", "f999999", "0x10", "1_000", "float64", "uint8", "{", "}", "[]",
                '{"a": 1}', "[" * 5000]


def text_lines(rng, data: bytes) -> bytes:
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    kind = rng.integers(5)
    i = int(rng.integers(len(lines)))
    if kind == 0:
        del lines[i]
    elif kind == 1:
        lines.insert(int(rng.integers(len(lines) + 1)), lines[i])
    elif kind == 2:
        j = int(rng.integers(len(lines)))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:
        lines[i] = lines[i][: rng.integers(0, len(lines[i]) + 1)]
    else:
        lines = [line for line in lines if not line.startswith("checksum")]  # reach the checks behind it
        return text_tokens(rng, "\n".join(lines).encode("utf-8", "surrogateescape"))
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def text_tokens(rng, data: bytes) -> bytes:
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    i = int(rng.integers(len(lines)))
    words = lines[i].split(" ")
    j = int(rng.integers(len(words)))
    if rng.random() < 0.5 and words[j].lstrip("-").replace(".", "", 1).isdigit():
        number = float(words[j]) if "." in words[j] else int(words[j])
        words[j] = repr(number + [1, -1, 2**31, 10**20, 0.5][rng.integers(5)])
    elif rng.random() < 0.5 and words[j][:1] in "cxgf" and words[j][1:].isdigit():
        words[j] = words[j][0] + str(int(words[j][1:]) + int(rng.integers(-3, 4)))
    else:
        words[j] = NASTY_TOKENS[rng.integers(len(NASTY_TOKENS))]
    lines[i] = " ".join(words)
    if rng.random() < 0.7:
        lines = [line for line in lines if not line.startswith("checksum")]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


TEXT_MUTATIONS = BYTE_MUTATIONS + [text_lines, text_tokens]


# -------------------------------------------------------------------- checkpoint mutations
def resave(rng, state) -> bytes:
    """``torch.save`` of a mutated state, its checksum dropped, left stale or recomputed."""
    from lgn.train.checkpoint import state_sha256

    if isinstance(state, dict):
        mode = rng.integers(3)
        if mode == 0:
            state.pop("checksum", None)
        elif mode == 1:
            try:
                state["checksum"] = f"sha256:{state_sha256(state)}"
            except (TypeError, ValueError):
                state.pop("checksum", None)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_state(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), weights_only=True)


def nasty(rng):
    return copy.deepcopy(NASTY_NUMBERS[rng.integers(len(NASTY_NUMBERS))])


def checkpoint_config(rng, data: bytes) -> bytes:
    state = load_state(data)
    config = state["config"]
    key = list(config)[rng.integers(len(config))]
    if key in ("layers", "width", "num_classes") and rng.random() < 0.6:
        # the case that hung: a config claiming far more than its weights hold
        config[key] = [3, 4, 60, 100, 10_000, 10**6, 10**9, 10**18, 2**26, 2**40, 0, -1][rng.integers(12)]
    elif rng.random() < 0.1:
        del config[key]
    elif rng.random() < 0.2:
        config[key] = ["gates", "table", "random", "unique", "residual", "uint8", "float64", "nope"][rng.integers(8)]
    else:
        config[key] = nasty(rng)
    return resave(rng, state)


def checkpoint_weights(rng, data: bytes) -> bytes:
    state = load_state(data)
    weights = state["model"]
    key = list(weights)[rng.integers(len(weights))]
    tensor = weights[key]
    kind = rng.integers(8)
    if kind == 0:
        del weights[key]
    elif kind == 1:
        weights[f"layers.{rng.integers(2, 5)}.weights"] = tensor.clone()
    elif kind == 2:
        shapes = [tensor.reshape(-1), tensor.reshape(1, -1), tensor[:-1], torch.cat([tensor, tensor]),
                  tensor.unsqueeze(0), tensor[..., :1] if tensor.dim() else tensor, torch.zeros(0)]
        weights[key] = shapes[rng.integers(len(shapes))].clone()
    elif kind == 3:
        dtypes = [torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.uint8, torch.bool,
                  torch.complex64, torch.int8]
        weights[key] = tensor.to(dtypes[rng.integers(len(dtypes))])
    elif kind == 4 and tensor.numel():
        tensor = tensor.clone()
        values = [-1, 10**9, 2**62, tensor.numel(), 64 * 4, 64 * 4 - 1, 30, 29]
        if tensor.is_floating_point():
            values += [float("nan"), float("inf"), float("-inf")]
        tensor.reshape(-1)[rng.integers(tensor.numel())] = values[rng.integers(len(values))]
        weights[key] = tensor
    elif kind == 5:
        weights[key] = nasty(rng)
    elif kind == 6:
        state["model"] = [list(weights.values()), nasty(rng), torch.zeros(3)][rng.integers(3)]
    else:
        weights[key] = tensor.t() if tensor.dim() == 2 else tensor.flip(0)  # non-contiguous or reordered
    return resave(rng, state)


def checkpoint_state(rng, data: bytes) -> bytes:
    state = load_state(data)
    keys = list(state) + ["extra"]
    key = keys[rng.integers(len(keys))]
    if rng.random() < 0.1:
        return resave(rng, [state, nasty(rng), torch.zeros(2)][rng.integers(3)])
    if key in state and rng.random() < 0.2:
        del state[key]
    elif key in ("perm", "rng") and rng.random() < 0.5:
        state[key] = [torch.zeros(3), torch.zeros(2, 2, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64),
                      torch.arange(5)][rng.integers(4)]
    elif key == "version":
        state[key] = [0, 2, 99, -1, 1.0, True, "1", 10**30][rng.integers(8)]
    elif key == "checksum":
        state[key] = ["sha256:" + "0" * 64, "sha256:", "md5:1", 7, None, "sha256:" + "g" * 64][rng.integers(6)]
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()
    else:
        state[key] = nasty(rng)
    return resave(rng, state)


def pickle_bytes(rng, data: bytes) -> bytes:
    """Flip bytes inside ``data.pkl`` (stored uncompressed; torch does not check the CRC)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("data.pkl"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    buf = bytearray(data)
    for pos in rng.integers(start, start + info.compress_size, rng.integers(1, 4)):
        buf[pos] = [int(rng.integers(256)), buf[pos] ^ 1, 0xFF, 0][rng.integers(4)]
    return bytes(buf)


def torch_zip_entries(rng, data: bytes) -> bytes:
    """Rebuild the checkpoint's zip (stored, valid CRCs) with one record damaged, dropped or resized."""
    entries = npz_arrays(data)
    name = list(entries)[rng.integers(len(entries))]
    if rng.random() < 0.3:
        del entries[name]
    else:
        entries[name] = BYTE_MUTATIONS[rng.integers(len(BYTE_MUTATIONS))](rng, entries[name] or b"\x00")
    return rezip(entries, zipfile.ZIP_STORED)


CHECKPOINT_MUTATIONS = BYTE_MUTATIONS + [zip_directory, pickle_bytes, torch_zip_entries, checkpoint_config,
                                         checkpoint_weights, checkpoint_state]
MUTATIONS = {"npz": NPZ_MUTATIONS, "text": TEXT_MUTATIONS, "checkpoint": CHECKPOINT_MUTATIONS}


# ----------------------------------------------------------------------------------- tests
def fuzz(worker, valid: list[bytes], mutations: list, count: int, seed: int, directory: Path) -> dict:
    """Load ``count`` mutated files; return the outcome counts, the slowest load, the peak memory
    and every bad outcome (with its mutation and a copy of the file)."""
    rng = np.random.default_rng(seed)
    path = directory / "fuzzed"
    outcomes, bad, slowest, peak = Counter(), [], 0.0, 0
    for i in range(count):
        mutate = mutations[i % len(mutations)]
        damaged = mutate(rng, valid[rng.integers(len(valid))])
        path.write_bytes(damaged)
        result = worker.load(path)
        outcomes[result["outcome"]] += 1
        slowest, peak = max(slowest, result["seconds"]), max(peak, result["peak_bytes"])
        if result["outcome"] not in ("loaded", "clean") or result["seconds"] > TIME_LIMIT:
            keep = directory / f"bad-{i}-{mutate.__name__}"
            keep.write_bytes(damaged)
            bad.append((mutate.__name__, str(keep), result))
    return {"outcomes": outcomes, "slowest": slowest, "peak": peak, "bad": bad}


def check_fuzz(report: dict, kind: str, count: int) -> None:
    summary = (f"{kind}: {count} mutations, outcomes {dict(report['outcomes'])}, slowest load "
               f"{report['slowest']:.3f} s, peak memory {report['peak'] / 2**20:.1f} MiB")
    print(summary)
    assert not report["bad"], summary + "\n" + "\n".join(map(str, report["bad"][:5]))
    assert report["slowest"] < TIME_LIMIT and report["peak"] < MEMORY_LIMIT, summary
    assert report["outcomes"]["clean"] > count // 4 and report["outcomes"]["loaded"] > 0, summary


@pytest.mark.parametrize("kind", ["npz", "text", "checkpoint"])
def test_fuzzed_files_load_or_fail_cleanly(worker, valid_files, kind, tmp_path):
    count = 2000
    report = fuzz(worker, valid_files[kind], MUTATIONS[kind], count, seed=11, directory=tmp_path)
    check_fuzz(report, kind, count)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["npz", "text", "checkpoint"])
def test_fuzzed_files_load_or_fail_cleanly_long(worker, valid_files, kind, tmp_path):
    count = 30000
    report = fuzz(worker, valid_files[kind], MUTATIONS[kind], count, seed=12345, directory=tmp_path)
    check_fuzz(report, kind, count)


def test_the_worker_reports_hangs_crashes_and_other_errors(worker, tmp_path, monkeypatch):
    """The harness itself can fail: a load that raises something else, hangs or dies is reported."""
    probe = Worker(tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "TIME_LIMIT", 2.0)
    script = tmp_path / "sitecustomize.py"
    script.write_text(
        "import lgn.io, os, time\n"
        "def load(path):\n"
        "    name = os.path.basename(str(path))\n"
        "    if name == 'hang': time.sleep(30)\n"
        "    if name == 'crash': os._exit(3)\n"
        "    if name == 'alloc': bytearray(3 << 30)\n"
        "    raise KeyError(name)\n"
        "lgn.io.load_model_file = load\n"
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    try:
        outcomes = [probe.load(tmp_path / name)["outcome"] for name in ("other", "alloc", "hang", "crash", "x")]
    finally:
        probe.stop()
    assert outcomes == ["other", "other", "timeout", "crash", "other"]


@pytest.mark.parametrize("kind", ["npz", "text", "checkpoint"])
def test_single_byte_flips_never_load_a_different_model(worker, valid_files, kind, tmp_path):
    """Issue 17: a flipped byte anywhere in a file with a checksum fails with the clean error, or,
    where it hits bytes the model does not depend on, loads the identical netlist."""
    original = valid_files[kind][0]
    path = tmp_path / "flipped"
    path.write_bytes(original)
    reference = worker.load(path)
    assert reference["outcome"] == "loaded" and reference["verified"], reference
    rng = np.random.default_rng(17)
    positions = rng.choice(len(original), size=min(600, len(original)), replace=False)
    outcomes = Counter()
    for position in positions:
        damaged = bytearray(original)
        damaged[position] ^= int(rng.integers(1, 256))
        path.write_bytes(damaged)
        result = worker.load(path)
        outcomes[result["outcome"]] += 1
        assert result["outcome"] in ("clean", "loaded"), (int(position), result)
        if result["outcome"] == "loaded":
            assert result["content"] == reference["content"], f"byte {position}: a different model loaded"
    print(f"{kind}: {len(positions)} single-byte flips of {len(original)} bytes: {dict(outcomes)}")
    assert len(positions) >= 500 and outcomes["clean"] >= len(positions) // 2
