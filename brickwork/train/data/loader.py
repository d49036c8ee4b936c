"""How a run gets its training batches: :class:`TensorBatches` yields one epoch's
:class:`Batch` es, each augmented and cut to this process's share, from any step on.

Every random choice is derived from ``(seed, epoch, step)`` by :func:`step_seed` (the epoch's
order from step ``-1``), so a run resumed at a step sees the batches an uninterrupted run would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch

from brickwork.train import distributed
from brickwork.train.data.augment import batches, random_flip, random_shift
from brickwork.train.data.dataset import Dataset


def step_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one step's randomness (``step=-1``: the epoch's shuffling)."""
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63)


class Batch(NamedTuple):
    """One step's images and labels, as this process trains on them."""

    step: int
    """The step within the epoch, 0-based."""
    x: torch.Tensor
    """This process's share of the step's images, ``(b, C, H, W)`` in [0, 1], augmented."""
    y: torch.Tensor
    """Their labels, ``(b,)``."""
    size: int
    """The whole step's number of images, over every process (``b`` summed)."""


class TensorBatches:
    """The training batches of a :class:`Dataset` held as tensors (on the training device).

    Args:
        dataset: the data; its training split is batched.
        batch_size: images a step, over every process.
        seed: the run's seed (shuffling and augmentation).
        augment: shift each image by up to 1/8 of its width, and flip it when ``dataset.flips``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, augment: bool) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:
        """Steps per epoch (the last batch may be smaller)."""
        return math.ceil(len(self.dataset.y_train) / self.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch`` (0-based) from step ``start`` on."""
        order = torch.Generator().manual_seed(step_seed(self.seed, epoch, -1))
        for step, index in enumerate(batches(len(self.dataset.y_train), self.batch_size, order)):
            if step >= start:
                yield self._batch(epoch, step, index)

    def _batch(self, epoch: int, step: int, index: torch.Tensor) -> Batch:
        index = index.to(self.dataset.y_train.device, non_blocking=True)
        # the whole batch is augmented in every process, so each image is shifted as it would be
        # in a single one, then each process keeps its share
        x = self._augment(self.dataset.x_train[index], epoch, step)
        mine = distributed.share(len(index))
        return Batch(step, x[mine], self.dataset.y_train[index][mine], len(index))

    def _augment(self, x: torch.Tensor, epoch: int, step: int) -> torch.Tensor:
        if not self.augment:
            return x
        g = torch.Generator().manual_seed(step_seed(self.seed, epoch, step) ^ 0x5EED)
        x = random_shift(x, max(1, x.shape[-1] // 8), g)  # ±1 pixel on 8×8 digits, ±4 on 32×32
        return random_flip(x, g) if self.dataset.flips else x
