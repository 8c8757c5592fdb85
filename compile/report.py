"""Human-readable summary of a netlist: what ``lgn info`` prints."""

from __future__ import annotations

import json

import numpy as np

from lgn.compile.gates import GATE_NAMES, NUM_GATES

from .netlist import Netlist
from .passes import optimize

__all__ = ["describe"]


def describe(netlist: Netlist, optimized: Netlist | None = None, *, source: str | None = None,
             hashes: bool = False) -> str:
    """Return a multi-line summary of ``netlist``, and of it after :func:`~lgn.compile.passes.optimize`.

    Lists ``source`` (a line about the file, e.g. whether its checksum was verified) when given;
    with ``hashes`` the model's SHA-256 (:attr:`Netlist.sha256`) as stored and after optimization
    (the netlist ``lgn export`` compiles by default, whose hash the generated code carries); the
    inputs (and their encoding), the classes and outputs, tau, meta, then a table of gates per op,
    depth and total, before and after optimization. ``optimized`` may pass a result of
    ``optimize(netlist)`` computed already; by default it is computed here.
    """
    optimized = optimize(netlist) if optimized is None else optimized
    enc = netlist.encoding
    if enc is None:
        inputs = f"{netlist.num_inputs} input bits (no encoding: inputs are bits)"
    else:
        per_feature = np.bincount(enc.feature, minlength=enc.num_features)
        inputs = (f"{netlist.num_inputs} input bits: thermometer encoding of {enc.num_features} "
                  f"{enc.dtype} features, {per_feature.min()}..{per_feature.max()} bits per feature")
    direct = np.count_nonzero(netlist.outputs < netlist.first_gate)
    lines = [f"file     {source}"] if source else []
    if hashes:
        lines += [f"sha256   {netlist.sha256}  (the model as stored)",
                  f"         {optimized.sha256}  (after optimize: what lgn export compiles by default)"]
    lines += [
        f"inputs   {inputs}",
        f"outputs  {netlist.num_classes} classes x {netlist.outputs_per_class} output bits, "
        f"tau {netlist.tau:g}"
        + (f" ({direct} outputs are constants or input bits)" if direct else ""),
        f"meta     {json.dumps(netlist.meta, sort_keys=True)}",
        "",
    ]
    before = np.bincount(netlist.op, minlength=NUM_GATES)
    after = np.bincount(optimized.op, minlength=NUM_GATES)
    rows = [(GATE_NAMES[op], str(before[op]), str(after[op]))
            for op in range(NUM_GATES) if before[op] or after[op]]
    removed = 1 - optimized.num_gates / netlist.num_gates if netlist.num_gates else 0.0
    rows += [("depth", str(netlist.depth), str(optimized.depth)),
             ("total gates", str(netlist.num_gates), f"{optimized.num_gates} (-{100 * removed:.1f}%)")]
    header = ("gates", "as stored", "after optimize")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(3)]
    for row in [header] + rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    return "\n".join(lines) + "\n"
