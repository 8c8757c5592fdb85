"""lgn.sort hardware twin: generated C and the Amaranth component against Python's sorted."""

import ctypes
import random
import subprocess
import sys
import textwrap

import pytest
from conftest import missing, require_tool

from lgn.sort import SortError, bitonic_network, odd_even_network, top_k_network
from lgn.hdl.sorter import C_TYPES, SortingNetworkComponent, emit_c

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]
NETWORKS = [bitonic_network(2), bitonic_network(5), bitonic_network(16), bitonic_network(23),
            odd_even_network(3), odd_even_network(12), top_k_network(20, 4)]
CTYPES = {"int8_t": ctypes.c_int8, "int16_t": ctypes.c_int16, "int32_t": ctypes.c_int32,
          "int64_t": ctypes.c_int64, "uint8_t": ctypes.c_uint8, "uint16_t": ctypes.c_uint16,
          "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64}


def _range(ctype):
    bits = int(ctype.rstrip("_t").lstrip("uint"))
    return (0, 2 ** bits - 1) if ctype.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _expected(network, values):
    """Python's sorted on the wires the network defines (all, or the top k)."""
    first = min(network.outputs)
    return sorted(values)[first:]


def _compile(compiler, tmp_path, source, name, extra=()):
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}.so"
    subprocess.run([compiler, *CFLAGS, *extra, "-shared", "-fPIC", str(src), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(out))


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_c_sorter_matches_sorted(compiler, tmp_path):
    require_tool(compiler)
    rnd = random.Random(7)
    cases = [(f"sort_{index}_{ctype[:-2]}", network, ctype)
             for index, network in enumerate(NETWORKS) for ctype in C_TYPES]
    # One translation unit holding every sorter: emitted code must not collide when combined.
    lib = _compile(compiler, tmp_path, "".join(emit_c(net, name, ctype) for name, net, ctype in cases), "all")
    for name, network, ctype in cases:
        low, high = _range(ctype)
        for _ in range(30):
            values = [rnd.choice((low, high, 0, rnd.randint(low, high), rnd.randint(-3, 3) % high))
                      for _ in range(network.n)]
            array = (CTYPES[ctype] * network.n)(*values)
            getattr(lib, name)(array)
            assert list(array)[min(network.outputs):] == _expected(network, values), (network.name, ctype)


def test_c_sorter_is_clean_under_sanitizers(tmp_path):
    require_tool("gcc")
    network = bitonic_network(13)
    harness = """
#include <stdio.h>
int main(void)
{
    int32_t v[LGN_SORT_N];
    unsigned seed = 12345u;
    int trial, i;
    for (trial = 0; trial < 1000; ++trial) {
        for (i = 0; i < LGN_SORT_N; ++i) {
            seed = seed * 1103515245u + 12345u;
            v[i] = (int32_t)(seed >> 1);
        }
        lgn_sort(v);
        for (i = 1; i < LGN_SORT_N; ++i) {
            if (v[i - 1] > v[i]) { printf("unsorted\\n"); return 1; }
        }
    }
    return 0;
}
"""
    src = tmp_path / "main.c"
    src.write_text(emit_c(network) + harness)
    exe = tmp_path / "main"
    build = subprocess.run(["gcc", *CFLAGS, "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            str(src), "-o", str(exe)], capture_output=True, text=True)
    if build.returncode and "sanitize" in build.stderr:
        missing("the gcc sanitizer runtime (libasan, libubsan) is not installed")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_emit_c_rejects_bad_arguments():
    with pytest.raises(SortError, match="C type"):
        emit_c(bitonic_network(4), ctype="float")
    with pytest.raises(SortError, match="identifier"):
        emit_c(bitonic_network(4), name="2sort")
    with pytest.raises(SortError, match="SortingNetwork"):
        emit_c("bitonic")


def _simulate(component, inputs_list, latency):
    from amaranth.sim import Simulator

    results = []

    async def bench(ctx):
        for values in inputs_list:
            for port, value in zip(component.inputs, values):
                ctx.set(port, value)
            if latency:
                await ctx.tick().repeat(latency)
            else:
                await ctx.delay(1e-9)
            results.append([ctx.get(port) for port in component.outputs])

    sim = Simulator(component)
    if latency:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("network", [bitonic_network(6), odd_even_network(5), top_k_network(9, 3)],
                         ids=lambda net: f"{net.name}{net.n}")
@pytest.mark.parametrize("signed", [False, True])
def test_amaranth_sorter_matches_sorted(network, signed):
    rnd = random.Random(3)
    width = 6
    low, high = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2 ** width - 1)
    inputs = [[rnd.randint(low, high) for _ in range(network.n)] for _ in range(40)]
    inputs.append([low, high] * (network.n // 2) + [0] * (network.n % 2))
    for pipelined in (False, True):
        component = SortingNetworkComponent(network, width, signed=signed, pipelined=pipelined)
        outputs = _simulate(component, inputs, network.depth if pipelined else 0)
        for values, out in zip(inputs, outputs):
            assert out[min(network.outputs):] == _expected(network, values)


def test_amaranth_sorter_verilog_lints_clean(tmp_path):
    require_tool("verilator")
    from amaranth.back import verilog

    for pipelined in (False, True):
        component = SortingNetworkComponent(bitonic_network(5), 8, signed=True, pipelined=pipelined)
        path = tmp_path / f"p{int(pipelined)}" / "sorter.v"
        path.parent.mkdir()
        path.write_text(verilog.convert(component, name="sorter"))
        lint = subprocess.run(["verilator", "--lint-only", "-Wall", str(path)],
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stderr


def test_component_rejects_bad_arguments():
    with pytest.raises(SortError, match="width"):
        SortingNetworkComponent(bitonic_network(4), 0)
    with pytest.raises(SortError, match="SortingNetwork"):
        SortingNetworkComponent([(0, 1)], 8)


def test_hardware_twin_without_torch():
    # The twin lives in lgn.hdl.sorter; lgn.sort re-exports it lazily, and neither path needs torch.
    script = textwrap.dedent("""
        import importlib.abc
        import sys

        class BlockTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, BlockTorch())
        import lgn.hdl
        from lgn.hdl import sorter
        from lgn.sort import SortingNetworkComponent, bitonic_network, emit_c
        from lgn.sort.hardware import emit_c as old_path
        assert SortingNetworkComponent is sorter.SortingNetworkComponent and old_path is emit_c
        assert "void lgn_sort" in emit_c(bitonic_network(4))
        assert "torch" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
