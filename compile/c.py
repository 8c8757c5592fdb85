"""C back end: bit-parallel C99 for a :class:`~lgn.compile.netlist.Netlist`.

:func:`emit` turns a netlist into a header and a source file (``NAME.h``, ``NAME.c``) that need
nothing but ``<stdint.h>`` and ``<stddef.h>``: no malloc, no libc, integer-only, static tables.
The generated code evaluates one machine word of samples at a time (``word_bits`` samples; 128,
256 and 512 use GCC/Clang vector extensions), applies the netlist's thermometer encoder to raw
features itself (on hosted x86 builds with byte features and 64-bit lanes, by transposing 64
samples to feature columns and comparing each column to a bitmask with SSE2, AVX2 or AVX-512BW
from ``<immintrin.h>``; elsewhere with portable compares and 8 x 8 transposes), counts each
class's output bits with a carry-save adder tree and takes the argmax bit-sliced, so ties go to
the lowest class index as in the PyTorch model.

Styles of the gate kernel:

``unrolled``
    Straight-line code, one statement per gate, split into functions of ``chunk_gates``
    statements; gate values live in a reused slot array sized by the live set.
``levelized``
    Gates grouped by (level, op); one small loop per group over index arrays (destination and
    both operands). Compiles in seconds for any size; the default.
``table``
    The smallest flash: the gates as a bit-packed stream (op and two operands relative to a
    per-level base, with only as many bits as the level needs) read by a short interpreter.

:func:`build` compiles the code with the system C compiler into a shared library and wraps it
with ctypes (:class:`CModel`), which is what ``lgn eval --backend c`` and the tests use.

Examples
--------
>>> export(netlist, "out/", name="fmnist")             # doctest: +SKIP
[PosixPath('out/fmnist.h'), PosixPath('out/fmnist.c')]
>>> build(netlist, word_bits=256).predict(pixels)      # doctest: +SKIP
array([9, 2, 1, ...])

and in C::

    #include "fmnist.h"
    uint8_t pixels[FMNIST_NUM_FEATURES];            /* raw 28 x 28 image, row-major */
    int cls = fmnist_predict(pixels);               /* encoder, gates and argmax */
    uint16_t scores[FMNIST_NUM_CLASSES];
    fmnist_scores(pixels, scores);                  /* per-class popcounts */
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from lgn import templates
from lgn.compile import gates
from lgn.tools import find_tool

from .netlist import Netlist

__all__ = [
    "emit", "export", "build", "CModel", "CBackendError", "CompilerNotFoundError",
    "c_identifier", "find_compiler", "compile_shared", "STYLES", "WORD_BITS", "DEFAULT_STYLE",
]

STYLES = ("levelized", "unrolled", "table")
DEFAULT_STYLE = "levelized"
WORD_BITS = (8, 16, 32, 64, 128, 256, 512)
#: Statements per generated function in the ``unrolled`` style (keeps the compiler linear).
DEFAULT_CHUNK_GATES = 32

_C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
_Static_assert _Thread_local alignas alignof and and_eq asm bitand bitor bool catch char16_t
char32_t class compl constexpr const_cast decltype delete dynamic_cast explicit export false friend
mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
reinterpret_cast static_assert static_cast template this thread_local throw true try typeid
typename using virtual wchar_t xor xor_eq main
""".split())

# Each gate as a C expression of its operands {a} and {b}; {zero}/{one} are the constant slots.
class _CExpr:
    """A C expression, built by applying a gate of :data:`gates.BITWISE` to symbolic operands."""

    def __init__(self, text: str, atom: bool = True):
        self.text, self.atom = text, atom

    def _operand(self) -> str:
        return self.text if self.atom else f"({self.text})"

    def __and__(self, other):
        return _CExpr(f"{self._operand()} & {other._operand()}", atom=False)

    def __or__(self, other):
        return _CExpr(f"{self._operand()} | {other._operand()}", atom=False)

    def __xor__(self, other):
        return _CExpr(f"{self._operand()} ^ {other._operand()}", atom=False)

    def __invert__(self):
        return _CExpr(f"~{self._operand()}")


