"""Batches of an :class:`ImageDataset`, decoded in DataLoader worker processes.

The main process plans each step (:mod:`~brickwork.train.data.sampler`): the keys ``(epoch,
index)`` of its share. Workers open each image, crop it with generators seeded from ``(seed,
epoch, index)`` and stack the step's images as ``uint8`` ``(b, H, W, C)`` in shared memory; the
DataLoader hands the steps back in order, pinned when the device is a GPU. On the device the
batch becomes ``(b, C, H, W)`` floats, normalised. An image that cannot be read is left out of
its batch and told (:class:`~brickwork.train.data.unreadable.Unreadable`).

A terminal sends Ctrl-C, and torchrun its SIGTERM, to the whole process group, workers included.
Workers ignore both (:func:`leave_signals_to_the_loop`): the training loop stops at the end of a
step, saves, and then stops its workers, instead of finding them dead in the middle of a batch.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from brickwork.errors import DataError
from brickwork.train.data.loader import Batch, LoaderOptions, make_batch
from brickwork.train.data.masks import IGNORE
from brickwork.train.data.recycle import Recycler
from brickwork.train.data.sampler import EVAL, EpochSampler, EvalSampler, SampleKey
from brickwork.train.data.streamed import ImageDataset, Records
from brickwork.train.data.transforms import Transform, sample_rng
from brickwork.train.data.unreadable import Unreadable

PREFETCH = 2
"""Batches each worker prepares ahead."""


def default_workers() -> int:
    """The cores this process may use, shared among torchrun's processes on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (cores or 1) // max(1, processes))


