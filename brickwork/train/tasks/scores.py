"""What a batch adds to an epoch's sums, and the scores of a segmentation confusion matrix.

A classifier's batch adds its cross-entropy summed over images and its correct images. A
segmentation batch adds, per image, the mean cross-entropy and the pixel accuracy over the
image's labelled pixels (mask value 255 is ignored), so that both sums still divide by the
number of images. Evaluation counts pixels instead: :func:`pixels` flattens score maps to one
row per labelled pixel, and the confusion matrix of pixels gives pixel accuracy, IoU and Dice
(:func:`seg_scores`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from brickwork.train.data.masks import IGNORE


def batch_sums(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain loss summed over the batch's images and their accuracy summed (correct images;
    for masks, each image's share of correct labelled pixels).

    Args:
        logits: ``(b, K)`` scores, or ``(b, K, H, W)`` score maps.
        y: ``(b,)`` labels, or ``(b, H, W)`` masks.
    """
    if logits.dim() == 2:
        plain = nn.functional.cross_entropy(logits, y, reduction="sum")
        return plain, (logits.argmax(1) == y).sum()
    labelled = y != IGNORE
    losses = nn.functional.cross_entropy(logits, y, ignore_index=IGNORE, reduction="none")
    count = labelled.flatten(1).sum(1).clamp_min(1)
    right = (logits.argmax(1) == y) & labelled
    return (losses.flatten(1).sum(1) / count).sum(), (right.flatten(1).sum(1) / count).sum()


def pixels(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Score maps ``(b, K, H, W)`` and masks ``(b, H, W)`` as one row of scores and one label per
    labelled pixel, ``(n, K)`` and ``(n,)``; scores ``(b, K)`` and labels are returned as given."""
    if logits.dim() == 2:
        return logits, y
    flat = logits.movedim(1, -1).reshape(-1, logits.shape[1])
    labels = y.reshape(-1)
    labelled = labels != IGNORE
    return flat[labelled], labels[labelled]


def seg_columns(confusion: torch.Tensor, classes: list[str], prefix: str) -> dict[str, Any]:
    """A metrics row's segmentation columns, named with ``prefix`` (``val_``, ``ema_val_``,
    ``test_``): mean IoU, mean Dice and each class's IoU."""
    seg = seg_scores(confusion, classes)
    return {
        f"{prefix}miou": seg["miou"],
        f"{prefix}dice": seg["mdice"],
        f"{prefix}iou": {name: row["iou"] for name, row in seg["per_class"].items()},
    }


def seg_scores(confusion: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """Pixel accuracy, IoU and Dice per class, and their means, from a confusion matrix of
    pixels (rows: true class).

    A class with no pixel in the masks and none predicted has no IoU or Dice (``None``) and is
    left out of the means (``miou``, ``mdice``).
    """
    matrix = confusion.double()
    hits = matrix.diagonal()
    truth, predicted = matrix.sum(1), matrix.sum(0)
    union = truth + predicted - hits
    per_class: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(classes):
        seen = bool(union[i] > 0)
        per_class[name] = {
            "iou": float(hits[i] / union[i]) if seen else None,
            "dice": float(2 * hits[i] / (truth[i] + predicted[i])) if seen else None,
            "pixels": int(truth[i]),
        }
    scored = [row for row in per_class.values() if row["iou"] is not None]
    total = float(matrix.sum())
    return {
        "pixel_accuracy": float(hits.sum()) / total if total else 0.0,
        "miou": sum(r["iou"] for r in scored) / len(scored) if scored else 0.0,
        "mdice": sum(r["dice"] for r in scored) / len(scored) if scored else 0.0,
        "per_class": per_class,
    }
