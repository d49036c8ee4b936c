"""The run directory's pictures: learning curves and the test confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brickwork.files import atomic_write
from brickwork.train.pictures import png_metadata


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation, side by side (segmentation: pixel
    accuracy, with the validation mean IoU)."""
    plt = _figure()
    from matplotlib.ticker import MaxNLocator

    rows = [row for row in history if "epoch" in row]
    epochs = [row["epoch"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric, title in ((left, "loss", "loss"), (right, "acc", "accuracy")):
        axis.plot(epochs, [row[f"train_{metric}"] for row in rows], marker="o", label="train")
        axis.plot(epochs, [row[f"val_{metric}"] for row in rows], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    test = next((row for row in history if "test_acc" in row), None)
    if test is not None:
        right.axhline(test["test_acc"], color="grey", linestyle="--", label="test")
    if any("val_miou" in row for row in rows):  # segmentation: accuracy is of pixels
        right.set_title("pixel accuracy and mean IoU")
        right.plot(epochs, [row["val_miou"] for row in rows], marker="s", label="validation mIoU")
        if test is not None and "test_miou" in test:
            right.axhline(test["test_miou"], color="black", linestyle=":", label="test mIoU")
    right.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png", metadata=png_metadata()))
    plt.close(fig)


def per_true_class(confusion: torch.Tensor) -> torch.Tensor:
    """``confusion`` (rows: true class) as shares of each row: rows sum to 1, or are all 0 for a
    class with no image."""
    counts = confusion.double()
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1)


def plot_confusion(
    confusion: torch.Tensor, classes: list[str], path: Path, title: str = "test"
) -> None:
    """The confusion matrix normalised per true class: each row is the share of that class's
    images given each prediction (rows sum to 1, the diagonal is each class's recall), with the
    share in every cell and the class names on both axes."""
    plt = _figure()
    n = len(classes)
    counts = confusion.double()
    shares = per_true_class(confusion).numpy()
    side = max(4.0, 1.5 + 0.6 * n)  # room for the title even with two classes
    fig, axis = plt.subplots(figsize=(side, side))
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set_xticks(range(n), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    axis.set_yticks(range(n), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            value = shares[i, j]
            text = "0" if value == 0 else "1" if value == 1 else f"{value:.2f}".lstrip("0")
            color = "white" if value > 0.5 else "black"
            axis.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    correct, total = int(counts.trace().item()), int(counts.sum().item())
    axis.set_title(f"{title}: {correct}/{total} correct; rows: share of each true class")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png", metadata=png_metadata()))
    plt.close(fig)
