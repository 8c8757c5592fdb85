"""C back end: the generated C equals the reference interpreter on hypothesis-drawn netlists, on
every encoder path, word width and style, builds warning-free, and handles edge cases."""

from __future__ import annotations

import itertools
import re
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import random_netlist
from ladder import STRICT, X86, c_models, check_c_model, encoder_paths, paths_for, tool
from lgn.compile import c, reference
from lgn.compile.c import plan
from lgn.compile.netlist import FEATURE_DTYPES, Netlist, ThermometerEncoding
from lgn.nn import gates
from strategies import examples, feature_pools, features_for, mixed_netlists, netlists, threshold_edges

PATHS = encoder_paths()
FAST = ("-O1",)  # many small builds: the compiler's time dominates, not the run
EVERY_CONFIG = [{"word_bits": w, "style": s} for w in c.WORD_BITS for s in c.STYLES]
#: Every style at a byte-lane width, a 64-bit lane and a vector of lanes (for edge cases).
FEW_CONFIGS = [{"word_bits": w, "style": s} for w in (8, 64, 512) for s in c.STYLES]


def random_features(rng, net: Netlist, n: int) -> np.ndarray:
    if net.encoding is None:
        return rng.integers(0, 2, (n, net.num_inputs)).astype(np.uint8)
    return rng.integers(0, 256, (n, net.encoding.num_features)).astype(np.uint8)


# ------------------------------------------------------------------ issue 11: signed bytes
def one_gate_int8_netlist() -> Netlist:
    """The netlist of issue 11: one int8 feature, threshold 0, one gate (A): class 1 = x > 0."""
    enc = ThermometerEncoding(1, [0], [0.0], "int8")
    return Netlist(1, [gates.A], [2], [2], [0, 3], num_classes=2, encoding=enc)


@pytest.mark.parametrize("path", PATHS)
def test_one_gate_int8_netlist_every_width_and_style(path):
    # -1 and -128 read as 255 and 128 gave class 1 at word_bits >= 64 (the column encoder).
    net = one_gate_int8_netlist()
    x = np.tile(np.array([[-128], [-127], [-1], [0], [1], [126], [127]], np.int8), (80, 1))
    assert reference.predict(net, reference.encode(net, x[:7])).tolist() == [0, 0, 0, 0, 1, 1, 1]
    for model, options in zip(c_models(net, EVERY_CONFIG, cflags=FAST + PATHS[path]), EVERY_CONFIG):
        check_c_model(model, net, x, f"{path} {options}")


# ------------------------------------------------------------------ drawn netlists
@examples(40)
@given(data=st.data(), net=netlists(max_inputs=70, max_gates=60, max_classes=12,
                                    max_outputs_per_class=40),
       style=st.sampled_from(c.STYLES), word_bits=st.sampled_from(c.WORD_BITS),
       path=st.sampled_from(sorted(PATHS)), cc=st.sampled_from(["gcc", "clang"]))
def test_drawn_netlists_equal_the_reference(data, net, style, word_bits, path, cc):
    # Any netlist, with or without an encoder of any feature type; one build, two feature draws.
    model, = c_models(net, [{"style": style, "word_bits": word_bits, "chunk_gates": 7}], cc=cc,
                      cflags=FAST + PATHS[path])
    for _ in range(2):
        x = data.draw(features_for(net, max_rows=2 * word_bits + 70))
        check_c_model(model, net, x, f"{cc} {path} {style}")


@examples(12)
@given(data=st.data(), net=mixed_netlists(max_inputs=30, max_gates=60, max_outputs_per_class=20),
       word_bits=st.sampled_from((8, 64, 512)), cc=st.sampled_from(["gcc", "clang"]))
def test_drawn_netlists_with_string_records(monkeypatch, data, net, word_bits, cc):
    # Large netlists keep their gate records (levelized) and gate stream (table) in string
    # literals; here every netlist does, LUT nodes and class offsets included.
    monkeypatch.setattr(plan, "_NUMBER_RECORDS", 0)
    configs = [{"style": style, "word_bits": word_bits} for style in ("levelized", "table")]
    x = data.draw(features_for(net, max_rows=2 * word_bits + 70))
    for model, options in zip(c_models(net, configs, cc=cc, cflags=FAST), configs):
        check_c_model(model, net, x, f"{cc} {options}")

