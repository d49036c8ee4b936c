"""The dataset registry (name → loader) and :func:`load_dataset`, which looks names up in it.

A dataset is named ``NAME`` or ``NAME:ARGUMENT``; the loader registered as ``NAME`` receives
``ARGUMENT`` (``folder:PATH``, ``synthetic:C,H,W,K,N``), ``--data-dir`` and the run's seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from brickwork.errors import ConfigError, DataError
from brickwork.registry import Registry
from brickwork.train.data.cifar import cifar10
from brickwork.train.data.dataset import Dataset
from brickwork.train.data.digits import digits
from brickwork.train.data.folder import folder
from brickwork.train.data.idx import fashion_mnist, mnist
from brickwork.train.data.synthetic import synthetic

DatasetLoader = Callable[[str, str | os.PathLike[str] | None, int], Dataset]
"""``loader(argument, data_dir, seed)``: a dataset with its train, validation and test splits."""

DATASETS: Registry[DatasetLoader] = Registry("dataset")
"""Datasets by name: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``folder``,
``synthetic``."""

DATASETS.register("digits", digits)
DATASETS.register("mnist", mnist)
DATASETS.register("fashion-mnist", fashion_mnist)
DATASETS.register("cifar10", cifar10)
DATASETS.register("folder", folder)
DATASETS.register("synthetic", synthetic)


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, seed: int = 0
) -> Dataset:
    """The dataset ``name``, with train/validation/test splits.

    Args:
        name: a registered name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``), or
            ``folder:PATH`` (a tree ``PATH/<class>/<image>.png``), or ``synthetic:C,H,W,K,N``
            (N random C×H×W images in K classes).
        data_dir: where the dataset's files are; ``None``: downloaded into a cache.
        seed: the seed of the validation (and test) splits.

    Raises:
        DataError: an unknown name (with the closest one), a missing directory or file, a file
            that is not what it should be, or a download that fails.
    """
    kind, _, argument = name.partition(":")
    try:
        loader = DATASETS.get(kind)
    except ConfigError as err:
        raise DataError(
            str(err), hint="folder:PATH reads a folder of images; synthetic:C,H,W,K,N makes noise"
        ) from None
    return loader(argument, data_dir, seed)
