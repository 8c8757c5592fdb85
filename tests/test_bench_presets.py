"""Smoke test of bench/presets.py: a one-epoch digits run of the lut preset makes one table row."""

import importlib.util
from pathlib import Path

from lgn import data as datasets
from lgn.train import TrainConfig, train

BENCH = Path(__file__).resolve().parent.parent / "bench" / "presets.py"


def _presets():
    spec = importlib.util.spec_from_file_location("bench_presets", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_presets_table_names_the_preset_and_reads_the_record(tmp_path, capsys):
    presets = _presets()
    # the lut preset's layers, made narrow (still a lut spec, so 'custom'), and the preset itself
    narrow = TrainConfig.for_dataset("digits", arch="thermo(3, uniform) lut(60, k=6, m=4) lut(20, k=6, m=4)",
                                     epochs=1)
    assert presets.preset_of(narrow.__dict__) == "custom"
    assert presets.preset_of(TrainConfig.for_dataset("digits", arch="lut").__dict__) == "lut"
    assert presets.preset_of(TrainConfig.for_dataset("digits").__dict__) == "dense"
    model = tmp_path / "model.pt"
    train(narrow, datasets.load("digits"), out=model, progress=False, log=lambda line: None)
    assert presets.main([str(model), "--no-synth"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["model", "preset", "layers"]
    cells = lines[2].split()
    assert cells[0] == str(model) and cells[1] == "custom" and cells[-2] == "1"  # epochs from the record
    assert cells[-4] == "-"  # no synthesis report and --no-synth: no Xilinx LUT count
