"""``ImageDataset``: images read from files (a folder tree or tar shards) as they are needed.

Nothing but the list of samples is held: each split is a :class:`Records` (where each image
is, and its label), and an image is opened only when a batch needs it. The images are cropped
to ``size`` on the way (:mod:`~brickwork.train.data.transforms`); the mean and standard
deviation they are normalised with come from a seeded sample of training images
(:func:`~brickwork.train.data.stats.channel_stats`), unless given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from brickwork.errors import ConfigError
from brickwork.train.data.dataset import split_indices
from brickwork.train.data.transforms import (
    CROP_FRACTION,
    CROP_SCALE,
    EvalTransform,
    TrainTransform,
    Transform,
)

SPLITS = ("train", "val", "test")
TEST_FRACTION = 0.2
"""The share of the training images that becomes the test split when there is none."""
VAL_FRACTION = 0.125
"""The share of the rest that becomes the validation split when there is none."""


class Records(Protocol):
    """The samples of one split: where each image is, and its label (a segmentation split's
    records also have ``open_mask(index)``, its mask opened like its image)."""

    @property
    def labels(self) -> np.ndarray:
        """The class index of each sample, ``(N,)`` int64."""

    def __len__(self) -> int: ...

    def subset(self, index: np.ndarray) -> Records:
        """The samples at positions ``index``, in that order."""

    def open(self, index: int) -> Image.Image:
        """Sample ``index``'s image, opened but not decoded.

        Raises:
            DataError: it cannot be read as an image.
        """

    def where(self, index: int) -> str:
        """How messages name sample ``index`` (a path, or a shard and a member)."""


def carve_splits(found: Mapping[str, Records], seed: int) -> dict[str, Records]:
    """Every split: those found, and the missing ones carved out of ``found["train"]``.

    A missing test split takes a fifth of the training images; a missing validation split then
    takes an eighth of the rest. Both are stratified when the classes are big enough, and drawn
    with ``seed``.
    """
    splits = dict(found)
    for name, fraction in (("test", TEST_FRACTION), ("val", VAL_FRACTION)):
        if name not in splits:
            kept, taken = split_indices(splits["train"].labels, fraction, seed)
            splits[name] = splits["train"].subset(taken)
            splits["train"] = splits["train"].subset(kept)
    return splits


@dataclass
class ImageDataset:
    """A classification dataset read from image files while training.

    Attributes:
        name: ``folder:PATH`` or ``shards:DIR``, as given.
        classes: the class names, label ``i`` being ``classes[i]``.
        splits: ``"train"``, ``"val"`` and ``"test"``.
        channels: 1 (every image becomes grayscale) or 3 (RGB).
        size: the model's input ``(H, W)``: what every image is cropped to.
        crop_scale: the range of the training crop's area, as a share of the image's.
        crop_fraction: the share of the shorter side the evaluation crop keeps.
        seed: the seed of the sample that the mean and standard deviation come from.
        notes: what reading the folder or index found worth telling (files left out).
        stats: ``(mean, std)`` per channel; ``None`` until first asked for.
        flips: a horizontal flip keeps a photo's class.
        task: ``classification`` (a label per image) or ``segmentation`` (a mask per image:
            the records have ``open_mask``).
    """

    name: str
    classes: list[str]
    splits: dict[str, Records]
    channels: int
    size: tuple[int, int]
    crop_scale: tuple[float, float] = CROP_SCALE
    crop_fraction: float = CROP_FRACTION
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    stats: tuple[list[float], list[float]] | None = None
    flips: bool = True
    task: str = "classification"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, *self.size)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def mean(self) -> list[float]:
        """The per-channel mean the images are normalised with (values in [0, 1])."""
        return self._stats()[0]

    @property
    def std(self) -> list[float]:
        """The per-channel standard deviation the images are divided by."""
        return self._stats()[1]

    def _stats(self) -> tuple[list[float], list[float]]:
        if self.stats is None:
            from brickwork.train.data.stats import channel_stats

            self.stats = channel_stats(self.splits["train"], self.channels, self.seed)
        return self.stats

    def split_size(self, split: str) -> int:
        """The number of images in ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        return len(self.splits[split])

    def configured(
        self,
        image_size: tuple[int, ...] | list[int] | None = None,
        crop_scale: float | None = None,
    ) -> ImageDataset:
        """The same images, cropped to ``image_size`` (``(S,)`` or ``(H, W)``) and with
        training crops of at least ``crop_scale`` of the image's area; ``None`` keeps each."""
        changes: dict[str, Any] = {}
        if image_size is not None:
            size = tuple(image_size)
            changes["size"] = (size[0], size[0]) if len(size) == 1 else (size[0], size[1])
        if crop_scale is not None:
            changes["crop_scale"] = (crop_scale, 1.0)
        return replace(self, **changes)

    def with_stats(self, mean: list[float], std: list[float]) -> ImageDataset:
        """The same dataset, normalised with ``mean`` and ``std`` (a model file's).

        Raises:
            ConfigError: not one value per channel.
        """
        if len(mean) != self.channels or len(std) != self.channels:
            raise ConfigError(
                f"{self.name}: {self.channels}-channel images, but {len(mean)} means and "
                f"{len(std)} standard deviations to normalise them with"
            )
        return replace(self, stats=(list(mean), list(std)))

    def to(self, device: torch.device | str) -> ImageDataset:
        """The dataset itself: its images are read when needed, then moved."""
        return self

    def eval_transform(self) -> EvalTransform:
        """The evaluation crop of this dataset's images."""
        return EvalTransform(self.size, self.channels, self.crop_fraction)

    def train_transform(self, augment: bool) -> Transform:
        """The training crop; without ``augment``, the evaluation crop."""
        if not augment:
            return self.eval_transform()
        return TrainTransform(self.size, self.channels, self.crop_scale, flip=self.flips)

    def model_metadata(self) -> dict[str, Any]:
        """What a model file keeps so that ``evaluate`` and ``predict`` crop as validation did."""
        return {"eval_transform": self.eval_transform().to_metadata(), "task": self.task}
