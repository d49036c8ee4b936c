"""Datasets as tensors: the embedded digits, MNIST-style IDX files, CIFAR-10, image folders, noise.

Small datasets are held whole as tensors (on the training device) and batched by index;
augmentation works on batch tensors. :func:`load_dataset` finds a dataset by name in
:data:`DATASETS`; :class:`TensorBatches` hands a run its batches, one epoch at a time.
"""

from brickwork.train.data.augment import batches, random_flip, random_shift
from brickwork.train.data.dataset import Dataset, split_validation
from brickwork.train.data.datasets import DATASETS, DatasetLoader, load_dataset
from brickwork.train.data.folder import read_image
from brickwork.train.data.idx import read_idx
from brickwork.train.data.loader import Batch, TensorBatches, step_seed

__all__ = [
    "DATASETS",
    "Batch",
    "Dataset",
    "DatasetLoader",
    "TensorBatches",
    "batches",
    "load_dataset",
    "random_flip",
    "random_shift",
    "read_idx",
    "read_image",
    "split_validation",
    "step_seed",
]
