"""The ``lgn`` command line: train, eval, export, info, synth, check."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning on busy cores

import click

__all__ = ["main"]


def _arch_presets() -> str:
    """The ``--arch`` presets for ``--help`` (read without importing torch)."""
    return ("conv (digits, fashion-mnist, mnist, cifar10), dense (digits, fashion-mnist, mnist, cifar10), "
            "lut (digits, fashion-mnist)")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input: printed as one line, exit status 1."""
    from lgn.compile.netlist import NetlistError
    from lgn.data import DatasetError
    from lgn.train import CheckpointError, TrainingError

    return (NetlistError, DatasetError, CheckpointError, TrainingError, ValueError, OSError)


def _friendly(command):
    """Run ``command``, turning known bad-input errors into ``lgn: error: ...`` and exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except _user_errors() as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"lgn: error: {message}", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="lgn")
def main():
    """Train logic gate networks and compile them to C, Verilog and packed code.

    \b
    Typical flow:
      lgn train --dataset digits --out runs/digits/model.pt
      lgn eval runs/digits/model.pt --backend packed
      lgn export runs/digits/model.pt --target c -o out/
      lgn export runs/digits/model.pt --target verilog -o out/
      lgn check runs/digits/model.pt
      lgn plot runs/digits/model.pt -o runs/digits/curves.png
    """


# --------------------------------------------------------------------------- train
@main.command()
@click.option("--dataset", default="digits", show_default=True,
              help="Dataset name (digits, fashion-mnist, mnist, cifar10, monk1-3) or npz:PATH / csv:PATH.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where dataset files are (default: $LGN_DATA, system paths, then the download cache).")
@click.option("--no-download", is_flag=True, help="Never download missing dataset files.")
@click.option("--mirror", default=None, help="Base URL replacing the official dataset download location.")
@click.option("--arch", default=None,
              help="Architecture: a preset name (conv: the dataset's convolutional net; lut: a LUT-6 net with "
                   "learned wiring, for few FPGA LUTs; dense: its dense preset, the default) or a model spec "
                   "such as \"thermo(3, uniform) conv(32, k=3, p=1, d=3) "
                   "orpool(2) flatten dense(4000) groupsum(tau=20)\" (blocks: thermo, conv, orpool, flatten, "
                   "dense, lut, learned, groupsum; see lgn.nn.spec). Presets: " + _arch_presets() + ".")
@click.option("--layers", type=click.IntRange(min=1), default=None,
              help="Logic layers of a dense net (shorthand for --arch \"dense(WIDTH)*LAYERS\") [dataset preset].")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Gates per dense layer [dataset preset].")
@click.option("--tau", type=click.FloatRange(min=0, min_open=True), default=None,
              help="GroupSum temperature [dataset preset].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs [dataset preset].")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many optimizer steps (instead of --epochs).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size [dataset preset].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate [dataset preset; 0.01 otherwise].")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=None,
              help="Learning rate over the run: constant, or cosine decay to 0 [dataset preset].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds connections, init and batches.")
@click.option("--connections", type=click.Choice(["random", "unique"]), default=None,
              help="How gates pick their two inputs [random].")
@click.option("--init", type=click.Choice(["random", "residual"]), default=None,
              help="Gate initialisation; residual favours pass-through gates (deep nets) [dataset preset].")
@click.option("--parametrization", type=click.Choice(["gates", "table"]), default=None,
              help="gates: softmax over the 16 gates (the paper); table: one logit per truth-table "
                   "entry (light DLGN; fewer steps to converge) [dataset preset].")
@click.option("--pass-decay", type=click.FloatRange(min=0), default=None,
              help="Per-step decay (times the lr) of gate logits toward the pass-through gate: gates "
                   "the data does not need become wires, and the circuit smaller [dataset preset; 0].")
@click.option("--augment", default=None,
              help="Image datasets: random training-time changes, comma-joined: shift=N (translate by up to "
                   "N pixels, edges repeated), flip (mirror left-right) [dataset preset; none].")
@click.option("--encoder-bits", type=click.IntRange(min=1), default=None,
              help="Thermometer thresholds per feature [dataset default].")
@click.option("--encoder-method", type=click.Choice(["uniform", "quantile"]), default=None,
              help="Thermometer thresholds: equally spaced or per-feature quantiles [dataset default].")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint path [runs/DATASET/model.pt].")
@click.option("--resume", is_flag=True,
              help="Continue the run saved at --out exactly where it stopped. Only --epochs, --steps, --device "
                   "and --data-dir may change; any other option given must equal the checkpoint's.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar on stderr [only when stderr is a terminal; one line per epoch always].")
@_friendly
def train(dataset, data_dir, no_download, mirror, out, resume, progress, device, seed, arch, **overrides):
    """Train a logic gate network; write a checkpoint after every epoch and on Ctrl-C.

    Each finished epoch appends a line of metrics to MODEL.metrics.jsonl beside the checkpoint
    (lgn plot draws them).

    \b
    Examples:
      lgn train --dataset digits --arch conv
      lgn train --dataset fashion-mnist --arch "conv(16, k=3, p=1) orpool(2) flatten dense(2000)"
      lgn train --dataset fashion-mnist --layers 6 --width 8000

    Launch with ``torchrun --nproc-per-node N`` to train data-parallel (gloo on CPU, nccl on GPU):
    only rank 0 prints, shows progress and writes the checkpoint and metrics (at rank 0's --out).
    """
    import torch.distributed as dist

    from lgn.train.loop import distributed

    rank, world = distributed()
    try:
        _train(rank, dataset, data_dir, no_download, mirror, out, resume, progress, device, seed, arch, overrides)
    except _user_errors():
        if rank == 0:
            raise
        sys.exit(1)  # rank 0 reports the same problem (torchrun then stops every process)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


#: ``lgn train`` options given to TrainConfig (``--dataset``, ``--arch``, ``--seed`` and the rest).
_TRAIN_FIELDS = ("dataset", "arch", "seed", "layers", "width", "tau", "epochs", "steps", "batch_size", "lr",
                 "lr_schedule", "connections", "init", "parametrization", "pass_decay", "augment", "encoder_bits",
                 "encoder_method")


def _given_options(values: dict) -> dict:
    """The ``lgn train`` options the user gave (on the command line or in the environment)."""
    from click.core import ParameterSource

    context = click.get_current_context()
    return {key: values[key] for key in _TRAIN_FIELDS
            if context.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}


def _train(rank, dataset, data_dir, no_download, mirror, out, resume, progress, device, seed, arch, overrides):
    import dataclasses

    from lgn import data as datasets
    from lgn.train import TrainConfig, load_checkpoint, resolve_arch
    from lgn.train import train as run_training
    from lgn.train.checkpoint import check_writable
    from lgn.train.loop import RESUME_MAY_CHANGE, resume_conflicts, shared_path

    echo = click.echo if rank == 0 else (lambda *args, **kwargs: None)
    out = shared_path(out or Path("runs") / dataset.split(":")[-1].replace("/", "_").removesuffix(".npz") / "model.pt")
    given = _given_options({"dataset": dataset, "arch": arch, "seed": seed, **overrides})
    if resume:
        if not out.exists():
            raise ValueError(f"--resume: no checkpoint at {out}")
        state = load_checkpoint(out)
        saved = state["config"]
        conflicts = resume_conflicts(saved, given)
        if conflicts:
            may = ", ".join("--" + key.replace("_", "-") for key in RESUME_MAY_CHANGE)
            raise ValueError(f"--resume: {'; '.join(conflicts)} contradict{'s' if len(conflicts) == 1 else ''} "
                             f"the checkpoint {out} (a resumed run may change only {may})")
        dataset, data_dir = saved.get("dataset") or dataset, data_dir or saved.get("data_dir")
        fields = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
        extend = "epochs" in given or "steps" in given  # else: to the end the run was started with
        config = dataclasses.replace(TrainConfig(**fields), device=device, data_dir=data_dir,
                                     epochs=given.get("epochs", fields.get("epochs", TrainConfig.epochs)),
                                     steps=given.get("steps") if extend else fields.get("steps"))
    else:
        config = TrainConfig.for_dataset(dataset, arch=arch, data_dir=data_dir, seed=seed, device=device,
                                         **overrides)
    if rank == 0:
        check_writable(out)  # before the data is loaded: a bad --out fails at once
    data = datasets.load(dataset, data_dir, download=not no_download, mirror=mirror)
    shape = f" ({'x'.join(map(str, data.image_shape))} images)" if data.image_shape else ""
    echo(
        f"dataset {data.name}: {len(data.x_train)} train / {len(data.x_test)} test, "
        f"{data.x_train.shape[1]} features{shape}, {data.num_classes} classes"
    )
    if resume:
        goal = f"{config.steps} steps" if config.steps else f"{config.epochs} epochs"
        echo(f"resuming {out} at epoch {state['epoch']}, step {state['step']} (to {goal})")
    else:
        spec = resolve_arch(config, data)  # a spec that does not fit the data stops here, before training
        gates = spec.num_gates(data.x_train.shape[1], spec.thermo.bits, data.image_shape)
        nodes = "nodes" if spec.has_luts else "gates"
        gate_logits = f", parametrization {config.parametrization}" if spec.has_gate_logits else ""
        echo(
            f"model: {spec} ({gates:,} {nodes}){gate_logits}, init {config.init}, "
            f"lr {config.lr}, batch {config.batch_size}, {config.steps or config.epochs} "
            f"{'steps' if config.steps else 'epochs'}"
        )
    result = run_training(config, data, out=out, resume=resume, progress=progress, log=echo)
    if result.interrupted:
        echo(f"interrupted: checkpoint saved to {result.checkpoint}; continue with --resume")
        sys.exit(130)
    last = result.history[-1] if result.history else None
    if last:
        echo(
            f"discretized test accuracy {last['discrete_acc']:.2%} (relaxed {last['relaxed_acc']:.2%}, "
            f"gap {last['gap'] * 100:+.2f} pp)"
        )
    echo(f"model saved to {result.checkpoint}")


# --------------------------------------------------------------------------- registry
class _RegistryChoice(click.Choice):
    """A :class:`click.Choice` whose choices are read from the target registry when first needed.

    ``lgn export --target c`` thus never imports Amaranth for ``synth``'s or Verilog's choices.
    """

    def __init__(self, load):
        self._load, self._loaded = load, None
        super().__init__(())

    @property
    def choices(self):
        if self._loaded is None:
            self._loaded = tuple(str(choice) for choice in self._load())
        return self._loaded

    @choices.setter
    def choices(self, value):  # click.Choice.__init__ stores its argument; _load replaces it
        pass


class _TargetOption(click.Option):
    """An option of some targets (:class:`lgn.targets.Option`): its registry default in ``--help``."""

    def __init__(self, *args, option, **kwargs):
        self.target_option = option
        super().__init__(*args, **kwargs)

    def get_help_extra(self, ctx):
        from lgn.targets import resolve

        extra = super().get_help_extra(ctx)
        default = resolve(self.target_option.default)
        if default is not None:
            extra["default"] = str(default)
        if self.target_option.minimum is not None:
            extra["range"] = f"x>={self.target_option.minimum}"
        return extra


def _target_options(names):
    """Add one click option per option of the targets ``names``, as the registry declares it.

    They default to None (not given): :meth:`lgn.targets.Target.option_values` then fills the
    target's defaults, and refuses an option given to a target it does not apply to.
    """
    from lgn.targets import TARGETS

    users = {}
    for name in names:
        for option in TARGETS[name].options:
            users.setdefault(option.name, (option, []))[1].append(name)

    def decorate(command):
        for option, targets in reversed(list(users.values())):
            kind = (_RegistryChoice(option.allowed) if option.choices is not None else
                    click.INT if option.kind is int else click.STRING)
            command = click.option(option.flag, option.name, cls=_TargetOption, option=option, type=kind,
                                   default=None, help=f"{', '.join(targets)}: {option.help}")(command)
        return command

    return decorate


def _names_help(names, field: str) -> str:
    from lgn.targets import TARGETS

    return "; ".join(f"{name}: {getattr(TARGETS[name], field)}" for name in names) + "."


def _registry():
    import lgn.targets

    return lgn.targets


# --------------------------------------------------------------------------- eval
@main.command("eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", default=None, help="Dataset to evaluate on [the one the model was trained on].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where dataset files are.")
@click.option("--backend", type=click.Choice(_registry().predicting()), default="torch", show_default=True,
              help=_names_help(_registry().predicting(), "backend_help"))
@_friendly
def eval_(model, dataset, data_dir, backend):
    """Print the discretized test accuracy of MODEL (a checkpoint or a netlist file)."""
    import numpy as np

    from lgn.io import load_for_eval

    loaded = load_for_eval(model, dataset, data_dir)
    predictions = loaded.predict(backend)
    accuracy = float((predictions == loaded.data.y_test).mean())
    click.echo(f"{loaded.data.name} test accuracy ({backend}): {accuracy:.2%} on {len(predictions)} samples")
    names = loaded.file.netlist.meta.get("class_names") or list(loaded.data.class_names)
    labels = np.asarray(loaded.data.y_test)
    for c, name in enumerate(names):  # per-class recall, under the model's class names
        hits = predictions[labels == c] == c
        click.echo(f"  class {c:<3} {name:<16} {hits.mean() if hits.size else 0:7.2%} of {hits.size}")


# --------------------------------------------------------------------------- bench
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", default=None, help="Dataset whose test set is classified [the model's].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where dataset files are.")
@click.option("--backend", "backends", type=click.Choice(_registry().predicting()), multiple=True,
              help="Back ends to time (repeatable) [all that apply].")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed runs per back end; the fastest is reported.")
@_friendly
def bench(model, dataset, data_dir, backends, repeats):
    """Time MODEL's test set from raw features to classes on each back end, one thread.

    The C back end is built from the optimized netlist with -O2 -march=native and 512-bit words.
    """
    import time

    import torch

    from lgn.io import load_for_eval
    from lgn.targets import get, predicting

    torch.set_num_threads(1)
    setup = load_for_eval(model, dataset, data_dir)
    backends = backends or [name for name in predicting()
                            if get(name).source != "model" or setup.file.model is not None]
    rows = []
    for backend in backends:
        predict = setup.predictor(backend)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            predict()
            best = min(best, time.perf_counter() - start)
        rows.append((backend, len(setup.features) / best))
    click.echo(f"{setup.data.name}: {len(setup.features)} test samples, raw features -> classes, 1 thread")
    base = rows[0][1]
    for backend, rate in rows:
        click.echo(f"  {backend:<8} {rate:>14,.0f} samples/s  {rate / base:8.1f}x {rows[0][0]}")


# --------------------------------------------------------------------------- export
def _load_netlist(model, optimized: bool):
    from lgn.compile.passes import optimize
    from lgn.io import load_model_file

    file = load_model_file(model)
    return file, (optimize(file.netlist) if optimized else file.netlist)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", type=click.Choice(_registry().exporting()), required=True,
              help=_names_help(_registry().exporting(), "help"))
@click.option("--out", "-o", type=click.Path(), required=True,
              help="Output file, or directory for the targets that write several files ("
                   + ", ".join(n for n in _registry().exporting() if _registry().get(n).writes == "directory")
                   + ").")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Run the optimization passes (constant folding, CSE, dead gates, ...) first.")
@_target_options(_registry().exporting())
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="verilog: where the model's dataset is, for test vectors.")
@click.option("--simulate", is_flag=True, help="verilog: run the testbench after export; exit 1 on a mismatch.")
@click.option("--simulator", type=_RegistryChoice(_registry().SIMULATORS.resolve), default="auto", show_default=True,
              help="--simulate with Verilator (fast on large nets) or iverilog; auto: Verilator when installed.")
@_friendly
def export(model, target, out, optimize, data_dir, simulate, simulator, **given):
    """Compile MODEL (a checkpoint or a netlist file) to TARGET.

    An option that does not apply to TARGET is refused.
    """
    from lgn.files import check_writable, ensure_directory
    from lgn.targets import TargetError, get

    if simulate and target != "verilog":
        raise TargetError(f"--simulate runs the Verilog testbench: it needs --target verilog, not {target}")
    target = get(target)
    options = target.option_values({name: value for name, value in given.items() if value is not None})
    if data_dir is not None and not target.test_vectors:
        raise TargetError(f"--data-dir does not apply to the {target.name} target (it reads test vectors)")
    is_dir = target.writes == "directory"
    out = Path(out)
    if not is_dir and out.is_dir():
        raise ValueError(f"--out {out} is a directory; the {target.name} target writes a file")
    if is_dir and out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; the {target.name} target writes a directory")
    file, netlist = _load_netlist(model, optimize)
    if is_dir:
        ensure_directory(out)
    else:
        check_writable(out)
    if target.test_vectors:
        options["features"] = _test_vectors(file, target, netlist, options["vectors"], data_dir)
    paths = target.entry("export")(netlist, out, **options)
    click.echo(f"{target.name}: {netlist.num_gates} gates, depth {netlist.depth} -> " + ", ".join(map(str, paths)))
    report = next((p for p in paths if p.name.endswith("_report.txt")), None)
    if report is not None:
        click.echo(report.read_text(), nl=False)
    if simulate:
        _simulate_export(paths, simulator)


def _simulate_export(paths, simulator):
    """Run the testbench ``lgn export --target verilog`` wrote; exit 1 if it counts mismatches."""
    import time

    from lgn.hdl.verilator import simulate_testbench

    design = next(p for p in paths if p.suffix == ".v" and not p.name.endswith("_tb.v"))
    testbench = next(p for p in paths if p.name.endswith("_tb.v"))
    start = time.perf_counter()
    used, mismatches = simulate_testbench(testbench, design, simulator)
    click.echo(f"{used}: {testbench.name}: {mismatches} mismatches ({time.perf_counter() - start:.1f} s)")
    if mismatches:
        raise click.exceptions.Exit(1)


def _test_vectors(file, target, netlist, count, data_dir):
    """The first ``count`` test samples of the model's dataset as ``target`` takes them, or None
    (random vectors)."""
    from lgn import data as datasets
    from lgn.targets import feature_width, inputs_for

    if not file.dataset:
        return None
    try:
        data = datasets.load(file.dataset, data_dir or file.data_dir, download=False)
    except datasets.DatasetError as exc:
        click.echo(f"note: testbench uses random vectors ({exc})", err=True)
        return None
    if data.x_test.shape[1] != feature_width(netlist):
        click.echo(f"note: testbench uses random vectors (dataset {file.dataset} has "
                   f"{data.x_test.shape[1]} features, the model {feature_width(netlist)})", err=True)
        return None
    return inputs_for(target, netlist, data.x_test[:count])


# --------------------------------------------------------------------------- info
def _layers_table(netlist, title: str) -> str:
    """Per logic level of ``netlist``: gates, fan-out (max, mean) and gates per op, as a table.

    Level 0 holds the input bits; a node's fan-out counts the gates that read it (operands the
    gate's function depends on, LUT inputs) and the outputs it drives.
    """
    import numpy as np

    from lgn.compile.gates import GATE_NAMES, READS_A, READS_B
    from lgn.compile.netlist import LUT_OP, MAX_LUT_INPUTS

    nodes, first = netlist.num_nodes, netlist.first_gate
    fanout = np.bincount(netlist.outputs, minlength=nodes)
    for operand, reads in ((netlist.a, READS_A), (netlist.b, READS_B)):
        fanout += np.bincount(operand[np.isin(netlist.op, sorted(reads))], minlength=nodes)
    if netlist.num_luts:
        used = np.arange(MAX_LUT_INPUTS) < netlist.lut_arity[:, None].astype(np.int64)
        fanout += np.bincount(netlist.lut_fanin[used], minlength=nodes)
    level = np.concatenate([np.full(first, -1), netlist.level])
    level[2:first] = 0  # input bits; the constants (-1) are left out
    names = GATE_NAMES + ("LUT",)
    rows = []
    for depth in range(netlist.depth + 1):
        members = np.flatnonzero(level == depth)
        ops = np.bincount(netlist.op[members[members >= first] - first], minlength=LUT_OP + 1)
        counts = ", ".join(f"{names[o]} {ops[o]}" for o in np.argsort(-ops, kind="stable") if ops[o])
        out = fanout[members]
        rows.append((str(depth), str(len(members)) + ("" if depth else " inputs"),
                     str(out.max()) if len(out) else "-", f"{out.mean():.2f}" if len(out) else "-",
                     counts or "-"))
    header = ("level", "gates", "fan-out max", "mean", "gates per op")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(header, widths)) + "  " + header[4]]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) + "  " + row[4] for row in rows]
    return "\n".join(lines) + f"\ndepth {netlist.depth}, {netlist.num_gates} gates\n"


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--layers", is_flag=True,
              help="Also print, per logic level, gates per op and fan-out (max, mean), as stored and "
                   "after optimization.")
@_friendly
def info(model, layers):
    """Describe MODEL: inputs, gates per op, depth, outputs per class, before and after optimization."""
    from lgn.compile.passes import optimize
    from lgn.compile.report import describe
    from lgn.io import load_model_file

    file = load_model_file(model)
    kind = {"checkpoint": "training checkpoint", "npz": "netlist file (.npz)",
            "text": "text netlist file"}[file.kind]
    covers = "weights, config and training state" if file.kind == "checkpoint" else "netlist and meta"
    status = (f"checksum verified (sha256 {file.checksum} of the {covers})" if file.verified else
              "NOT verified: it carries no checksum (written before lgn recorded one)")
    optimized = optimize(file.netlist)
    click.echo(describe(file.netlist, optimized, source=f"{file.path}: {kind}, {status}", hashes=True), nl=False)
    click.echo("classes  " + ", ".join(f"{c} {name}" for c, name in enumerate(file.netlist.class_names)))
    if layers:
        for netlist, what in ((file.netlist, "as stored"), (optimized, "after optimize")):
            click.echo("\n" + _layers_table(netlist, f"levels ({what})"), nl=False)


# --------------------------------------------------------------------------- synth
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", type=_RegistryChoice(_registry().SYNTH_TARGETS.resolve), required=True,
              help="Yosys flow: synth_xilinx (LUT6) or synth_ice40 (LUT4, then nextpnr when it fits).")
@click.option("--device", type=_RegistryChoice(_registry().SYNTH_DEVICES.resolve), default=None,
              help="ice40: part to place and route on [the smallest that fits].")
@click.option("--pipeline", type=click.IntRange(min=0), default=0, show_default=True,
              help="Logic levels between pipeline registers (0: combinational).")
@click.option("--name", default="model", show_default=True, help="Top module name (sanitised).")
@click.option("--optimize/--no-optimize", default=True, show_default=True, help="Run the optimization passes first.")
@click.option("--pnr/--no-pnr", default=True, show_default=True, help="ice40: place and route for Fmax.")
@_friendly
def synth(model, target, device, pipeline, name, optimize, pnr):
    """Synthesize MODEL with Yosys and print LUTs, flip-flops, carry cells, depth (and iCE40 Fmax)."""
    from lgn import hdl

    _, netlist = _load_netlist(model, optimize)
    report = hdl.synth(netlist, target, name=name, pipeline=pipeline, device=device,
                       place_and_route=None if pnr else False)
    click.echo(str(report))
    from lgn.plot import save_synth_report

    try:  # kept beside the model for `lgn plot` (accuracy against LUT6)
        click.echo(f"report saved to {save_synth_report(model, report)}")
    except OSError as error:
        click.echo(f"lgn: warning: the report was not saved beside the model: {error}", err=True)


# --------------------------------------------------------------------------- check
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", default=None, help="Dataset to check on [the one the model was trained on].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where dataset files are.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Where to write the generated C and Verilog [next to MODEL].")
@click.option("--vectors", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Test samples replayed by the Verilog testbench.")
@click.option("--simulator", type=_RegistryChoice(_registry().SIMULATORS.resolve), default="auto", show_default=True,
              help="Verilog testbench simulator; auto: Verilator when installed, else iverilog.")
@_friendly
def check(model, dataset, data_dir, out, vectors, simulator):
    """Run MODEL's test set through every back end and check they agree bit for bit.

    Compares the discretized PyTorch model (checkpoints only), the packed executor before and
    after optimization, the generated C (compiled here) and the generated Verilog (simulated with
    Verilator, or iverilog). Exits with status 1 if any back end disagrees.
    """
    from lgn.check import run_checks
    from lgn.files import ensure_directory

    if not Path(model).is_file():  # before creating the output directory
        raise FileNotFoundError(f"model file {model} does not exist")
    out = ensure_directory(Path(out) if out else Path(model).with_suffix(""))
    report = run_checks(model, dataset=dataset, data_dir=data_dir, out=out, vectors=vectors, log=click.echo,
                        simulator=simulator)
    click.echo(report.table())
    if not report.ok:
        raise click.exceptions.Exit(1)
    click.echo("all back ends agree")


# --------------------------------------------------------------------------- plot
@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", type=click.Path(dir_okay=False), required=True,
              help="Image to write: .png (or .svg, .pdf).")
@click.option("--size", default=None, metavar="WIDTHxHEIGHT",
              help="Figure size in pixels [480x360 per panel, three panels to a row].")
@_friendly
def plot(runs, out, size):
    """Plot RUNS: training curves, gate types per layer, accuracy against gates and LUT6.

    Each of RUNS is a checkpoint or netlist file (with MODEL.metrics.jsonl beside it, when
    present), a metrics file, or a run directory holding model.pt. With several models, their
    discretized test accuracy is drawn against their gates and, where `MODEL.synth.json` holds a
    xilinx synthesis report, against their LUT6 count. Needs matplotlib: pip install 'lgn[plot]'.
    """
    from lgn.plot import figure_pixels
    from lgn.plot import plot as draw

    pixels = None
    if size is not None:
        width, cross, height = size.lower().partition("x")
        if not (cross and width.isdigit() and height.isdigit() and 0 < int(width) <= 20000
                and 0 < int(height) <= 20000):
            raise ValueError(f"--size {size}: expected WIDTHxHEIGHT in pixels, e.g. 1200x800")
        pixels = (int(width), int(height))
    path, panels = draw(runs, out, pixels)
    width, height = figure_pixels(len(panels), pixels)
    click.echo(f"plot: {path} ({width}x{height} px): {'; '.join(panels)}")


if __name__ == "__main__":
    main()
