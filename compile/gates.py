"""The 16 two-input Boolean functions: the one gate table every part of lgn reads.

Gate ``i`` (0..15, in the order of Petersen et al., 2022) has the truth table encoded in the
bits of ``i`` itself: ``g_i(a, b) = (i >> (3 - 2*a - b)) & 1``. Each relaxation is affine in
``{1, a, b, a*b}``; :data:`COEFFICIENTS` holds those four coefficients per gate.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NUM_GATES", "GATE_NAMES", "TRUTH_TABLE", "COEFFICIENTS", "ANF",
    "FALSE", "AND", "A_AND_NOT_B", "A", "NOT_A_AND_B", "B", "XOR", "OR",
    "NOR", "XNOR", "NOT_B", "B_IMPLIES_A", "NOT_A", "A_IMPLIES_B", "NAND", "TRUE",
    "COMMUTATIVE", "READS_A", "READS_B", "BITWISE", "swap_inputs", "gate_value",
]

NUM_GATES = 16

(FALSE, AND, A_AND_NOT_B, A, NOT_A_AND_B, B, XOR, OR,
 NOR, XNOR, NOT_B, B_IMPLIES_A, NOT_A, A_IMPLIES_B, NAND, TRUE) = range(NUM_GATES)

GATE_NAMES = (
    "FALSE", "AND", "A_AND_NOT_B", "A", "NOT_A_AND_B", "B", "XOR", "OR",
    "NOR", "XNOR", "NOT_B", "B_IMPLIES_A", "NOT_A", "A_IMPLIES_B", "NAND", "TRUE",
)


def gate_value(op: int, a: int, b: int) -> int:
    """Return gate ``op`` applied to the bits ``a`` and ``b``."""
    return (op >> (3 - 2 * a - b)) & 1


#: ``TRUTH_TABLE[i, 2*a + b] = g_i(a, b)`` for the inputs (0,0), (0,1), (1,0), (1,1).
TRUTH_TABLE = np.array(
    [[gate_value(i, a, b) for a in (0, 1) for b in (0, 1)] for i in range(NUM_GATES)],
    dtype=np.uint8,
)
TRUTH_TABLE.flags.writeable = False

# Real relaxation g(a, b) = c0 + c1*a + c2*b + c3*a*b: interpolate the truth table bilinearly.
_t = TRUTH_TABLE.astype(np.float64)
COEFFICIENTS = np.stack(
    [_t[:, 0], _t[:, 2] - _t[:, 0], _t[:, 1] - _t[:, 0], _t[:, 3] - _t[:, 2] - _t[:, 1] + _t[:, 0]],
    axis=1,
)
"""``(16, 4)`` float64: coefficients of each gate's relaxation over ``{1, a, b, a*b}``."""
COEFFICIENTS.flags.writeable = False

# Algebraic normal form over GF(2): g = k0 ^ k1&a ^ k2&b ^ k3&a&b (the Boolean twin of the above).
ANF = (COEFFICIENTS.astype(np.int64) % 2).astype(np.uint8)
"""``(16, 4)`` uint8: XOR coefficients of each gate over ``{1, a, b, a&b}``."""
ANF.flags.writeable = False

#: Gates whose value depends on operand a (resp. b).
READS_A = frozenset(i for i in range(NUM_GATES) if (TRUTH_TABLE[i, 0:2] != TRUTH_TABLE[i, 2:4]).any())
READS_B = frozenset(i for i in range(NUM_GATES) if (TRUTH_TABLE[i, 0::2] != TRUTH_TABLE[i, 1::2]).any())

#: Each gate in the bitwise operators ``& | ^ ~``: works on bools, packed words (numpy, torch),
#: Amaranth values, or anything else that has them. FALSE and TRUE are ``a ^ a`` and ``~(a ^ a)``.
BITWISE = {
    FALSE: lambda a, b: a ^ a,
    AND: lambda a, b: a & b,
    A_AND_NOT_B: lambda a, b: a & ~b,
    A: lambda a, b: a,
    NOT_A_AND_B: lambda a, b: ~a & b,
    B: lambda a, b: b,
    XOR: lambda a, b: a ^ b,
    OR: lambda a, b: a | b,
    NOR: lambda a, b: ~(a | b),
    XNOR: lambda a, b: ~(a ^ b),
    NOT_B: lambda a, b: ~b,
    B_IMPLIES_A: lambda a, b: a | ~b,
    NOT_A: lambda a, b: ~a,
    A_IMPLIES_B: lambda a, b: ~a | b,
    NAND: lambda a, b: ~(a & b),
    TRUE: lambda a, b: ~(a ^ a),
}

#: Gates with g(a, b) == g(b, a).
COMMUTATIVE = frozenset(i for i in range(NUM_GATES) if TRUTH_TABLE[i, 1] == TRUTH_TABLE[i, 2])


def swap_inputs(op: int) -> int:
    """Return the gate ``h`` with ``h(b, a) == g_op(a, b)``."""
    t = TRUTH_TABLE[op]
    bits = (t[0], t[2], t[1], t[3])
    return int(sum(int(v) << (3 - k) for k, v in enumerate(bits)))