def leave_signals_to_the_loop(worker_id: int) -> None:
    """A worker's start: ignore SIGINT and SIGTERM (PyTorch's workers die of SIGTERM).

    Args:
        worker_id: the worker's number (unused).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Skipped(NamedTuple):
    """A sample that could not be read."""

    sample: int
    """Its index in the split."""
    message: str


class KeyedImages(torch.utils.data.Dataset[Any]):
    """One split's images by key: ``images[(epoch, index)]`` is sample ``index`` cropped for
    ``epoch`` (``(H, W, C)`` ``uint8`` and its label, or for segmentation its mask cropped
    alike, ``(H, W)`` ``uint8``), or a :class:`Skipped`.

    Args:
        records: the split.
        transform: the crop (training or evaluation).
        seed: the run's seed.
        n_classes: segmentation: the class count a mask's indices must stay under (255
            aside); a mask with another index is skipped like a damaged file.
    """

    def __init__(
        self, records: Records, transform: Transform, seed: int, n_classes: int | None = None
    ) -> None:
        self.records, self.transform, self.seed = records, transform, seed
        self.n_classes = n_classes

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: SampleKey) -> tuple[np.ndarray, int | np.ndarray] | Skipped:
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index) if epoch != EVAL else None
        open_mask = getattr(self.records, "open_mask", None)
        try:
            with self.records.open(index) as image:
                if open_mask is None:
                    return self.transform(image, rng), int(self.records.labels[index])
                with open_mask(index) as mask:
                    pixels, labels = self.transform.pair(image, mask, rng)
        except DataError as err:
            return Skipped(index, str(err))
        wrong = labels[(labels != IGNORE) & (labels >= (self.n_classes or IGNORE))]
        if len(wrong):
            where = getattr(self.records, "mask_path", self.records.where)(index)
            return Skipped(
                index,
                f"{where}: class index {int(wrong.max())}, but the data has {self.n_classes} "
                f"classes (0-{(self.n_classes or 1) - 1}, and 255 for pixels to ignore)",
            )
        return pixels, labels


def collate(
    samples: list[tuple[np.ndarray, int | np.ndarray] | Skipped],
) -> tuple[torch.Tensor, torch.Tensor, list[Skipped]]:
    """Stack a step's images, ``(b, H, W, C)`` ``uint8`` (in shared memory in a worker), and
    labels ``(b,)`` (or masks, ``(b, H, W)`` ``uint8``); set the unreadable ones apart."""
    good = [s for s in samples if not isinstance(s, Skipped)]
    skipped = [s for s in samples if isinstance(s, Skipped)]
    if not good:
        return torch.empty(0, 0, 0, 0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), skipped
    x = _stacked([a for a, _ in good])
    labels = [label for _, label in good]
    if isinstance(labels[0], np.ndarray):
        return x, _stacked(labels), skipped  # type: ignore[arg-type]
    return x, torch.tensor(labels, dtype=torch.long), skipped


def _stacked(arrays: list[np.ndarray]) -> torch.Tensor:
    """``arrays`` (``uint8``, one shape) as one tensor, in shared memory in a worker."""
    shape = (len(arrays), *arrays[0].shape)
    if get_worker_info() is None:
        x = torch.empty(shape, dtype=torch.uint8)
    else:  # made in shared memory (as default_collate does), sent back without another copy;
        # share_memory_() would first copy a fresh tensor there
        shared = torch.UntypedStorage._new_shared(math.prod(shape))  # type: ignore[no-untyped-call]
        x = torch.empty(0, dtype=torch.uint8).set_(shared).view(shape)
    np.stack(arrays, out=x.numpy())
    return x


class StreamBatches:
    """The batches of an :class:`ImageDataset`, decoded by ``options.workers`` processes.

    Args:
        data: the dataset.
        options: batch size, seed, augmentation, device, workers, mixing, log.
    """

    def __init__(self, data: ImageDataset, options: LoaderOptions) -> None:
        self.data, self.options = data, options
        # (x / 255 - mean) / std, as (x - 255 mean) * (1 / (255 std)) on the device
        self.shift = torch.tensor(data.mean, device=options.device).view(1, -1, 1, 1) * 255
        self.scale = 1 / (torch.tensor(data.std, device=options.device).view(1, -1, 1, 1) * 255)
        self.recycler = Recycler()  # CPU batches: memory used again, not mapped anew
        everything = sum(data.split_size(split) for split in data.splits)
        self.unreadable = {
            split: Unreadable(split, data.split_size(split), everything, options.log)
            for split in data.splits
        }

    def __len__(self) -> int:
        return len(EpochSampler(self.data.split_size("train"), self.options.batch_size, 0, 0))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        n = self.data.split_size("train")
        sampler = EpochSampler(n, self.options.batch_size, self.options.seed, epoch, start)
        transform = self.data.train_transform(self.options.augment)
        unreadable = self.unreadable["train"]
        for step, (x, y) in enumerate(self._load("train", transform, sampler), start):
            size = sampler.step_size(step)
            yield make_batch(epoch, step, x, y, size, self.data.n_classes, self.options)
        unreadable.end(f"epoch {epoch + 1}")

    def split(self, name: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        sampler = EvalSampler(self.data.split_size(name), self.options.batch_size)
        yield from self._load(name, self.data.eval_transform(), sampler)
        self.unreadable[name].end("validation" if name == "val" else name)

    def _load(
        self, split: str, transform: Transform, sampler: EpochSampler | EvalSampler
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The steps of ``sampler``, on the device: normalised ``(b, C, H, W)`` and labels."""
        device, workers = self.options.device, self.options.workers
        loader = DataLoader(
            KeyedImages(self.data.splits[split], transform, self.options.seed, self.data.n_classes),
            batch_sampler=sampler,
            num_workers=workers,
            collate_fn=collate,
            worker_init_fn=leave_signals_to_the_loop,
            pin_memory=device.type == "cuda",
            prefetch_factor=PREFETCH if workers else None,
        )
        unreadable = self.unreadable[split]
        for x, y, skipped in loader:
            for sample in skipped:
                unreadable.add(sample.sample, sample.message)
            if not len(y):
                x = torch.zeros(0, *transform.size, self.data.channels, dtype=torch.uint8)
                if self.data.task == "segmentation":
                    y = torch.zeros(0, *transform.size, dtype=torch.uint8)
            yield self._normalised(x.to(device, non_blocking=True)), self._labels(y, device)

    @staticmethod
    def _labels(y: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Labels, or masks (sent as ``uint8``, a quarter of the bytes), as ``long`` on the
        device."""
        return y.to(device, non_blocking=True).long()

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        """``uint8`` ``(b, H, W, C)`` → normalised ``float32`` ``(b, C, H, W)``, contiguous, in
        two passes: the subtraction with the conversion and the transpose, then a product.

        On the CPU, NumPy does both: single-threaded, it takes less than half the processor
        time PyTorch does (its ``uint8`` → ``float32`` conversion is slower, and its threads
        wait on cores the DataLoader workers keep busy), time the workers would lose.
        """
        shape = (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
        if x.device.type != "cpu":
            out = torch.empty(shape, dtype=torch.float32, device=x.device)
            return torch.sub(x.permute(0, 3, 1, 2), self.shift, out=out).mul_(self.scale)
        out = self.recycler.empty(shape)
        values = out.numpy()
        np.subtract(x.numpy().transpose(0, 3, 1, 2), self.shift.numpy(), out=values)
        np.multiply(values, self.scale.numpy(), out=values)
        return out
