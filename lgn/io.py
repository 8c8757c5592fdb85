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

    @cached_property
    def optimized(self):
        """:func:`lgn.compile.passes.optimize` of the netlist, computed once."""
        from lgn.compile.passes import optimize

        return optimize(self.file.netlist)

    def predict(self, backend: str) -> np.ndarray:
        """Predicted classes of the test split with ``backend`` (a name in :data:`lgn.targets.TARGETS`)."""
        return np.asarray(self.predictor(backend)())

    def predictor(self, backend: str, *, optimized: bool = True, out=None, tuned: bool = True):
        """A function of no arguments classifying the test split with ``backend``, ready to time.

        Everything that is done once (optimizing, building the C library) happens here; the
        function goes from raw features to classes. ``optimized=False`` runs the netlist as
        stored; ``out`` is where a back end that exports writes its files (see
        :mod:`lgn.compile.targets`); ``tuned`` passes the target's ``eval_options``.
        """
        from lgn.targets import TargetError, get, inputs_for, predicting

        target = get(backend)
        if not target.predicts:
            raise TargetError(f"the {backend} target does not classify samples; back ends that do: "
                              f"{', '.join(predicting())}")
        factory = target.entry("predictor")
        if target.source == "model":
            if self.file.model is None:
                raise ValueError(f"{self.file.path} is a netlist file: the {backend} backend needs a "
                                 "checkpoint")
            netlist, run = self.file.netlist, factory(self.file.model)
        else:
            netlist = self.optimized if optimized else self.file.netlist
            run = factory(netlist, out, **(target.eval_options if tuned else {}))
        features = self.features
        return lambda: np.asarray(run(inputs_for(target, netlist, features)))


def load_for_eval(path, dataset: str | None = None, data_dir: str | None = None) -> EvalSetup:
    """Load ``path`` and the dataset to evaluate it on (default: the one it was trained on)."""
    from lgn import data as datasets
    from lgn.targets import feature_width

    file = load_model_file(path)
    name = dataset or file.dataset
    if not name:
        raise ValueError(f"{path} does not record its dataset: pass --dataset")
    data = datasets.load(name, data_dir or file.data_dir)
    expected = feature_width(file.netlist)
    if data.x_test.shape[1] != expected:
        raise ValueError(
            f"dataset {name} has {data.x_test.shape[1]} features, but {path} expects {expected}"
        )
    return EvalSetup(file, data)
