"""``lgn plot``: a PNG of the expected size from short runs; the install hint without matplotlib."""

import struct
import sys

import pytest
from click.testing import CliRunner
from conftest import missing

from lgn.cli import main
from lgn.plot import PANEL_PIXELS, gate_types_per_layer, load_synth_reports, save_synth_report

SMALL = ["--layers", "2", "--width", "200", "--tau", "10", "--lr", "0.05", "--encoder-bits", "3"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def png_size(path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        missing("matplotlib is not installed (pip install 'lgn[plot]')")
    root = tmp_path_factory.mktemp("runs")
    models = []
    for name, width in (("small", "100"), ("large", "200")):
        out = root / name / "model.pt"
        args = [a if a != "200" else width for a in SMALL]
        result = run("train", "--dataset", "digits", "--epochs", "2", "--out", out, *args)
        assert result.exit_code == 0, result.output
        models.append(out)
    return models


def test_plot_of_one_run_has_the_expected_size(runs, tmp_path):
    out = tmp_path / "one.png"
    result = run("plot", runs[0], "-o", out)
    assert result.exit_code == 0, result.output
    # loss, accuracy, gates per layer: one row of three panels
    assert png_size(out) == (3 * PANEL_PIXELS[0], PANEL_PIXELS[1])
    assert "training loss; test accuracy; small/model: gates per layer" in result.output
    assert f"({3 * PANEL_PIXELS[0]}x{PANEL_PIXELS[1]} px)" in result.output
    sized = tmp_path / "sized.png"
    result = run("plot", runs[0].parent, "-o", sized, "--size", "800x600")  # a run directory
    assert result.exit_code == 0, result.output
    assert png_size(sized) == (800, 600)


def test_plot_of_several_models_adds_accuracy_against_gates_and_lut6(runs, tmp_path):
    from lgn.hdl.synth import SynthReport

    report = SynthReport(target="xilinx", module="model", pipeline=0, latency=0, luts=57, lut_sizes={6: 50, 5: 7},
                         flip_flops=0, carry_cells=0, logic_depth=4, cells={"LUT6": 50, "LUT5": 7})
    saved = save_synth_report(runs[1], report)
    assert saved == runs[1].parent / "model.synth.json"
    assert load_synth_reports(runs[1])["xilinx"]["luts"] == 57
    out = tmp_path / "many.png"
    metrics = runs[0].with_name("model.metrics.jsonl")  # a model's record names the same run: drawn once
    result = run("plot", runs[0], runs[1], metrics, "-o", out)
    assert result.exit_code == 0, result.output
    panels = result.output.split("px): ")[1].strip().split("; ")
    assert panels == ["training loss", "test accuracy", "small/model: gates per layer",
                      "large/model: gates per layer", "accuracy against gates", "accuracy against LUT6"]
    assert png_size(out) == (3 * PANEL_PIXELS[0], 2 * PANEL_PIXELS[1])


def test_a_netlist_file_without_record_is_evaluated_for_accuracy_against_gates(runs, tmp_path):
    from lgn.compile import formats
    from lgn.io import load_model_file
    from lgn.plot import find_run

    netlist = tmp_path / "exported.npz"
    formats.save(load_model_file(runs[0]).netlist, netlist)
    exported, trained = find_run(netlist), find_run(runs[0])
    assert exported.records == [] and trained.records
    assert exported.accuracy == trained.accuracy == trained.records[-1]["discrete_acc"]  # packed == torch
    result = run("plot", netlist, runs[1], "-o", tmp_path / "two.png")
    assert result.exit_code == 0, result.output
    assert "accuracy against gates" in result.output


def test_gate_types_per_layer_counts_every_gate_by_level():
    from lgn.compile.netlist import Netlist

    net = Netlist.from_text("inputs 2\ng4 = XOR x0 x1\ng5 = AND x0 x1\ng6 = OR g4 g5\noutputs g6 | g5\n")
    counts = gate_types_per_layer(net)
    assert counts.shape == (2, 17) and counts.sum() == 3
    assert counts[0, 6] == 1 and counts[0, 1] == 1 and counts[1, 7] == 1  # XOR, AND; then OR


def test_plot_bad_input(runs, tmp_path):
    for args, message in [
        ([tmp_path / "none.pt"], "none.pt does not exist"),
        ([tmp_path], "no model.pt and no run record"),
        ([runs[0], "--size", "big"], "--size big: expected WIDTHxHEIGHT"),
    ]:
        result = run("plot", *args, "-o", tmp_path / "x.png")
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    result = run("plot", runs[0], "-o", tmp_path / "x.gif")
    assert result.exit_code == 1 and "cannot write .gif" in result.output


def test_without_matplotlib_plot_says_how_to_install_it(runs, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    result = run("plot", runs[0], "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.output.strip() == "lgn: error: lgn plot needs matplotlib: pip install 'lgn[plot]'"
    assert not (tmp_path / "x.png").exists()
