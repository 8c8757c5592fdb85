"""The training loop: Adam on the relaxed network, exact resume, atomic checkpoints, DDP."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.functional import cross_entropy

from lgn.nn import LogicConv2d, LogicLayer, Thermometer, spec
from lgn.nn.connectivity import SourceSelector, set_temperature, temperature_at

from .checkpoint import build_model, check_writable, load_checkpoint, load_model, save_checkpoint
from .records import append_record, metrics_path, write_records

__all__ = ["TrainConfig", "TrainingError", "TrainResult", "train", "PRESETS", "ARCH_PRESETS", "evaluate_accuracy",
           "resolve_arch", "distributed", "shared_path", "resume_conflicts", "RESUME_MAY_CHANGE"]


class TrainingError(RuntimeError):
    """Training stopped (NaN loss, bad data); the message says where and what was kept."""


#: Per-dataset defaults for ``lgn train`` (used when an option is not given).
PRESETS = {
    "digits": dict(layers=4, width=8000, tau=30.0, epochs=60, batch_size=128, lr=0.02, encoder_bits=8),
    "fashion-mnist": dict(layers=6, width=8000, tau=20.0, epochs=30, batch_size=256, lr=0.05,
                          parametrization="table", init="residual", pass_decay=0.01,
                          lr_schedule="cosine", encoder_bits=7),
    "mnist": dict(layers=6, width=8000, tau=30.0, epochs=30, batch_size=256, lr=0.01),
    "cifar10": dict(layers=6, width=12000, tau=33.3, epochs=30, batch_size=256, lr=0.01),
}
DEFAULTS = dict(layers=4, width=2000, tau=None, epochs=50, batch_size=128, lr=0.01, init="random")

#: ``--arch NAME`` presets: per dataset, an architecture (``arch``, a spec) and its training
#: settings. ``dense`` is :data:`PRESETS`.
ARCH_PRESETS = {
    "conv": {
        "digits": dict(arch="thermo(4, uniform) conv(64, k=3, p=1, d=3) orpool(2) conv(128, k=3, p=1, d=3) flatten "
                            "dense(4000) dense(2000) groupsum(tau=10)",
                       epochs=30, batch_size=64, lr=0.1, parametrization="table", init="residual"),
        # 3 epochs at lr 0.05 with one dense(4000) head gave 78.08 %; 300-step pilots: two more
        # dense(8000) layers and lr 0.3 79.79 % (lr 0.05 71.08 %, lr 0.15 78.10 %); 40 epochs: 84.65 %.
        "fashion-mnist": dict(arch="thermo(3, uniform) conv(32, k=4, s=2, p=1, d=3) orpool(2) conv(64, k=3, p=1, d=3) "
                                   "conv(128, k=3, p=1, d=3) orpool(2) flatten dense(8000) dense(8000) dense(4000) "
                                   "groupsum(tau=20)",
                              epochs=40, batch_size=128, lr=0.3, parametrization="table", init="residual",
                              lr_schedule="cosine"),
    },
}
# MNIST: the same net on its 1-bit (127.5) encoding; CIFAR-10: the same spec on 3 channels x 3 bits.
ARCH_PRESETS["conv"]["mnist"] = {**ARCH_PRESETS["conv"]["fashion-mnist"],
                                 "arch": ARCH_PRESETS["conv"]["fashion-mnist"]["arch"].replace("thermo(3,", "thermo(1,")}
ARCH_PRESETS["conv"]["cifar10"] = dict(ARCH_PRESETS["conv"]["fashion-mnist"])
ARCH_PRESETS["dense"] = PRESETS
#: LUT-lean nets (few FPGA LUTs): LUT-6 layers with learned wiring (m candidate sources per LUT
#: input), tapering to a few outputs per class so that the popcount stays small.
ARCH_PRESETS["lut"] = {
    "digits": dict(arch="thermo(3, uniform) lut(800, k=6, m=16) lut(100, k=6, m=16) groupsum(tau=2.5)",
                   epochs=80, batch_size=64, lr=0.05, lr_schedule="cosine"),
    # 7 uniform thresholds depend on a pixel's top 3 bits only, so a first-layer LUT-6 reading 3
    # thresholds of each of two learned pixels (bits=3) is one LUT6 with its comparators (the
    # encoder is nearly free); 1000 outputs (100 per class). Figures and the variants tried:
    # README, "LUT-lean presets".
    "fashion-mnist": dict(arch="thermo(7, uniform) lut(3500, k=6, m=16, bits=3) lut(2500, k=6, m=16) "
                               "lut(1000, k=6, m=8) groupsum(tau=8.5)",
                          epochs=20, batch_size=128, lr=0.03, lr_schedule="cosine", init="residual"),
}


def preset_help() -> str:
    """One line per ``--arch`` preset and the datasets it has settings for (for ``--help``)."""
    return "; ".join(f"{name} ({', '.join(by_dataset)})" for name, by_dataset in ARCH_PRESETS.items())


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint."""

    dataset: str = "digits"
    arch: str | list | None = None  # model spec (lgn.nn.spec); None: layers x width dense layers
    layers: int | None = 4
    width: int | None = 2000
    tau: float | None = None
    epochs: int = 50
    steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    batch_size: int = 128
    lr: float = 0.01
    lr_schedule: str = "constant"  # 'constant' or 'cosine' (decays to 0 over the run)
    seed: int = 0
    connections: str = "random"
    init: str = "random"
    parametrization: str = "gates"  # 'gates' (softmax over 16) or 'table' (4 truth-table logits)
    pass_decay: float = 0.0  # per-step decay of gate logits toward the pass-through gate (x lr)
    temperature: float = 1.0  # learned connectivity (lut(..., m=M), learned(...)): source-choice temperature
    temperature_end: float = 0.1  # ... decayed exponentially to this over the run
    augment: str | None = None  # image datasets: 'shift=N' (random translations), 'flip' (mirror), comma-joined
    encoder_bits: int | None = None  # thermometer thresholds per feature (dataset default if None)
    encoder_method: str | None = None  # 'uniform' or 'quantile' (dataset default if None)
    data_dir: str | None = None
    device: str = "cpu"
    num_classes: int = 0  # filled from the dataset
    feature_dtype: str = "float32"  # filled from the dataset
    image_shape: list | None = None  # filled from the dataset: [C, H, W] of image datasets
    class_names: list | None = None  # filled from the dataset: one name per class

    @classmethod
    def for_dataset(cls, dataset: str, arch: str | None = None, **overrides) -> "TrainConfig":
        """The preset for ``dataset`` with ``overrides`` (``None`` values are ignored).

        ``arch`` is a model spec (see :mod:`lgn.nn.spec`) or a preset name of
        :data:`ARCH_PRESETS` (``'conv'``, ``'dense'``), whose settings for ``dataset`` are the
        defaults then. ``encoder_bits``, ``encoder_method`` and ``tau`` given in ``overrides``
        replace the spec's thermo and groupsum values. The spec's syntax is checked here; its
        fit to the data when training starts (:func:`resolve_arch`).
        """
        overrides = {k: v for k, v in overrides.items() if v is not None}
        name = dataset.split(":")[0]
        if arch is not None and arch.strip() in ARCH_PRESETS:
            presets = ARCH_PRESETS[arch.strip()]
            if name not in presets and arch.strip() != "dense":  # dense: the defaults where no preset is
                raise spec.SpecError(f"--arch {arch.strip()}: no preset for dataset {dataset!r} "
                                     f"(it has presets for {', '.join(presets)})")
            values = {**DEFAULTS, **presets.get(name, {})}
        else:
            values = {**DEFAULTS, **PRESETS.get(name, {})}
            if arch is not None:
                values["arch"] = arch
        if values.get("arch") is not None:
            given = [f"--{k}" for k in ("layers", "width") if k in overrides]
            if given:
                raise spec.SpecError(f"{'/'.join(given)} describe a dense net: with --arch, give the layers in "
                                     "the spec (e.g. dense(8000)*4)")
            source = values["arch"]
            parsed = spec.parse(source) if isinstance(source, str) else spec.from_json(source)
            changed = parsed.with_encoder(overrides.pop("encoder_bits", None), overrides.pop("encoder_method", None))
            if "tau" in overrides:
                changed = changed.with_tau(overrides.pop("tau"))
            thermo = changed.thermo or spec.Thermo()
            # the text as given while nothing changed it, so that errors quote the user's blocks
            values.update(arch=source if changed is parsed else str(changed), layers=None, width=None,
                          tau=changed.head.tau, encoder_bits=thermo.bits, encoder_method=thermo.method)
        values.update(overrides)
        return cls(dataset=dataset, **values)


