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
    return "conv (digits, fashion-mnist, mnist, cifar10), dense (digits, fashion-mnist, mnist, cifar10)"


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
              help="Architecture: a preset name (conv: the dataset's convolutional net; dense: its dense "
                   "preset, the default) or a model spec such as \"thermo(3, uniform) conv(32, k=3, p=1, d=3) "
                   "orpool(2) flatten dense(4000) groupsum(tau=20)\" (blocks: thermo, conv, orpool, flatten, "
                   "dense, groupsum; see lgn.nn.spec). Presets: " + _arch_presets() + ".")
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
@click.option("--resume", is_flag=True, help="Continue the run saved at --out exactly where it stopped.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@_friendly
def train(dataset, data_dir, no_download, mirror, out, resume, progress, device, seed, arch, **overrides):
    """Train a logic gate network; write a checkpoint after every epoch and on Ctrl-C.

    \b
    Examples:
      lgn train --dataset digits --arch conv
      lgn train --dataset fashion-mnist --arch "conv(16, k=3, p=1) orpool(2) flatten dense(2000)"
      lgn train --dataset fashion-mnist --layers 6 --width 8000

    Launch with ``torchrun --nproc-per-node N`` to train data-parallel (gloo on CPU, nccl on GPU).
    """
    from lgn import data as datasets
    from lgn.train import TrainConfig, resolve_arch
    from lgn.train import train as run_training
    from lgn.train.checkpoint import check_writable

    out = Path(out or Path("runs") / dataset.split(":")[-1].replace("/", "_").removesuffix(".npz") / "model.pt")
    if resume and arch is not None:
        raise ValueError("--resume continues the architecture saved at --out: drop --arch")
    config = TrainConfig.for_dataset(dataset, arch=arch, data_dir=data_dir, seed=seed, device=device, **overrides)
    if resume and not out.exists():
        raise ValueError(f"--resume: no checkpoint at {out}")
    check_writable(out)  # before the data is loaded: a bad --out fails at once
    data = datasets.load(dataset, data_dir, download=not no_download, mirror=mirror)
    shape = f" ({'x'.join(map(str, data.image_shape))} images)" if data.image_shape else ""
    click.echo(
        f"dataset {data.name}: {len(data.x_train)} train / {len(data.x_test)} test, "
        f"{data.x_train.shape[1]} features{shape}, {data.num_classes} classes"
    )
    if not resume:
        spec = resolve_arch(config, data)  # a spec that does not fit the data stops here, before training
        gates = spec.num_gates(data.x_train.shape[1], spec.thermo.bits, data.image_shape)
        click.echo(
            f"model: {spec} ({gates:,} gates), {config.parametrization} gates, init {config.init}, "
            f"lr {config.lr}, batch {config.batch_size}, {config.steps or config.epochs} "
            f"{'steps' if config.steps else 'epochs'}"
        )
    result = run_training(config, data, out=out, resume=resume, progress=progress, log=click.echo)
    if result.interrupted:
        click.echo(f"interrupted: checkpoint saved to {result.checkpoint}; continue with --resume")
        sys.exit(130)
    last = result.history[-1] if result.history else None
    if last:
        click.echo(
            f"discretized test accuracy {last['discrete_acc']:.2%} (relaxed {last['relaxed_acc']:.2%}, "
            f"gap {last['gap'] * 100:+.2f} pp)"
        )
    click.echo(f"model saved to {result.checkpoint}")


# --------------------------------------------------------------------------- eval
BACKENDS = ("torch", "packed", "c")


@main.command("eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", default=None, help="Dataset to evaluate on [the one the model was trained on].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where dataset files are.")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="torch: the discretized PyTorch model; packed: the bit-parallel executor; "
                   "c: the generated C, compiled here.")
@_friendly
def eval_(model, dataset, data_dir, backend):
    """Print the discretized test accuracy of MODEL (a checkpoint or a netlist file)."""
    from lgn.io import load_for_eval

    loaded = load_for_eval(model, dataset, data_dir)
    predictions = loaded.predict(backend)
    accuracy = float((predictions == loaded.data.y_test).mean())
    click.echo(f"{loaded.data.name} test accuracy ({backend}): {accuracy:.2%} on {len(predictions)} samples")


