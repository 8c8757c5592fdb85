"""``lgn plot``: training curves, gate types per layer, and accuracy against circuit size.

Each argument is a run: a checkpoint or netlist file (its run record
``MODEL.metrics.jsonl`` beside it is read when present), a run record itself, or a run
directory holding ``model.pt``. :func:`plot` draws, on one figure:

* the training loss and the relaxed and discretized test accuracy per epoch of every run
  that has a record;
* per model, its gates per layer (logic level of the lowered, unoptimized netlist), stacked by
  gate type;
* with several models: discretized test accuracy against gates (after optimization) and, where
  a synthesis report ``MODEL.synth.json`` lies beside a model (:func:`save_synth_report`),
  against LUTs on a LUT6 part (the ``xilinx`` flow of ``lgn synth``).

Panels are laid out three to a row, :data:`PANEL_PIXELS` each, unless ``size`` gives the
figure's pixels. matplotlib is optional (``pip install 'lgn[plot]'``); without it
:func:`plot` raises :class:`PlotError` saying so. Nothing here needs a display (Agg canvas).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from lgn import files
from lgn.train.records import SUFFIX, metrics_path, read_records

__all__ = ["PlotError", "plot", "figure_pixels", "PANEL_PIXELS", "INSTALL_HINT", "synth_report_path",
           "save_synth_report", "load_synth_reports"]

#: Width and height of one panel in pixels (at :data:`DPI`).
PANEL_PIXELS = (480, 360)
DPI = 100
COLUMNS = 3
INSTALL_HINT = "lgn plot needs matplotlib: pip install 'lgn[plot]'"
SYNTH_SUFFIX = ".synth.json"


class PlotError(ValueError):
    """A plot cannot be drawn (no matplotlib, nothing to draw, a bad argument); one line says why."""


# --------------------------------------------------------------------------- synthesis reports
def synth_report_path(model: str | os.PathLike) -> Path:
    """Where the synthesis reports of ``model`` are kept: ``model.pt`` -> ``model.synth.json``."""
    model = Path(model)
    return model.with_name(model.stem + SYNTH_SUFFIX)


def save_synth_report(model: str | os.PathLike, report) -> Path:
    """Keep ``report`` (an :class:`lgn.hdl.synth.SynthReport`) beside ``model``, by target.

    The file holds one JSON object per target (``{"xilinx": {...}, "ice40": {...}}``, each the
    report's fields); a report for a target replaces the one before. Written atomically.
    """
    path = synth_report_path(model)
    reports = load_synth_reports(model)
    fields = dataclasses.asdict(report)
    fields["lut_sizes"] = {str(k): v for k, v in fields.get("lut_sizes", {}).items()}
    reports[report.target] = fields
    text = json.dumps(reports, indent=1, sort_keys=True) + "\n"
    files.write_atomic(path, lambda file: file.write(text.encode()))
    return path


def load_synth_reports(model: str | os.PathLike) -> dict:
    """The synthesis reports kept beside ``model`` by target (empty when there is no file)."""
    path = synth_report_path(model)
    if not path.is_file():
        return {}
    try:
        reports = json.loads(files.read_bytes(path))
    except (ValueError, files.InputFileError) as exc:
        raise PlotError(f"{path}: not a synthesis report file ({files.first_line(exc)})") from None
    if not isinstance(reports, dict) or not all(isinstance(r, dict) for r in reports.values()):
        raise PlotError(f"{path}: not a synthesis report file (expected an object of reports by target)")
    return reports


# --------------------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One argument of ``lgn plot``: a model file and/or its run record."""

    label: str
    model: Path | None
    records: list

    records_file: Path | None = None

    def same_as(self, other: "Run") -> bool:
        key = (self.model or self.records_file).resolve()
        return key == (other.model or other.records_file).resolve()

    @cached_property
    def file(self):
        """The model file (:class:`lgn.io.ModelFile`), or None for a record without its model."""
        if self.model is None:
            return None
        from lgn.io import load_model_file

        return load_model_file(self.model)

    @cached_property
    def optimized_gates(self) -> int:
        from lgn.compile.passes import optimize

        return optimize(self.file.netlist).num_gates

    @cached_property
    def accuracy(self) -> float | None:
        """Discretized test accuracy: the record's last epoch, else the packed executor's."""
        if self.records:
            return float(self.records[-1]["discrete_acc"])
        if self.file is None or not self.file.dataset:
            return None
        from lgn import data as datasets
        from lgn.io import EvalSetup

        try:
            data = datasets.load(self.file.dataset, self.file.data_dir, download=False)
        except datasets.DatasetError:
            return None
        setup = EvalSetup(self.file, data)
        return float((setup.predict("packed") == np.asarray(data.y_test)).mean())

    @cached_property
    def lut6(self) -> int | None:
        report = load_synth_reports(self.model).get("xilinx") if self.model is not None else None
        luts = report.get("luts") if report else None
        return luts if isinstance(luts, int) and not isinstance(luts, bool) else None


def find_run(argument: str | os.PathLike) -> Run:
    """The :class:`Run` that ``argument`` (a model, a run record or a run directory) names."""
    path = Path(argument)
    if path.is_dir():
        model = path / "model.pt"
        if not model.is_file():
            found = sorted(path.glob("*" + SUFFIX))
            if not found:
                raise PlotError(f"{path}: no model.pt and no run record (*{SUFFIX}) in this directory")
            return find_run(found[0])
        path = model
    elif not path.exists():
        raise PlotError(f"{path} does not exist")
    if path.name.endswith(SUFFIX):
        name = path.name[: -len(SUFFIX)]
        records_file, model = path, path.with_name(name + ".pt")
        model = model if model.is_file() else None
    else:
        name, records_file, model = path.stem, metrics_path(path), path
    records = read_records(records_file) if records_file.is_file() else []
    label = f"{path.parent.name}/{name}" if path.parent.name else name
    return Run(label, model, records, records_file)


# --------------------------------------------------------------------------------------- plot
def figure_pixels(panels: int, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The figure's (width, height) in pixels for ``panels`` panels: ``size`` if given."""
    if size is not None:
        return size
    columns = min(COLUMNS, panels)
    return PANEL_PIXELS[0] * columns, PANEL_PIXELS[1] * math.ceil(panels / columns)


def _canvas():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(INSTALL_HINT) from None
    return Figure, FigureCanvasAgg


def plot(arguments, out: str | os.PathLike, size: tuple[int, int] | None = None) -> tuple[Path, list[str]]:
    """Draw the runs ``arguments`` name into ``out`` (format by suffix: png, svg, pdf).

    Returns the path written and the titles of its panels, in order.
    """
    Figure, FigureCanvasAgg = _canvas()  # before any work: the install hint comes first
    out = Path(out)
    kind = out.suffix.lower().lstrip(".") or "png"
    if kind not in ("png", "svg", "pdf"):
        raise PlotError(f"-o {out}: cannot write .{kind}, expected a .png, .svg or .pdf file")
    if not arguments:
        raise PlotError("nothing to plot: give one or more models, run records or run directories")
    files.check_writable(out)
    runs = []
    for run in map(find_run, arguments):  # a model and its record name one run
        if not any(run.same_as(other) for other in runs):
            runs.append(run)
    drawers = []
    recorded = [r for r in runs if r.records]
    if recorded:
        drawers += [("training loss", lambda ax: _loss(ax, recorded)),
                    ("test accuracy", lambda ax: _accuracy_curves(ax, recorded))]
    modelled = [r for r in runs if r.model is not None]
    for run in modelled:
        drawers.append((f"{run.label}: gates per layer", lambda ax, run=run: _gate_types(ax, run)))
    if len(modelled) > 1:
        sized = [r for r in modelled if r.accuracy is not None]
        if len(sized) > 1:
            drawers.append(("accuracy against gates",
                            lambda ax: _scatter(ax, sized, lambda r: r.optimized_gates, "gates (optimized)")))
            with_luts = [r for r in sized if r.lut6 is not None]
            if with_luts:
                drawers.append(("accuracy against LUT6",
                                lambda ax: _scatter(ax, with_luts, lambda r: r.lut6, "LUTs (xilinx, LUT6)")))
    if not drawers:
        raise PlotError("nothing to plot: the arguments have neither a run record nor a model")
    width, height = figure_pixels(len(drawers), size)
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    columns = min(COLUMNS, len(drawers))
    rows = math.ceil(len(drawers) / columns)
    for index, (title, draw) in enumerate(drawers):
        ax = figure.add_subplot(rows, columns, index + 1)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        draw(ax)
    files.write_atomic(out, lambda file: figure.savefig(file, format=kind, dpi=DPI))
    return out, [title for title, _ in drawers]


def _loss(ax, runs):
    for run in runs:
        epochs = [r["epoch"] for r in run.records]
        ax.plot(epochs, [r["loss"] for r in run.records], marker=".", label=run.label)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("mean training loss", fontsize=8)
    _integer_ticks(ax)
    ax.legend(fontsize=6)


def _accuracy_curves(ax, runs):
    for index, run in enumerate(runs):
        color = f"C{index % 10}"
        epochs = [r["epoch"] for r in run.records]
        ax.plot(epochs, [r["discrete_acc"] for r in run.records], color=color, marker=".",
                label=f"{run.label} discretized")
        ax.plot(epochs, [r["relaxed_acc"] for r in run.records], color=color, linestyle="--",
                label=f"{run.label} relaxed")
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("test accuracy", fontsize=8)
    _integer_ticks(ax)
    ax.legend(fontsize=6)


def gate_types_per_layer(netlist) -> np.ndarray:
    """``(depth, 17)`` gate counts: row ``l`` counts the gates of logic level ``l + 1`` by op."""
    from lgn.compile.netlist import LUT_OP

    counts = np.zeros((netlist.depth, LUT_OP + 1), np.int64)
    if netlist.num_gates:
        np.add.at(counts, (netlist.level - 1, netlist.op.astype(np.int64)), 1)
    return counts


def _gate_types(ax, run):
    from lgn.compile.gates import GATE_NAMES

    netlist = run.file.netlist
    counts = gate_types_per_layer(netlist)
    names = GATE_NAMES + ("LUT",)
    layers = np.arange(1, counts.shape[0] + 1)
    bottom = np.zeros(counts.shape[0])
    palette = matplotlib_colormap("tab20")
    for op in np.flatnonzero(counts.sum(0)):
        ax.bar(layers, counts[:, op], bottom=bottom, label=names[op], color=palette(op % 20), width=0.8)
        bottom += counts[:, op]
    ax.set_xlabel(f"layer (logic level); {netlist.num_gates:,} gates, {run.optimized_gates:,} after optimize",
                  fontsize=8)
    ax.set_ylabel("gates", fontsize=8)
    _integer_ticks(ax)
    handles, names = ax.get_legend_handles_labels()  # listed top to bottom, as stacked
    ax.legend(handles[::-1], names[::-1], fontsize=5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
              handlelength=1)


def matplotlib_colormap(name):
    from matplotlib import colormaps

    return colormaps[name]


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _scatter(ax, runs, size_of, label):
    xs, ys = [size_of(r) for r in runs], [r.accuracy for r in runs]
    ax.scatter(xs, ys)
    for run, x, y in zip(runs, xs, ys):
        ax.annotate(run.label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if min(xs) > 0 and max(xs) > 10 * min(xs):
        ax.set_xscale("log")
    ax.margins(0.15)  # room for the labels
    ax.set_xlabel(label, fontsize=8)
    ax.set_ylabel("discretized test accuracy", fontsize=8)
