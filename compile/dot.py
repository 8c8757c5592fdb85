"""Graphviz DOT of a small netlist: every gate by its op, the input bits, the outputs per class.

Nodes keep the netlist's names (:meth:`Netlist.node_name`): ``x<i>`` input bits (labelled with
their feature and threshold when the encoder is a thermometer), ``c0``/``c1`` constants, and
``g<id>`` gates labelled with their op name (``AND``, ``A_AND_NOT_B``, ... ``LUT3 0x96``). An edge
runs from each operand a gate reads to the gate (labelled ``a``/``b`` where the op is not
symmetric, ``i0``.. for LUT inputs); the outputs ``class<c>_<j>`` (the names of
:func:`lgn.compile.formats.output_names`) sit in one cluster per class. Only input bits and
constants that something reads are drawn. Netlists of more than ``max_nodes`` drawn nodes are
refused: a picture of them is unreadable, and Graphviz slow.

Examples
--------
>>> net = Netlist.from_text("inputs 2\\ng4 = XOR x0 x1\\noutputs g4 x0 | x1 c1\\n")
>>> print(to_dot(net, name="tiny"))  # doctest: +ELLIPSIS
digraph "tiny" {
...
  g4 [label="XOR\\ng4"];
  x0 -> g4;
  x1 -> g4;
...
"""

from __future__ import annotations

import numpy as np

from lgn.compile.gates import COMMUTATIVE, GATE_NAMES, READS_A, READS_B
from lgn.files import write_atomic

from .netlist import LUT_OP, Netlist, NetlistError

__all__ = ["MAX_NODES", "to_dot", "write_dot"]

#: Default limit on drawn nodes (gates, used input bits and constants, outputs).
MAX_NODES = 2000


def _quote(text: str) -> str:
    """A DOT double-quoted string holding ``text``."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _read_operands(netlist: Netlist) -> list[list[tuple[int, str]]]:
    """Per gate: the ``(node, edge label)`` of each operand its function reads."""
    fanins = netlist.fanins()
    result = []
    for g, (op, a, b) in enumerate(zip(netlist.op.tolist(), netlist.a.tolist(), netlist.b.tolist())):
        if op == LUT_OP:
            result.append([(node, f"i{j}") for j, node in enumerate(fanins[g])])
            continue
        both = op in READS_A and op in READS_B
        tag = both and op not in COMMUTATIVE
        operands = [(a, "a" if tag else "")] if op in READS_A else []
        operands += [(b, "b" if tag else "")] if op in READS_B else []
        result.append(operands)
    return result


def _sources(netlist: Netlist, operands) -> list[int]:
    """Constants and input bits that a gate or an output reads, in id order."""
    used = {node for gate in operands for node, _ in gate} | set(netlist.outputs.tolist())
    return sorted(node for node in used if node < netlist.first_gate)


def _source_label(netlist: Netlist, node: int) -> str:
    if node < 2:
        return str(node)
    name, enc = netlist.node_name(node), netlist.encoding
    if enc is None:
        return name
    bit = node - 2
    return f"{name}\nf{int(enc.feature[bit])} > {float(enc.threshold[bit]):g}"


def _gate_label(netlist: Netlist, g: int, lut_row: dict) -> str:
    op = int(netlist.op[g])
    if op != LUT_OP:
        return f"{GATE_NAMES[op]}\ng{netlist.first_gate + g}"
    row = lut_row[g]
    table = int(netlist.lut_table[row])
    return f"LUT{int(netlist.lut_arity[row])} {table:#x}\ng{netlist.first_gate + g}"


def to_dot(netlist: Netlist, name: str = "lgn", max_nodes: int = MAX_NODES) -> str:
    """Return ``netlist`` as a Graphviz ``digraph`` named ``name`` (left to right, inputs first).

    Raises :class:`~lgn.compile.netlist.NetlistError` when it would draw more than
    ``max_nodes`` nodes: gates, the input bits and constants read, and outputs.
    """
    operands = _read_operands(netlist)
    sources = _sources(netlist, operands)
    total = netlist.num_gates + len(sources) + len(netlist.outputs)
    if total > max_nodes:
        raise NetlistError(
            f"the netlist has {total} nodes to draw ({netlist.num_gates} gates, {len(sources)} inputs "
            f"and constants, {len(netlist.outputs)} outputs), more than max_nodes {max_nodes}: DOT is "
            "for small netlists (raise the limit with --max-nodes N)")
    first = netlist.first_gate
    inputs = sum(1 for node in sources if node >= 2)
    summary = (f"{name}: {netlist.num_gates} gates, depth {netlist.depth}, {inputs} of "
               f"{netlist.num_inputs} input bits read, {netlist.num_classes} classes x "
               f"{netlist.outputs_per_class} outputs, tau {netlist.tau:g}")
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;", f"  label={_quote(summary)};", "  labelloc=t;",
             '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=8];']
    for node in sources:
        shape = "plaintext" if node < 2 else "box"
        lines.append(f"  {netlist.node_name(node)} [shape={shape}, label={_quote(_source_label(netlist, node))}];")
    lut_row = {int(g): row for row, g in enumerate(netlist.lut_gates)}
    for g, gate in enumerate(operands):
        lines.append(f"  g{first + g} [label={_quote(_gate_label(netlist, g, lut_row))}];")
        for node, tag in gate:
            attributes = f" [label={_quote(tag)}]" if tag else ""
            lines.append(f"  {netlist.node_name(node)} -> g{first + g}{attributes};")
    offsets = np.asarray(netlist.offsets)
    for c, group in enumerate(netlist.groups.tolist()):
        title = f"class {c}" + (f" ({int(offsets[c]):+d})" if offsets[c] else "")
        lines += [f"  subgraph cluster_class{c} {{", f"    label={_quote(title)};"]
        lines += [f"    class{c}_{j} [shape=ellipse, style=dashed];" for j in range(len(group))]
        lines.append("  }")
        lines += [f"  {netlist.node_name(node)} -> class{c}_{j};" for j, node in enumerate(group)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(netlist: Netlist, path, name: str = "lgn", max_nodes: int = MAX_NODES) -> None:
    """Write :func:`to_dot` of ``netlist`` to ``path`` atomically."""
    text = to_dot(netlist, name, max_nodes).encode("utf-8")
    write_atomic(path, lambda file: file.write(text))