@dataclass
class TrainResult:
    model: torch.nn.Module
    config: TrainConfig
    history: list = field(default_factory=list)
    checkpoint: Path | None = None
    interrupted: bool = False


def resolve_arch(config: TrainConfig, data) -> spec.Spec:
    """The complete model spec of ``config`` for ``data``, checked to fit (before anything is built).

    ``config.arch`` if set, else ``config.layers`` x ``config.width`` dense layers; the encoder
    comes from the spec's thermo block, else ``config.encoder_bits``/``encoder_method``, else the
    dataset's default. Raises :class:`lgn.nn.spec.SpecError` naming the block that does not fit.
    """
    num_classes = int(data.num_classes)
    if config.arch is None:
        if config.width % num_classes:
            raise TrainingError(f"--width {config.width} must be a multiple of the {num_classes} classes")
        arch = spec.dense_spec(config.layers, config.width, config.tau)
    else:
        arch = spec.parse(config.arch) if isinstance(config.arch, str) else spec.from_json(config.arch)
    encoding = data.encoding
    bits = config.encoder_bits if config.encoder_bits is not None else encoding.bits
    method = config.encoder_method if config.encoder_method is not None else encoding.method
    return arch.resolve(int(np.asarray(data.x_train).shape[1]), num_classes, getattr(data, "image_shape", None),
                        bits, method)


