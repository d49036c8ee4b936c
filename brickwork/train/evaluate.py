"""``evaluate_batches``: loss, accuracy and confusion matrix of a model on a split's batches."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from brickwork.train import distributed


def sum_dtype(device: torch.device) -> torch.dtype:
    """What running sums are kept in: float64, or float32 on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_classes: int,
    device: torch.device,
) -> tuple[float, float, torch.Tensor]:
    """Loss, accuracy and confusion matrix (rows: true class) of ``model`` on ``batches``.

    Under torchrun each rank evaluates its share and the sums are added up.

    Args:
        model: the model (put in eval mode).
        batches: this process's share of the split: normalised images ``(b, C, H, W)`` and
            labels ``(b,)`` on ``device`` (see :meth:`~brickwork.train.data.Batches.split`).
        n_classes: the matrix's size.
        device: where the model is.
    """
    model.eval()
    exact = sum_dtype(device)
    sums = torch.zeros(2, dtype=exact, device=device)  # loss sum, images
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long, device=device)
    for x, y in batches:
        logits = model(x).float()
        sums[0] += nn.functional.cross_entropy(logits, y, reduction="sum").to(exact)
        sums[1] += len(y)
        confusion.index_put_((y, logits.argmax(1)), torch.ones_like(y), accumulate=True)
    distributed.all_reduce_sum(confusion)
    loss_sum, count = distributed.all_reduce_sum(sums).tolist()
    accuracy = int(confusion.trace()) / count if count else 0.0
    return loss_sum / max(count, 1), accuracy, confusion.cpu()
