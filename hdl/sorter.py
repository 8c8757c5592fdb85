"""The hard twin of a relaxed sorting network: the same comparator layers as C and as Amaranth.

Both back ends take a :class:`~lgn.sort.networks.SortingNetwork` (the one that was relaxed for
training) and build the integer sorter with exactly its comparators: ``emit_c`` renders the
``templates/sort.c.j2`` template, :class:`SortingNetworkComponent` is an Amaranth 0.5
``wiring.Component`` that can be simulated or converted to Verilog. Neither needs torch;
:mod:`lgn.sort` re-exports both.
"""

from __future__ import annotations

import re

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.hdl import signed as signed_shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lgn.sort.networks import SortError, SortingNetwork

from .tools import render

__all__ = ["C_TYPES", "emit_c", "SortingNetworkComponent"]

#: Element types accepted by :func:`emit_c`.
C_TYPES = ("int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t")

def emit_c(network: SortingNetwork, name: str = "lgn_sort", ctype: str = "int32_t") -> str:
    """Return C99 source defining ``void name(ctype v[n])``, the network with hard comparators.

    The function sorts ``v`` in place (for a top-k network it leaves the largest ``k`` values
    ascending in ``v[n-k..n-1]``). It is branch-free, allocation-free and compiles without
    warnings under ``-std=c99 -Wall -Wextra -Werror -pedantic``.
    """
    if not isinstance(network, SortingNetwork):
        raise SortError(f"network must be a SortingNetwork, got {type(network).__name__}")
    if ctype not in C_TYPES:
        raise SortError(f"unknown C type {ctype!r}, expected one of {C_TYPES}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SortError(f"C function name {name!r} is not an identifier")
    return render("sort.c.j2", dict(
        description=f"{network.name} network, n={network.n}",
        macro=name.upper(), name=name, ctype=ctype, n=network.n,
        first_output=min(network.outputs), depth=network.depth, size=network.num_comparators,
        layers=[[(i, j) for i, j in layer] for layer in network.layers],
    ))


class SortingNetworkComponent(wiring.Component):
    """Integer sorter in Amaranth with the comparators of ``network``.

    Args:
        network: the comparator network (e.g. ``bitonic_network(8)``).
        width: bits per element.
        signed: compare as two's-complement signed integers.
        pipelined: register every layer's outputs (latency ``network.depth`` cycles, one
            result per cycle, uses the ``sync`` domain); combinational otherwise.

    Ports:
        inputs: ``In(shape).array(n)``, the values to sort (Verilog ``inputs__0`` ...).
        outputs: ``Out(shape).array(n)``, ascending on the network's ``outputs`` wires.
    """

    def __init__(self, network: SortingNetwork, width: int, *, signed: bool = False,
                 pipelined: bool = False):
        # Amaranth warns about elaboratables that are never used; an invalid one never is.
        self._MustUse__silence = True
        if not isinstance(network, SortingNetwork):
            raise SortError(f"network must be a SortingNetwork, got {type(network).__name__}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise SortError(f"width must be a positive int, got {width!r}")
        self._MustUse__silence = False
        self.network, self.pipelined = network, pipelined
        self.shape = signed_shape(width) if signed else unsigned(width)
        # Port arrays (one signal per element) rather than an ArrayLayout view: the Verilog then
        # has no unused per-field debug wires and lints clean under `verilator -Wall`.
        super().__init__({"inputs": In(self.shape).array(network.n),
                          "outputs": Out(self.shape).array(network.n)})

    def elaborate(self, platform):
        m = Module()
        n, layers = self.network.n, self.network.layers
        last_use = {k: index for index, layer in enumerate(layers) for pair in layer for k in pair}
        wires = list(self.inputs)
        for index, layer in enumerate(layers):
            values = {}
            for i, j in layer:
                swap = wires[j] < wires[i]
                values[i], values[j] = Mux(swap, wires[j], wires[i]), Mux(swap, wires[i], wires[j])
            if self.pipelined:
                # Every layer is a register stage (plain expressions stay one layer deep); the
                # last one registers straight into the output ports.
                last = index == len(layers) - 1
                stage = list(self.outputs) if last else [
                    Signal(self.shape, name=f"l{index}_q{k}") for k in range(n)]
                m.d.sync += [q.eq(values.get(k, wires[k])) for k, q in enumerate(stage)]
                wires = stage
                continue
            # Named wires keep the simulator linear in the depth. A wire's final value drives
            # its output port directly: a named copy would be an unused alias in the Verilog.
            for k, value in values.items():
                final = last_use[k] == index
                target = self.outputs[k] if final else Signal(self.shape, name=f"l{index}_w{k}")
                m.d.comb += target.eq(value)
                wires[k] = target
        if not self.pipelined or not layers:
            m.d.comb += [self.outputs[k].eq(self.inputs[k]) for k in range(n) if k not in last_use]
        return m