#: Options a resumed run may change: how long it runs, where, and where its data is. Every
#: other option defines the run (the model, its data and how it is trained: the checkpoint's
#: optimizer state and batch order assume them) and, given with ``--resume``, must equal the
#: checkpoint's (:func:`resume_conflicts`).
RESUME_MAY_CHANGE = ("epochs", "steps", "device", "data_dir")
#: Options checked one by one against the checkpoint's config (``arch``, ``layers`` and
#: ``width`` are compared as model specs).
_RESUME_FIXED = ("dataset", "tau", "encoder_bits", "encoder_method", "parametrization", "connections", "init",
                 "seed", "batch_size", "lr", "lr_schedule", "pass_decay", "augment")


def resume_conflicts(saved: dict, given: dict) -> list[str]:
    """The options in ``given`` that contradict the checkpoint config ``saved``, as text.

    ``given`` maps :class:`TrainConfig` field names to the values the user gave explicitly (an
    option left at its default is not in it). Each conflict reads ``--OPTION VALUE
    (checkpoint: VALUE)``; an empty list means the run can be resumed with these options.
    Raises :class:`lgn.nn.spec.SpecError` for an ``arch`` that does not parse.
    """
    def option(key):
        return "--" + key.replace("_", "-")

    def show(value):
        return "none" if value is None else (value if isinstance(value, str) and " " not in value else repr(value))

    conflicts = []
    saved_spec = spec.from_config(saved)
    for key in _RESUME_FIXED:
        if key not in given or key in ("tau", "encoder_bits", "encoder_method") and key not in saved:
            continue
        value, before = given[key], saved.get(key)
        same = (value == before if not isinstance(value, float) or before is None
                else math.isclose(value, float(before), rel_tol=1e-12, abs_tol=0.0))
        if not same:
            conflicts.append(f"{option(key)} {show(value)} (checkpoint: {show(before)})")
    if given.get("arch") is not None:
        name = given["arch"].strip()
        wanted = (spec.from_config(dataclasses.asdict(TrainConfig.for_dataset(saved.get("dataset") or "digits",
                                                                              arch=name)))
                  if name in ARCH_PRESETS else spec.parse(name))
        parts = [("layers", _layers_text(wanted), _layers_text(saved_spec))]
        if wanted.thermo is not None and "encoder_bits" not in given and wanted.thermo.bits is not None:
            parts.append(("encoder bits", wanted.thermo.bits, saved.get("encoder_bits")))
        if wanted.thermo is not None and "encoder_method" not in given and wanted.thermo.method is not None:
            parts.append(("encoder method", wanted.thermo.method, saved.get("encoder_method")))
        if wanted.head.tau is not None and "tau" not in given:
            parts.append(("tau", wanted.head.tau, saved.get("tau")))
        for what, value, before in parts:
            if before is not None and value != before:
                conflicts.append(f"--arch {show(given['arch'])}: {what} {show(value)} (checkpoint: {show(before)})")
    dense = [b.width for b in saved_spec.layers if isinstance(b, spec.Dense)]
    uniform = len(dense) == len(saved_spec.layers) and len(set(dense)) == 1
    for key, before in (("layers", len(dense)), ("width", dense[0] if dense else None)):
        if given.get(key) is None:
            continue
        if not uniform:
            conflicts.append(f"{option(key)} {given[key]} (checkpoint: arch {_layers_text(saved_spec)!r}, "
                             "not layers x width)")
        elif given[key] != before:
            conflicts.append(f"{option(key)} {given[key]} (checkpoint: {before})")
    return conflicts


