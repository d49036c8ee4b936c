"""``evaluate_tensors``: loss, accuracy and confusion matrix of a model on tensors."""

from __future__ import annotations

import torch
from torch import nn

from brickwork.train import distributed
from brickwork.train.data import batches


def sum_dtype(device: torch.device) -> torch.dtype:
    """What running sums are kept in: float64, or float32 on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
    n_classes: int | None = None,
) -> tuple[float, float, torch.Tensor]:
    """Loss, accuracy and confusion matrix (rows: true class) of ``model`` on ``(x, y)``.

    Under torchrun each rank evaluates its share and the sums are added up (then ``n_classes``
    must be given, so that every rank's matrix has the same size).

    Args:
        model: the model (put in eval mode).
        x: images ``(N, C, H, W)`` in [0, 1], on the model's device.
        y: labels ``(N,)``.
        mean: per-channel mean ``(1, C, 1, 1)`` to normalise with.
        std: per-channel standard deviation ``(1, C, 1, 1)``.
        batch_size: images per forward pass.
        n_classes: the matrix's size; ``None``: the largest label or output width.
    """
    model.eval()
    mine = distributed.share(len(y))
    x_here, y_here = x[mine], y[mine]
    exact = sum_dtype(y.device)
    loss_sum = torch.zeros((), dtype=exact, device=y.device)
    predictions, width = [], 0
    for index in batches(len(y_here), batch_size, None):
        logits = model((x_here[index] - mean) / std).float()
        width = logits.shape[1]
        loss_sum += nn.functional.cross_entropy(logits, y_here[index], reduction="sum").to(exact)
        predictions.append(logits.argmax(1))
    if n_classes is None:
        n_classes = max(int(y.max()) + 1 if len(y) else 0, width)
    predicted = torch.cat(predictions) if predictions else y_here.new_empty(0, dtype=torch.long)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long, device=y.device)
    confusion.index_put_((y_here, predicted), torch.ones_like(y_here), accumulate=True)
    distributed.all_reduce_sum(confusion)
    distributed.all_reduce_sum(loss_sum)
    accuracy = int(confusion.trace()) / len(y) if len(y) else 0.0
    return float(loss_sum) / max(len(y), 1), accuracy, confusion.cpu()
