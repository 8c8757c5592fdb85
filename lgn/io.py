"""Model files for the command line: a training checkpoint or a netlist file, told apart by content."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

__all__ = ["ModelFile", "load_model_file", "EvalSetup", "load_for_eval"]


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds: always a netlist; the torch model too for a checkpoint.

    ``kind`` is ``'checkpoint'``, ``'npz'`` or ``'text'``; ``checksum`` is the hex SHA-256 the
    file carried and that matched its content, or ``None`` for a file written before lgn
    recorded checksums (loaded unverified, with a note).
    """

    path: Path
    netlist: object  # lgn.compile.Netlist (lowered, not optimized)
    model: object | None = None  # LogicNet in eval mode, for checkpoints
    config: dict | None = None
    kind: str = "npz"
    checksum: str | None = None

    @property
    def verified(self) -> bool:
        return self.checksum is not None

    @property
    def digest(self) -> str:
        """The model's SHA-256: :attr:`lgn.compile.Netlist.sha256` of :attr:`netlist`."""
        return self.netlist.sha256

    @property
    def dataset(self) -> str | None:
        return (self.config or {}).get("dataset") or self.netlist.meta.get("dataset")

    @property
    def data_dir(self) -> str | None:
        return (self.config or {}).get("data_dir") or self.netlist.meta.get("data_dir")


def load_model_file(path: str | os.PathLike) -> ModelFile:
    """Load a training checkpoint (lowered to a netlist) or a netlist file (``.npz`` or text).

    The kind is told by content; the file is opened once. Checksums are verified (see
    :func:`lgn.compile.formats.load_file` and :func:`lgn.train.load_checkpoint`).
    """
    from lgn.compile.formats import NetlistFormatError, load_file
    from lgn.files import InputFileError, MissingFileError, model_file_kind, read_bytes

    path = Path(path)
    try:
        data = read_bytes(path)
    except MissingFileError:
        raise FileNotFoundError(f"model file {path} does not exist") from None
    except InputFileError as exc:
        raise NetlistFormatError(f"{path}: {exc}") from None
    if model_file_kind(data) != "checkpoint":
        loaded = load_file(path, data)
        return ModelFile(path, loaded.netlist, kind=loaded.kind, checksum=loaded.checksum)
    from lgn.compile.lower import lower
    from lgn.train import load_checkpoint, load_model

    state = load_checkpoint(path, data)
    model, config = load_model(path, state)
    meta = {"dataset": config.get("dataset"), "source": str(path)}
    if config.get("data_dir"):
        meta["data_dir"] = config["data_dir"]
    if config.get("class_names"):
        meta["class_names"] = list(config["class_names"])
    return ModelFile(path, lower(model, meta=meta), model, config, kind="checkpoint",
                     checksum=state.get("checksum"))


@dataclass(frozen=True)
class EvalSetup:
    """A model file together with the test split of its dataset."""

    file: ModelFile
    data: object  # lgn.data.Dataset

    @cached_property
    def features(self) -> np.ndarray:
        return np.asarray(self.data.x_test)

    def predict(self, backend: str) -> np.ndarray:
        """Predicted classes of the test split with ``backend`` ('torch', 'packed', 'c')."""
        return np.asarray(self.predictor(backend)())

    def predictor(self, backend: str):
        """A function of no arguments classifying the test split with ``backend``, ready to time.

        Everything that is done once (building the C library, optimizing) happens here.
        """
        netlist = self.file.netlist
        if backend == "torch":
            if self.file.model is None:
                raise ValueError(f"{self.file.path} is a netlist file: the torch backend needs a checkpoint")
            import torch

            model, x = self.file.model.eval(), torch.as_tensor(self.features, dtype=torch.float32)

            def run_torch():
                with torch.no_grad():
                    return model(x).argmax(1).numpy()

            return run_torch
        if backend == "packed":
            from lgn.compile import packed
            from lgn.compile.passes import optimize

            optimized, features = optimize(netlist), self.features
            return lambda: packed.predict(optimized, _encode(optimized, features))
        if backend == "c":
            from lgn.compile import c
            from lgn.compile.passes import optimize

            built = c.build(optimize(netlist), word_bits=512, cflags=("-O2", "-march=native"))
            features = np.ascontiguousarray(self.features.astype(built.feature_dtype))
            return lambda: built.predict(features)
        raise ValueError(f"unknown backend {backend!r}")


def _encode(netlist, features):
    if netlist.encoding is None:
        return features != 0
    return netlist.encoding.encode(features)


def _feature_dtype(netlist) -> str:
    return netlist.encoding.dtype if netlist.encoding is not None else "uint8"


def load_for_eval(path, dataset: str | None = None, data_dir: str | None = None) -> EvalSetup:
    """Load ``path`` and the dataset to evaluate it on (default: the one it was trained on)."""
    from lgn import data as datasets

    file = load_model_file(path)
    name = dataset or file.dataset
    if not name:
        raise ValueError(f"{path} does not record its dataset: pass --dataset")
    data = datasets.load(name, data_dir or file.data_dir)
    expected = file.netlist.encoding.num_features if file.netlist.encoding else file.netlist.num_inputs
    if data.x_test.shape[1] != expected:
        raise ValueError(
            f"dataset {name} has {data.x_test.shape[1]} features, but {path} expects {expected}"
        )
    return EvalSetup(file, data)
