"""The dataset registry (name → loader) and :func:`load_dataset`, which looks names up in it.

A dataset is named ``NAME`` or ``NAME:ARGUMENT``; the loader registered as ``NAME`` receives
``ARGUMENT`` (``folder:PATH``, ``shards:DIR``, ``synthetic:C,H,W,K,N``), ``--data-dir`` and the
run's seed, and returns a :class:`Dataset` (tensors) or an :class:`ImageDataset` (files).
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
from brickwork.train.data.masks import segmentation
from brickwork.train.data.shards import shards
from brickwork.train.data.streamed import ImageDataset
from brickwork.train.data.synthetic import synthetic

DatasetLoader = Callable[[str, str | os.PathLike[str] | None, int], Dataset | ImageDataset]
"""``loader(argument, data_dir, seed)``: a dataset with its train, validation and test splits."""

DATASETS: Registry[DatasetLoader] = Registry("dataset")
"""Datasets by name: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``folder``,
``shards``, ``seg``, ``synthetic``."""

DATASETS.register("digits", digits)
DATASETS.register("mnist", mnist)
DATASETS.register("fashion-mnist", fashion_mnist)
DATASETS.register("cifar10", cifar10)
DATASETS.register("folder", folder)
DATASETS.register("shards", shards)
DATASETS.register("seg", segmentation)
DATASETS.register("synthetic", synthetic)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    image_size: tuple[int, ...] | list[int] | None = None,
    crop_scale: float | None = None,
) -> Dataset | ImageDataset:
    """The dataset ``name``, with train/validation/test splits.

    Args:
        name: a registered name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``), or
            ``folder:PATH`` (a tree ``PATH/<class>/<image>``), ``seg:PATH`` (``PATH/images/``
            and ``PATH/masks/``, for segmentation), ``shards:DIR`` (written by
            ``brickwork pack``), or ``synthetic:C,H,W,K,N`` (N random C×H×W images in K
            classes).
        data_dir: where the dataset's files are; ``None``: downloaded into a cache.
        seed: the seed of the validation (and test) splits.
        image_size: files only: the size images are cropped to, ``(S,)`` or ``(H, W)``;
            default the first training image's.
        crop_scale: files only: the smallest area of a training crop, as a share of the
            image's (default 0.08).

    Raises:
        DataError: an unknown name (with the closest one), a missing directory or file, a file
            that is not what it should be, or a download that fails.
        ConfigError: ``image_size`` or ``crop_scale`` for a dataset held as tensors.
    """
    kind, _, argument = name.partition(":")
    try:
        loader = DATASETS.get(kind)
    except ConfigError as err:
        raise DataError(
            str(err),
            hint="folder:PATH reads a folder of images; seg:PATH images and their masks; "
            "shards:DIR the shards of brickwork pack; synthetic:C,H,W,K,N makes noise",
        ) from None
    return configure(loader(argument, data_dir, seed), image_size, crop_scale)


def configure(
    data: Dataset | ImageDataset,
    image_size: tuple[int, ...] | list[int] | None,
    crop_scale: float | None,
) -> Dataset | ImageDataset:
    """``data`` cropped to ``image_size`` with training crops of at least ``crop_scale``
    (image files; ``None`` keeps each as it is).

    Raises:
        ConfigError: either given for a dataset held as tensors.
    """
    if isinstance(data, ImageDataset):
        return data.configured(image_size, crop_scale)
    for option, value in (("--image-size", image_size), ("--crop-scale", crop_scale)):
        if value is not None:
            raise ConfigError(
                f"{option} applies to image files (folder:PATH, shards:DIR); {data.name} is "
                "held as tensors of its own size"
            )
    return data
