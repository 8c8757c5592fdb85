"""The firmware example: the generated C on a Cortex-M4 under QEMU equals the packed executor."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lgn.compile import packed

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "firmware" / "firmware.py"


def load_example():
    spec = importlib.util.spec_from_file_location("lgn_firmware_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.tools
def test_firmware_under_qemu_equals_packed(digits_netlist, tmp_path):
    firmware = load_example()
    if firmware.missing_tools():
        pytest.skip(f"missing {', '.join(firmware.missing_tools())}")
    net, x, _ = digits_netlist
    assert len(x) >= 100
    device = firmware.classify(net, x, tmp_path, style="table", word_bits=32)
    np.testing.assert_array_equal(device, packed.predict(net, net.encoding.encode(x)))