# --------------------------------------------------------------------------- bench
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", default=None, help="Dataset whose test set is classified [the model's].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where dataset files are.")
@click.option("--backend", "backends", type=click.Choice(BACKENDS), multiple=True,
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

    torch.set_num_threads(1)
    setup = load_for_eval(model, dataset, data_dir)
    backends = backends or (("torch",) if setup.file.model is not None else ()) + ("packed", "c")
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
def _export_packed(netlist, out, options):
    from lgn.compile import formats

    formats.save(netlist, out)
    return [out]


def _export_netlist_text(netlist, out, options):
    from lgn.compile import formats

    formats.save_text(netlist, out)
    return [out]


def _export_blif(netlist, out, options):
    from lgn.compile import formats

    formats.write_blif(netlist, out, model=options["name"])
    return [out]


def _export_aiger(netlist, out, options):
    from lgn.compile import formats

    formats.write_aiger(netlist, out)
    return [out]


def _export_c(netlist, out, options):
    from lgn.compile import c

    return c.export(netlist, out, name=options["name"], word_bits=options["word_bits"], style=options["style"])


def _export_verilog(netlist, out, options):
    from lgn import hdl

    return hdl.export(netlist, out, name=options["name"], pipeline=options["pipeline"],
                      features=options["vectors"], popcount_group=options["popcount_group"])


#: ``lgn export --target`` names, their writer, and whether ``-o`` names a directory.
TARGETS = {
    "packed": (_export_packed, False),
    "netlist": (_export_netlist_text, False),
    "blif": (_export_blif, False),
    "aiger": (_export_aiger, False),
    "c": (_export_c, True),
    "verilog": (_export_verilog, True),
}


def _load_netlist(model, optimized: bool):
    from lgn.compile.passes import optimize
    from lgn.io import load_model_file

    file = load_model_file(model)
    return file, (optimize(file.netlist) if optimized else file.netlist)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", type=click.Choice(list(TARGETS)), required=True,
              help="packed: .npz netlist file for the packed executor (lgn eval FILE --backend packed); "
                   "netlist: the readable text form (every command reads it, like .npz); "
                   "blif / aiger (.aag ASCII, else binary): for ABC/yosys; "
                   "c: NAME.h + NAME.c; verilog: NAME.v, NAME_tb.v and a report.")
@click.option("--out", "-o", type=click.Path(), required=True,
              help="Output file, or directory for the c and verilog targets.")
@click.option("--name", default="model", show_default=True,
              help="C symbol prefix / Verilog module name (sanitised; keywords are avoided).")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Run the optimization passes (constant folding, CSE, dead gates, ...) first.")
@click.option("--word-bits", type=click.Choice(["8", "16", "32", "64", "128", "256", "512"]), default="64",
              show_default=True, help="c: samples per machine word (128+ use vector extensions).")
@click.option("--style", type=click.Choice(["levelized", "unrolled", "table"]), default="levelized",
              show_default=True, help="c: levelized loops over op-grouped index arrays (fast to compile "
                                      "and run), unrolled straight-line code, or a compact gate table.")
@click.option("--pipeline", type=int, default=0, show_default=True,
              help="verilog: logic levels between pipeline registers (0: combinational).")
@click.option("--popcount-group", type=click.IntRange(min=0), default=6, show_default=True,
              help="verilog: popcount compressor size before the adder tree (6 suits LUT6 FPGAs; "
                   "0, a plain adder tree, is smaller on LUT4 parts such as iCE40).")
@click.option("--vectors", type=click.IntRange(min=1), default=1000, show_default=True,
              help="verilog: testbench vectors, from the model's test set when it can be loaded.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="verilog: where the model's dataset is, for test vectors.")
@click.option("--simulate", is_flag=True, help="verilog: run the testbench after export; exit 1 on a mismatch.")
@click.option("--simulator", type=click.Choice(["auto", "verilator", "iverilog"]), default="auto", show_default=True,
              help="--simulate with Verilator (fast on large nets) or iverilog; auto: Verilator when installed.")
@_friendly
def export(model, target, out, name, optimize, word_bits, style, pipeline, popcount_group, vectors, data_dir,
           simulate, simulator):
    """Compile MODEL (a checkpoint or a netlist file) to TARGET."""
    if pipeline < 0:
        raise ValueError(f"--pipeline must be >= 0, got {pipeline}")
    if simulate and target != "verilog":
        raise ValueError(f"--simulate runs the Verilog testbench: it needs --target verilog, not {target}")
    from lgn.files import check_writable, ensure_directory

    writer, is_dir = TARGETS[target]
    out = Path(out)
    if not is_dir and out.is_dir():
        raise ValueError(f"--out {out} is a directory; the {target} target writes a file")
    if is_dir and out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; the {target} target writes a directory")
    file, netlist = _load_netlist(model, optimize)
    if is_dir:
        ensure_directory(out)
    else:
        check_writable(out)
    options = {"name": name, "word_bits": int(word_bits), "style": style, "pipeline": pipeline,
               "popcount_group": popcount_group, "vectors": _test_vectors(file, vectors, data_dir) if target == "verilog" else None}
    paths = writer(netlist, out, options)
    click.echo(f"{target}: {netlist.num_gates} gates, depth {netlist.depth} -> " + ", ".join(map(str, paths)))
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


def _test_vectors(file, count, data_dir):
    """The first ``count`` test samples of the model's dataset, or None (random vectors)."""
    from lgn import data as datasets

    if not file.dataset or file.netlist.encoding is None:
        return None
    try:
        data = datasets.load(file.dataset, data_dir or file.data_dir, download=False)
    except datasets.DatasetError as exc:
        click.echo(f"note: testbench uses random vectors ({exc})", err=True)
        return None
    return data.x_test[:count]


# --------------------------------------------------------------------------- info
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@_friendly
def info(model):
    """Describe MODEL: inputs, gates per op, depth, outputs per class, before and after optimization."""
    from lgn.compile.report import describe
    from lgn.io import load_model_file

    file = load_model_file(model)
    kind = {"checkpoint": "training checkpoint", "npz": "netlist file (.npz)",
            "text": "text netlist file"}[file.kind]
    covers = "weights, config and training state" if file.kind == "checkpoint" else "netlist and meta"
    status = (f"checksum verified (sha256 {file.checksum} of the {covers})" if file.verified else
              "NOT verified: it carries no checksum (written before lgn recorded one)")
    click.echo(describe(file.netlist, source=f"{file.path}: {kind}, {status}", hashes=True), nl=False)


# --------------------------------------------------------------------------- synth
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", type=click.Choice(["xilinx", "ice40"]), required=True,
              help="Yosys flow: synth_xilinx (LUT6) or synth_ice40 (LUT4, then nextpnr when it fits).")
@click.option("--device", type=click.Choice(["hx1k", "up5k", "hx8k"]), default=None,
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


# --------------------------------------------------------------------------- check
@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", default=None, help="Dataset to check on [the one the model was trained on].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where dataset files are.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Where to write the generated C and Verilog [next to MODEL].")
@click.option("--vectors", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Test samples replayed by the Verilog testbench.")
@click.option("--simulator", type=click.Choice(["auto", "verilator", "iverilog"]), default="auto", show_default=True,
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


if __name__ == "__main__":
    main()