def _layers_text(model: spec.Spec) -> str:
    """The logic layers of ``model`` as spec text (no encoder, no head): what ``--arch`` compares."""
    return str(spec.Spec(model.layers))


def parse_augment(text: str | None, image_shape) -> dict:
    """``'shift=1,flip'`` -> ``{'shift': 1, 'flip': True}``; raises :class:`TrainingError` when malformed."""
    if not text:
        return {}
    if image_shape is None:
        raise TrainingError(f"--augment {text}: augmentation needs an image dataset (this one has no image shape)")
    options = {}
    for part in text.split(","):
        key, eq, value = part.strip().partition("=")
        if key == "shift" and eq and value.isdigit() and 0 < int(value) < min(image_shape[1:]):
            options["shift"] = int(value)
        elif key == "flip" and not eq:
            options["flip"] = True
        else:
            raise TrainingError(f"--augment: cannot use {part.strip()!r} (expected shift=N with N >= 1, or flip)")
    return options


def _augment(x: torch.Tensor, image_shape, options: dict, generator: torch.Generator) -> torch.Tensor:
    """Randomly translate (edge pixels repeated) and mirror the images ``x`` ``(N, C*H*W)``."""
    n, (channels, height, width) = x.shape[0], image_shape
    image = x.view(n, channels, height, width)
    shift = options.get("shift", 0)
    if shift:
        dy, dx = torch.randint(-shift, shift + 1, (2, n, 1), generator=generator)
        padded = torch.nn.functional.pad(image, (shift,) * 4, mode="replicate")
        rows = (torch.arange(height) + shift - dy)[:, None, :, None]
        cols = (torch.arange(width) + shift - dx)[:, None, None, :]
        image = padded[torch.arange(n)[:, None, None, None], torch.arange(channels)[None, :, None, None], rows, cols]
    if options.get("flip"):
        mirrored = torch.rand(n, generator=generator) < 0.5
        image = torch.where(mirrored[:, None, None, None], image.flip(-1), image)
    return image.reshape(n, -1)


def _encoder(config: TrainConfig, data) -> Thermometer:
    """The dataset's default thermometer, with ``--encoder-bits`` / ``--encoder-method`` applied."""
    encoding = data.encoding
    if config.encoder_bits is not None:
        encoding = dataclasses.replace(encoding, bits=config.encoder_bits)
    if config.encoder_method is not None and config.encoder_method != encoding.method:
        x = np.asarray(data.x_train)
        uniform = config.encoder_method == "uniform"
        encoding = dataclasses.replace(encoding, method=config.encoder_method,
                                       low=float(x.min()) if uniform else None,
                                       high=float(x.max()) if uniform else None)
    return encoding.thermometer(data.x_train)


