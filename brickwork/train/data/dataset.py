"""``Dataset``: a classification dataset held as tensors, and how a split is carved out of one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from brickwork.errors import DataError


@dataclass
class Dataset:
    """A classification dataset held as tensors: images ``(N, C, H, W)`` in [0, 1], labels ``(N,)``.

    ``mean`` and ``std`` (per channel, from the training split) are what training normalises
    with; checkpoints keep them so that predictions normalise the same way.
    """

    name: str
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    flips: bool = False
    """Whether a horizontal flip keeps an image's class (photos yes, digits no)."""
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What loading found worth telling (nothing, for tensors)."""

    def __post_init__(self) -> None:
        if not self.mean:
            per_channel = self.x_train.transpose(0, 1).flatten(1)  # (C, N*H*W)
            self.mean = per_channel.mean(1).tolist()
            self.std = per_channel.std(1).clamp_min(1e-6).tolist()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def split_size(self, split: str) -> int:
        """The number of images in ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        return len(getattr(self, f"y_{split}"))

    def with_stats(self, mean: list[float], std: list[float]) -> Dataset:
        """The same dataset, normalised with ``mean`` and ``std`` (a model file's)."""
        return replace(self, mean=list(mean), std=list(std))

    def model_metadata(self) -> dict[str, Any]:
        """What a model file keeps about how this data reaches the model: nothing more than
        its mean and std (the images are the model's input size already)."""
        return {}

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every tensor on ``device``."""
        moved = {
            name: getattr(self, name).to(device)
            for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        }
        return replace(self, **moved)


def split_validation(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Carve a validation (or test) set out of a training set (see :func:`split_indices`).

    Args:
        x: the images, ``(N, C, H, W)``.
        y: their labels, ``(N,)``.
        fraction: the share of ``N`` that goes to the new set (at least one image).
        seed: the split's seed.

    Returns:
        ``x_train, y_train, x_val, y_val``.
    """
    train_idx, val_idx = split_indices(y.numpy(), fraction, seed)
    train, val = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
    return x[train], y[train], x[val], y[val]


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions of a training set that stay, and those that go to a new split.

    Stratified when every class has enough images for it, plainly random otherwise.

    Args:
        labels: the training set's labels, ``(N,)``.
        fraction: the share of ``N`` that goes to the new set (at least one image).
        seed: the split's seed.

    Returns:
        ``(kept, taken)``, positions into ``labels``.

    Raises:
        DataError: too few images to leave any for training.
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    n_val = max(1, round(fraction * len(labels)))
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    if len(labels) - n_val < 1:
        raise DataError(f"too few images ({len(labels)}) to split off a validation or test set")
    stratify = labels if n_val >= len(counts) and counts.min() >= 2 else None
    kept, taken = train_test_split(
        index, test_size=n_val, random_state=seed % 2**32, stratify=stratify
    )
    return kept, taken
