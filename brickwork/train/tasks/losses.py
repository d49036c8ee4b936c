"""The training loss of each task: cross-entropy with label smoothing for classification;
for segmentation cross-entropy over the labelled pixels, Dice, or their sum (``--loss``)."""

from __future__ import annotations

import torch
from torch import nn

from brickwork.errors import ConfigError
from brickwork.train.config import LOSSES, TASK_DEFAULTS
from brickwork.train.data.masks import IGNORE


class DiceLoss(nn.Module):
    """``1 -`` the soft Dice score, averaged over the classes: for each class,
    ``2 |P ∩ T| / (|P| + |T|)`` with ``P`` the predicted probabilities and ``T`` the one-hot
    masks, over the batch's labelled pixels (those of ``ignore_index`` count for nothing).

    A class absent from both the masks and the predictions scores 1 (``smooth`` on both sides),
    so it neither helps nor hurts.
    """

    def __init__(self, ignore_index: int = IGNORE, smooth: float = 1.0) -> None:
        super().__init__()
        self.ignore_index, self.smooth = ignore_index, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labelled = (target != self.ignore_index).unsqueeze(1)  # (B, 1, H, W)
        probs = logits.softmax(1) * labelled
        one_hot = nn.functional.one_hot(target.where(labelled[:, 0], 0), logits.shape[1])
        truth = one_hot.movedim(-1, 1).to(probs.dtype) * labelled
        dims = (0, *range(2, logits.dim()))
        overlap = (probs * truth).sum(dims)
        total = probs.sum(dims) + truth.sum(dims)
        return 1 - ((2 * overlap + self.smooth) / (total + self.smooth)).mean()


class PixelCrossEntropy(nn.Module):
    """Cross-entropy averaged over the labelled pixels; 0 for a batch with none (PyTorch's own
    mean would divide by zero and stop the run on a NaN)."""

    def __init__(self, ignore_index: int = IGNORE, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = nn.functional.cross_entropy(
            logits,
            target,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction="sum",
        )
        return total / (target != self.ignore_index).sum().clamp_min(1)


class SumOfLosses(nn.Module):
    """Cross-entropy plus Dice, each with its full weight."""

    def __init__(self, *losses: nn.Module) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum((loss(logits, target) for loss in self.losses), logits.new_zeros(()))


def make_criterion(task: str, loss: str | None, label_smoothing: float) -> nn.Module:
    """The training loss of ``task`` (``classification``, ``segmentation``).

    Args:
        task: the run's task.
        loss: ``ce``, ``dice`` or ``ce+dice`` (see :data:`LOSSES`); ``None``: the task's.
        label_smoothing: cross-entropy's.

    Raises:
        ConfigError: an unknown ``loss``, or Dice for classification.
    """
    loss = loss or TASK_DEFAULTS[task]["loss"]
    if loss not in LOSSES:
        raise ConfigError(f"--loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if task != "segmentation":
        if loss != "ce":
            raise ConfigError(f"--loss {loss} is a segmentation loss; a classifier trains with ce")
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    ce = PixelCrossEntropy(IGNORE, label_smoothing)
    if loss == "ce":
        return ce
    return DiceLoss() if loss == "dice" else SumOfLosses(ce, DiceLoss())