# Each gate as a C expression template over {a}, {b} and the constant words {zero}, {one}.
_GATE_EXPR = {op: fn(_CExpr("{a}"), _CExpr("{b}")).text for op, fn in gates.BITWISE.items()}
_GATE_EXPR.update({gates.FALSE: "{zero}", gates.TRUE: "{one}"})

# Ops whose value depends on operand a (resp. b): the table style stores no unused operands.
_READS_A, _READS_B = gates.READS_A, gates.READS_B

# (C type, numpy dtype, min, max) of each raw feature type an encoding may declare.
_FEATURE_TYPES = {
    "uint8": ("uint8_t", np.uint8), "int8": ("int8_t", np.int8),
    "uint16": ("uint16_t", np.uint16), "int16": ("int16_t", np.int16),
    "int32": ("int32_t", np.int32), "float32": ("float", np.float32),
}


class CBackendError(ValueError):
    """The netlist or an option cannot be turned into C, or the generated C failed to build."""


class CompilerNotFoundError(CBackendError):
    """No C compiler was found (set ``cc=`` or the ``CC`` variable, or install gcc or clang)."""


def c_identifier(name: str) -> str:
    """Return ``name`` as a C identifier that is neither a C nor a C++ keyword."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", str(name)) or "model"
    if ident[0].isdigit() or ident[0] == "_":
        ident = "m" + ident if ident[0] == "_" else "m_" + ident
    if ident in _C_KEYWORDS or ident.upper() in {"NULL", "EOF"}:
        ident += "_"
    return ident


# --------------------------------------------------------------------------- preparation
@dataclass(frozen=True)
class _Encoder:
    """The thermometer encoder as comparison runs: slots ``2 + p0 + q*stride`` for ``q < len``
    compare feature ``f0 + q`` with ``thresholds[t0 + q]``; ``const0``/``const1`` are input bits
    whose threshold lies outside the feature type's range."""

    ctype: str
    np_dtype: type
    num_features: int
    thresholds: list
    runs: list  # (t0, p0, stride, f0, length)
    const0: list
    const1: list


def _encoder(netlist: Netlist) -> _Encoder:
    enc = netlist.encoding
    if enc is None:  # raw input bits, one byte each: bit i = features[i] > 0
        n = netlist.num_inputs
        feature, threshold, dtype, num_features = np.arange(n), np.zeros(n), "uint8", n
    else:
        feature, threshold, dtype = enc.feature, enc.threshold, enc.dtype
        num_features = enc.num_features
    ctype, np_dtype = _FEATURE_TYPES[dtype]
    const0, const1, compare = [], [], []  # compare: (input bit, feature, C threshold)
    if dtype == "float32":
        for i, (f, t) in enumerate(zip(feature.tolist(), threshold.tolist())):
            with np.errstate(over="ignore"):  # beyond FLT_MAX: inf, then FLT_MAX
                t32 = np.float32(t)
                if float(t32) > t:  # x > t  <=>  x > (largest float32 <= t) for float32 x
                    t32 = np.nextafter(t32, np.float32(-np.inf))
            compare.append((i, f, t32))  # -inf when t < -FLT_MAX: still exact
    else:
        info = np.iinfo(np_dtype)
        for i, (f, t) in enumerate(zip(feature.tolist(), threshold.tolist())):
            t_int = int(np.floor(t))  # integer x > t  <=>  x > floor(t)
            if t_int < info.min:
                const1.append(i)
            elif t_int >= info.max:
                const0.append(i)
            else:
                compare.append((i, f, t_int))
    # Order the comparisons as runs of consecutive features at a constant input stride (the
    # thermometer layout of lower(): k-th threshold of feature f is input f*bits + k).
    rank: dict[int, int] = {}
    keyed = []
    for i, f, t in compare:
        k = rank.get(f, 0)
        rank[f] = k + 1
        keyed.append((k, f, i, t))
    keyed.sort()
    runs, thresholds = [], []
    for k, f, i, t in keyed:
        if runs:
            t0, p0, stride, f0, length = runs[-1]
            last_i = p0 + (length - 1) * stride
            if f == f0 + length and (length == 1 and i > last_i or i - last_i == stride):
                runs[-1] = (t0, p0, i - p0 if length == 1 else stride, f0, length + 1)
                thresholds.append(t)
                continue
        runs.append((len(thresholds), i, 1, f, 1))
        thresholds.append(t)
    return _Encoder(ctype, np_dtype, int(num_features), thresholds, runs, const0, const1)


