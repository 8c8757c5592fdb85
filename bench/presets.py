"""One table of trained presets: accuracy, gates, FPGA LUTs and training time, all read in one run.

For each checkpoint: the preset it was trained with (the ``--arch`` preset of
:data:`lgn.train.ARCH_PRESETS` whose logic layers it has, else ``custom``), its logic layers,
the discretized test accuracy (the packed executor on the optimized netlist, i.e. the circuit
that is synthesized), the gates (LUT-k nodes included) after :func:`lgn.compile.passes.optimize`
and how many of them are LUT nodes, the Xilinx LUT count (Yosys ``synth_xilinx``, as
``lgn synth --target xilinx``), the iCE40 LUT4 count where a report is kept, the epochs and
the training wall time (the ``seconds`` of the last record in ``MODEL.metrics.jsonl``, which
counts the whole run, resumed parts included; see :mod:`lgn.train.records`).

A synthesis report ``MODEL.synth.json`` newer than ``MODEL`` is reused; otherwise Yosys runs
(minutes for ~10 k LUTs) and the report is saved beside the model, as ``lgn synth`` does. iCE40
is never synthesized here (give ``lgn synth MODEL --target ice40`` first to get the column).
Training times are those the runs recorded, on whatever machine and load they had; compare them
only between runs made under the same conditions.

    python bench/presets.py [MODEL ...] [--runs runs] [--no-synth]

Without MODEL: ``RUNS/digits/model.pt``, ``RUNS/digits-lut/model.pt``,
``RUNS/fashion-mnist/model.pt`` and ``RUNS/fashion-mnist-lut/model.pt`` (those that exist).
``--no-synth`` shows only reports that are up to date (``-`` elsewhere).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

#: The default checkpoints, under ``--runs``: the dense and lut presets of digits and Fashion-MNIST.
DEFAULT_RUNS = ("digits", "digits-lut", "fashion-mnist", "fashion-mnist-lut")
COLUMNS = ("model", "preset", "layers", "acc", "gates", "LUT nodes", "Xilinx LUTs", "iCE40 LUT4",
           "epochs", "train s")


def preset_of(config: dict) -> str:
    """The ``--arch`` preset whose logic layers ``config`` has (``dense``, ``lut``, ...), else ``custom``."""
    from lgn.nn import spec
    from lgn.train import ARCH_PRESETS, TrainConfig

    dataset = (config.get("dataset") or "").split(":")[0]
    layers = spec.from_config(config).layers
    for name, by_dataset in ARCH_PRESETS.items():
        if dataset not in by_dataset:
            continue
        preset = dataclasses.asdict(TrainConfig.for_dataset(dataset, arch=name))
        if spec.from_config(preset).layers == layers:
            return name
    return "custom"


def layers_text(config: dict) -> str:
    """The logic layers of ``config`` as spec text (no encoder, no head), plus the encoder's bits."""
    from lgn.nn import spec

    layers = str(spec.Spec(spec.from_config(config).layers))
    bits, method = config.get("encoder_bits"), config.get("encoder_method")
    return f"thermo({bits}, {method}) {layers}" if bits else layers


def fresh_reports(model: Path) -> dict:
    """The synthesis reports kept beside ``model`` by target, if written after ``model``."""
    from lgn.plot import load_synth_reports, synth_report_path

    path = synth_report_path(model)
    if not path.is_file() or path.stat().st_mtime < model.stat().st_mtime:
        return {}
    return load_synth_reports(model)


def xilinx_luts(model: Path, netlist, synthesize: bool) -> int | None:
    """The Xilinx LUT count of ``netlist`` (optimized): from an up-to-date report, else Yosys."""
    from lgn import hdl
    from lgn.plot import save_synth_report

    report = fresh_reports(model).get("xilinx")
    if report is not None:
        return int(report["luts"])
    if not synthesize:
        return None
    start = time.perf_counter()
    result = hdl.synth(netlist, "xilinx", name="model")
    print(f"  {model}: synth_xilinx {result.luts} LUTs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    save_synth_report(model, result)
    return int(result.luts)


def row(model: Path, synthesize: bool) -> list[str]:
    """The table row of the checkpoint ``model``."""
    from lgn.io import load_for_eval
    from lgn.train.records import metrics_path, read_records

    setup = load_for_eval(model)
    config = setup.file.config or {}
    optimized = setup.optimized
    accuracy = float((setup.predict("packed") == np.asarray(setup.data.y_test)).mean())
    luts = xilinx_luts(model, optimized, synthesize)
    ice40 = fresh_reports(model).get("ice40")
    records = read_records(metrics_path(model)) if metrics_path(model).is_file() else []
    last = records[-1] if records else {}
    return [str(model), preset_of(config), layers_text(config), f"{accuracy:.2%}", f"{optimized.num_gates:,}",
            f"{optimized.num_luts:,}", "-" if luts is None else f"{luts:,}",
            "-" if ice40 is None else f"{int(ice40['luts']):,}", str(last.get("epoch", "-")),
            f"{last['seconds']:.0f}" if "seconds" in last else "-"]


def table(rows: list[list[str]]) -> str:
    """``rows`` under :data:`COLUMNS`, aligned (text left, numbers right)."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    left = {0, 1, 2}
    fmt = lambda cells: "  ".join(c.ljust(w) if i in left else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(COLUMNS), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="checkpoints [the dense and lut presets under --runs]")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the default checkpoints are")
    parser.add_argument("--no-synth", action="store_true", help="only reuse up-to-date synthesis reports")
    args = parser.parse_args(argv)
    models = args.models or [p for p in (args.runs / name / "model.pt" for name in DEFAULT_RUNS) if p.is_file()]
    missing = [str(p) for p in models if not p.is_file()]
    if missing or not models:
        print(f"bench/presets.py: no such checkpoint: {', '.join(missing) or args.runs / '*/model.pt'}",
              file=sys.stderr)
        return 1
    rows = [row(model, not args.no_synth) for model in models]
    print(table(rows))
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; acc: packed executor, optimized "
          "netlist, test split; train s: the run's recorded wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
