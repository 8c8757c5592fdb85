"""Planning for the C back end: encoder runs, evaluation order, slots and kernel tables.

Python prepares typed plain values here (:class:`Source` and the dataclasses it holds: tables of
numbers, slots, flags); :mod:`.emit` renders them with the templates, which hold all the C."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from lgn.compile import gates

from ..luts import decompose
from ..netlist import LUT_OP, Netlist

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

# Ops whose value depends on operand a (resp. b): the table style stores no unused operands.
_READS_A, _READS_B = gates.READS_A, gates.READS_B
#: Kind of a gate in the kernels' grouping: its op (0..15) for two-input gates, and
#: ``LUT_OP + k - 1`` for a k-input LUT node (so every (level, kind) group has one arity).
_MAX_KIND = LUT_OP + 6

# (C type, numpy dtype, min, max) of each raw feature type an encoding may declare.
_FEATURE_TYPES = {
    "uint8": ("uint8_t", np.uint8), "int8": ("int8_t", np.int8),
    "uint16": ("uint16_t", np.uint16), "int16": ("int16_t", np.int16),
    "int32": ("int32_t", np.int32), "float32": ("float", np.float32),
}
_INT32 = np.iinfo(np.int32)


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


# --------------------------------------------------------------------------- typed plan
@dataclass(frozen=True)
class CTable:
    """A static const array of ``length`` C number literals (never empty: a lone 0 if none),
    pre-joined as ``body``: 16 a line, comma-separated."""

    name: str
    ctype: str
    length: int
    body: str


@dataclass(frozen=True)
class Records:
    """``count`` records of ``fields`` unsigned integers each, read in C as ``NAME_at(r)`` (a
    pointer to record ``r``, of ``ctype``) and ``NAME_field(p, k)``. Up to
    :data:`_NUMBER_RECORDS` records they are a ``ctype`` array of number literals in ``body``
    (``length`` of them); above, ``strings`` is set and they are little-endian fields of
    ``field_bytes`` bytes in a static const ``unsigned char`` array of ``num_rows`` rows (C string
    literals in ``body``, each row ``row_length`` bytes with its terminating NUL): record ``r``
    starts at byte ``(r & row_mask) * record_bytes`` of row ``r >> row_shift``, byte ``j`` of a
    field shifted left by ``byte_shifts[j]``. A compiler reads a string many times faster than
    as many number literals, and the program reads the numbers a little faster."""

    strings: bool
    ctype: str
    length: int
    name: str
    count: int
    fields: int
    field_bytes: int
    byte_shifts: tuple
    record_bytes: int
    row_shift: int
    row_mask: int
    row_length: int
    num_rows: int
    body: str


@dataclass(frozen=True)
class Word:
    """The machine word: ``bits`` samples as ``lanes`` lanes of ``lane_bits`` bits."""

    bits: int
    lane_bits: int
    lanes: int
    lane_bytes: int
    lane_type: str
    vector: bool  # above 64 bits: a GCC/Clang vector of 64-bit lanes


@dataclass(frozen=True)
class Model:
    """What the header tells about the netlist."""

    num_features: int
    num_inputs: int
    num_classes: int
    outputs_per_class: int
    num_gates: int
    num_luts: int
    sha256: str
    feature_type: str
    class_names: tuple  # C string literals (see c_string)


@dataclass(frozen=True)
class EncoderTables:
    """The thermometer encoder as comparison runs (see :class:`_Encoder`)."""

    threshold: CTable
    run_t0: CTable
    run_p0: CTable
    run_stride: CTable
    run_f0: CTable
    run_len: CTable
    const0: CTable
    const1: CTable
    num_runs: int
    num_thresholds: int
    num_const0: int
    num_const1: int
    feature_bytes: int
    feature_signed: int


@dataclass(frozen=True)
class Outputs:
    """How each class's outputs are counted: gathered from ``slot`` (a carry-save tree) or, in
    the compact (table) style, rippled over runs of slots ``start``/``length`` per class."""

    compact: bool
    slot_type: str
    slot: CTable | None
    start: CTable | None
    length: CTable | None
    class_end: CTable | None


@dataclass(frozen=True)
class Scores:
    """Score type and bit-sliced counting: the count planes of class ``c`` start at
    ``bias[c] = offsets[c] - base`` (so the argmax sees offsets), and a score is planes + ``base``."""

    ctype: str
    np_dtype: type
    base: str
    bias: CTable
    count_planes: int
    class_planes: int


@dataclass(frozen=True)
class Case:
    """One kind of the interpreter loops: a two-input gate op (``name`` as in
    :data:`gates.GATE_NAMES`, ``arity`` 2) or the k-input LUT nodes (``LUT-k``, ``arity`` k)."""

    kind: int
    name: str
    arity: int


@dataclass(frozen=True)
class Statement:
    """One gate of the unrolled kernel: ``v[dst] = op(v[operands[0]], v[operands[1]])``."""

    dst: int
    op: str
    operands: tuple


@dataclass(frozen=True)
class Part:
    """A function of the unrolled kernel."""

    name: str
    statements: tuple


@dataclass(frozen=True)
class UnrolledKernel:
    parts: tuple


@dataclass(frozen=True)
class LevelizedKernel:
    """Gates by (level, kind) groups: record ``g`` of ``gates`` holds the slots (dst, a, b) of gate
    ``g``, which writes ``v[dst]`` from ``v[a]``, ``v[b]`` (a LUT node's ``a``, ``b``: unused); the
    LUT nodes, in order, read their fan-ins from ``lut_fanin`` and their truth tables from
    ``lut_table``."""

    gates: Records
    group_kind: CTable
    group_end: CTable
    lut_fanin: CTable
    lut_table: CTable
    num_groups: int
    cases: tuple
    lut_cases: tuple
    has_luts: bool


@dataclass(frozen=True)
class TableKernel:
    """Per (level, kind) segment, the gates bit-packed into ``stream`` (32-bit words) relative to
    ``base``."""

    stream: Records
    seg_base: CTable
    seg_width: CTable
    seg_end: CTable
    seg_arity: CTable
    num_segments: int
    reads_a: str
    reads_b: str
    first_gate: int
    cases: tuple
    has_luts: bool


@dataclass(frozen=True)
class Source:
    """Everything the templates render: one C source and its header."""

    name: str
    upper: str
    guard: str
    style: str
    word: Word
    model: Model
    encoder: EncoderTables
    outputs: Outputs
    scores: Scores
    num_slots: int
    kernel: UnrolledKernel | LevelizedKernel | TableKernel


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
    """The literal of a number of C type ``ctype`` (float: exact hexadecimal; -inf and INT32_MIN
    as constant expressions)."""
    if ctype == "float":
        return "(-(0x1.fffffep+127f * 2.0f))" if value == -np.inf else float(value).hex() + "f"
    value = int(value)
    return f"({value + 1} - 1)" if value == -(2**31) else str(value)


def _kinds(netlist: Netlist) -> np.ndarray:
    """Kind of every gate: its op, or ``LUT_OP + k - 1`` for a LUT-k node."""
    kind = netlist.op.astype(np.int64)
    kind[netlist.lut_gates] = LUT_OP + netlist.lut_arity.astype(np.int64) - 1
    return kind


def _fanin_matrix(netlist: Netlist) -> np.ndarray:
    """``(num_gates, 6)`` node ids each gate reads: a, b (then b again) for two-input gates, the
    fan-ins (unused columns repeat fan-in 0) for LUT nodes."""
    fanin = np.repeat(netlist.b[:, None], 6, axis=1)
    fanin[:, 0] = netlist.a
    if netlist.num_luts:
        rows = netlist.lut_fanin.copy()
        unused = np.arange(6)[None, :] >= netlist.lut_arity[:, None]
        rows[unused] = np.broadcast_to(rows[:, :1], rows.shape)[unused]
        fanin[netlist.lut_gates] = rows
    return fanin


def _last_uses(num_nodes: int, order: np.ndarray, netlist: Netlist) -> np.ndarray:
    """Position (in ``order``) of each node's last reader; outputs live to the end."""
    last = np.full(num_nodes, -1, dtype=np.int64)
    pos = np.arange(order.shape[0], dtype=np.int64)
    columns = _fanin_matrix(netlist) if netlist.num_luts else np.stack([netlist.a, netlist.b], axis=1)
    for column in columns[order].T:
        np.maximum.at(last, column, pos)
    last[netlist.outputs] = np.iinfo(np.int64).max
    return last


@dataclass(frozen=True)
class _Slots:
    """Gates in evaluation order with the slot (index into the word array) of every node."""

    order: np.ndarray  # gate indices in evaluation order
    slot: np.ndarray  # node id -> slot
    num_slots: int
    output_runs: list  # (first slot, length), class-major
    class_run_end: list  # cumulative number of runs per class
    output_slots: list  # slot of every output, class-major, ascending within a class


def _level_kind_order(netlist: Netlist, kind: np.ndarray) -> np.ndarray:
    """Gates by (level, kind): the netlist's shared (level, op) schedule, its LUT steps ordered by
    arity (stably, so every group keeps ascending gate indices)."""
    schedule = netlist.schedule
    order = schedule.order.copy()
    bounds = schedule.step_starts.tolist()
    for op, start, stop in zip(schedule.step_op.tolist(), bounds[:-1], bounds[1:]):
        if op == LUT_OP:
            order[start:stop] = order[start:stop][np.argsort(kind[order[start:stop]], kind="stable")]
    return order


def _slots(netlist: Netlist, style: str) -> _Slots:
    first = netlist.first_gate
    kind = _kinds(netlist)
    if style == "unrolled":
        order = np.arange(netlist.num_gates)
    elif style == "table":  # by level and kind, output gates last in output order: few runs
        rank = np.full(netlist.num_gates, -1, dtype=np.int64)
        gate_outputs = netlist.outputs[netlist.outputs >= first] - first
        unique, position = np.unique(gate_outputs, return_index=True)
        rank[unique] = position
        arity = np.where(kind >= LUT_OP, kind - LUT_OP + 1, 0)  # 0: two-input gates
        order = np.lexsort((rank, arity, netlist.level))
    else:  # by level, then kind (stable): a topological order with one loop per group
        order = _level_kind_order(netlist, kind)
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
    return _Slots(order, slot, int(num_slots), runs, class_end, output_slots)


#: Gates (in evaluation order) given slots at once: a slot freed by a value whose last reader is
#: in chunk ``k`` is reused from chunk ``k + 1`` on (at most this many slots more than the live set).
_ALLOCATION_CHUNK = 64


def _allocate(netlist: Netlist, order: np.ndarray, slot: np.ndarray):
    """Give each gate a slot, reusing the slots of dead values (most recently freed first), a
    chunk of gates at a time; outputs get a contiguous, class-major region (so each class counts
    one run of words)."""
    first = netlist.first_gate
    gate_outputs = netlist.outputs[netlist.outputs >= first]
    unique, position = np.unique(gate_outputs, return_index=True)
    fixed = np.zeros(netlist.num_nodes, dtype=bool)
    fixed[unique] = True
    slot[unique[np.argsort(position, kind="stable")]] = first + np.arange(unique.shape[0])
    next_slot = first + unique.shape[0]
    last = _last_uses(netlist.num_nodes, order, netlist)
    nodes = first + order
    free_nodes = ~fixed[nodes]
    pos = np.arange(order.shape[0], dtype=np.int64)
    chunk = _ALLOCATION_CHUNK
    # Free (non-output) gates of each chunk, and the gates whose slots free up at each chunk.
    alloc = nodes[free_nodes]
    alloc_bounds = np.searchsorted(pos[free_nodes] // chunk, np.arange(order.shape[0] // chunk + 2))
    release_chunk = np.maximum(last[alloc], pos[free_nodes]) // chunk + 1
    by_release = np.argsort(release_chunk, kind="stable")
    released = alloc[by_release]
    release_bounds = np.searchsorted(release_chunk[by_release], np.arange(alloc_bounds.shape[0]))
    free: list[int] = []
    for k in range(alloc_bounds.shape[0] - 1):
        free.extend(slot[released[release_bounds[k] : release_bounds[k + 1]]].tolist())
        targets = alloc[alloc_bounds[k] : alloc_bounds[k + 1]]
        reused = min(targets.shape[0], len(free))
        fresh = targets.shape[0] - reused
        taken = free[len(free) - reused :][::-1] if reused else []
        del free[len(free) - reused :]
        slot[targets] = taken + list(range(next_slot, next_slot + fresh))
        next_slot += fresh
    return slot, next_slot


def _index_type(limit: int) -> str:
    for bits in (8, 16, 32):
        if limit <= 2**bits:
            return f"uint{bits}_t"
    raise CBackendError(f"netlist has {limit} nodes, more than 32-bit indices can address")


def _table(name: str, ctype: str, values) -> CTable:
    """The table ``name`` of C number literals (or numbers) ``values``."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    text = [str(v) for v in values] or ["0"]
    lines = [", ".join(text[k : k + 16]) for k in range(0, len(text), 16)]
    return CTable(name, ctype, len(text), ",\n".join("    " + line for line in lines))


def _escapes() -> tuple[np.ndarray, np.ndarray]:
    """Each byte's spelling in a C string literal, as 4 bytes (padded) and a length: printable
    ASCII as is but ``"``, ``\\`` and ``?`` (trigraphs) escaped, others as three-digit octal."""
    spelled = np.zeros((256, 4), dtype=np.uint8)
    length = np.zeros(256, dtype=np.int64)
    for byte in range(256):
        char = chr(byte)
        text = "\\" + char if char in '"\\?' else char if 0x20 <= byte < 0x7F else f"\\{byte:03o}"
        spelled[byte, : len(text)] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        length[byte] = len(text)
    return spelled, length


_ESCAPES = _escapes()
#: Bytes of a row of :class:`Records` at most (C99 compilers must take strings of 4095 bytes).
_ROW_BYTES = 4095
#: Records up to this many are number literals, more are strings: gcc spends about 6 us per number
#: literal (6 s for a million) but little per string byte, while reading the byte records costs the
#: running kernel (2.8x slower on a 4 M-gate netlist), so only very large netlists take strings.
_NUMBER_RECORDS = 1 << 20


def _records(name: str, fields: np.ndarray, limit: int) -> Records:
    """``fields`` ``(count, k)`` of values below ``limit`` as :class:`Records`."""
    count, k = fields.shape
    field_bytes = max(1, (max(int(limit), 2) - 1).bit_length() + 7 >> 3)
    record_bytes = k * field_bytes
    if count <= _NUMBER_RECORDS:
        ctype = "uint32_t" if field_bytes == 4 else _index_type(limit)
        values = fields.ravel().tolist()
        table = _table(name, ctype, _hex(values, 8) if field_bytes == 4 else values)
        return Records(False, ctype, table.length, name, count, k, field_bytes, (), record_bytes,
                       0, 0, 0, 0, table.body)
    row_shift = max(0, (_ROW_BYTES // record_bytes).bit_length() - 1)
    shifts = np.arange(field_bytes, dtype=np.uint64) * np.uint64(8)
    data = ((fields.astype(np.uint64)[:, :, None] >> shifts) & np.uint64(0xFF)).astype(np.uint8)
    spelled, length = _ESCAPES
    per_row = record_bytes << row_shift
    data = data.reshape(-1)
    rows = []
    for start in range(0, data.shape[0], per_row * 256):  # bounded memory: 256 rows at a time
        block = data[start : start + per_row * 256]
        text = spelled[block][np.arange(4) < length[block][:, None]].tobytes().decode("ascii")
        ends = np.cumsum(length[block])[per_row - 1 :: per_row].tolist()
        if block.shape[0] % per_row:
            ends.append(len(text))
        rows.extend(f'    "{text[a:b]}"' for a, b in zip([0] + ends[:-1], ends))
    return Records(True, "unsigned char", data.shape[0], name, count, k, field_bytes,
                   tuple(range(0, 8 * field_bytes, 8)), record_bytes, row_shift, (1 << row_shift) - 1,
                   per_row + 1, len(rows), ",\n".join(rows))


def _hex(values, digits: int = 1) -> list:
    return [f"0x{int(v):0{digits}x}u" for v in values]


# --------------------------------------------------------------------------- parts of the source
def _word(word_bits: int) -> Word:
    lane_bits = min(word_bits, 64)
    return Word(word_bits, lane_bits, word_bits // lane_bits, lane_bits // 8, f"uint{lane_bits}_t",
                word_bits > 64)


def score_type(netlist: Netlist) -> tuple[str, type]:
    """C and numpy type of the scores: ``uint16_t`` unless offsets make them negative or wider."""
    offsets = netlist.offsets
    low = int(offsets.min()) if offsets.size else 0
    high = netlist.outputs_per_class + (int(offsets.max()) if offsets.size else 0)
    if low >= 0 and high <= 0xFFFF:
        return "uint16_t", np.uint16
    if low < _INT32.min or high > _INT32.max:
        raise CBackendError(f"class offsets {low}..{int(offsets.max())} give scores beyond int32_t")
    return "int32_t", np.int32


def _scores(netlist: Netlist, name: str) -> Scores:
    ctype, np_dtype = score_type(netlist)
    offsets = netlist.offsets.astype(np.int64)
    base = int(offsets.min()) if offsets.size else 0
    bias = offsets - base
    top = netlist.outputs_per_class + (int(bias.max()) if bias.size else 0)
    if top > _INT32.max:
        raise CBackendError(f"class offsets spread over {int(bias.max())}: scores beyond int32_t")
    return Scores(
        ctype, np_dtype, _c_number(base, "int32_t"), _table(f"{name}_class_bias", "uint32_t", _hex(bias)),
        max(1, top.bit_length()), max(1, (netlist.num_classes - 1).bit_length()),
    )


def _encoder_tables(enc: _Encoder, name: str, slot_index: str) -> EncoderTables:
    feature_index = _index_type(max(enc.num_features, 1))
    threshold_index = _index_type(max(len(enc.thresholds), 1) + 1)
    runs = list(zip(*enc.runs)) if enc.runs else [()] * 5
    return EncoderTables(
        threshold=_table(f"{name}_threshold", enc.ctype, [_c_number(t, enc.ctype) for t in enc.thresholds]),
        run_t0=_table(f"{name}_run_t0", threshold_index, runs[0]),
        run_p0=_table(f"{name}_run_p0", slot_index, runs[1]),
        run_stride=_table(f"{name}_run_stride", slot_index, runs[2]),
        run_f0=_table(f"{name}_run_f0", feature_index, runs[3]),
        run_len=_table(f"{name}_run_len", threshold_index, runs[4]),
        const0=_table(f"{name}_const0", slot_index, enc.const0),
        const1=_table(f"{name}_const1", slot_index, enc.const1),
        num_runs=len(enc.runs),
        num_thresholds=max(1, len(enc.thresholds)),
        num_const0=len(enc.const0),
        num_const1=len(enc.const1),
        feature_bytes=np.dtype(enc.np_dtype).itemsize,
        feature_signed=int(np.dtype(enc.np_dtype).kind == "i"),
    )


def _outputs(netlist: Netlist, slots: _Slots, name: str, compact: bool) -> Outputs:
    slot_index = _index_type(slots.num_slots)
    if compact:  # the table style counts runs of output slots (few), the others gather slots
        return Outputs(
            True, slot_index, None,
            _table(f"{name}_out_start", slot_index, [r[0] for r in slots.output_runs]),
            _table(f"{name}_out_len", _index_type(netlist.outputs_per_class + 1),
                   [r[1] for r in slots.output_runs]),
            _table(f"{name}_class_end", _index_type(len(slots.output_runs) + 1), slots.class_run_end),
        )
    return Outputs(False, slot_index, _table(f"{name}_out_slot", slot_index, slots.output_slots),
                   None, None, None)


# --------------------------------------------------------------------------- kernels
def _gate_cases() -> tuple:
    return tuple(Case(op, gates.GATE_NAMES[op], 2) for op in range(gates.NUM_GATES))


def _unrolled_kernel(netlist: Netlist, slots: _Slots, prefix: str, chunk_gates: int) -> UnrolledKernel:
    """Two-input gates only (LUT nodes are decomposed first, see :func:`plan`)."""
    s = slots.slot.tolist()
    ops, a, b = netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist()
    first = netlist.first_gate
    statements = [Statement(s[first + g], gates.GATE_NAMES[ops[g]], (s[a[g]], s[b[g]]))
                  for g in slots.order.tolist()]
    parts = tuple(
        Part(f"{prefix}_part{i}", tuple(statements[k : k + chunk_gates]))
        for i, k in enumerate(range(0, len(statements), chunk_gates))
    )
    return UnrolledKernel(parts)


def _groups(kind: np.ndarray, level: np.ndarray, order: np.ndarray):
    """Boundaries of the runs of equal (level, kind) in ``order``: (kind, end position) pairs."""
    if order.shape[0] == 0:
        return []
    key = (level * 32 + kind)[order]
    ends = list(np.flatnonzero(np.diff(key)) + 1) + [order.shape[0]]
    return [(int(kind[order[e - 1]]), int(e)) for e in ends]


def _levelized_kernel(netlist: Netlist, slots: _Slots, prefix: str) -> LevelizedKernel:
    order, s = slots.order, slots.slot
    first = netlist.first_gate
    index = _index_type(slots.num_slots)
    kind = _kinds(netlist)
    groups = _groups(kind, netlist.level, order)
    count = _index_type(max(netlist.num_gates, 1) + 1)
    is_lut = np.zeros(netlist.num_gates, dtype=bool)
    is_lut[netlist.lut_gates] = True
    rows = np.searchsorted(netlist.lut_gates, order[is_lut[order]])  # LUT rows in evaluation order
    arity = netlist.lut_arity[rows].astype(np.int64)
    fanin = s[netlist.lut_fanin[rows]][np.arange(6)[None, :] < arity[:, None]]
    gates_ = np.stack([s[first + order], s[netlist.a[order]], s[netlist.b[order]]], axis=1)
    return LevelizedKernel(
        gates=_records(f"{prefix}_gates", gates_, slots.num_slots),
        group_kind=_table(f"{prefix}_group_op", "uint8_t", [k for k, _ in groups]),
        group_end=_table(f"{prefix}_group_end", count, [end for _, end in groups]),
        lut_fanin=_table(f"{prefix}_lut_fanin", index, fanin),
        lut_table=_table(f"{prefix}_lut_table", "uint64_t", _hex(netlist.lut_table[rows].tolist())),
        num_groups=len(groups),
        cases=_gate_cases(),
        lut_cases=tuple(Case(LUT_OP + k - 1, f"LUT-{k}", k) for k in range(1, 7)),
        has_luts=bool(netlist.num_luts),
    )


def _pack_bits(values: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Concatenate the low ``widths[i]`` bits of ``values[i]``, LSB first, into 32-bit words
    (plus one zero word, so a reader may always look one word ahead)."""
    widths = widths.astype(np.int64)
    total = int(widths.sum())
    field = np.repeat(np.arange(values.shape[0]), widths)
    offset = np.arange(total) - np.repeat(np.cumsum(widths) - widths, widths)
    bits = ((values[field] >> offset.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)
    padded = np.zeros(32 * (total // 32 + 2), dtype=np.uint8)
    padded[:total] = bits
    return np.packbits(padded, bitorder="little").view("<u4")


def _lut_fields(netlist: Netlist, gates_: np.ndarray, slot: np.ndarray, base: int, width: int, arity: int):
    """Stream fields of LUT-``arity`` nodes: fan-in - base (``width`` bits each), then the table
    (``2**arity`` bits, as two 32-bit halves for a LUT-6): ``(values, widths)``, ``(n, fields)``."""
    row = np.searchsorted(netlist.lut_gates, gates_)
    fanin = slot[netlist.lut_fanin[row, :arity]] - base
    table = netlist.lut_table[row]
    halves = [table & np.uint64(0xFFFFFFFF), table >> np.uint64(32)] if arity == 6 else [table]
    values = np.concatenate([fanin.astype(np.uint64), np.stack(halves, axis=1)], axis=1)
    widths = np.array([width] * arity + ([32, 32] if arity == 6 else [1 << arity]), np.int64)
    return values, np.broadcast_to(widths, values.shape)


def _table_kernel(netlist: Netlist, slots: _Slots, prefix: str) -> TableKernel:
    """Pack each (level, kind) segment's gates as ``op:4 | a - base : w | b - base : w`` (an
    operand the op ignores takes no bits), or its LUT-k nodes as ``k`` fan-ins of ``w`` bits and
    the ``2**k``-bit table, into a 32-bit stream."""
    order, s = slots.order, slots.slot
    first = netlist.first_gate
    kind = _kinds(netlist)
    arity = np.where(kind >= LUT_OP, kind - LUT_OP + 1, 0)
    key = netlist.level * 8 + arity if netlist.num_gates else np.zeros(0, np.int64)
    key = key[order]
    ends = list(np.flatnonzero(np.diff(key)) + 1) + [order.shape[0]] if order.shape[0] else []
    values, widths, segments = [], [], []  # per segment: (n, fields) values and their widths
    reads_a = np.isin(netlist.op, list(_READS_A))
    reads_b = np.isin(netlist.op, list(_READS_B))
    fanin = _fanin_matrix(netlist)
    start = 0
    for end in ends:
        gates_ = order[start:end]
        k = int(arity[gates_[0]])
        read = s[fanin[gates_]]
        base = int(read.min())
        width = int(read.max() - base).bit_length()
        if k:
            v, w = _lut_fields(netlist, gates_, s, base, width, k)
        else:
            a, b = s[netlist.a[gates_]], s[netlist.b[gates_]]
            v = np.stack([netlist.op[gates_], a - base, b - base], axis=1).astype(np.uint64)
            w = np.stack([np.full(gates_.shape, 4), reads_a[gates_] * width, reads_b[gates_] * width], axis=1)
        values.append(v.ravel())
        widths.append(w.ravel())
        segments.append((base, width, first + int(end), k))
        start = end
    words = _pack_bits(
        np.concatenate(values) if values else np.zeros(0, np.uint64),
        np.concatenate(widths) if widths else np.zeros(0, np.int64),
    )
    index = _index_type(slots.num_slots)
    column = list(zip(*segments)) if segments else [()] * 4
    return TableKernel(
        stream=_records(f"{prefix}_stream", words[:, None], 2**32),
        seg_base=_table(f"{prefix}_seg_base", index, column[0]),
        seg_width=_table(f"{prefix}_seg_width", "uint8_t", column[1]),
        seg_end=_table(f"{prefix}_seg_end", _index_type(slots.num_slots + 1), column[2]),
        seg_arity=_table(f"{prefix}_seg_arity", "uint8_t", column[3]),
        num_segments=len(segments),
        reads_a=_hex([sum(1 << op for op in _READS_A)], 4)[0],
        reads_b=_hex([sum(1 << op for op in _READS_B)], 4)[0],
        first_gate=first,
        cases=_gate_cases(),
        has_luts=bool(netlist.num_luts),
    )


def c_string(text: str) -> str:
    """``text`` as a C string literal: its UTF-8 bytes, printable ASCII as is but ``"``, ``\\`` and
    ``?`` (trigraphs) escaped, every other byte as a three-digit octal escape (which no following
    character can extend)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append("\\" + char if char in '"\\?' else char if 0x20 <= byte < 0x7F else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


# --------------------------------------------------------------------------- the whole source
def plan(netlist: Netlist, name: str, word_bits: int, style: str, chunk_gates: int) -> Source:
    """The typed render context of ``netlist`` as C (options already checked)."""
    ident = c_identifier(name)
    upper = ident.upper()
    enc = _encoder(netlist)
    model = Model(enc.num_features, netlist.num_inputs, netlist.num_classes, netlist.outputs_per_class,
                  netlist.num_gates, netlist.num_luts, netlist.sha256, enc.ctype,
                  tuple(c_string(n) for n in netlist.class_names))
    if style == "unrolled":
        # Straight-line code: each LUT as its Shannon mux tree with the (constant) table folded
        # in, which the compiler optimizes far better than a call of the table evaluator (3-5x).
        netlist = decompose(netlist)
    slots = _slots(netlist, style)
    if style == "unrolled":
        kernel = _unrolled_kernel(netlist, slots, ident, chunk_gates)
    elif style == "levelized":
        kernel = _levelized_kernel(netlist, slots, ident)
    else:
        kernel = _table_kernel(netlist, slots, ident)
    return Source(
        name=ident, upper=upper, guard=f"{upper}_H_", style=style, word=_word(word_bits), model=model,
        encoder=_encoder_tables(enc, ident, _index_type(slots.num_slots)),
        outputs=_outputs(netlist, slots, ident, style == "table"),
        scores=_scores(netlist, ident), num_slots=slots.num_slots, kernel=kernel,
    )
