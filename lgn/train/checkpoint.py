"""Training checkpoints: atomic writes, pickle-free loads, a checksum, and checks before trust.

A checkpoint is a ``torch.save`` zip of one dict: ``format``, ``version``, ``config`` (the run's
settings), ``model`` (the state dict), the training state (``optimizer``, ``rng``, ``epoch``,
``batch``, ``step``, ``perm``, ``history``) and ``checksum``, ``"sha256:HEX"`` of
:func:`state_sha256`: a canonical serialization of every other entry. The checksum thus covers
the weights, the config and the training state, so a damaged byte anywhere fails the load, also
one that would only change a resumed run. The *model's* hash (what ``lgn info`` prints and
generated code carries) is another one: the :attr:`~lgn.compile.Netlist.sha256` of the netlist
the checkpoint lowers to, equal to that of a netlist file exported from it without optimization.

:func:`load_model` checks before it trusts, in this order: the zip directory (every entry's
size within the file) before torch reads it; the checksum; the config's types and ranges
(:func:`validate_config`); the tensors the config implies, computed arithmetically without
building anything (:func:`implied_shapes`), against those present; and only then builds the model
(:func:`build_model`). Checkpoints written before lgn recorded checksums load with a logged note.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from lgn import files
from lgn.compile.netlist import FEATURE_DTYPES, MAX_INPUTS
from lgn.files import InputFileError, OutputPathError, write_atomic
from lgn.nn import LogicStack, Thermometer, spec
from lgn.nn.connectivity import set_temperature
from lgn.nn.modules import CONNECTIONS, INITS, PARAMETRIZATIONS

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "build_model", "load_model",
           "FORMAT", "VERSION", "check_writable", "state_sha256", "validate_config", "implied_shapes",
           "TensorSpec"]

FORMAT = "lgn-checkpoint"
VERSION = 1
#: Config keys that define the model's architecture (the rest are training settings).
MODEL_KEYS = ("num_classes", "layers", "width", "tau", "connections", "init", "seed", "feature_dtype",
              "parametrization")
#: Keys a config with an ``arch`` (a model spec) need not have: the spec holds the layers and tau.
ARCH_KEYS = ("layers", "width", "tau")
#: Defaults for model keys that older checkpoints may lack.
MODEL_DEFAULTS = {"parametrization": "gates"}
#: Sane limits for the config's counts (the tensors present must match them as well).
MAX_LAYERS = 10_000
MAX_WIDTH = 1 << 26
#: Nesting deeper than this in a checkpoint is damage (lgn writes at most four levels).
_MAX_DEPTH = 32


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


# ------------------------------------------------------------------------------- writing
def check_writable(path: str | os.PathLike) -> Path:
    """Create ``path``'s directory and prove a file can be written there, before any work is done."""
    try:
        return files.check_writable(path)
    except OutputPathError as exc:
        raise CheckpointError(str(exc)) from None


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` with its checksum to ``path`` atomically (a temp file, then a rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    try:
        payload["checksum"] = f"sha256:{state_sha256(payload)}"
    except TypeError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}") from None
    try:
        write_atomic(path, lambda file: torch.save(payload, file))
    except OutputPathError as exc:
        raise CheckpointError(str(exc)) from None
    return path


def state_sha256(state: dict) -> str:
    """Hex SHA-256 of ``state`` without its ``checksum`` entry, serialized canonically.

    Every value is written with a type tag: ``None``, booleans, integers (any size), floats
    (IEEE-754 bits), strings, lists and tuples in order, dicts with their keys sorted, and
    tensors as dtype, shape and their elements' bytes (little-endian machines). Other types raise
    :class:`TypeError`.
    """
    digest = hashlib.sha256(b"lgn-checkpoint\n")
    _feed(digest, {k: v for k, v in state.items() if k != "checksum"}, 0)
    return digest.hexdigest()


def _feed(digest, value, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise TypeError(f"values nested more than {_MAX_DEPTH} deep")
    update = digest.update
    if value is None or isinstance(value, bool):
        update({None: b"N", True: b"T", False: b"F"}[value])
    elif isinstance(value, int):
        update(b"i" + value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True) + b";")
    elif isinstance(value, float):
        update(b"f" + struct.pack("<d", value))
    elif isinstance(value, (str, bytes)):
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        update((b"s" if isinstance(value, str) else b"b") + struct.pack("<Q", len(raw)) + raw)
    elif isinstance(value, (list, tuple)):
        update((b"l" if isinstance(value, list) else b"t") + struct.pack("<Q", len(value)))
        for item in value:
            _feed(digest, item, depth + 1)
    elif isinstance(value, dict):
        update(b"d" + struct.pack("<Q", len(value)))
        for key in sorted(value, key=_key_order):
            _feed(digest, key, depth + 1)
            _feed(digest, value[key], depth + 1)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().resolve_conj().resolve_neg().contiguous()
        update(f"T{tensor.dtype}{tuple(tensor.shape)};".encode("ascii"))
        update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, (torch.dtype, torch.device)):
        update(f"{type(value).__name__}:{value};".encode("ascii"))
    else:
        raise TypeError(f"cannot checksum a {type(value).__name__} (no canonical form)")


def _key_order(key):
    """Sort key for dict keys of any type: by type name, then value (ints and strings) or repr."""
    return type(key).__name__, key if isinstance(key, (int, str)) else repr(key)


# ------------------------------------------------------------------------------- reading
def load_checkpoint(path: str | os.PathLike, data: bytes | None = None) -> dict:
    """Load a checkpoint without pickle (``weights_only=True``), verify its checksum and header.

    ``data`` may pass the file's bytes when they were read already (the file is then not opened).
    The returned dict holds ``checksum`` (hex) when the file carried one, which then matched;
    a file without one (written by an older lgn) loads after its zip CRCs are checked, with a
    logged note.
    """
    path = Path(path)
    if data is None:
        try:
            data = files.read_bytes(path)
        except files.MissingFileError:
            raise CheckpointError(f"checkpoint {path} does not exist") from None
        except InputFileError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    try:
        archive = files.checked_zip(data, compression=(zipfile.ZIP_STORED,))
        with warnings.catch_warnings():  # damaged pickles make torch warn before it fails
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        reason = str(exc) if isinstance(exc, InputFileError) else files.first_line(exc, 200)
        raise CheckpointError(f"{path} is not a readable lgn checkpoint ({reason})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not an lgn checkpoint (no '{FORMAT}' header)")
    verified = _verify(path, state, archive)  # first: damage must not read as another version
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lgn checkpoint (no '{FORMAT}' header)")
    version = state.get("version")
    if not _is_int(version) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {_short(version)}; this lgn reads up to {VERSION}: upgrade lgn"
        )
    if not verified:
        files.note_unverified(path, "checkpoint")
    for key in ("config", "model"):
        if not isinstance(state.get(key), dict):
            raise CheckpointError(f"{path}: field '{key}' is missing or malformed")
    _check_training_state(path, state)
    return state


def _verify(path: Path, state: dict, archive: zipfile.ZipFile) -> bool:
    """Verify the stored checksum (True) or, for an older file without one, the zip CRCs (False)."""
    stored = state.get("checksum")
    if stored is None:
        try:
            bad = archive.testzip()
        except Exception as exc:  # zlib and zipfile errors for damaged entries
            bad = files.first_line(exc)
        if bad is not None:
            raise CheckpointError(f"{path}: damaged (CRC mismatch in {bad!r})")
        return False
    if not (isinstance(stored, str) and stored.startswith("sha256:") and len(stored) == 71):
        raise CheckpointError(f"{path}: bad checksum field {_short(stored)}")
    try:
        actual = state_sha256(state)
    except (TypeError, ValueError, RecursionError):
        actual = None
    if actual != stored.removeprefix("sha256:"):
        raise CheckpointError(f"{path}: checksum mismatch, the file is damaged")
    state["checksum"] = actual
    return True


def _check_training_state(path: Path, state: dict) -> None:
    """Types of the entries a resumed run reads, when present."""
    for key in ("epoch", "batch", "step"):
        if key in state and not (_is_int(state[key]) and 0 <= state[key] < 1 << 62):
            raise CheckpointError(f"{path}: field '{key}' is not a count ({_short(state[key])})")
    if "temperature" in state and not (isinstance(state["temperature"], float) and 0 < state["temperature"] < math.inf):
        raise CheckpointError(f"{path}: field 'temperature' is not a positive number ({_short(state['temperature'])})")
    kinds = {"optimizer": dict, "history": list, "rng": torch.Tensor, "perm": torch.Tensor}
    for key, kind in kinds.items():
        if key in state and not isinstance(state[key], kind):
            raise CheckpointError(f"{path}: field '{key}' is malformed ({type(state[key]).__name__})")
    for key, dtype in (("rng", torch.uint8), ("perm", torch.int64)):
        if key in state and (state[key].dim() != 1 or state[key].dtype != dtype):
            raise CheckpointError(f"{path}: field '{key}' is not a 1-d {dtype} tensor")


# ---------------------------------------------------------------------- config and shapes
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_config(config: dict) -> dict:
    """Check the model part of ``config`` (types and ranges); return it, defaults applied.

    Integers must be ints (not bools or floats) within sane limits, names must be known.
    Raises :class:`ValueError` naming the first bad key.
    """
    config = {**MODEL_DEFAULTS, **config}
    arch = config.get("arch")
    missing = [k for k in MODEL_KEYS if k not in config and not (arch and k in ARCH_KEYS)]
    if missing:
        raise ValueError(f"config lacks {', '.join(missing)}")

    def integer(key, low, high):
        value = config[key]
        if not _is_int(value) or not low <= value <= high:
            raise ValueError(f"config: '{key}' must be an integer in {low}..{high}, got {_short(value)}")
        return value

    if arch:
        integer("num_classes", 1, MAX_WIDTH)
        shape = config.get("image_shape")
        if shape is not None and not (isinstance(shape, (list, tuple)) and len(shape) == 3
                                      and all(_is_int(v) and 1 <= v <= MAX_INPUTS for v in shape)):
            raise ValueError(f"config: 'image_shape' must be 3 positive integers, got {_short(shape)}")
        spec.from_config(config)  # a malformed spec is a SpecError (ValueError) naming its block
    else:
        integer("layers", 1, MAX_LAYERS)
        width = integer("width", 1, MAX_WIDTH)
        classes = integer("num_classes", 1, width)
        if width % classes:
            raise ValueError(f"config: 'width' {width} is not a multiple of 'num_classes' {classes}")
    integer("seed", -(1 << 63), (1 << 64) - 1)
    tau = config.get("tau")
    if tau is not None and not (isinstance(tau, (int, float)) and not isinstance(tau, bool)
                                and _finite_positive(tau)):
        raise ValueError(f"config: 'tau' must be a positive finite number or None, got {_short(tau)}")
    for key, allowed in (("connections", CONNECTIONS), ("init", INITS),
                         ("parametrization", PARAMETRIZATIONS), ("feature_dtype", FEATURE_DTYPES)):
        if not isinstance(config[key], str) or config[key] not in allowed:
            raise ValueError(f"config: '{key}' must be one of {allowed}, got {_short(config[key])}")
    for key in ("dataset", "data_dir"):  # provenance the command line reads
        if config.get(key) is not None and not isinstance(config[key], str):
            raise ValueError(f"config: '{key}' must be a string, got {_short(config[key])}")
    names = config.get("class_names")
    if names is not None and not (isinstance(names, list) and len(names) == config["num_classes"]
                                  and all(isinstance(n, str) for n in names)):
        raise ValueError(f"config: 'class_names' must be a list of {config['num_classes']} strings, "
                         f"got {_short(names)}")
    return config


def _finite_positive(value) -> bool:
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:
        return False


@dataclass(frozen=True)
class TensorSpec:
    """A state-dict entry a config implies: its shape, and whether it holds floats or indices.

    ``index_bound`` (for index tensors) is the exclusive upper bound of the values.
    """

    shape: tuple
    kind: str  # 'float' (any floating dtype) or 'index' (int64)
    index_bound: int | None = None


def implied_shapes(config: dict, encoder_shape: tuple[int, int]) -> dict[str, TensorSpec]:
    """The state-dict entries :func:`build_model` would create for a validated ``config``.

    Computed arithmetically from the model spec (:func:`lgn.nn.spec.parameter_shapes`), without
    building the model, so a config that claims far more than its file holds is rejected at once.
    ``encoder_shape`` is the thermometer's ``(num_features, num_bits)``.
    """
    features, bits = encoder_shape
    bounds = spec.index_bounds(config, features, bits)
    return {key: TensorSpec(tuple(shape), "index", bounds[key]) if key in bounds
            else TensorSpec(tuple(shape), "float")
            for key, shape in spec.parameter_shapes(config, features, bits).items()}


def _check_weights(path: Path, weights: dict, specs: dict[str, TensorSpec]) -> None:
    """Compare the tensors in ``weights`` with what the config implies, before anything is built."""
    def mismatch(problem):
        return CheckpointError(f"{path}: config does not match weights: {problem}")

    extra = sorted((k for k in weights if k not in specs), key=repr)
    if extra:
        raise mismatch(f"unexpected {_short(extra[0])}")
    for key, spec in specs.items():
        tensor = weights.get(key)
        if not isinstance(tensor, torch.Tensor):
            raise mismatch(f"'{key}' is missing (the config implies {len(specs)} tensors, "
                           f"the file holds {len(weights)})")
        if tuple(tensor.shape) != spec.shape:
            raise mismatch(f"'{key}' has shape {tuple(tensor.shape)}, config implies {spec.shape}")
        if spec.kind == "float":
            if not tensor.is_floating_point():
                raise mismatch(f"'{key}' has dtype {tensor.dtype}, expected floats")
            if not torch.isfinite(tensor).all():
                raise CheckpointError(f"{path}: '{key}' holds non-finite values")
        else:
            if tensor.dtype != torch.int64:
                raise mismatch(f"'{key}' has dtype {tensor.dtype}, expected torch.int64")
            if tensor.numel() and (tensor.min() < 0 or tensor.max() >= spec.index_bound):
                raise CheckpointError(f"{path}: {key} indexes outside 0..{spec.index_bound - 1}")


def build_model(config: dict, encoder: Thermometer) -> LogicStack:
    """Build the (untrained) model that ``config`` describes around ``encoder`` (see :func:`lgn.nn.spec.build`).

    A config with an ``arch`` is built from that spec; one without (written before specs existed)
    from ``layers`` x ``width`` dense layers, with exactly the parameters it always had.
    """
    return spec.build(config, encoder)


def load_model(path: str | os.PathLike, state: dict | None = None) -> tuple[LogicStack, dict]:
    """Return ``(model in eval mode, config)`` from a checkpoint, checked before it is built."""
    state = state if state is not None else load_checkpoint(path)
    try:
        config = validate_config(state["config"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    weights = state["model"]
    thresholds = weights.get("encoder.thresholds")
    if not isinstance(thresholds, torch.Tensor) or thresholds.dim() != 2:
        raise CheckpointError(f"{path}: weights lack a 2-d 'encoder.thresholds'")
    features, bits = thresholds.shape
    if not (features >= 1 and bits >= 1 and features * bits <= MAX_INPUTS):
        raise CheckpointError(f"{path}: 'encoder.thresholds' has shape {tuple(thresholds.shape)}, "
                              f"expected (features, bits) with 1..{MAX_INPUTS} input bits")
    try:
        specs = implied_shapes(config, (features, bits))
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: config is invalid: {files.first_line(exc)}") from None
    _check_weights(Path(path), weights, specs)
    try:
        model = build_model(config, Thermometer(thresholds))
        model.load_state_dict(weights)
    except (TypeError, ValueError, RuntimeError) as exc:  # a safety net: the checks above agree
        raise CheckpointError(f"{path}: config is invalid: {files.first_line(exc)}") from None
    if "temperature" in state:  # learned wiring: the relaxed model as it was when saved
        set_temperature(model, state["temperature"])
    return model.eval(), config
