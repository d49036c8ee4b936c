"""How a run gets its batches, whatever its data: :func:`open_batches` gives a :class:`Batches`
(tensors held in memory, or images streamed from files) that yields one epoch's training
:class:`Batch` es, normalised, augmented and cut to this process's share, from any step on, and
the normalised evaluation batches of a split.

Every random choice is derived from ``(seed, epoch, step)`` (the epoch's order, mixing) or from
``(seed, epoch, sample index)`` (a streamed image's crop and flip), so a run resumed at a step
sees the batches an uninterrupted run would, with any number of DataLoader workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch

from brickwork.train import distributed
from brickwork.train.data.augment import batches, random_flip, random_shift
from brickwork.train.data.dataset import Dataset
from brickwork.train.data.mix import Mixing, mix
from brickwork.train.data.sampler import epoch_order, step_seed
from brickwork.train.data.streamed import ImageDataset

EVAL_TENSOR_BATCHES = 4
"""A tensor split is evaluated this many steps' worth of images at a time (streamed: one)."""


class Batch(NamedTuple):
    """One step's images and labels, as this process trains on them."""

    step: int
    """The step within the epoch, 0-based."""
    x: torch.Tensor
    """This process's share of the step's images, ``(b, C, H, W)``, normalised and augmented."""
    y: torch.Tensor
    """Their labels, ``(b,)``."""
    size: int
    """The step's number of images over every process, as planned (an image found unreadable
    is left out of ``x`` but still counted)."""
    target: torch.Tensor
    """What the loss compares the outputs with: ``y``, or ``(b, classes)`` probabilities when
    the images are mixed (Mixup, CutMix)."""


@dataclass(frozen=True)
class LoaderOptions:
    """How batches are made.

    Attributes:
        batch_size: images a step, over every process.
        seed: the run's seed (shuffling and augmentation).
        augment: augment the training images (tensors: shifts and flips; files: random
            resized crops and flips).
        device: where batches go (and are normalised).
        workers: DataLoader worker processes for streamed images (0: this process).
        mixing: Mixup and CutMix.
        log: where a streamed dataset reports unreadable images.
    """

    batch_size: int
    seed: int = 0
    augment: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workers: int = 0
    mixing: Mixing = field(default_factory=Mixing)
    log: Callable[[str], None] = lambda _: None


class Batches(Protocol):
    """Where a run's batches come from."""

    def __len__(self) -> int:
        """Steps per epoch (the last batch may be smaller)."""

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The training batches of ``epoch`` (0-based) from step ``start`` on."""

    def split(self, name: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's share of split ``name`` (``"val"``, ``"test"``): normalised images
        ``(b, C, H, W)`` and labels ``(b,)``, on the device, in order."""


Data = Dataset | ImageDataset
"""What a run trains on: tensors in memory, or image files read as needed."""


def open_batches(data: Data, options: LoaderOptions) -> Batches:
    """The batches of ``data``: from tensors (on ``options.device``) or streamed from files."""
    if isinstance(data, ImageDataset):
        from brickwork.train.data.stream import StreamBatches

        return StreamBatches(data, options)
    return TensorBatches(data, options)


def normaliser(
    mean: list[float], std: list[float], device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x ↦ (x - mean) / std`` per channel, for ``(B, C, H, W)`` images."""
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    return lambda x: (x - m) / s


def make_batch(
    epoch: int,
    step: int,
    x: torch.Tensor,
    y: torch.Tensor,
    size: int,
    n_classes: int,
    options: LoaderOptions,
) -> Batch:
    """The :class:`Batch` of normalised images ``x`` and labels ``y``, mixed if asked (with
    the step's own random numbers)."""
    target = y
    if options.mixing.on:
        seed = step_seed(options.seed, epoch, step) ^ 0x313C
        x, target = mix(x, y, n_classes, options.mixing, seed)
    return Batch(step, x, y, size, target)


class TensorBatches:
    """The batches of a :class:`Dataset` held as tensors (on the training device).

    With ``options.augment``, each image is shifted by up to 1/8 of its width, and flipped when
    ``dataset.flips``; the whole batch is augmented in every process, so each image is shifted
    as it would be in a single one, then each process keeps its share.
    """

    def __init__(self, dataset: Dataset, options: LoaderOptions) -> None:
        self.dataset = dataset
        self.options = options
        self.normalise = normaliser(dataset.mean, dataset.std, dataset.y_train.device)

    def __len__(self) -> int:
        return math.ceil(len(self.dataset.y_train) / self.options.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = epoch_order(len(self.dataset.y_train), self.options.seed, epoch)
        for step in range(start, len(self)):
            index = order[step * self.options.batch_size : (step + 1) * self.options.batch_size]
            yield self._batch(epoch, step, index)

    def _batch(self, epoch: int, step: int, index: torch.Tensor) -> Batch:
        index = index.to(self.dataset.y_train.device, non_blocking=True)
        x = self._augment(self.dataset.x_train[index], epoch, step)
        mine = distributed.share(len(index))
        x, y = self.normalise(x[mine]), self.dataset.y_train[index][mine]
        return make_batch(epoch, step, x, y, len(index), self.dataset.n_classes, self.options)

    def _augment(self, x: torch.Tensor, epoch: int, step: int) -> torch.Tensor:
        if not self.options.augment:
            return x
        g = torch.Generator().manual_seed(step_seed(self.options.seed, epoch, step) ^ 0x5EED)
        x = random_shift(x, max(1, x.shape[-1] // 8), g)  # ±1 pixel on 8×8 digits, ±4 on 32×32
        return random_flip(x, g) if self.dataset.flips else x

    def split(self, name: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = getattr(self.dataset, f"x_{name}"), getattr(self.dataset, f"y_{name}")
        mine = distributed.share(len(y))
        x_here, y_here = x[mine], y[mine]
        size = self.options.batch_size * EVAL_TENSOR_BATCHES
        for index in batches(len(y_here), size, None):
            yield self.normalise(x_here[index]), y_here[index]
