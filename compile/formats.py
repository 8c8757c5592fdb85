"""Netlist files: lgn's own safe model files (``.npz`` and text), and BLIF and AIGER for synthesis.

The model file (:func:`save`, :func:`load`) is a numpy ``.npz`` archive, read without pickle,
holding the arrays ``op`` (uint8), ``a``, ``b``, ``outputs`` (int64), for a netlist with an encoding
also ``feature`` (int64) and ``threshold`` (float64), and ``header``: UTF-8 JSON bytes (uint8)
``{"format": "lgn-netlist", "version": 1, "num_inputs", "num_gates", "num_classes", "tau",
"encoding": null | {"num_features", "dtype"}, "meta", "checksum": "sha256:HEX"}``.
The text model file (:func:`save_text`) is :meth:`Netlist.to_text` with a last ``checksum`` line.
:func:`load` reads either kind, told apart by content.

The checksum is :attr:`Netlist.content_sha256` (the model and its meta); the loader recomputes it
from what it read and rejects a file whose checksum differs (``PATH: checksum mismatch, the file is
damaged``). Files written before lgn recorded checksums load with a logged note. :func:`digest`
is the model's own hash, the same whichever file (or checkpoint) the netlist came from.

BLIF and AIGER (:func:`write_blif`, :func:`write_aiger`) carry the gates only; the popcount
is left to the reader. Their ports are, in this order:

- primary input ``i`` is input bit ``i`` of the netlist, named ``x<i>``;
- primary output ``k`` is ``netlist.outputs[k]``, named ``class<c>_<j>`` with
  ``c, j = divmod(k, netlist.outputs_per_class)``: output bit ``j`` of class ``c``.
  The score of class ``c`` is the number of its outputs that are 1 (divided by ``tau``).

An output that is a constant or an input bit is a primary output all the same (BLIF buffers it;
AIGER lists its literal). ``tau``, the class count and the encoding's presence go in comments.
A k-input LUT node is one BLIF ``.names`` over its (distinct) fan-ins whose cover lists the rows
of its truth table that are 1; AIGER writes the two-input gates of :func:`lgn.compile.luts.decompose`.
Class score offsets are refused by both (scores are output counts there): see
:func:`lgn.compile.luts.materialize_offsets`.
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgn.files import (InputFileError, checked_zip, first_line, model_file_kind, note_unverified,
                       read_bytes, write_atomic)
from lgn.compile import gates

from .luts import decompose, require_no_offsets, sort_fanins
from .netlist import (FEATURE_DTYPES, MAX_FEATURES, MAX_INPUTS, MAX_META_BYTES, NODE_DTYPE, Netlist,
                      NetlistError, ThermometerEncoding, parse_text)

__all__ = [
    "NetlistFormatError", "FORMAT_NAME", "FORMAT_VERSION", "NetlistFile", "save", "save_text",
    "load", "load_file", "digest", "to_blif", "write_blif", "to_aiger", "write_aiger", "output_names",
]

FORMAT_NAME = "lgn-netlist"
#: Version 2 adds the optional entries lut_fanin (flattened (L, 6)), lut_arity, lut_table and
#: offsets; files without LUTs or offsets are still written as version 1.
FORMAT_VERSION = 2
#: The arrays of a model file and the dtype kinds each may have.
_ARRAY_KINDS = {"op": "u", "a": "iu", "b": "iu", "outputs": "iu", "feature": "iu", "threshold": "f",
                "lut_fanin": "iu", "lut_arity": "u", "lut_table": "u", "offsets": "iu"}
_CHECKSUM = re.compile(r"sha256:([0-9a-f]{64})")
#: Longest .npy header accepted (numpy writes well under 200 bytes for these arrays).
_MAX_NPY_HEADER = 10000
#: Sane limits: the JSON header (meta is a small dict) and the number of outputs.
MAX_HEADER_BYTES = MAX_META_BYTES + 4096
_MAX_OUTPUTS = 1 << 24


class NetlistFormatError(NetlistError):
    """A netlist file cannot be read: the message names the file and the problem."""


@dataclass(frozen=True)
class NetlistFile:
    """What :func:`load_file` read: the netlist, the kind of file, and its verified checksum."""

    netlist: Netlist
    kind: str  # 'npz' or 'text'
    checksum: str | None  # hex SHA-256 the file carried and matched; None: the file had none


def digest(netlist: Netlist) -> str:
    """The model's SHA-256 (hex): :attr:`Netlist.sha256`, which leaves out ``meta``.

    The same network has the same digest whether it was read from a ``.npz`` file, a text file or
    lowered from a checkpoint; pin it to identify the model in firmware or a bitstream.
    """
    return netlist.sha256


# ---------------------------------------------------------------------------- the model file
def save(netlist: Netlist, path) -> None:
    """Write ``netlist`` to ``path`` as an lgn ``.npz`` model file with its checksum, atomically.

    The file is written whole to a temporary file in the same directory and renamed onto
    ``path``, so a reader never sees a partial file. ``path`` is used as given (no suffix added).
    """
    enc = netlist.encoding
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION if netlist.num_luts or netlist.offsets.any() else 1,
        "num_inputs": netlist.num_inputs, "num_gates": netlist.num_gates,
        "num_classes": netlist.num_classes, "tau": netlist.tau,
        "encoding": None if enc is None else enc.to_json(), "meta": netlist.meta,
        "checksum": f"sha256:{netlist.content_sha256}",
    }
    raw_header = json.dumps(header).encode("utf-8")
    if len(raw_header) > MAX_HEADER_BYTES:
        raise NetlistFormatError(f"{path}: meta is too large ({len(raw_header)} bytes of JSON, "
                                 f"at most {MAX_HEADER_BYTES})")
    arrays = {
        "header": np.frombuffer(raw_header, dtype=np.uint8),
        "op": netlist.op, "a": netlist.a, "b": netlist.b, "outputs": netlist.outputs,
    }
    if enc is not None:
        arrays.update(feature=enc.feature, threshold=enc.threshold)
    if netlist.num_luts:  # entries absent in gate-only files, which older readers load as before
        arrays.update(lut_fanin=netlist.lut_fanin.ravel(), lut_arity=netlist.lut_arity,
                      lut_table=netlist.lut_table)
    if netlist.offsets.any():
        arrays.update(offsets=netlist.offsets)
    write_atomic(path, lambda file: np.savez_compressed(file, **arrays))


def save_text(netlist: Netlist, path) -> None:
    """Write ``netlist`` to ``path`` as a text model file (:meth:`Netlist.to_text` with its checksum).

    Written atomically, like :func:`save`. After editing such a file by hand, delete its
    ``checksum`` line (it then loads with a note instead of failing the check).
    """
    text = netlist.to_text(checksum=True).encode("utf-8")
    write_atomic(path, lambda file: file.write(text))


def load(path, data: bytes | None = None) -> Netlist:
    """Read an lgn netlist file (``.npz`` or text, told apart by content); see :func:`load_file`."""
    return load_file(path, data).netlist


def load_file(path, data: bytes | None = None) -> NetlistFile:
    """Read an lgn netlist file written by :func:`save` or :func:`save_text`, verifying its checksum.

    ``data`` may pass the file's bytes when they were read already (the file is then not opened).
    Every count and size in the file is checked against the arrays actually present before
    anything is allocated; a file without a checksum (written by an older lgn) loads with a note.

    Raises
    ------
    NetlistFormatError
        If the file is missing, not an lgn netlist file, from a newer format version, truncated,
        damaged (checksum mismatch), or holds an invalid netlist; the one-line message names the
        file and the problem.
    """
    def fail(problem: str):
        return NetlistFormatError(f"{path}: {problem}")

    try:
        data = read_bytes(path) if data is None else data
    except InputFileError as exc:
        raise fail(str(exc)) from None
    kind = model_file_kind(data)
    if kind == "text":
        result = _load_text(data, fail)
    elif kind == "npz":
        result = _load_npz(data, fail)
    elif kind == "checkpoint":
        raise fail("is a training checkpoint, not a netlist file (lgn.io.load_model_file reads both)")
    elif data.startswith(b"\x93NUMPY"):
        raise fail("is a single .npy array, not an lgn model file (.npz)")
    else:
        raise fail("not an lgn model file (neither an .npz archive nor a text netlist)" if data
                   else "empty file")
    if result.checksum is None:
        note_unverified(path, "netlist file")
    return result


def _load_text(data: bytes, fail) -> NetlistFile:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"text netlist is not UTF-8 (byte {exc.start})") from None
    try:
        netlist, checksum = parse_text(text)
    except NetlistError as exc:
        raise fail(str(exc)) from None
    return NetlistFile(netlist, "text", checksum)


def _load_npz(data: bytes, fail) -> NetlistFile:
    try:
        archive = checked_zip(data)
    except InputFileError as exc:
        raise fail(str(exc)) from None
    entries = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    if "header" not in entries:
        raise fail(f"not an lgn model file (no 'header' entry; entries: {sorted(entries)[:8]})")
    if entries["header"].file_size > MAX_HEADER_BYTES + _MAX_NPY_HEADER:
        raise fail(f"header entry declares {entries['header'].file_size} bytes, more than a header holds")
    header = _read_header(_read_entry(archive, entries["header"], fail), fail)
    names = ["op", "a", "b", "outputs"] + (["feature", "threshold"] if header["encoding"] else [])
    names += [name for name in ("lut_fanin", "lut_arity", "lut_table", "offsets") if name in entries]
    missing = [name for name in names if name not in entries]
    if missing:
        raise fail(f"missing array {missing[0]!r}")
    num_gates, num_inputs = header["num_gates"], header["num_inputs"]
    lengths = {"op": num_gates, "a": num_gates, "b": num_gates, "feature": num_inputs,
               "threshold": num_inputs, "outputs": _MAX_OUTPUTS, "lut_fanin": 6 * num_gates,
               "lut_arity": num_gates, "lut_table": num_gates, "offsets": header["num_classes"]}
    for name in names:  # before decompressing: at most 8 bytes per entry the header implies
        declared = entries[name].file_size
        if declared > 8 * lengths[name] + _MAX_NPY_HEADER + 16:
            raise fail(f"entry {name!r} declares {declared} bytes, more than {lengths[name]} "
                       "entries need (the header and the arrays disagree)")
    arrays = {name: _read_entry(archive, entries[name], fail) for name in names}
    netlist = _build(header, arrays, fail)
    checksum = header.get("checksum")
    if checksum is not None and checksum != netlist.content_sha256:
        raise fail("checksum mismatch, the file is damaged")
    return NetlistFile(netlist, "npz", checksum)


def _read_entry(archive, info, fail) -> np.ndarray:
    """The array in one ``.npy`` entry, its shape checked against the bytes present before use."""
    name = info.filename.removesuffix(".npy")
    try:
        raw = archive.read(info)  # checks the entry's CRC; its size was checked by checked_zip
    except Exception as exc:  # zipfile and zlib raise many types for damaged data
        raise fail(f"corrupted entry {name!r} ({first_line(exc)})") from None
    if not raw.startswith(b"\x93NUMPY"):
        raise fail(f"entry {name!r} is not a numpy array")
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        with warnings.catch_warnings():  # a damaged header is an error here, never a warning
            warnings.simplefilter("ignore")
            shape, fortran_order, dtype = read_header(stream, max_header_size=_MAX_NPY_HEADER)
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError...
        raise fail(f"entry {name!r} has a damaged array header ({first_line(exc)})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise fail(f"entry {name!r} has dtype {dtype}, not a plain number type")
    if any(dim < 0 for dim in shape):
        raise fail(f"entry {name!r} declares a negative shape {shape}")
    count = math.prod(shape)
    present = len(raw) - stream.tell()
    if count * dtype.itemsize != present:
        raise fail(f"entry {name!r} declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes) "
                   f"but holds {present} bytes")
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


def _read_header(raw: np.ndarray, fail) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise fail(f"header must be 1-d uint8 bytes, got {raw.dtype} of shape {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise fail(f"header is not UTF-8 JSON ({first_line(exc, 100)})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise fail(f"not an lgn model file (header format is not {FORMAT_NAME!r})")
    version = header.get("version")
    if not _is_int(version) or version < 1:
        raise fail(f"header: bad format version {_short(version)}")
    if version > FORMAT_VERSION:
        raise fail(f"format version {version} is newer than this lgn reads ({FORMAT_VERSION}); "
                   "upgrade lgn")
    counts = {"num_inputs": (0, MAX_INPUTS), "num_gates": (0, None), "num_classes": (1, None)}
    for name, (low, high) in counts.items():
        value = header.get(name)
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise fail(f"header: field {name!r} is missing or not an integer in {low}.."
                       f"{high if high is not None else ''} ({_short(value)})")
    tau = header.get("tau")
    if not _is_number(tau) or not math.isfinite(tau) or tau <= 0:
        raise fail(f"header: field 'tau' is missing or not a positive finite number ({_short(tau)})")
    if "encoding" not in header:
        raise fail("header: field 'encoding' is missing")
    if not isinstance(header.get("meta"), dict):
        raise fail(f"header: field 'meta' is missing or not an object ({_short(header.get('meta'))})")
    enc = header.get("encoding")
    if enc is not None and not (isinstance(enc, dict) and _is_int(enc.get("num_features"))
                                and 1 <= enc["num_features"] <= MAX_FEATURES
                                and enc.get("dtype") in FEATURE_DTYPES):
        raise fail(f"header: bad encoding {_short(enc)}")
    checksum = header.get("checksum")
    if checksum is not None:
        match = _CHECKSUM.fullmatch(checksum) if isinstance(checksum, str) else None
        if match is None:
            raise fail(f"header: bad checksum field {_short(checksum)}")
        header["checksum"] = match[1]
    return header


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A JSON number that is a finite-or-not float without overflow (huge ints are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _build(header: dict, arrays: dict, fail) -> Netlist:
    for name, array in arrays.items():
        if array.ndim != 1 or array.dtype.kind not in _ARRAY_KINDS[name]:
            expected = {"u": "unsigned", "iu": "integer", "f": "float"}[_ARRAY_KINDS[name]]
            raise fail(f"array {name!r} has dtype {array.dtype} and shape {array.shape}, "
                       f"expected 1-d {expected}")
    if arrays["op"].shape[0] != header["num_gates"]:
        raise fail(f"header says {header['num_gates']} gates, array 'op' has {arrays['op'].shape[0]}")
    if header["num_classes"] > arrays["outputs"].shape[0]:
        raise fail(f"header says {header['num_classes']} classes, array 'outputs' has "
                   f"{arrays['outputs'].shape[0]} entries")
    for name in ("a", "b", "outputs", "feature", "lut_fanin", "offsets"):  # node ids and feature indices fit int64
        array = arrays.get(name)
        unsigned = array is not None and array.dtype.kind == "u" and array.size
        if unsigned and array.max() > np.iinfo(np.int64).max:
            raise fail(f"array {name!r} holds {array.max()}, beyond any node or feature")
    try:
        encoding = None
        if header["encoding"] is not None:
            encoding = ThermometerEncoding(
                num_features=header["encoding"]["num_features"], feature=arrays["feature"],
                threshold=arrays["threshold"], dtype=header["encoding"]["dtype"],
            )
        return Netlist(
            num_inputs=header["num_inputs"], op=arrays["op"], a=arrays["a"].astype(NODE_DTYPE, copy=False),
            b=arrays["b"].astype(NODE_DTYPE, copy=False),
            outputs=arrays["outputs"].astype(NODE_DTYPE, copy=False),
            num_classes=header["num_classes"], tau=header["tau"], encoding=encoding,
            meta=header["meta"],
            lut_fanin=arrays.get("lut_fanin", np.zeros(0, np.int64)).astype(NODE_DTYPE).reshape(-1, 6),
            lut_arity=arrays.get("lut_arity", np.zeros(0, np.uint8)),
            lut_table=arrays.get("lut_table", np.zeros(0, np.uint64)),
            offsets=arrays.get("offsets"),
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
    """Return ``netlist`` as BLIF text: one ``.names`` cover per gate or LUT, one buffer per output.

    Node names: ``x<i>`` input bits, ``n<id>`` gates, ``c0``/``c1`` constants (emitted when used).
    """
    require_no_offsets(netlist, "BLIF")

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
    luts = {g: sort_fanins(table, fanins) for (g, fanins), table in
            zip(netlist.fanins().items(), netlist.lut_table.tolist())}
    used = set(netlist.a.tolist()) | set(netlist.b.tolist()) | set(netlist.outputs.tolist())
    used |= {v for _, fanins in luts.values() for v in fanins}
    if 0 in used:
        lines.append(".names c0")
    if 1 in used:
        lines += [".names c1", "1"]
    first = netlist.first_gate
    for g, (op, x, y) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        if g in luts:
            lines += _blif_lut(*luts[g], f"n{first + g}", node)
            continue
        if op in (gates.FALSE, gates.TRUE):  # a constant cover with inputs reads as 'x' in yosys
            lines.append(f".names n{first + g}")
        else:
            lines.append(f".names {node(x)} {node(y)} n{first + g}")
        lines += ["1"] if op == gates.TRUE else rows[op]
    for out, source in zip(outputs, netlist.outputs.tolist()):
        lines += [f".names {node(source)} {out}", "1 1"]
    lines.append(".end")
    return "\n".join(lines) + "\n"


def _blif_lut(table: int, fanins: list[int], name: str, node) -> list[str]:
    """The ``.names`` of a LUT node: its fan-ins in order, one cover row per row of the table
    that is 1 (character ``j`` is fan-in ``j``); a constant table gets no inputs (as gates do)."""
    k = len(fanins)
    ones = [r for r in range(1 << k) if table >> r & 1]
    if not ones or len(ones) == 1 << k:
        return [f".names {name}"] + (["1"] if ones else [])
    rows = ["".join(str(r >> j & 1) for j in range(k)) + " 1" for r in ones]
    return [f".names {' '.join(node(v) for v in fanins)} {name}"] + rows


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
    require_no_offsets(netlist, "AIGER")
    netlist = decompose(netlist)  # LUT nodes as two-input gates; outputs keep their order
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
