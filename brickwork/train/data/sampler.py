"""Which samples each step of an epoch takes, on this process: the same whoever asks.

An epoch's order is a permutation drawn from ``(seed, epoch)`` (the one the tensor datasets use
too); step ``k`` takes the ``k``-th slice of ``batch_size`` samples of it, and this process takes
its contiguous share of that slice (:func:`~brickwork.train.distributed.share`). Each sample is
named by its key ``(epoch, index)``, from which its augmentation is seeded, so neither the
number of DataLoader workers nor the order they finish in changes a batch. An epoch can start at
any step: a resumed run reads no sample twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from brickwork.train import distributed
from brickwork.train.data.augment import batches

SampleKey = tuple[int, int]
"""``(epoch, index)``; epoch ``-1``: an evaluation sample, not augmented."""
EVAL = -1


def step_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one step's randomness (``step=-1``: the epoch's shuffling)."""
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the ``n`` training samples in ``epoch``, ``(n,)``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(step_seed(seed, epoch, -1)))


class EpochSampler:
    """The keys of this process's share of each step of one epoch, from step ``start`` on: a
    batch sampler for ``torch.utils.data.DataLoader``.

    Args:
        n: the number of training samples.
        batch_size: samples a step, over every process.
        seed: the run's seed.
        epoch: the epoch, 0-based.
        start: the first step to give.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        """The steps given (from ``start`` on)."""
        return max(0, math.ceil(self.n / self.batch_size) - self.start)

    def step_size(self, step: int) -> int:
        """The samples of step ``step`` over every process."""
        return min(self.batch_size, self.n - step * self.batch_size)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        generator = torch.Generator().manual_seed(step_seed(self.seed, self.epoch, -1))
        for step, index in enumerate(batches(self.n, self.batch_size, generator)):
            if step >= self.start:
                mine = index[distributed.share(len(index))].tolist()
                yield [(self.epoch, i) for i in mine]


class EvalSampler:
    """The keys of this process's share of a split, in order, ``batch_size`` at a time."""

    def __init__(self, n: int, batch_size: int) -> None:
        self.share = range(n)[distributed.share(n)]
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.share) / self.batch_size)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for start in range(0, len(self.share), self.batch_size):
            yield [(EVAL, i) for i in self.share[start : start + self.batch_size]]
