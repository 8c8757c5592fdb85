"""Emission for the C back end: render a plan with the jinja2 templates in ``templates/``."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import jinja2

from lgn import templates

from ..netlist import Netlist
from .plan import DEFAULT_CHUNK_GATES, DEFAULT_STYLE, STYLES, WORD_BITS, CBackendError, plan


# --------------------------------------------------------------------------- emission
@functools.cache
def _environment() -> jinja2.Environment:
    """The templates' environment (one per process: templates compile once)."""
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
        The network (two-input gates, k-input LUT nodes, class offsets); with an encoding the
        API takes raw features, else one byte per input bit.
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
    source = plan(netlist, name, word_bits, style, chunk_gates)
    context = {field.name: getattr(source, field.name) for field in dataclasses.fields(source)}
    env = _environment()
    header = env.get_template("c_header.h.j2").render(context)
    text = "".join(
        env.get_template(t).render(context)
        for t in ("c_prelude.c.j2", f"c_kernel_{style}.c.j2", "c_api.c.j2")
    )
    return {f"{source.name}.h": header, f"{source.name}.c": text}


def export(netlist: Netlist, out_dir, name: str = "model", **options) -> list[Path]:
    """Write ``NAME.h`` and ``NAME.c`` into ``out_dir`` (created if needed); return their paths.

    ``options`` are those of :func:`emit` (``word_bits``, ``style``, ``chunk_gates``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, text in emit(netlist, name, **options).items():
        path = out / filename
        tmp = out / f".{filename}.{os.getpid()}.tmp"
        try:
            tmp.write_text(text)
            os.replace(tmp, path)  # atomic: never a half-written file
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        paths.append(path)
    return paths
