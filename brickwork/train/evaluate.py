"""``evaluate_batches``: loss, accuracy and confusion matrix of a model on a split's batches;
``class_scores``: precision, recall and F1 per class, and their averages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from brickwork.train import distributed
from brickwork.train.tasks.scores import pixels


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
    """Loss, accuracy and confusion matrix (rows: true class) of ``model`` on ``batches``; for
    segmentation, of its labelled pixels (the loss and accuracy are then per pixel).

    Under torchrun each rank evaluates its share and the sums are added up.

    Args:
        model: the model (put in eval mode).
        batches: this process's share of the split: normalised images ``(b, C, H, W)`` and
            labels ``(b,)`` or masks ``(b, H, W)`` on ``device`` (see
            :meth:`~brickwork.train.data.Batches.split`).
        n_classes: the matrix's size.
        device: where the model is.
    """
    model.eval()
    exact = sum_dtype(device)
    sums = torch.zeros(2, dtype=exact, device=device)  # loss sum, images
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long, device=device)
    for x, y_given in batches:
        logits, y = pixels(model(x).float(), y_given)  # segmentation: one row per pixel
        sums[0] += nn.functional.cross_entropy(logits, y, reduction="sum").to(exact)
        sums[1] += len(y)
        confusion.index_put_((y, logits.argmax(1)), torch.ones_like(y), accumulate=True)
    distributed.all_reduce_sum(confusion)
    loss_sum, count = distributed.all_reduce_sum(sums).tolist()
    accuracy = int(confusion.trace()) / count if count else 0.0
    return loss_sum / max(count, 1), accuracy, confusion.cpu()


def class_scores(confusion: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support per class from a confusion matrix (rows: true class),
    and their macro (plain mean) and weighted (by support) averages."""
    per_class = {}
    for i, name in enumerate(classes):
        true_positive = int(confusion[i, i])
        predicted, actual = int(confusion[:, i].sum()), int(confusion[i].sum())
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    total = sum(row["support"] for row in per_class.values())
    averages = {}
    for average in ("macro", "weighted"):
        averages[average] = {
            score: sum(
                row[score] * (row["support"] / total if average == "weighted" else 1 / len(classes))
                for row in per_class.values()
            )
            if total
            else 0.0
            for score in ("precision", "recall", "f1")
        }
    return {"per_class": per_class, **averages}
