"""C back end: the generated C equals the packed executor, builds warning-free, handles edge cases."""

from __future__ import annotations

import itertools
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import random_netlist
from lgn.compile import c, packed
from lgn.compile.netlist import Netlist, ThermometerEncoding

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
X86 = platform.machine().lower() in ("x86_64", "amd64")
#: The x86 column encoder's compare has one branch per instruction set.
X86_ISAS = ("sse2", "avx2", "avx512bw")
FAST = ("-O1",)  # many small builds: the compiler's time dominates, not the run


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed")
    return path


def reference(net: Netlist, features: np.ndarray) -> np.ndarray:
    bits = net.encoding.encode(features) if net.encoding is not None else features != 0
    return packed.run(net, bits)


def random_features(rng, net: Netlist, n: int) -> np.ndarray:
    if net.encoding is None:
        return rng.integers(0, 2, (n, net.num_inputs)).astype(np.uint8)
    return rng.integers(0, 256, (n, net.encoding.num_features)).astype(np.uint8)


def check_model(model: c.CModel, net: Netlist, features: np.ndarray) -> None:
    expected = reference(net, features)
    np.testing.assert_array_equal(model.scores(features), expected)
    np.testing.assert_array_equal(model.predict(features), expected.argmax(axis=1))
    bits = net.encoding.encode(features) if net.encoding is not None else features != 0
    np.testing.assert_array_equal(model.scores_bits(bits), expected)
    np.testing.assert_array_equal(model.predict_bits(bits), expected.argmax(axis=1))


# ------------------------------------------------------------------ equivalence
@pytest.mark.parametrize("style,word_bits", [("levelized", 64), ("unrolled", 32), ("table", 8),
                                             ("levelized", 256)])
def test_equals_packed_on_random_netlists(rng, style, word_bits):
    # One build, many inputs: a netlist with every op, constants and inputs among the outputs.
    net = random_netlist(rng, num_inputs=20, num_gates=600, num_classes=5, outputs_per_class=9,
                         encoding=True)
    model = c.build(net, style=style, word_bits=word_bits, cflags=FAST, chunk_gates=100)
    check_model(model, net, random_features(rng, net, 3 * word_bits + 5))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), style=st.sampled_from(c.STYLES),
       word_bits=st.sampled_from(c.WORD_BITS), encoding=st.booleans())
def test_property_equals_packed(seed, style, word_bits, encoding):
    rng = np.random.default_rng(seed)
    net = random_netlist(rng, num_inputs=int(rng.integers(1, 16)), num_gates=int(rng.integers(0, 120)),
                         num_classes=int(rng.integers(1, 6)), outputs_per_class=int(rng.integers(1, 20)),
                         encoding=encoding)
    model = c.build(net, style=style, word_bits=word_bits, cflags=FAST, chunk_gates=7)
    check_model(model, net, random_features(rng, net, int(rng.integers(0, 2 * word_bits + 3))))


@pytest.mark.slow
@pytest.mark.parametrize("style,word_bits", itertools.product(c.STYLES, c.WORD_BITS))
def test_matrix_equals_packed(rng, style, word_bits):
    for encoding in (False, True):
        net = random_netlist(rng, num_inputs=17, num_gates=400, num_classes=3, outputs_per_class=11,
                             encoding=encoding)
        model = c.build(net, style=style, word_bits=word_bits, cflags=FAST, chunk_gates=50)
        check_model(model, net, random_features(rng, net, 2 * word_bits + 7))


@pytest.mark.parametrize("style", ["levelized", "table"])
def test_trained_digits_test_set(digits_netlist, style):
    net, x, y = digits_netlist
    model = c.build(net, style=style, word_bits=64, cflags=FAST)
    expected = reference(net, x)
    np.testing.assert_array_equal(model.scores(x), expected)
    predictions = model.predict(x)
    np.testing.assert_array_equal(predictions, expected.argmax(axis=1))
    assert (predictions == y).mean() > 0.5  # a trained model, not a constant


@pytest.mark.slow
def test_trained_digits_unrolled_vector(digits_netlist):
    net, x, _ = digits_netlist
    model = c.build(net, style="unrolled", word_bits=512, cflags=FAST)
    np.testing.assert_array_equal(model.scores(x), reference(net, x))


