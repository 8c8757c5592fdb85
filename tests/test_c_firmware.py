"""The firmware example: the generated C on a Cortex-M4 under QEMU (freestanding, no SIMD: the
portable encoder) equals the reference interpreter, on the trained model and on drawn netlists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import missing
from lgn.compile import c, packed, reference
from lgn.compile.netlist import Netlist, ThermometerEncoding
from lgn.nn import gates
from strategies import examples, features_for, netlists
from test_c_luts import lut_netlists

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "firmware" / "firmware.py"


def load_example():
    spec = importlib.util.spec_from_file_location("lgn_firmware_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def firmware_or_skip():
    firmware = load_example()
    if firmware.missing_tools():
        missing(f"missing {', '.join(firmware.missing_tools())}")
    return firmware


@pytest.mark.tools
def test_firmware_under_qemu_equals_packed(digits_netlist, tmp_path):
    firmware = firmware_or_skip()
    net, x, _ = digits_netlist
    assert len(x) >= 100
    device = firmware.classify(net, x, tmp_path, style="table", word_bits=32)
    np.testing.assert_array_equal(device, packed.predict(net, net.encoding.encode(x)))
    np.testing.assert_array_equal(device, reference.predict(net, reference.encode(net, x)))


@pytest.mark.tools
def test_vector_words_on_a_32_bit_core(tmp_path):
    # 512-bit words of FALSE gates: GCC stores them with memset, which the example provides.
    enc = ThermometerEncoding(1, [0] * 4, [1e12, 0.5, -0.5, 0.0], "float32")
    net = Netlist(4, [gates.FALSE] * 6 + [gates.XOR], [0] * 7, [0] * 6 + [3], [7, 12, 8, 4],
                  num_classes=2, encoding=enc)
    x = np.array([[v] for v in (-1.0, 0.0, 0.25, 0.75, np.inf, np.nan)] * 3, dtype=np.float32)
    device = firmware_or_skip().classify(net, x, tmp_path, style="unrolled", word_bits=512)
    np.testing.assert_array_equal(device, reference.predict(net, reference.encode(net, x)))


@pytest.mark.tools
@examples(5)
@given(data=st.data(), net=netlists(min_inputs=1, max_inputs=40, max_gates=40, max_classes=6,
                                    max_outputs_per_class=10),
       style=st.sampled_from(c.STYLES), word_bits=st.sampled_from(c.WORD_BITS))
def test_drawn_netlists_under_qemu(data, net, style, word_bits, tmp_path_factory):
    # Every feature type through the portable encoder on a 32-bit target, soft-float compares
    # (at least one feature: the example's sample table cannot be empty).
    firmware = firmware_or_skip()
    features = data.draw(features_for(net, min_rows=1, max_rows=2 * word_bits + 5))
    device = firmware.classify(net, features, tmp_path_factory.mktemp("fw"), style=style,
                               word_bits=word_bits)
    np.testing.assert_array_equal(device, reference.predict(net, reference.encode(net, features)))


@pytest.mark.tools
@examples(4)
@given(data=st.data(), net=lut_netlists(min_inputs=1, max_inputs=20, max_nodes=30),
       style=st.sampled_from(c.STYLES), word_bits=st.sampled_from(c.WORD_BITS))
def test_drawn_lut_netlists_under_qemu(data, net, style, word_bits, tmp_path_factory):
    # k-input LUT nodes and class offsets through the single-sample firmware API on a Cortex-M4.
    firmware = firmware_or_skip()
    features = data.draw(features_for(net, min_rows=1, max_rows=2 * word_bits + 5))
    device = firmware.classify(net, features, tmp_path_factory.mktemp("fw"), style=style,
                               word_bits=word_bits)
    np.testing.assert_array_equal(device, reference.predict(net, reference.encode(net, features)))
