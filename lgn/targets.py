"""Every back end by name, the front end's too: :mod:`lgn.compile.targets` plus torch eval.

The CLI (``export --target``, ``eval``/``bench --backend``, ``synth``), :mod:`lgn.io` and
``lgn check`` read this table; importing it imports neither torch nor Amaranth.
"""

from __future__ import annotations

from lgn.compile.targets import (SIMULATORS, SYNTH_DEVICES, SYNTH_TARGETS, TARGETS as COMPILE_TARGETS, Option,
                                 Ref, Target, TargetError, feature_width, inputs_for, resolve)
from lgn.compile.targets import get as _get

__all__ = ["TARGETS", "get", "exporting", "predicting", "Target", "Option", "Ref", "TargetError",
           "inputs_for", "feature_width", "resolve", "SYNTH_TARGETS", "SYNTH_DEVICES",
           "SIMULATORS"]


def _torch_predictor(model):
    """Classify raw features with the discretized PyTorch model (eval mode, no gradients)."""
    import torch

    model = model.eval()

    def predict(features):
        with torch.no_grad():
            return model(torch.as_tensor(features, dtype=torch.float32)).argmax(1).numpy()

    return predict


TARGETS: dict[str, Target] = {
    "torch": Target("torch", backend_help="the discretized PyTorch model (checkpoints only)", inputs="features",
                    predictor=f"{__name__}:_torch_predictor", label="pytorch eval()", source="model"),
    **COMPILE_TARGETS,
}


def get(name: str) -> Target:
    """The target called ``name``; :class:`TargetError` naming the known ones otherwise."""
    return _get(name, TARGETS)


def exporting() -> list[str]:
    """Names of the targets ``lgn export`` writes."""
    return [name for name, t in TARGETS.items() if t.writes]


def predicting() -> list[str]:
    """Names of the back ends that classify samples (``lgn eval``/``bench --backend``)."""
    return [name for name, t in TARGETS.items() if t.predicts]