@examples(6)
@given(data=st.data(), net=netlists(max_inputs=300, max_gates=40, encoding=True,
                                    dtypes=("int8", "uint8"), min_inputs=1),
       path=st.sampled_from(sorted(PATHS)))
def test_drawn_byte_encoders_every_width(data, net, path):
    # Byte features take the column encoder (64-bit lanes) or the vector compare: wide encoders
    # in lower()'s layout give runs of 32+ features and several 64-feature chunks.
    configs = [{"word_bits": w, "style": "levelized"} for w in (8, 32, 64, 512)]
    x = data.draw(features_for(net, max_rows=300))
    for model, options in zip(c_models(net, configs, cflags=FAST + PATHS[path]), configs):
        check_c_model(model, net, x, f"{path} {options}")


@pytest.mark.slow
@examples(25)
@given(data=st.data(), net=netlists(max_inputs=200, max_gates=80, max_classes=20,
                                    max_outputs_per_class=70),
       path=st.sampled_from(sorted(PATHS)), cc=st.sampled_from(["gcc", "clang"]))
def test_drawn_netlists_every_width_and_style(data, net, path, cc):
    x = data.draw(features_for(net, max_rows=1100))
    for model, options in zip(c_models(net, EVERY_CONFIG, cc=cc, cflags=FAST + PATHS[path]),
                              EVERY_CONFIG):
        check_c_model(model, net, x, f"{cc} {path} {options}")


@pytest.mark.parametrize("dtype", FEATURE_DTYPES)
def test_every_feature_type_at_its_limits(rng, dtype):
    # Thresholds at, beside and far beyond the type's limits; features at the limits, on the
    # thresholds and beside them (bytes: every value); float32 also zeros, subnormals, inf, NaN.
    # One class per input bit (the bit is its only output), so the scores show every bit.
    edges = threshold_edges(dtype)
    enc = ThermometerEncoding(5, np.arange(len(edges)) % 5, edges, dtype)
    net = Netlist(len(edges), [], [], [], 2 + np.arange(len(edges)), num_classes=len(edges),
                  encoding=enc)
    pools = feature_pools(net)
    x = np.stack([pool[rng.integers(0, len(pool), 300)] for pool in pools], axis=1)
    if dtype in ("int8", "uint8"):
        every = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1)
        x = np.concatenate([np.stack([np.roll(every, 51 * k) for k in range(5)], axis=1), x])
    configs = [{"word_bits": w, "style": "table"} for w in (8, 64, 512)]
    for path, flags in paths_for(dtype).items():
        for model, options in zip(c_models(net, configs, cflags=FAST + flags), configs):
            check_c_model(model, net, x.astype(dtype), f"{path} {dtype} {options}")


def test_float_features_given_as_float64_keep_nan(rng):
    enc = ThermometerEncoding(2, [0, 1], [0.5, -1.0], "float32")
    net = Netlist(2, [gates.OR], [2], [3], [4, 2], num_classes=2, encoding=enc)
    model, = c_models(net, [{"word_bits": 64}])
    x = np.array([[np.nan, np.nan], [1.0, np.nan], [np.inf, -np.inf], [0.25, 3.0]])
    check_c_model(model, net, x)
    with pytest.raises(c.CBackendError, match="not all exact float32"):
        model.predict(np.array([[0.1, 0.0]]))


# ------------------------------------------------------------------ trained model
@pytest.mark.parametrize("style", ["levelized", "table"])
def test_trained_digits_test_set(digits_netlist, style):
    net, x, y = digits_netlist
    model = c.build(net, style=style, word_bits=64, cflags=FAST)
    check_c_model(model, net, x)
    assert (model.predict(x) == y).mean() > 0.5  # a trained model, not a constant


def test_trained_digits_every_path(digits_netlist):
    net, x, _ = digits_netlist  # long encoder runs: the vector compare and transposes
    configs = [{"word_bits": 256, "style": "levelized"}]
    for path, flags in PATHS.items():
        for model, options in zip(c_models(net, configs, cflags=FAST + flags), configs):
            check_c_model(model, net, x, f"{path} {options}")


@pytest.mark.slow
def test_trained_digits_unrolled_vector(digits_netlist):
    net, x, _ = digits_netlist
    model = c.build(net, style="unrolled", word_bits=512, cflags=FAST)
    check_c_model(model, net, x)