def _c_number(value, ctype: str) -> str:
    if ctype == "float":  # exact hexadecimal literal; -inf as a constant expression
        return "(-(0x1.fffffep+127f * 2.0f))" if value == -np.inf else float(value).hex() + "f"
    value = int(value)
    return f"({value + 1} - 1)" if value == -(2**31) else str(value)


def _last_uses(num_nodes: int, order: np.ndarray, netlist: Netlist) -> np.ndarray:
    """Position (in ``order``) of each node's last reader; outputs live to the end."""
    last = np.full(num_nodes, -1, dtype=np.int64)
    pos = np.arange(order.shape[0], dtype=np.int64)
    np.maximum.at(last, netlist.a[order], pos)
    np.maximum.at(last, netlist.b[order], pos)
    last[netlist.outputs] = np.iinfo(np.int64).max
    return last


@dataclass(frozen=True)
class _Plan:
    """Gates in evaluation order with the slot (index into the word array) of every node."""

    order: np.ndarray  # gate indices in evaluation order
    slot: np.ndarray  # node id -> slot
    num_slots: int
    output_runs: list  # (first slot, length), class-major
    class_run_end: list  # cumulative number of runs per class
    output_slots: list  # slot of every output, class-major, ascending within a class


def _plan(netlist: Netlist, style: str) -> _Plan:
    first = netlist.first_gate
    if style == "unrolled":
        order = np.arange(netlist.num_gates)
    elif style == "table":  # by level, output gates last in output order: classes count few runs
        rank = np.full(netlist.num_gates, -1, dtype=np.int64)
        gate_outputs = netlist.outputs[netlist.outputs >= first] - first
        unique, position = np.unique(gate_outputs, return_index=True)
        rank[unique] = position
        order = np.lexsort((rank, netlist.level))
    else:  # by level, then op (stable): a topological order with one loop per group
        key = netlist.level * 16 + netlist.op if netlist.num_gates else netlist.op
        order = np.argsort(key, kind="stable")
    slot = np.empty(netlist.num_nodes, dtype=np.int64)
    slot[:first] = np.arange(first)
    if style == "table":  # implicit destinations: gates take consecutive slots
        slot[first + order] = first + np.arange(order.shape[0])
        num_slots = netlist.num_nodes
    else:
        slot, num_slots = _allocate(netlist, order, slot)
    runs, class_end, output_slots = [], [], []
    for group in netlist.groups:
        slots = np.sort(slot[group])
        output_slots.extend(slots.tolist())
        start = 0
        for cut in list(np.flatnonzero(np.diff(slots) != 1) + 1) + [slots.shape[0]]:
            runs.append((int(slots[start]), int(cut - start)))
            start = cut
        class_end.append(len(runs))
    return _Plan(order, slot, int(num_slots), runs, class_end, output_slots)


