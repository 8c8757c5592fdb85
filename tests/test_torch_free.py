"""The IR and the hardware back end work on a machine without torch."""

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import require_tool

DATA = Path(__file__).with_name("data") / "old-release"

SCRIPT = textwrap.dedent("""
    import importlib.abc
    import sys
    import tempfile
    from pathlib import Path

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")

    sys.meta_path.insert(0, BlockTorch())

    import numpy as np
    from lgn.compile import c, formats, packed, passes, reference
    from lgn.hdl import to_verilog

    net = formats.load(sys.argv[1])
    small = passes.optimize(net)
    bits = np.random.default_rng(0).integers(0, 2, (200, net.num_inputs), dtype=np.uint8)
    assert np.array_equal(packed.predict(small, bits), reference.predict(net, bits))
    model = c.build(small, name="torch_free")
    assert np.array_equal(model.predict_bits(bits), reference.predict(net, bits))
    assert "module torch_free" in to_verilog(small, name="torch_free")
    assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
    print("ok")
""")


def test_compile_and_hdl_load_optimize_and_emit_without_torch(tmp_path):
    require_tool("gcc", "apt-get install gcc")
    script = tmp_path / "torch_free.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(DATA / "model.npz")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