def test_clang_build_equals_reference(digits_netlist):
    tool("clang")
    net, x, _ = digits_netlist
    check_c_model(c.build(net, style="levelized", word_bits=256, cc="clang", cflags=FAST), net, x)


# ------------------------------------------------------------------ edge cases
def test_no_gates_and_one_class(rng):
    # Outputs wired straight to inputs and constants; a single class.
    net = Netlist(num_inputs=5, op=[], a=[], b=[], outputs=[0, 1, 2, 6, 6, 3], num_classes=1)
    for classes in (1, 2, 3):
        net = net.replace(num_classes=classes)
        for model in c_models(net, FEW_CONFIGS, cflags=FAST):
            check_c_model(model, net, random_features(rng, net, 37))


def test_no_inputs(rng):
    plain = Netlist(0, [gates.TRUE, gates.XOR], [0, 2], [0, 1], [2, 3, 0, 1], num_classes=2)
    encoded = plain.replace(encoding=ThermometerEncoding(3, [], [], "int8"))
    for net, x in ((plain, np.zeros((9, 0), np.uint8)), (encoded, np.zeros((70, 3), np.int8))):
        for model in c_models(net, FEW_CONFIGS, cflags=FAST):
            check_c_model(model, net, x)


@pytest.mark.parametrize("per_class", [16, 255, 256, 1000])
def test_scores_at_and_beside_powers_of_two(rng, per_class):
    # Class 0 counts per_class constant ones, class 1 one bit less plus an input, class 2 inputs:
    # scores that fill every count plane, and a tie broken towards the lowest class.
    groups = [[1] * per_class, [1] * (per_class - 1) + [2], (2 + np.arange(per_class) % 3).tolist()]
    net = Netlist(3, [], [], [], np.concatenate(groups), num_classes=3)
    configs = [{"word_bits": 8, "style": "table"}, {"word_bits": 64, "style": "levelized"},
               {"word_bits": 512, "style": "unrolled"}]
    for model in c_models(net, configs, cflags=FAST):
        check_c_model(model, net, random_features(rng, net, 40))


def test_empty_batches_and_keyword_name(rng):
    net = random_netlist(rng, num_inputs=9, num_gates=50, encoding=True)
    model = c.build(net, name="int", word_bits=64, cflags=FAST)
    x = random_features(rng, net, 0)
    assert model.predict(x).shape == (0,)
    assert model.scores(x).shape == (0, net.num_classes)
    for n in (1, 63, 64, 65, 129):
        check_c_model(model, net, random_features(rng, net, n))



@pytest.mark.parametrize("number_records", [4096, plan._NUMBER_RECORDS], ids=["strings", "numbers"])
def test_slots_beyond_16_bits(rng, monkeypatch, number_records):
    # 70,000 gates of one level all live into the next: slots need three-byte record fields
    # (string records) or 32-bit numbers.
    monkeypatch.setattr(plan, "_NUMBER_RECORDS", number_records)
    wide, pairs = 70_000, 35_000
    first = 2 + 8
    op = np.concatenate([rng.integers(0, 16, wide), rng.integers(0, 16, pairs)])
    a = np.concatenate([rng.integers(2, first, wide), first + 2 * np.arange(pairs)])
    b = np.concatenate([rng.integers(2, first, wide), first + 2 * np.arange(pairs) + 1])
    net = Netlist(8, op, a, b, first + wide + np.arange(pairs), num_classes=5)
    source = c.emit(net)["model.c"]
    assert ("<< 16" in source) == (number_records < len(op))  # string records' fields have three bytes
    for model in c_models(net, [{"word_bits": 64, "style": "levelized"}, {"word_bits": 8, "style": "table"}],
                          cflags=FAST):
        check_c_model(model, net, random_features(rng, net, 70))