@torch.no_grad()
def evaluate_accuracy(model, x: torch.Tensor, y: torch.Tensor, relaxed: bool, batch_size: int = 2048) -> float:
    """Accuracy of ``model`` in relaxed (train-mode) or discretized (eval-mode) form."""
    was_training = model.training
    model.train(relaxed)
    correct = 0
    for start in range(0, len(x), batch_size):
        scores = model(x[start : start + batch_size])
        correct += int((scores.argmax(1) == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


class _StopFlag:
    """Turns Ctrl-C into a flag checked between steps, so a checkpoint is always consistent."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        if hasattr(signal, "SIGINT") and _is_main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:  # a second Ctrl-C aborts at once
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when launched by torchrun.

    ``torchrun`` sets ``WORLD_SIZE`` (and ``RANK``, ``LOCAL_RANK``); with more than one process
    the group is initialised once (nccl when CUDA is available, else gloo). A plain run is (0, 1).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def shared_path(path: str | os.PathLike | None) -> Path | None:
    """Rank 0's ``path``, made absolute, on every rank (``path`` itself in a plain run).

    Every rank must read and name the same checkpoint, whatever its working directory or
    defaults; only rank 0 writes it.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return Path(path) if path is not None else None
    agreed = [str(Path(path).absolute()) if path is not None else None]
    dist.broadcast_object_list(agreed, src=0)
    return Path(agreed[0]) if agreed[0] is not None else None


def train(config: TrainConfig, data, out: str | os.PathLike | None = None, resume: bool = False,
          progress: bool | None = None, log=print) -> TrainResult:
    """Train a LogicNet on ``data`` (an :class:`lgn.data.Dataset`) as ``config`` says.

    A checkpoint is written atomically to ``out`` after every epoch, on Ctrl-C and at the end;
    ``resume=True`` continues exactly from the checkpoint at ``out`` (its settings, with
    ``config``'s ``epochs``, ``steps``, ``device`` and, when set, ``data_dir``). A NaN loss stops
    training with :class:`TrainingError`, leaving the last good checkpoint in place.

    Every finished epoch appends its metrics to ``out``'s run record (:mod:`lgn.train.records`);
    a resumed run first rewrites that file with the checkpoint's history. ``progress``: a progress
    bar on stderr; ``None`` shows one only when stderr is a terminal (the per-epoch lines go to
    ``log`` either way). Under ``torchrun`` the processes train data-parallel; only rank 0
    logs, shows progress and writes the checkpoint and records.
    """
    rank, world = distributed()
    out = shared_path(out)
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but no CUDA device is available")
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
    if out is not None and rank == 0:
        check_writable(out)
    image_shape = getattr(data, "image_shape", None)
    names = getattr(data, "class_names", None)
    config = dataclasses.replace(config, num_classes=int(data.num_classes), feature_dtype=data.feature_dtype,
                                 image_shape=list(image_shape) if image_shape is not None else None,
                                 class_names=[str(n) for n in names] if names else None)
    if not 0 <= config.pass_decay * config.lr <= 1:
        raise TrainingError(f"--pass-decay {config.pass_decay} times --lr {config.lr} must lie in [0, 1]")
    parse_augment(config.augment, config.image_shape)  # bad options stop here, before anything is built
    if not resume:  # the spec is checked against the data before anything is built
        arch = resolve_arch(config, data)
        config = dataclasses.replace(config, arch=None if config.arch is None else arch.to_json(), tau=arch.head.tau,
                                     encoder_bits=arch.thermo.bits, encoder_method=arch.thermo.method)

    x_train = torch.as_tensor(data.x_train, dtype=torch.float32)
    y_train = torch.as_tensor(data.y_train, dtype=torch.int64)
    x_test = torch.as_tensor(data.x_test, dtype=torch.float32).to(device)
    y_test = torch.as_tensor(data.y_test, dtype=torch.int64).to(device)

    generator = torch.Generator().manual_seed(config.seed)
    history, epoch, batch, step, perm = [], 0, 0, 0, None
    loss_sum, loss_count, elapsed = 0.0, 0, 0.0  # the epoch's training loss so far; seconds before this process
    if resume:
        state = load_checkpoint(out)
        saved = TrainConfig(**{k: v for k, v in state["config"].items() if k in TrainConfig.__dataclass_fields__})
        model, _ = load_model(out, state)
        config = dataclasses.replace(saved, epochs=config.epochs, steps=config.steps, device=config.device,
                                     data_dir=config.data_dir or saved.data_dir)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["rng"])
        epoch, batch, step, history = state["epoch"], state["batch"], state["step"], list(state["history"])
        perm = state["perm"]
        loss_sum, loss_count = _epoch_loss(state)
        elapsed = float(state.get("seconds", history[-1].get("seconds", 0.0) if history else 0.0))
    else:
        torch.manual_seed(config.seed)
        model = build_model(config.__dict__, _encoder(config, data))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    augment = parse_augment(config.augment, config.image_shape)
    model.to(device)
    _move_optimizer(optimizer, device)
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model)

    num_batches = math.ceil(len(x_train) / config.batch_size)
    total_steps = config.steps if config.steps is not None else config.epochs * num_batches

    selectors = [m for m in model.modules() if isinstance(m, SourceSelector)]  # learned wiring

    def snapshot(next_epoch, next_batch, current_perm):
        return {
            "config": dataclasses.asdict(config),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": _optimizer_to_cpu(optimizer.state_dict()),
            "rng": generator.get_state(),
            "epoch": next_epoch, "batch": next_batch, "step": step,
            "perm": current_perm if current_perm is not None else torch.empty(0, dtype=torch.int64),
            "history": history,
            "epoch_loss": [loss_sum, loss_count], "seconds": round(elapsed + time.time() - start_time, 2),
            # learned wiring: the source-choice temperature the relaxed model has now
            **({"temperature": selectors[0].temperature} if selectors else {}),
        }

    last_good = None

    def checkpoint(next_epoch, next_batch, current_perm):
        nonlocal last_good
        if out is not None and rank == 0:
            last_good = save_checkpoint(out, snapshot(next_epoch, next_batch, current_perm))
        return last_good

    records = metrics_path(out) if out is not None and rank == 0 else None
    if records is not None and resume:  # the checkpoint's epochs, none after it
        write_records(records, history)
    fresh_records = not resume  # a new run replaces an old run's records with its first epoch's

    pass_through = _pass_through_targets(model) if config.pass_decay else []
    if progress is None:
        progress = _is_terminal(sys.stderr)
    bar = _progress(total_steps, step, enabled=progress and rank == 0)
    interrupted = False
    start_time = time.time()
    with _StopFlag() as stop:
        while step < total_steps and (config.steps is not None or epoch < config.epochs):
            if perm is None or perm.numel() == 0 or batch >= num_batches:
                perm, batch = torch.randperm(len(x_train), generator=generator), 0
            model.train()
            while batch < num_batches and step < total_steps:
                if stop.set:
                    break
                idx = perm[batch * config.batch_size : (batch + 1) * config.batch_size]
                xb = _augment(x_train[idx], config.image_shape, augment, generator) if augment else x_train[idx]
                xb, yb = xb[rank::world].to(device), y_train[idx[rank::world]].to(device)
                if selectors:
                    temperature = temperature_at(step, total_steps, config.temperature, config.temperature_end)
                    set_temperature(model, temperature)
                loss = cross_entropy(ddp_model(xb), yb)
                if not _finite_on_all_ranks(loss, world):  # every rank stops at the same step
                    bar.close()
                    kept = f"last good checkpoint: {last_good}" if last_good else "no checkpoint was written"
                    value = loss.item() if not torch.isfinite(loss) else "non-finite on another rank"
                    raise TrainingError(f"loss became {value} at step {step + 1} (epoch {epoch + 1}); {kept}")
                _set_lr(optimizer, config, step, total_steps)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
                if config.pass_decay:
                    _decay_to_pass_through(pass_through, optimizer.param_groups[0]["lr"] * config.pass_decay)
                batch += 1
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
            if stop.set:
                interrupted = True
                checkpoint(epoch, batch, perm)
                break
            if batch < num_batches:  # --steps ran out mid-epoch
                break
            epoch += 1
            perm, batch = None, 0
            mean_loss = _mean_over_ranks(loss_sum, loss_count, world, device)
            lr = optimizer.param_groups[0]["lr"]
            loss_sum, loss_count = 0.0, 0
            if rank == 0:
                metrics = _epoch_metrics(model, epoch, step, mean_loss, lr, x_test, y_test,
                                         elapsed + time.time() - start_time)
                history.append(metrics)
                bar.clear()
                log(
                    f"epoch {epoch:3d}  step {step:6d}  loss {metrics['loss']:.4f}  "
                    f"test acc relaxed {metrics['relaxed_acc']:.2%}  discrete {metrics['discrete_acc']:.2%}  "
                    f"gap {metrics['gap'] * 100:+.2f} pp"
                )
                bar.refresh()
            checkpoint(epoch, 0, None)
            if records is not None:
                write_records(records, history) if fresh_records else append_record(records, metrics)
                fresh_records = False
    bar.close()
    if world > 1:
        dist.barrier()
    final = checkpoint(epoch, batch, perm)  # perm is None at an epoch boundary
    model.eval()
    return TrainResult(model=model, config=config, history=history, checkpoint=final, interrupted=interrupted)


