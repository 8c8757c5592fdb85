"""Training: the loop, presets, and pickle-free atomic checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .loop import PRESETS, TrainConfig, TrainingError, TrainResult, evaluate_accuracy, train

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "train", "evaluate_accuracy", "PRESETS",
           "CheckpointError", "save_checkpoint", "load_checkpoint", "load_model"]
