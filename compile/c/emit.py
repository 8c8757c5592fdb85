"""Emission for the C back end: render a plan with the jinja2 templates in ``templates/``."""

from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np

from lgn import templates

from ..luts import require_two_input_gates
from ..netlist import Netlist
from .plan import (
    DEFAULT_CHUNK_GATES,
    DEFAULT_STYLE,
    STYLES,
    WORD_BITS,
    CBackendError,
    _c_number,
    _encoder,
    _index_type,
    _levelized_kernel,
    _plan,
    _table,
    _table_kernel,
    _unrolled_kernel,
    c_identifier,
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
    require_two_input_gates(netlist, "C")
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
        "class_names": [c_string(n) for n in netlist.class_names],
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