def _set_lr(optimizer, config: TrainConfig, step: int, total_steps: int) -> None:
    if config.lr_schedule == "cosine":
        lr = 0.5 * config.lr * (1 + math.cos(math.pi * step / max(total_steps, 1)))
    elif config.lr_schedule == "constant":
        lr = config.lr
    else:
        raise TrainingError(f"unknown lr schedule {config.lr_schedule!r}, expected 'constant' or 'cosine'")
    for group in optimizer.param_groups:
        group["lr"] = lr


def _pass_through_targets(model) -> list:
    """``(weights, logits of the pass-through gate)`` of every logic layer, on the weights' device."""
    return [(layer.weights, layer.pass_through_logits().to(layer.weights.device, layer.weights.dtype))
            for layer in model.modules() if isinstance(layer, (LogicLayer, LogicConv2d))]


@torch.no_grad()
def _decay_to_pass_through(targets, rate: float) -> None:
    """Move every gate's logits a fraction ``rate`` of the way to the pass-through gate ``A``.

    ``targets`` comes from :func:`_pass_through_targets`. Decoupled from Adam's normalised step,
    so a gate whose data gradient is weak or inconsistent drifts back to a wire (which
    :func:`lgn.compile.passes.optimize` removes), while a gate the data needs keeps its function:
    a smaller circuit for little accuracy.
    """
    for weights, target in targets:
        weights.lerp_(target, rate)