def test_large_tables_are_string_literals(rng, monkeypatch):
    # The gate records (levelized) and the gate stream (table) are rows of string literals, the
    # form a compiler reads many times faster than number literals.
    monkeypatch.setattr(plan, "_NUMBER_RECORDS", 4096)
    net = random_netlist(rng, num_inputs=20, num_gates=2 * plan._NUMBER_RECORDS, encoding=True)
    for style, table in (("levelized", "model_gates"), ("table", "model_stream")):
        source = c.emit(net, style=style)["model.c"]
        body = source.split(f"static const unsigned char {table}[", 1)[1]
        rows = body[: body.index("\n};")].splitlines()[1:]
        assert len(rows) > 1 and all(re.fullmatch(r'    "(?:[^"\\]|\\.)*",?', row) for row in rows)
    small = random_netlist(rng, num_inputs=20, num_gates=3000, encoding=True)
    assert "static const unsigned char model_gates[" not in c.emit(small)["model.c"]  # numbers


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
    """Every style (and a vector width) of random netlists with an encoder of each feature type."""
    paths = []
    for dtype in FEATURE_DTYPES:
        net = random_netlist(rng, num_inputs=10, num_gates=80)
        net = net.replace(encoding=ThermometerEncoding(5, rng.integers(0, 5, 10),
                                                       rng.uniform(-300, 300, 10), dtype))
        configs = [("levelized", 64), ("table", 8)]
        if dtype == "uint8":
            configs += [("unrolled", 256), ("table", 32)]
        for style, word_bits in configs:
            name = f"m_{dtype}_{style}_{word_bits}"
            paths.append(c.export(net, tmp_path, name=name, style=style, word_bits=word_bits)[1])
    return paths


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_strict_warnings(tmp_path, rng, compiler):
    cc = tool(compiler)
    for source in strict_sources(tmp_path, rng):
        for flags in PATHS.values():
            subprocess.run([cc, *STRICT, "-O2", *flags, "-fsyntax-only", str(source)], check=True)
    header = tmp_path / "m_uint8_table_8.h"
    cxx = tool("g++" if compiler == "gcc" else "clang++")
    subprocess.run([cxx, "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-fsyntax-only", str(header)], check=True)


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4"])
def test_arm_cross_compile(tmp_path, rng, cpu):
    cc = tool("arm-none-eabi-gcc")
    for source in strict_sources(tmp_path, rng)[::2]:
        subprocess.run([cc, *STRICT, "-Os", f"-mcpu={cpu}", "-mthumb", "-ffreestanding", "-c",
                        str(source), "-o", str(source.with_suffix(".o"))], check=True)


DRIVER = r"""
#include <stdio.h>
#include "{name}.h"
static const {name}_feature_t x[] = {{ {features} }};
int main(void) {{
    {name}_score_t s[{n} * {upper}_NUM_CLASSES];
    int k[{n}];
    size_t i;
    {name}_scores_batch(x, {n}, s);
    {name}_predict_batch(x, {n}, k);
    for (i = 0; i < {n} * {upper}_NUM_CLASSES; ++i) printf("%ld ", (long)s[i]);
    for (i = 0; i < {n}; ++i) printf("%d ", k[i]);
    printf("%d\n", {name}_predict(x));
    return 0;
}}
"""