def _allocate(netlist: Netlist, order: np.ndarray, slot: np.ndarray):
    """Give each gate a slot, reusing the slots of dead values; outputs get a contiguous,
    class-major region (so each class counts one run of words)."""
    first = netlist.first_gate
    fixed = {}
    for node in netlist.outputs.tolist():
        if node >= first and node not in fixed:
            fixed[node] = first + len(fixed)
    next_slot = first + len(fixed)
    last = _last_uses(netlist.num_nodes, order, netlist)
    free: list[int] = []
    release: dict[int, list[int]] = {}
    for pos, g in enumerate(order.tolist()):
        free.extend(release.pop(pos, ()))
        node = first + g
        if node in fixed:
            slot[node] = fixed[node]
            continue
        if free:
            slot[node] = free.pop()
        else:
            slot[node] = next_slot
            next_slot += 1
        end = int(last[node])
        release.setdefault(max(end, pos) + 1, []).append(int(slot[node]))
    return slot, next_slot


def _table_body(values, per_line: int = 16) -> str:
    values = [str(v) for v in values] or ["0"]
    lines = (", ".join(values[i : i + per_line]) for i in range(0, len(values), per_line))
    return ",\n    ".join(lines)


def _index_type(limit: int) -> str:
    for bits in (8, 16, 32):
        if limit <= 2**bits:
            return f"uint{bits}_t"
    raise CBackendError(f"netlist has {limit} nodes, more than 32-bit indices can address")


def _table(name: str, ctype: str, values) -> dict:
    values = list(values)
    return {"name": name, "ctype": ctype, "size": max(1, len(values)), "body": _table_body(values)}


# --------------------------------------------------------------------------- kernels
def _unrolled_kernel(netlist: Netlist, plan: _Plan, prefix: str, chunk_gates: int) -> dict:
    s = plan.slot
    ops, a, b = netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist()
    first = netlist.first_gate
    lines = []
    for g in plan.order.tolist():
        expr = _GATE_EXPR[ops[g]].format(a=f"v[{s[a[g]]}]", b=f"v[{s[b[g]]}]", zero="v[0]", one="v[1]")
        lines.append(f"v[{s[first + g]}] = (WORD)({expr});")
    parts = [
        {"name": f"{prefix}_part{i}", "lines": lines[k : k + chunk_gates]}
        for i, k in enumerate(range(0, len(lines), chunk_gates))
    ]
    return {"parts": parts}


def _op_cases(operand: str) -> list:
    """One ``case`` per op for the interpreter loops: (op, C statement computing ``v[d]``)."""
    return [
        {"op": op, "name": gates.GATE_NAMES[op],
         "expr": expr.format(a=operand.format("a"), b=operand.format("b"), zero="v[0]", one="v[1]")}
        for op, expr in sorted(_GATE_EXPR.items())
    ]


def _groups(netlist: Netlist, order: np.ndarray):
    """Boundaries of the runs of equal (level, op) in ``order``: (op, end position) pairs."""
    if order.shape[0] == 0:
        return []
    key = (netlist.level * 16 + netlist.op)[order]
    ends = list(np.flatnonzero(np.diff(key)) + 1) + [order.shape[0]]
    return [(int(netlist.op[order[e - 1]]), int(e)) for e in ends]


def _levelized_kernel(netlist: Netlist, plan: _Plan, prefix: str) -> dict:
    order, s = plan.order, plan.slot
    first = netlist.first_gate
    index = _index_type(plan.num_slots)
    groups = _groups(netlist, order)
    count = _index_type(max(netlist.num_gates, 1) + 1)
    return {
        "tables": [
            _table(f"{prefix}_dst", index, s[first + order].tolist()),
            _table(f"{prefix}_a", index, s[netlist.a[order]].tolist()),
            _table(f"{prefix}_b", index, s[netlist.b[order]].tolist()),
            _table(f"{prefix}_group_op", "uint8_t", [op for op, _ in groups]),
            _table(f"{prefix}_group_end", count, [end for _, end in groups]),
        ],
        "num_groups": len(groups),
        "cases": _op_cases("v[{}[g]]"),
    }


