"""Netlist files: lgn's own safe ``.npz`` model file, and BLIF and AIGER for logic synthesis.

The model file (:func:`save`, :func:`load`) is a numpy ``.npz`` archive, loaded without pickle,
holding the arrays ``op`` (uint8), ``a``, ``b``, ``outputs`` (int64), for a netlist with an encoding
also ``feature`` (int64) and ``threshold`` (float64), and ``header``: UTF-8 JSON bytes (uint8)
``{"format": "lgn-netlist", "version": 1, "num_inputs", "num_gates", "num_classes", "tau",
"encoding": null | {"num_features", "dtype"}, "meta"}``.

BLIF and AIGER (:func:`write_blif`, :func:`write_aiger`) carry the gates only; the popcount
is left to the reader. Their ports are, in this order:

- primary input ``i`` is input bit ``i`` of the netlist, named ``x<i>``;
- primary output ``k`` is ``netlist.outputs[k]``, named ``class<c>_<j>`` with
  ``c, j = divmod(k, netlist.outputs_per_class)``: output bit ``j`` of class ``c``.
  The score of class ``c`` is the number of its outputs that are 1 (divided by ``tau``).

An output that is a constant or an input bit is a primary output all the same (BLIF buffers it;
AIGER lists its literal). ``tau``, the class count and the encoding's presence go in comments.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lgn.files import write_atomic
from lgn.nn import gates

from .netlist import FEATURE_DTYPES, NODE_DTYPE, Netlist, NetlistError, ThermometerEncoding

__all__ = [
    "NetlistFormatError", "FORMAT_NAME", "FORMAT_VERSION", "save", "load",
    "to_blif", "write_blif", "to_aiger", "write_aiger", "output_names",
]

FORMAT_NAME = "lgn-netlist"
FORMAT_VERSION = 1

# What reading a damaged archive can raise, from zipfile, zlib, numpy's .npy reader and json.
_READ_ERRORS = (
    OSError, EOFError, ValueError, KeyError, IndexError, TypeError, OverflowError, MemoryError,
    RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error,
)


class NetlistFormatError(NetlistError):
    """A netlist file cannot be read: the message names the file and the problem."""


# ---------------------------------------------------------------------------- the model file
def save(netlist: Netlist, path) -> None:
    """Write ``netlist`` to ``path`` as an lgn ``.npz`` model file, atomically.

    The file is written whole to a temporary file in the same directory and renamed onto
    ``path``, so a reader never sees a partial file. ``path`` is used as given (no suffix added).
    """
    enc = netlist.encoding
    header = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "num_inputs": netlist.num_inputs, "num_gates": netlist.num_gates,
        "num_classes": netlist.num_classes, "tau": netlist.tau,
        "encoding": None if enc is None else enc.to_json(), "meta": netlist.meta,
    }
    arrays = {
        "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        "op": netlist.op, "a": netlist.a, "b": netlist.b, "outputs": netlist.outputs,
    }
    if enc is not None:
        arrays.update(feature=enc.feature, threshold=enc.threshold)
    write_atomic(path, lambda file: np.savez_compressed(file, **arrays))


def load(path) -> Netlist:
    """Read an lgn model file written by :func:`save` and return the validated netlist.

    Raises
    ------
    NetlistFormatError
        If the file is missing, not an lgn model file, from a newer format version, truncated,
        corrupted, or holds an invalid netlist; the one-line message names the file and problem.
    """
    def fail(problem: str):
        return NetlistFormatError(f"{path}: {problem}")

    try:
        # Open the file here: numpy leaks its own handle when the zip directory is damaged.
        file = open(path, "rb")
    except FileNotFoundError:
        raise fail("no such file") from None
    except OSError as exc:
        raise fail(f"cannot read ({exc.strerror or exc})") from None
    try:
        with file:
            magic = file.read(6)
            if magic == b"\x93NUMPY":
                raise fail("is a single .npy array, not an lgn model file (.npz)")
            if not magic.startswith(b"PK\x03\x04"):
                raise fail("not an lgn model file (not an .npz archive)" if magic else "empty file")
            file.seek(0)
            with np.load(file, allow_pickle=False) as archive:
                if "header" not in archive.files:
                    entries = sorted(archive.files)[:8]
                    raise fail(f"not an lgn model file (no 'header' entry; entries: {entries})")
                header = _read_header(_array(archive, "header", fail), fail)
                names = ["op", "a", "b", "outputs"]
                if header["encoding"] is not None:
                    names += ["feature", "threshold"]
                missing = [name for name in names if name not in archive.files]
                if missing:
                    raise fail(f"missing array {missing[0]!r}")
                arrays = {name: _array(archive, name, fail) for name in names}
    except NetlistFormatError:
        raise
    except _READ_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise fail(f"corrupted or not an lgn model file ({type(exc).__name__}: {detail})") from None
    return _build(header, arrays, fail)


def _array(archive, name: str, fail) -> np.ndarray:
    value = archive[name]  # numpy hands back raw bytes for an entry that is not a .npy file
    if not isinstance(value, np.ndarray):
        raise fail(f"entry {name!r} is not a numpy array")
    return value


def _read_header(raw: np.ndarray, fail) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise fail(f"header must be 1-d uint8 bytes, got {raw.dtype} of shape {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as exc:
        raise fail(f"header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise fail(f"not an lgn model file (header format is not {FORMAT_NAME!r})")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail(f"header: bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise fail(f"format version {version} is newer than this lgn reads ({FORMAT_VERSION}); "
                   "upgrade lgn")
    fields = {"num_inputs": int, "num_gates": int, "num_classes": int, "tau": (int, float),
              "meta": dict, "encoding": (dict, type(None))}
    for name, kind in fields.items():
        value = header.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(f"header: field {name!r} is missing or has the wrong type ({value!r})")
    enc = header["encoding"]
    if enc is not None and not (isinstance(enc.get("num_features"), int)
                                and enc.get("dtype") in FEATURE_DTYPES):
        raise fail(f"header: bad encoding {enc!r}")
    return header


def _build(header: dict, arrays: dict, fail) -> Netlist:
    kinds = {"op": "u", "a": "iu", "b": "iu", "outputs": "iu", "feature": "iu", "threshold": "f"}
    for name, array in arrays.items():
        if array.ndim != 1 or array.dtype.kind not in kinds[name]:
            raise fail(f"array {name!r} has dtype {array.dtype} and shape {array.shape}, expected 1-d "
                       + ("unsigned" if name == "op" else "integer" if kinds[name] != "f" else "float"))
    if arrays["op"].shape[0] != header["num_gates"]:
        raise fail(f"header says {header['num_gates']} gates, array 'op' has {arrays['op'].shape[0]}")
    try:
        encoding = None
        if header["encoding"] is not None:
            encoding = ThermometerEncoding(
                num_features=header["encoding"]["num_features"], feature=arrays["feature"],
                threshold=arrays["threshold"], dtype=header["encoding"]["dtype"],
            )
        return Netlist(
            num_inputs=header["num_inputs"], op=arrays["op"], a=arrays["a"].astype(NODE_DTYPE),
            b=arrays["b"].astype(NODE_DTYPE), outputs=arrays["outputs"].astype(NODE_DTYPE),
            num_classes=header["num_classes"], tau=header["tau"], encoding=encoding,
            meta=header["meta"],
        )
    except NetlistError as exc:
        raise fail(f"invalid netlist: {exc}") from None


# ----------------------------------------------------------------------------------- ports
def output_names(netlist: Netlist) -> list[str]:
    """Names of the BLIF/AIGER primary outputs: ``class<c>_<j>`` for ``netlist.outputs[k]``."""
    k = netlist.outputs_per_class
    return [f"class{i // k}_{i % k}" for i in range(netlist.outputs.shape[0])]


def _comments(netlist: Netlist) -> list[str]:
    return [
        f"lgn netlist: {netlist.num_inputs} inputs, {netlist.num_gates} gates, "
        f"{netlist.num_classes} classes x {netlist.outputs_per_class} outputs, tau {netlist.tau!r}",
        "score of class c = number of outputs class<c>_* that are 1, divided by tau",
        "inputs are the encoded input bits" if netlist.encoding else "inputs are raw bits",
    ]


# ------------------------------------------------------------------------------------ BLIF
def to_blif(netlist: Netlist, model: str = "lgn") -> str:
    """Return ``netlist`` as BLIF text: one ``.names`` cover per gate, one buffer per output.

    Node names: ``x<i>`` input bits, ``n<id>`` gates, ``c0``/``c1`` constants (emitted when used).
    """
    def node(n: int) -> str:
        return netlist.node_name(n) if n < netlist.first_gate else f"n{n}"

    rows = {op: [f"{x}{y} 1" for x in (0, 1) for y in (0, 1) if gates.gate_value(op, x, y)]
            for op in range(gates.NUM_GATES)}
    outputs = output_names(netlist)
    lines = [f"# {text}" for text in _comments(netlist)]
    lines.append(f".model {model}")
    if netlist.num_inputs:
        lines.append(".inputs " + " ".join(f"x{i}" for i in range(netlist.num_inputs)))
    lines.append(".outputs " + " ".join(outputs))
    used = set(netlist.a.tolist()) | set(netlist.b.tolist()) | set(netlist.outputs.tolist())
    if 0 in used:
        lines.append(".names c0")
    if 1 in used:
        lines += [".names c1", "1"]
    first = netlist.first_gate
    for g, (op, x, y) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        if op in (gates.FALSE, gates.TRUE):  # a constant cover with inputs reads as 'x' in yosys
            lines.append(f".names n{first + g}")
        else:
            lines.append(f".names {node(x)} {node(y)} n{first + g}")
        lines += ["1"] if op == gates.TRUE else rows[op]
    for out, source in zip(outputs, netlist.outputs.tolist()):
        lines += [f".names {node(source)} {out}", "1 1"]
    lines.append(".end")
    return "\n".join(lines) + "\n"


def write_blif(netlist: Netlist, path, model: str = "lgn") -> None:
    """Write :func:`to_blif` of ``netlist`` to ``path`` atomically."""
    text = to_blif(netlist, model).encode("utf-8")
    write_atomic(path, lambda file: file.write(text))


# ----------------------------------------------------------------------------------- AIGER
def _and_graph(netlist: Netlist):
    """Decompose the gates into two-input ANDs with negated edges.

    Returns ``(node_literal, ands)``: the AIGER literal of every node id, and the AND gates as a
    list of ``(lhs, rhs0, rhs1)`` with ``rhs0 >= rhs1``, in definition order.
    """
    num_inputs = netlist.num_inputs
    literal = [0, 1] + [2 * (i + 1) for i in range(num_inputs)]
    ands: list[tuple[int, int, int]] = []

    def conj(x: int, y: int) -> int:
        lhs = 2 * (num_inputs + len(ands) + 1)
        ands.append((lhs, max(x, y), min(x, y)))
        return lhs

    for op, a, b in zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist()):
        x, y = literal[a], literal[b]
        if op == gates.FALSE or op == gates.TRUE:
            out = op & 1
        elif op in (gates.A, gates.NOT_A):
            out = x ^ (op == gates.NOT_A)
        elif op in (gates.B, gates.NOT_B):
            out = y ^ (op == gates.NOT_B)
        elif op in (gates.XOR, gates.XNOR):  # xor = ~(~(a & ~b) & ~(~a & b))
            out = conj(conj(x, y ^ 1) ^ 1, conj(x ^ 1, y) ^ 1) ^ (op == gates.XOR)
        else:  # one AND of possibly negated operands, possibly negated: read off the truth table
            t = gates.TRUTH_TABLE[op]
            if t.sum() == 1:  # a single minterm (a == p) & (b == q)
                p, q = divmod(int(np.flatnonzero(t)[0]), 2)
                out = conj(x ^ (p ^ 1), y ^ (q ^ 1))
            else:  # a single maxterm: negation of the one zero's minterm
                p, q = divmod(int(np.flatnonzero(t == 0)[0]), 2)
                out = conj(x ^ (p ^ 1), y ^ (q ^ 1)) ^ 1
        literal.append(out)
    return literal, ands


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def to_aiger(netlist: Netlist, binary: bool = True) -> bytes:
    """Return ``netlist`` as an AIGER 1.9 file without latches: binary ``aig`` or ASCII ``aag``.

    Every gate becomes 0, 1 or 3 AND nodes (XOR and XNOR take three) with negated edges; the
    symbol table names the inputs ``x<i>`` and the outputs ``class<c>_<j>``.
    """
    literal, ands = _and_graph(netlist)
    num_inputs = netlist.num_inputs
    outputs = [literal[n] for n in netlist.outputs.tolist()]
    kind = "aig" if binary else "aag"
    header = f"{kind} {num_inputs + len(ands)} {num_inputs} 0 {len(outputs)} {len(ands)}\n"
    parts = [header.encode("ascii")]
    if not binary:
        parts.append("".join(f"{2 * (i + 1)}\n" for i in range(num_inputs)).encode("ascii"))
    parts.append("".join(f"{lit}\n" for lit in outputs).encode("ascii"))
    if binary:
        parts.append(b"".join(_varint(lhs - r0) + _varint(r0 - r1) for lhs, r0, r1 in ands))
    else:
        parts.append("".join(f"{lhs} {r0} {r1}\n" for lhs, r0, r1 in ands).encode("ascii"))
    symbols = [f"i{i} x{i}" for i in range(num_inputs)]
    symbols += [f"o{k} {name}" for k, name in enumerate(output_names(netlist))]
    parts.append(("\n".join(symbols + ["c"] + _comments(netlist)) + "\n").encode("ascii"))
    return b"".join(parts)


def write_aiger(netlist: Netlist, path, binary: bool | None = None) -> None:
    """Write :func:`to_aiger` of ``netlist`` to ``path`` atomically.

    ``binary=None`` picks ASCII for a ``.aag`` suffix and binary otherwise.
    """
    if binary is None:
        binary = Path(path).suffix != ".aag"
    data = to_aiger(netlist, binary)
    write_atomic(path, lambda file: file.write(data))
