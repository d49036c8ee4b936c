"""Training, checkpoints and data: ``fit``, ``save``, ``load``, ``load_dataset``."""

from brickwork.train.checkpoint import CheckpointError, load, save
from brickwork.train.data import Dataset, load_dataset
from brickwork.train.trainer import RunInterruptedError, TrainConfig, TrainingError, fit

__all__ = [
    "CheckpointError",
    "Dataset",
    "RunInterruptedError",
    "TrainConfig",
    "TrainingError",
    "fit",
    "load",
    "load_dataset",
    "save",
]
