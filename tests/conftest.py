"""Shared fixtures: random netlists and a small trained digits model."""

from __future__ import annotations

import os
import re

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch

from lgn.compile.lower import lower
from lgn.compile.netlist import Netlist, ThermometerEncoding
from lgn.nn import LogicNet, Thermometer
from lgn.tools import find_tool

#: In CI (``CI=true``) a test whose tool is missing fails: a green run must not hide skipped tests.
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str) -> None:
    """Skip the running test because ``what`` is missing, or fail it in CI."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: tests that need a tool must run, not skip)", pytrace=False)
    pytest.skip(what)


def require_tool(name: str, install: str = "") -> str:
    """Return the path of the program ``name`` (found on PATH or beside this Python), else
    skip the test (fail it in CI)."""
    path = find_tool(name)
    if path is None:
        missing(f"{name} is not installed" + (f" ({install})" if install else ""))
    return path


def require_module(name: str, install: str = ""):
    """Return the imported Python module ``name``, else skip the test (fail it in CI).

    ImportWarnings it raises while loading (e.g. TorchLogix's "no CUDA features") are ignored."""
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)
            return importlib.import_module(name)
    except ImportError as exc:
        missing(f"Python module {name} is not installed ({exc})" + (f" ({install})" if install else ""))


def require_yosys() -> list[str]:
    """Return the command that runs Yosys (system or yowasp), else skip (fail in CI)."""
    from lgn.hdl import ToolMissingError
    from lgn.hdl.synth import find_yosys

    try:
        return find_yosys()
    except ToolMissingError as exc:
        missing(str(exc))


def require_nextpnr() -> list[str]:
    """Return the command that runs nextpnr-ice40 (system or yowasp), else skip (fail in CI)."""
    from lgn.hdl import ToolMissingError
    from lgn.hdl.synth import find_nextpnr

    try:
        return find_nextpnr()
    except ToolMissingError as exc:
        missing(str(exc))


def pytest_runtest_setup(item):
    special = {"yosys": require_yosys, "nextpnr-ice40": require_nextpnr}
    for mark in item.iter_markers("needs_tool"):
        for name in mark.args:
            special[name]() if name in special else require_tool(name)


def corrupt_first_five_vectors(testbench) -> None:
    """Flip one bit of the expected scores of a testbench's first five vectors (it must count 5)."""
    text = testbench.read_text()
    broken = re.sub(r"(expected_scores\[[0-4]\] = \d+'h)([0-9a-f]+)",
                    lambda m: m[1] + format(int(m[2], 16) ^ 1, "x"), text)
    assert broken != text
    testbench.write_text(broken)


def random_netlist(rng: np.random.Generator, num_inputs: int = 8, num_gates: int = 40,
                   num_classes: int = 3, outputs_per_class: int = 4, encoding: bool = False) -> Netlist:
    """A random valid netlist: every op, constants and inputs may feed gates and outputs."""
    ids = 2 + num_inputs + np.arange(num_gates)
    a = (rng.random(num_gates) * ids).astype(np.int64)
    b = (rng.random(num_gates) * ids).astype(np.int64)
    op = rng.integers(0, 16, num_gates)
    outputs = rng.integers(0, 2 + num_inputs + num_gates, num_classes * outputs_per_class)
    enc = None
    if encoding:
        num_features = max(1, num_inputs // 2)
        enc = ThermometerEncoding(
            num_features=num_features,
            feature=rng.integers(0, num_features, num_inputs),
            threshold=rng.integers(0, 255, num_inputs) + 0.5,
            dtype="uint8",
        )
    return Netlist(num_inputs, op, a, b, outputs, num_classes=num_classes, encoding=enc)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def digits_model():
    """A LogicNet trained for a few seconds on scikit-learn's digits: ``(model.eval(), X_test, y_test)``.

    ``X`` holds raw feature values 0..16 as float32.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1400], perm[1400:]
    torch.manual_seed(0)
    model = LogicNet(Thermometer.uniform(64, 3, 0, 16), 10, layers=2, width=600, tau=10, seed=0,
                     feature_dtype="uint8")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for step in range(150):
        idx = train[torch.randint(len(train), (128,))]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x[test], y[test]


@pytest.fixture(scope="session")
def digits_netlist(digits_model):
    """The lowered digits model and its raw test features: ``(netlist, X_test uint8, y_test)``."""
    model, x, y = digits_model
    return lower(model, meta={"dataset": "digits"}), x.numpy().astype(np.uint8), y.numpy()