def _epoch_metrics(model, epoch, step, loss, lr, x_test, y_test, seconds):
    """One run record (see :mod:`lgn.train.records`): ``loss`` is the epoch's mean training loss."""
    relaxed = evaluate_accuracy(model, x_test, y_test, relaxed=True)
    discrete = evaluate_accuracy(model, x_test, y_test, relaxed=False)
    return {"epoch": epoch, "step": step, "loss": loss, "relaxed_acc": relaxed, "discrete_acc": discrete,
            "gap": relaxed - discrete, "lr": lr, "seconds": round(seconds, 2)}


def _epoch_loss(state: dict) -> tuple[float, int]:
    """The (sum, count) of training losses of the checkpoint's unfinished epoch (none: older files)."""
    saved = state.get("epoch_loss")
    if (isinstance(saved, list) and len(saved) == 2 and isinstance(saved[0], float)
            and isinstance(saved[1], int) and not isinstance(saved[1], bool) and saved[1] >= 0):
        return saved[0], saved[1]
    return 0.0, 0


def _finite_on_all_ranks(loss: torch.Tensor, world: int) -> bool:
    """Whether the loss is finite on every rank (a rank that stopped alone would hang the others)."""
    finite = torch.isfinite(loss.detach()).to(torch.float32).reshape(1)
    if world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def _mean_over_ranks(total: float, count: int, world: int, device) -> float:
    """The mean of the per-step losses of all ranks (each rank ran ``count`` steps)."""
    if world > 1:
        summed = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        dist.all_reduce(summed)
        total, count = float(summed[0]), int(summed[1])
    return total / max(count, 1)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _move_optimizer(optimizer, device):
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)


def _optimizer_to_cpu(state_dict):
    return {
        "state": {k: {n: (t.cpu() if isinstance(t, torch.Tensor) else t) for n, t in s.items()}
                  for k, s in state_dict["state"].items()},
        "param_groups": state_dict["param_groups"],
    }


class _NoBar:
    def update(self, n): pass
    def set_postfix(self, **kw): pass
    def close(self): pass
    def clear(self): pass
    def refresh(self): pass


def _progress(total, initial, enabled):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr, leave=False,
                mininterval=1.0)
