"""C back end: bit-parallel C99 for a :class:`~lgn.compile.netlist.Netlist`.

:func:`emit` turns a netlist into a header and a source file (``NAME.h``, ``NAME.c``) that need
nothing but ``<stdint.h>`` and ``<stddef.h>``: no malloc, no libc, integer-only, static tables.
The generated code evaluates one machine word of samples at a time (``word_bits`` samples; 128,
256 and 512 use GCC/Clang vector extensions), applies the netlist's thermometer encoder to raw
features itself (on hosted x86 builds with byte features and 64-bit lanes, by transposing 64
samples to feature columns and comparing each column to a bitmask with SSE2, AVX2 or AVX-512BW
from ``<immintrin.h>``; elsewhere with portable compares and 8 x 8 transposes), counts each
class's output bits with a carry-save adder tree (starting from the class's score offset) and
takes the argmax bit-sliced, so ties go to the lowest class index as in the PyTorch model.

k-input LUT nodes (k = 1..6) are evaluated bit-parallel from their truth table in every style:
``levelized`` and ``table`` read the tables at run time (``templates/c_lut.c.j2``: the first two
fan-ins decoded by lookup, then a Shannon mux tree over the others); ``unrolled`` writes each LUT
as its Shannon mux tree with the table folded in (:func:`lgn.compile.luts.decompose`). Scores are
``uint16_t``, or ``int32_t`` (``NAME_score_t``) where class offsets make them negative or wider.

Styles of the gate kernel:

``unrolled``
    Straight-line code, one statement per gate, split into functions of ``chunk_gates``
    statements; gate values live in a reused slot array sized by the live set.
``levelized``
    Gates grouped by (level, op), LUT nodes by (level, k); one small loop per group over the
    gates' records (destination and operand slots, little-endian bytes in rows of string
    literals, which compilers read many times faster than number literals). Compiles in seconds
    for millions of gates; the default.
``table``
    The smallest flash: the gates as a bit-packed stream (op and two operands relative to a
    per-level base, with only as many bits as the level needs; a LUT node's fan-ins and truth
    table) in string literals, read by a short interpreter.

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
    fmnist_score_t scores[FMNIST_NUM_CLASSES];
    fmnist_scores(pixels, scores);                  /* per-class popcounts */
"""


from .build import CModel, build, compile_shared, find_compiler
from .emit import emit, export
from .plan import (
                   DEFAULT_CHUNK_GATES,
                   DEFAULT_STYLE,
                   STYLES,
                   WORD_BITS,
                   CBackendError,
                   CompilerNotFoundError,
                   c_identifier,
)

__all__ = [
    "emit", "export", "build", "CModel", "CBackendError", "CompilerNotFoundError",
    "c_identifier", "find_compiler", "compile_shared", "STYLES", "WORD_BITS", "DEFAULT_STYLE",
    "DEFAULT_CHUNK_GATES",
]