# ------------------------------------------------------------------ encoder
@pytest.mark.parametrize("dtype", ["int8", "uint16", "int16", "int32", "float32"])
def test_encoder_feature_types(rng, dtype):
    info = np.finfo(np.float32) if dtype == "float32" else np.iinfo(dtype)
    lo, hi = (-1000.0, 1000.0) if dtype == "float32" else (float(info.min), float(info.max))
    num_features, num_inputs = 6, 30
    # Thresholds inside the range, on integers, just outside both ends and far outside.
    threshold = np.concatenate([
        rng.uniform(lo, hi, 20), np.floor(rng.uniform(lo, hi, 4)),
        [lo - 0.5, lo - 1e12, hi, hi + 0.5, hi + 1e12, 0.1],
    ])
    if dtype == "float32":  # beyond float32's range: rounds to -inf / FLT_MAX
        threshold[-2:] = [-1e300, 1e300]
    enc = ThermometerEncoding(num_features, rng.integers(0, num_features, num_inputs), threshold, dtype)
    net = random_netlist(rng, num_inputs=num_inputs, num_gates=100, num_classes=2)
    net = net.replace(encoding=enc)
    if dtype == "float32":
        x = rng.uniform(lo, hi, (200, num_features)).astype(np.float32)
        with np.errstate(over="ignore"):
            on = threshold.astype(np.float32)
        for i, (f, t) in enumerate(zip(enc.feature, on)):  # values on and beside thresholds
            x[i, f] = t
            x[i + 50, f] = np.nextafter(t, np.float32(np.inf))
    else:
        x = rng.integers(info.min, int(info.max) + 1, (200, num_features), dtype=np.int64).astype(dtype)
        x[0], x[1] = info.min, info.max
    model = c.build(net, word_bits=32, cflags=FAST)
    np.testing.assert_array_equal(model.scores(x), packed.run(net, enc.encode(x)))


