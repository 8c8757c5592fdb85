"""Training checkpoints: atomic writes, pickle-free loads, validated against their config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from lgn.files import write_atomic
from lgn.nn import LogicStack, Thermometer, spec

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "build_model", "load_model",
           "FORMAT", "VERSION", "check_writable"]

FORMAT = "lgn-checkpoint"
VERSION = 1
#: Config keys that define the model's architecture (the rest are training settings).
MODEL_KEYS = ("num_classes", "layers", "width", "tau", "connections", "init", "seed", "feature_dtype",
              "parametrization")
#: Keys a config with an ``arch`` (a model spec) need not have: the spec holds the layers and tau.
ARCH_KEYS = ("layers", "width", "tau")
#: Defaults for model keys that older checkpoints may lack.
MODEL_DEFAULTS = {"parametrization": "gates"}


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


def check_writable(path: str | os.PathLike) -> Path:
    """Create ``path``'s directory and prove a file can be written there, before any work is done."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=True):
            pass
    except OSError as exc:
        raise CheckpointError(f"cannot write to {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise CheckpointError(f"cannot write checkpoint {path}: it is a directory")
    return path


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically: a temp file in the same directory, then a rename."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda file: torch.save(payload, file))
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint without pickle (``weights_only=True``) and check its header."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable lgn checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lgn checkpoint (no '{FORMAT}' header)")
    if not isinstance(state.get("version"), int) or state["version"] > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')!r}; this lgn reads up to {VERSION}: upgrade lgn"
        )
    for key in ("config", "model"):
        if not isinstance(state.get(key), dict):
            raise CheckpointError(f"{path}: field '{key}' is missing or malformed")
    return state


def build_model(config: dict, encoder: Thermometer) -> LogicStack:
    """Build the (untrained) model that ``config`` describes around ``encoder`` (see :func:`lgn.nn.spec.build`).

    A config with an ``arch`` is built from that spec; one without (written before specs existed)
    from ``layers`` x ``width`` dense layers, with exactly the parameters it always had.
    """
    return spec.build(config, encoder)


def load_model(path: str | os.PathLike, state: dict | None = None) -> tuple[LogicStack, dict]:
    """Return ``(model in eval mode, config)`` from a checkpoint, checking weights against config."""
    state = state if state is not None else load_checkpoint(path)
    config, weights = {**MODEL_DEFAULTS, **state["config"]}, state["model"]
    missing = [k for k in MODEL_KEYS if k not in config and not (config.get("arch") and k in ARCH_KEYS)]
    if missing:
        raise CheckpointError(f"{path}: config lacks {', '.join(missing)}")
    thresholds = weights.get("encoder.thresholds")
    if not isinstance(thresholds, torch.Tensor) or thresholds.dim() != 2:
        raise CheckpointError(f"{path}: weights lack a 2-d 'encoder.thresholds'")
    try:  # shapes by arithmetic: nothing is allocated before the weights are known to fit
        expected = spec.parameter_shapes(config, *thresholds.shape)
        bounds = spec.index_bounds(config, *thresholds.shape)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: config is invalid: {exc}") from None
    for key, shape in expected.items():
        got = weights.get(key)
        if not isinstance(got, torch.Tensor):
            raise CheckpointError(f"{path}: config does not match weights: '{key}' is missing")
        if tuple(got.shape) != shape:
            raise CheckpointError(
                f"{path}: config does not match weights: '{key}' has shape {tuple(got.shape)}, "
                f"config implies {shape}"
            )
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: config does not match weights: unexpected '{extra[0]}'")
    for key, bound in bounds.items():
        idx = weights[key]
        if idx.dtype != torch.int64 or (idx.numel() and (idx.min() < 0 or idx.max() >= bound)):
            raise CheckpointError(f"{path}: {key} must hold int64 indexes in 0..{bound - 1}")
    try:
        model = build_model(config, Thermometer(thresholds))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: config is invalid: {exc}") from None
    model.load_state_dict(weights)
    return model.eval(), config