def _pack_bits(values: np.ndarray, widths: np.ndarray) -> list:
    """Concatenate the low ``widths[i]`` bits of ``values[i]``, LSB first, into 32-bit words
    (plus one zero word, so a reader may always look one word ahead)."""
    widths = widths.astype(np.int64)
    total = int(widths.sum())
    field = np.repeat(np.arange(values.shape[0]), widths)
    offset = np.arange(total) - np.repeat(np.cumsum(widths) - widths, widths)
    bits = ((values[field] >> offset.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)
    padded = np.zeros(32 * (total // 32 + 2), dtype=np.uint8)
    padded[:total] = bits
    return np.packbits(padded, bitorder="little").view("<u4").tolist()


def _table_kernel(netlist: Netlist, plan: _Plan, prefix: str) -> dict:
    """Pack each level's gates as ``op:4 | a - base : w | b - base : w`` into a 32-bit stream
    (an operand the op ignores takes no bits)."""
    order, s = plan.order, plan.slot
    first = netlist.first_gate
    level = netlist.level[order] if netlist.num_gates else np.zeros(0, np.int64)
    ends = list(np.flatnonzero(np.diff(level)) + 1) + [order.shape[0]] if order.shape[0] else []
    values, widths, segments = [], [], []  # per segment: (3, n) fields op, a, b and their widths
    reads_a = np.isin(netlist.op, list(_READS_A))
    reads_b = np.isin(netlist.op, list(_READS_B))
    start = 0
    for end in ends:
        gates_ = order[start:end]
        a, b = s[netlist.a[gates_]], s[netlist.b[gates_]]
        base = int(min(a.min(), b.min()))
        width = int(max(a.max(), b.max()) - base).bit_length()
        values.append(np.stack([netlist.op[gates_], a - base, b - base]).astype(np.uint64))
        widths.append(np.stack([np.full(gates_.shape, 4), reads_a[gates_] * width, reads_b[gates_] * width]))
        segments.append((base, width, first + int(end)))
        start = end
    words = _pack_bits(
        np.concatenate([v.T.ravel() for v in values]) if values else np.zeros(0, np.uint64),
        np.concatenate([w.T.ravel() for w in widths]) if widths else np.zeros(0, np.int64),
    )
    index = _index_type(plan.num_slots)
    return {
        "tables": [
            _table(f"{prefix}_stream", "uint32_t", [f"0x{w:08x}u" for w in words]),
            _table(f"{prefix}_seg_base", index, [seg[0] for seg in segments]),
            _table(f"{prefix}_seg_width", "uint8_t", [seg[1] for seg in segments]),
            _table(f"{prefix}_seg_end", _index_type(plan.num_slots + 1), [seg[2] for seg in segments]),
        ],
        "num_segments": len(segments),
        "reads_a": f"0x{sum(1 << op for op in _READS_A):04x}u",
        "reads_b": f"0x{sum(1 << op for op in _READS_B):04x}u",
        "first_gate": first,
        "cases": _op_cases("v[{}]"),
    }


# --------------------------------------------------------------------------- emission
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(templates.__file__).resolve().parent)),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
        lstrip_blocks=True, autoescape=False,
    )