def cpu_has(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.mark.parametrize("isa", X86_ISAS)
def test_column_encoder_on_each_instruction_set(rng, isa):
    # Features in random order (runs of one), a partial last 64-feature chunk, several 64-sample
    # lanes per word with the last ones empty.
    if not X86 or not cpu_has(isa):
        pytest.skip(f"needs an x86 CPU with {isa}")
    net = random_netlist(rng, num_inputs=400, num_gates=300, num_classes=4, outputs_per_class=6,
                         encoding=True)
    assert net.encoding.num_features % 64 != 0
    for word_bits in (64, 512):
        model = c.build(net, word_bits=word_bits, cflags=("-O1", f"-m{isa}"))
        check_model(model, net, random_features(rng, net, 2 * word_bits + 37))


# ------------------------------------------------------------------ edge cases
def test_no_gates_and_one_class(rng):
    # Outputs wired straight to inputs and constants; a single class.
    net = Netlist(num_inputs=5, op=[], a=[], b=[], outputs=[0, 1, 2, 6, 6, 3], num_classes=1)
    model = c.build(net, style="table", word_bits=16, cflags=FAST)
    check_model(model, net, random_features(rng, net, 37))
    for style in ("levelized", "unrolled"):
        net2 = net.replace(num_classes=3)
        check_model(c.build(net2, style=style, word_bits=8, cflags=FAST), net2,
                    random_features(rng, net2, 19))


def test_empty_batches_and_keyword_name(rng):
    net = random_netlist(rng, num_inputs=9, num_gates=50, encoding=True)
    model = c.build(net, name="int", word_bits=64, cflags=FAST)
    x = random_features(rng, net, 0)
    assert model.predict(x).shape == (0,)
    assert model.scores(x).shape == (0, net.num_classes)
    for n in (1, 63, 64, 65, 129):
        check_model(model, net, random_features(rng, net, n))


def test_c_identifier():
    assert c.c_identifier("int") == "int_"
    assert c.c_identifier("class") == "class_"
    assert c.c_identifier("fashion-mnist v2") == "fashion_mnist_v2"
    assert c.c_identifier("3x") == "m_3x"
    assert c.c_identifier("_x") == "m_x"


def test_bad_options_and_missing_compiler(rng, tmp_path):
    net = random_netlist(rng)
    with pytest.raises(c.CBackendError, match="word_bits"):
        c.emit(net, word_bits=24)
    with pytest.raises(c.CBackendError, match="style"):
        c.emit(net, style="fast")
    with pytest.raises(c.CompilerNotFoundError, match="no C compiler"):
        c.build(net, cc=str(tmp_path / "no-such-cc"))
    model = c.build(net, cflags=FAST)
    with pytest.raises(c.CBackendError, match=r"features have shape"):
        model.predict(np.zeros((3, 99), np.uint8))
    enc = random_netlist(rng, num_inputs=4, encoding=True)
    model = c.build(enc, cflags=FAST)
    np.testing.assert_array_equal(model.predict(np.full((2, 2), 7.0)), model.predict(np.full((2, 2), 7)))
    with pytest.raises(c.CBackendError, match="not all exact uint8"):
        model.predict(np.full((2, 2), 300.0))


# ------------------------------------------------------------------ quality gates
def strict_sources(tmp_path, rng):
    """Every style (and a vector width) of a random netlist with an encoder, in tmp_path."""
    net = random_netlist(rng, num_inputs=10, num_gates=80, encoding=True)
    paths = []
    for style, word_bits in [("levelized", 64), ("unrolled", 256), ("table", 32), ("table", 8)]:
        name = f"m_{style}_{word_bits}"
        paths.append(c.export(net, tmp_path, name=name, style=style, word_bits=word_bits)[1])
    return paths


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_strict_warnings(tmp_path, rng, compiler):
    cc = need(compiler)
    for source in strict_sources(tmp_path, rng):
        for isa in X86_ISAS if X86 else ("",):
            arch = [f"-m{isa}"] if isa else []
            subprocess.run([cc, *STRICT, "-O2", *arch, "-fsyntax-only", str(source)], check=True)
    header = tmp_path / "m_table_8.h"
    cxx = need("g++" if compiler == "gcc" else "clang++")
    subprocess.run([cxx, "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-fsyntax-only", str(header)], check=True)


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4"])
def test_arm_cross_compile(tmp_path, rng, cpu):
    cc = need("arm-none-eabi-gcc")
    for source in strict_sources(tmp_path, rng)[::2]:
        subprocess.run([cc, *STRICT, "-Os", f"-mcpu={cpu}", "-mthumb", "-ffreestanding", "-c",
                        str(source), "-o", str(source.with_suffix(".o"))], check=True)


DRIVER = r"""
#include <stdio.h>
#include "{name}.h"
static const {name}_feature_t x[] = {{ {features} }};
int main(void) {{
    uint16_t s[{n} * {upper}_NUM_CLASSES];
    int k[{n}];
    size_t i;
    {name}_scores_batch(x, {n}, s);
    {name}_predict_batch(x, {n}, k);
    for (i = 0; i < {n} * {upper}_NUM_CLASSES; ++i) printf("%u ", s[i]);
    for (i = 0; i < {n}; ++i) printf("%d ", k[i]);
    printf("%d\n", {name}_predict(x));
    return 0;
}}
"""


def test_sanitizers(tmp_path, rng, digits_netlist):
    cc = need("gcc")
    net = random_netlist(rng, num_inputs=14, num_gates=200, num_classes=3, outputs_per_class=7,
                         encoding=True)
    digits, x_digits, _ = digits_netlist  # long encoder runs: the SIMD compare and transpose
    for net, x, style, word_bits in [
        (net, random_features(rng, net, 77), "levelized", 64),
        (net, random_features(rng, net, 77), "unrolled", 128),
        (net, random_features(rng, net, 77), "table", 16),
        (digits, x_digits[:150], "levelized", 256),
    ]:
        expected = reference(net, x)
        name = f"san_{style}_{word_bits}"
        paths = c.export(net, tmp_path, name=name, style=style, word_bits=word_bits)
        driver = tmp_path / f"main_{name}.c"
        driver.write_text(DRIVER.format(name=name, upper=name.upper(), n=len(x),
                                        features=", ".join(map(str, x.ravel()))))
        exe = tmp_path / name
        subprocess.run([cc, *STRICT, "-O1", "-g", "-fsanitize=address,undefined",
                        "-fno-sanitize-recover=all", str(driver), str(paths[1]), "-o", str(exe)],
                       check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True)
        assert out.stderr == ""
        values = np.array(out.stdout.split(), dtype=np.int64)
        scores = values[: expected.size].reshape(expected.shape)
        np.testing.assert_array_equal(scores, expected)
        np.testing.assert_array_equal(values[expected.size : -1], expected.argmax(axis=1))
        assert values[-1] == expected[0].argmax()


def test_clang_build_equals_packed(digits_netlist):
    need("clang")
    net, x, _ = digits_netlist
    model = c.build(net, style="levelized", word_bits=256, cc="clang", cflags=("-O1",))
    np.testing.assert_array_equal(model.scores(x), reference(net, x))
