"""Training data of any size: small datasets held as tensors, image files streamed.

The small built-in sets (digits, MNIST, Fashion-MNIST, CIFAR-10, synthetic noise) are held whole
as tensors on the training device and batched by index; folders of images (``folder:PATH``) and
tar shards (``shards:DIR``, written by :func:`pack`) are read as batches need them, decoded and
cropped in DataLoader workers. :func:`load_dataset` finds a dataset by name in :data:`DATASETS`;
:func:`open_batches` hands a run its batches, one epoch at a time, from any step on.
"""

from brickwork.train.data.augment import batches, random_flip, random_shift
from brickwork.train.data.dataset import Dataset, split_indices, split_validation
from brickwork.train.data.datasets import DATASETS, DatasetLoader, configure, load_dataset
from brickwork.train.data.idx import read_idx
from brickwork.train.data.images import set_pixel_limit
from brickwork.train.data.loader import (
    Batch,
    Batches,
    Data,
    LoaderOptions,
    TensorBatches,
    open_batches,
)
from brickwork.train.data.mix import Mixing
from brickwork.train.data.pack import pack
from brickwork.train.data.sampler import step_seed
from brickwork.train.data.stream import default_workers
from brickwork.train.data.streamed import ImageDataset
from brickwork.train.data.transforms import EvalTransform, TrainTransform, model_input

__all__ = [
    "DATASETS",
    "Batch",
    "Batches",
    "Data",
    "Dataset",
    "DatasetLoader",
    "EvalTransform",
    "ImageDataset",
    "LoaderOptions",
    "Mixing",
    "TensorBatches",
    "TrainTransform",
    "batches",
    "configure",
    "default_workers",
    "load_dataset",
    "model_input",
    "open_batches",
    "pack",
    "random_flip",
    "random_shift",
    "read_idx",
    "set_pixel_limit",
    "split_indices",
    "split_validation",
    "step_seed",
]