def emit(netlist: Netlist, name: str = "model", *, word_bits: int = 64,
         style: str = DEFAULT_STYLE, chunk_gates: int = DEFAULT_CHUNK_GATES) -> dict[str, str]:
    """Return the generated C as ``{"NAME.h": text, "NAME.c": text}``.

    Parameters
    ----------
    netlist : Netlist
        The network; with an encoding the API takes raw features, else one byte per input bit.
    name : str
        Prefix of every public symbol, sanitised by :func:`c_identifier`.
    word_bits : {8, 16, 32, 64, 128, 256, 512}
        Samples evaluated together; above 64 the code uses GCC/Clang vector extensions.
    style : {"levelized", "unrolled", "table"}
        Shape of the gate kernel (see the module docstring).
    chunk_gates : int
        Statements per function in the ``unrolled`` style.
    """
    if word_bits not in WORD_BITS:
        raise CBackendError(f"word_bits must be one of {WORD_BITS}, got {word_bits!r}")
    if style not in STYLES:
        raise CBackendError(f"style must be one of {STYLES}, got {style!r}")
    if chunk_gates < 1:
        raise CBackendError(f"chunk_gates must be >= 1, got {chunk_gates}")
    if netlist.outputs_per_class > 0xFFFF:
        raise CBackendError(f"{netlist.outputs_per_class} outputs per class overflow uint16_t scores")
    ident = c_identifier(name)
    upper = ident.upper()
    enc = _encoder(netlist)
    plan = _plan(netlist, style)
    lane_bits = min(word_bits, 64)
    lanes = word_bits // lane_bits
    if style == "unrolled":
        kernel = _unrolled_kernel(netlist, plan, ident, chunk_gates)
    elif style == "levelized":
        kernel = _levelized_kernel(netlist, plan, ident)
    else:
        kernel = _table_kernel(netlist, plan, ident)
    slot_index = _index_type(plan.num_slots)
    feature_index = _index_type(max(enc.num_features, 1))
    threshold_index = _index_type(max(len(enc.thresholds), 1) + 1)
    context = {
        "name": ident,
        "upper": upper,
        "guard": f"{upper}_H_",
        "style": style,
        "word_bits": word_bits,
        "lane_bits": lane_bits,
        "lane_bytes": lane_bits // 8,
        "lanes": lanes,
        "lane_type": f"uint{lane_bits}_t",
        "word_decl": (
            "#if !defined(__GNUC__) && !defined(__clang__)\n"
            f"#error \"{word_bits}-bit words need GCC/Clang vector extensions: emit with word_bits <= 64\"\n"
            "#endif\n"
            f"__extension__ typedef uint64_t {ident}_word_t __attribute__((vector_size({word_bits // 8})));"
            if word_bits > 64 else f"typedef uint{word_bits}_t {ident}_word_t;"
        ),
        "set_lane": "((v)[slot][lane] = (x))" if word_bits > 64 else "((void)(lane), (v)[slot] = (x))",
        "get_lane": "((v)[slot][lane])" if word_bits > 64 else "((void)(lane), (v)[slot])",
        "feature_type": enc.ctype,
        "feature_dtype": np.dtype(enc.np_dtype).name,
        "has_encoding": netlist.encoding is not None,
        "num_features": enc.num_features,
        "num_inputs": netlist.num_inputs,
        "num_classes": netlist.num_classes,
        "outputs_per_class": netlist.outputs_per_class,
        "num_gates": netlist.num_gates,
        "model_sha256": netlist.sha256,
        "num_slots": plan.num_slots,
        "count_planes": max(1, netlist.outputs_per_class.bit_length()),
        "class_planes": max(1, (netlist.num_classes - 1).bit_length()),
        "tables": [
            _table(f"{ident}_threshold", enc.ctype, [_c_number(t, enc.ctype) for t in enc.thresholds]),
            _table(f"{ident}_run_t0", threshold_index, [r[0] for r in enc.runs]),
            _table(f"{ident}_run_p0", slot_index, [r[1] for r in enc.runs]),
            _table(f"{ident}_run_stride", slot_index, [r[2] for r in enc.runs]),
            _table(f"{ident}_run_f0", feature_index, [r[3] for r in enc.runs]),
            _table(f"{ident}_run_len", threshold_index, [r[4] for r in enc.runs]),
            _table(f"{ident}_const0", slot_index, enc.const0),
            _table(f"{ident}_const1", slot_index, enc.const1),
        ] + ([  # the table style counts runs of output slots (small), the others gather slots
            _table(f"{ident}_out_start", slot_index, [r[0] for r in plan.output_runs]),
            _table(f"{ident}_out_len", _index_type(netlist.outputs_per_class + 1),
                   [r[1] for r in plan.output_runs]),
            _table(f"{ident}_class_end", _index_type(len(plan.output_runs) + 1), plan.class_run_end),
        ] if style == "table" else [
            _table(f"{ident}_out_slot", slot_index, plan.output_slots),
        ]),
        "out_slot_type": slot_index,
        "num_runs": len(enc.runs),
        "num_thresholds": max(1, len(enc.thresholds)),
        "feature_bytes": np.dtype(enc.np_dtype).itemsize,
        "feature_signed": int(np.dtype(enc.np_dtype).kind == "i"),
        "compact": int(style == "table"),
        "num_const0": len(enc.const0),
        "num_const1": len(enc.const1),
        "kernel": kernel,
    }
    env = _environment()
    header = env.get_template("c_header.h.j2").render(context)
    source = "".join(
        env.get_template(t).render(context)
        for t in ("c_prelude.c.j2", f"c_kernel_{style}.c.j2", "c_api.c.j2")
    )
    return {f"{ident}.h": header, f"{ident}.c": source}


