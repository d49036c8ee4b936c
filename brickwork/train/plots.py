"""The run directory's pictures: learning curves and the test confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brickwork.files import atomic_write


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation, side by side."""
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
        right.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def plot_confusion(confusion: torch.Tensor, classes: list[str], path: Path) -> None:
    """The confusion matrix with counts: rows are the true class, columns the predicted one."""
    plt = _figure()
    n = len(classes)
    matrix = confusion.numpy()
    side = max(4.0, 1.0 + 0.5 * n)  # room for the title even with two classes
    fig, axis = plt.subplots(figsize=(side, side))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(n), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    axis.set_yticks(range(n), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                color = "white" if matrix[i, j] > top / 2 and n > 1 else "black"
                axis.text(
                    j, i, str(matrix[i, j]), ha="center", va="center", color=color, fontsize=8
                )
    axis.set_title(f"test: {int(matrix.trace())}/{int(matrix.sum())} correct")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
