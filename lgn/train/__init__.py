"""Training: the loop, presets, pickle-free atomic checkpoints and per-epoch run records."""

from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .loop import (ARCH_PRESETS, PRESETS, TrainConfig, TrainingError, TrainResult, evaluate_accuracy, resolve_arch,
                   train)
from .records import RecordError, metrics_path, read_records

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "train", "evaluate_accuracy", "PRESETS", "ARCH_PRESETS",
           "resolve_arch", "CheckpointError", "save_checkpoint", "load_checkpoint", "load_model", "RecordError",
           "metrics_path", "read_records"]
