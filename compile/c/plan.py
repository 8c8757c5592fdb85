"""Planning for the C back end: encoder runs, evaluation order, slots and kernel tables.

Python prepares plain values here; :mod:`.emit` renders them with the templates."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from lgn.compile import gates

from ..netlist import Netlist

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