def check_sanitized(tmp_path, net, x, style, word_bits, flags=()):
    """Build ``net`` with a driver under ASan/UBSan (gcc, strict flags), run it on raw features
    ``x``: silent, and its batch and single-sample scores and classes equal the reference's."""
    cc = tool("gcc")
    expected = reference.scores(net, reference.encode(net, x))
    dtype = net.encoding.dtype if net.encoding else "bits"
    name = f"san_{style}_{word_bits}_{dtype}"
    paths = c.export(net, tmp_path, name=name, style=style, word_bits=word_bits)
    driver = tmp_path / f"main_{name}.c"
    driver.write_text(DRIVER.format(name=name, upper=name.upper(), n=len(x),
                                    features=", ".join(map(str, x.ravel()))))
    exe = tmp_path / name
    subprocess.run([cc, *STRICT, "-O1", "-g", "-fsanitize=address,undefined", *flags,
                    "-fno-sanitize-recover=all", str(driver), str(paths[1]), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True)
    assert out.stderr == ""
    values = np.array(out.stdout.split(), dtype=np.int64)
    scores = values[: expected.size].reshape(expected.shape)
    np.testing.assert_array_equal(scores, expected)
    np.testing.assert_array_equal(values[expected.size : -1], expected.argmax(axis=1))
    assert values[-1] == expected[0].argmax()


def test_sanitizers(tmp_path, rng, digits_netlist):
    net = random_netlist(rng, num_inputs=14, num_gates=200, num_classes=3, outputs_per_class=7,
                         encoding=True)
    edges = threshold_edges("int8")
    signed = Netlist(len(edges), [], [], [], 2 + np.arange(len(edges)), num_classes=len(edges),
                     encoding=ThermometerEncoding(3, np.arange(len(edges)) % 3, edges, "int8"))
    digits, x_digits, _ = digits_netlist  # long encoder runs: the SIMD compare and transpose
    x_signed = np.tile(np.arange(-128, 128, 7, dtype=np.int8)[:, None], (3, 3))
    for net, x, style, word_bits, flags in [
        (net, random_features(rng, net, 77), "levelized", 64, ()),
        (net, random_features(rng, net, 77), "unrolled", 128, ()),
        (net, random_features(rng, net, 77), "table", 16, ()),
        (signed, x_signed, "levelized", 64, ("-mavx2",) if "column-avx2" in PATHS else ()),
        (digits, x_digits[:150], "levelized", 256, ()),
    ]:
        check_sanitized(tmp_path, net, x, style, word_bits, flags)


def test_encoder_paths_cover_every_instruction_set():
    # On x86 every compare branch of the column encoder is reachable on this CPU, or says why not.
    if X86:
        from ladder import cpu_has

        supported = {f"column-{isa}" for isa in ("avx512bw", "avx2", "sse2") if cpu_has(isa)}
        assert supported <= set(PATHS)
    assert {"freestanding", "portable"} <= set(PATHS)
    # The flags select the paths they claim: the macros the template tests are (un)defined.
    source = "#include <stdint.h>\n" + c.emit(one_gate_int8_netlist(), "m", word_bits=64)["m.c"]
    macros = {}
    for path, flags in PATHS.items():
        text = subprocess.run([tool("gcc"), "-std=c99", *flags, "-dM", "-E", "-x", "c", "-"],
                              input=source.replace('#include "m.h"', HEADER), capture_output=True,
                              text=True, check=True).stdout
        macros[path] = {m for m in ("COLUMN_ENCODER", "VECTOR_COMPARE", "HAVE_SIMD", "__AVX512BW__",
                                    "__AVX2__") if f"#define {m} " in text}
        gcc_version = int(re.search(r"#define __GNUC__ (\d+)", text)[1])
    for path, found in macros.items():
        if path.startswith("column-"):  # the column encoder needs GCC 12 (or clang)
            assert ("COLUMN_ENCODER" in found) == (gcc_version >= 12), path
        elif path == "freestanding":
            assert "COLUMN_ENCODER" not in found and "VECTOR_COMPARE" in found
        else:
            assert not found & {"COLUMN_ENCODER", "VECTOR_COMPARE", "HAVE_SIMD"}
    if "column-avx2" in macros:
        assert "__AVX2__" in macros["column-avx2"] and "__AVX512BW__" not in macros["column-avx2"]


HEADER = c.emit(one_gate_int8_netlist(), "m", word_bits=64)["m.h"]


@pytest.mark.slow
@pytest.mark.parametrize("style,word_bits", itertools.product(c.STYLES, c.WORD_BITS))
def test_matrix_equals_reference(rng, style, word_bits):
    for encoding in (False, True):
        net = random_netlist(rng, num_inputs=17, num_gates=400, num_classes=3, outputs_per_class=11,
                             encoding=encoding)
        model = c.build(net, style=style, word_bits=word_bits, cflags=FAST, chunk_gates=50)
        check_c_model(model, net, random_features(rng, net, 2 * word_bits + 7))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_vector_compare_of_short_runs_builds_strict_at_Os(dtype):
    """31 thresholds in one run: GCC -Os warned (-Warray-bounds) on the 32-wide loop it never runs."""
    thresholds = 31
    enc = ThermometerEncoding(20, [i % 20 for i in range(thresholds)], [float(10 + i) for i in range(thresholds)],
                              dtype)
    net = Netlist(thresholds, np.array([6], dtype=np.uint8), [2], [2 + thresholds - 1], [2 + thresholds],
                  num_classes=1, encoding=enc)
    for flags in (("-Os",), ("-Os", "-ffreestanding")):
        model = c.build(net, cc=tool("gcc"), cflags=(*STRICT, *flags))
        x = (np.arange(40 * 20) % 250 - (125 if dtype == 'int8' else 0)).astype(dtype).reshape(40, 20)
        assert np.array_equal(model.scores(x), reference.scores(net, reference.encode(net, x)))
