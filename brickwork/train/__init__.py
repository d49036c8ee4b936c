"""Training, checkpoints and data: ``fit``, ``save``, ``load``, ``load_dataset``."""

from brickwork.errors import CheckpointError, RunInterruptedError, TrainingError
from brickwork.train.config import TrainConfig
from brickwork.train.data import Dataset, load_dataset
from brickwork.train.loop import fit
from brickwork.train.weights import load, load_weights, save

__all__ = [
    "CheckpointError",
    "Dataset",
    "RunInterruptedError",
    "TrainConfig",
    "TrainingError",
    "fit",
    "load",
    "load_dataset",
    "load_weights",
    "save",
]
