"""The equivalence ladder on real data: every back end on a model's test set, compared bit for bit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CheckRow", "CheckReport", "run_checks"]


@dataclass
class CheckRow:
    backend: str
    samples: int = 0
    accuracy: float | None = None
    mismatches: int | None = None  # against the packed executor on the unoptimized netlist
    seconds: float = 0.0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 or (self.mismatches is None and self.note.startswith("skipped"))


@dataclass
class CheckReport:
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def table(self) -> str:
        lines = [f"{'back end':<28} {'samples':>7} {'accuracy':>9} {'mismatches':>10} {'time':>8}  note"]
        for r in self.rows:
            acc = f"{r.accuracy:.2%}" if r.accuracy is not None else "-"
            mis = str(r.mismatches) if r.mismatches is not None else "-"
            lines.append(f"{r.backend:<28} {r.samples:>7} {acc:>9} {mis:>10} {r.seconds:>7.1f}s  {r.note}")
        return "\n".join(lines)


def _row(backend, predictions, reference, labels, seconds, note="") -> CheckRow:
    n = len(predictions)
    return CheckRow(backend, n, float((predictions == labels[:n]).mean()),
                    int((predictions != reference[:n]).sum()), seconds, note)


def run_checks(model_path, dataset=None, data_dir=None, out: Path | None = None, vectors: int = 1000,
               log=print, simulator: str = "auto") -> CheckReport:
    """Evaluate the test set on every back end that classifies, and on Verilog; compare all.

    The reference is the packed executor on the netlist as stored; then each back end of
    :data:`lgn.targets.TARGETS` that classifies runs the optimized netlist (torch: the model, for
    checkpoints), those that export writing their files into ``out/NAME`` once and running those,
    and the Verilog testbench runs in ``out/verilog`` in ``simulator`` (see
    :func:`lgn.hdl.verilator.simulate_testbench`). A back end whose tool is missing is
    reported as skipped, not as agreeing. The model file is read once.
    """
    from lgn.io import load_for_eval
    from lgn.targets import TARGETS

    setup = load_for_eval(model_path, dataset, data_dir)
    netlist, labels = setup.file.netlist, np.asarray(setup.data.y_test)
    report = CheckReport()

    t = time.perf_counter()
    reference = setup.predictor("packed", optimized=False)()
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    optimized = setup.optimized
    fewer = 1 - optimized.num_gates / max(netlist.num_gates, 1)
    report.rows.append(_row("packed (reference)", reference, reference, labels, seconds,
                            f"{netlist.num_gates} gates; optimized: {optimized.num_gates} ({fewer:.0%} "
                            f"fewer) in {time.perf_counter() - t:.1f}s"))

    out = Path(out) if out is not None else Path(model_path).with_suffix("")
    for target in TARGETS.values():
        if not target.predicts or (target.source == "model" and setup.file.model is None):
            continue
        label = target.label or target.name
        missing = target.unavailable()
        if missing:
            report.rows.append(CheckRow(label, note=f"skipped: {missing}"))
            continue
        directory = out / target.name if target.writes == "directory" else None
        t = time.perf_counter()
        predictions = setup.predictor(target.name, out=directory, tuned=False)()
        note = str(directory) if directory else f"{optimized.num_gates} gates" if target.source == "netlist" else ""
        report.rows.append(_row(label, predictions, reference, labels, time.perf_counter() - t, note))
    report.rows.append(_check_verilog(optimized, setup.features[:vectors], reference, labels, out / "verilog", log,
                                       simulator))
    return report


def _check_verilog(netlist, features, reference, labels, out: Path, log, simulator: str = "auto") -> CheckRow:
    from lgn import hdl
    from lgn.hdl.verilator import choose_simulator, simulate_testbench

    try:
        simulator = choose_simulator(simulator)
    except hdl.ToolMissingError as exc:
        return CheckRow("verilog (testbench)", note=f"skipped: {exc}")
    name = f"verilog ({simulator} testbench)"
    log(f"simulating {len(features)} test samples through {netlist.num_gates} gates with {simulator}"
        + (" (minutes for a large net; --vectors trims it)" if simulator == "iverilog" else ""))
    t = time.perf_counter()
    paths = hdl.export(netlist, out, name="lgn_model", features=features)
    design = next(p for p in paths if p.name == "lgn_model.v")
    testbench = next(p for p in paths if p.name == "lgn_model_tb.v")
    _, mismatches = simulate_testbench(testbench, design, simulator)
    return CheckRow(name, len(features), None, int(mismatches), time.perf_counter() - t, f"{design}")