def export(netlist: Netlist, out_dir, name: str = "model", **options) -> list[Path]:
    """Write ``NAME.h`` and ``NAME.c`` into ``out_dir`` (created if needed); return their paths.

    ``options`` are those of :func:`emit` (``word_bits``, ``style``, ``chunk_gates``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, text in emit(netlist, name, **options).items():
        path = out / filename
        path.write_text(text)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- build (ctypes)
def find_compiler(cc: str | None = None) -> str:
    """Return the C compiler to use: ``cc``, else ``$CC``, else the first of cc, gcc, clang."""
    for candidate in ([cc] if cc else [os.environ.get("CC"), "cc", "gcc", "clang"]):
        path = find_tool(candidate) if candidate else None
        if path:
            return path
    raise CompilerNotFoundError(
        f"no C compiler found ({cc or 'tried $CC, cc, gcc, clang'}); install gcc or clang "
        "or pass cc='path/to/compiler'"
    )


def compile_shared(source: Path, output: Path, cc: str | None = None, cflags=("-O2",)) -> Path:
    """Compile the C file ``source`` into the shared library ``output``; raise on failure."""
    command = [find_compiler(cc), "-std=c99", *cflags, "-shared", "-fPIC", str(source), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise CBackendError(f"{' '.join(command)} failed:\n{result.stderr.strip()[:4000]}")
    return output


class CModel:
    """A netlist compiled to a shared library; call it with numpy arrays.

    Build it with :func:`build`. ``predict``/``scores`` take raw features ``(N, num_features)``
    (input bits, one per byte, when the netlist has no encoding); ``predict_bits``/``scores_bits``
    take input bits ``(N, num_inputs)`` and bypass the encoder. Scores are int64 popcounts.
    """

    def __init__(self, library: Path, netlist: Netlist, name: str, word_bits: int):
        self.netlist = netlist
        self.word_bits = word_bits
        self.num_classes = netlist.num_classes
        self.num_features = netlist.encoding.num_features if netlist.encoding else netlist.num_inputs
        dtype = netlist.encoding.dtype if netlist.encoding else "uint8"
        self.feature_dtype = np.dtype(_FEATURE_TYPES[dtype][1])
        self.library_path = library
        self._lib = ctypes.CDLL(str(library))
        lane = {8: ctypes.c_uint8, 16: ctypes.c_uint16, 32: ctypes.c_uint32}.get(word_bits, ctypes.c_uint64)
        self._lane_dtype = np.dtype(f"uint{ctypes.sizeof(lane) * 8}")
        p, size = ctypes.c_void_p, ctypes.c_size_t
        for suffix in ("predict_batch", "scores_batch", "predict_bits", "scores_bits"):
            fn = getattr(self._lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = [p, size, p], None
            setattr(self, f"_{suffix}", fn)

    def _features(self, features) -> np.ndarray:
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise CBackendError(f"features have shape {x.shape}, expected (N, {self.num_features})")
        if self.netlist.encoding is None:
            x = x != 0
        with np.errstate(all="ignore"):  # out-of-type values are reported below
            cast = np.ascontiguousarray(x, dtype=self.feature_dtype)
        exact = np.array_equal(cast, x, equal_nan=cast.dtype.kind == "f")
        if cast.dtype != x.dtype and x.size and not exact:
            raise CBackendError(
                f"features of type {x.dtype} are not all exact {self.feature_dtype} values "
                f"(the model's feature type)"
            )
        return cast

    def predict(self, features) -> np.ndarray:
        """Return the class ``(N,)`` int64 of each sample of raw ``features``."""
        x = self._features(features)
        out = np.empty(x.shape[0], dtype=np.intc)
        self._predict_batch(x.ctypes.data, x.shape[0], out.ctypes.data)
        return out.astype(np.int64)

    def scores(self, features) -> np.ndarray:
        """Return the scores ``(N, num_classes)`` int64 of each sample of raw ``features``."""
        x = self._features(features)
        out = np.empty((x.shape[0], self.num_classes), dtype=np.uint16)
        self._scores_batch(x.ctypes.data, x.shape[0], out.ctypes.data)
        return out.astype(np.int64)

    def _blocks(self, bits):
        bits = np.asarray(bits)
        if bits.ndim != 2 or bits.shape[1] != self.netlist.num_inputs:
            raise CBackendError(f"bits have shape {bits.shape}, expected (N, {self.netlist.num_inputs})")
        lane_bits = self._lane_dtype.itemsize * 8
        for start in range(0, bits.shape[0], self.word_bits):
            block = bits[start : start + self.word_bits] != 0
            padded = np.zeros((self.word_bits, bits.shape[1]), dtype=np.uint8)
            padded[: block.shape[0]] = block
            packed = np.packbits(padded.T, axis=1, bitorder="little")  # (inputs, word_bits / 8)
            lanes = np.ascontiguousarray(packed).view(f"<u{lane_bits // 8}").astype(self._lane_dtype)
            yield start, block.shape[0], np.ascontiguousarray(lanes)

    def scores_bits(self, bits) -> np.ndarray:
        """Return the scores ``(N, num_classes)`` of input ``bits (N, num_inputs)``."""
        out = np.empty((np.shape(bits)[0], self.num_classes), dtype=np.uint16)
        for start, n, lanes in self._blocks(bits):
            self._scores_bits(lanes.ctypes.data, n, out[start:].ctypes.data)
        return out.astype(np.int64)

    def predict_bits(self, bits) -> np.ndarray:
        """Return the class ``(N,)`` of input ``bits (N, num_inputs)``."""
        out = np.empty(np.shape(bits)[0], dtype=np.intc)
        for start, n, lanes in self._blocks(bits):
            self._predict_bits(lanes.ctypes.data, n, out[start:].ctypes.data)
        return out.astype(np.int64)


def build(netlist: Netlist, *, name: str = "model", cc: str | None = None, cflags=("-O2",),
          **options) -> CModel:
    """Compile ``netlist`` with the system C compiler and return it as a :class:`CModel`.

    ``options`` are those of :func:`emit`; ``cflags`` are passed to the compiler (which is
    ``cc``, else ``$CC``, else cc/gcc/clang). Raises :class:`CompilerNotFoundError` without one.
    """
    compiler = find_compiler(cc)
    workdir = Path(tempfile.mkdtemp(prefix="lgn_c_"))
    try:
        ident = c_identifier(name)
        paths = export(netlist, workdir, name=ident, **options)
        library = compile_shared(paths[1], workdir / f"lib{ident}.so", compiler, cflags)
        model = CModel(library, netlist, ident, options.get("word_bits", 64))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    weakref.finalize(model, shutil.rmtree, workdir, ignore_errors=True)
    return model
