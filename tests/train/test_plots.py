"""The run's pictures: the confusion matrix normalised per true class."""

from pathlib import Path

import torch

from brickwork.train.data.cifar import CIFAR_CLASSES
from brickwork.train.plots import per_true_class, plot_confusion


def test_each_true_class_row_sums_to_one() -> None:
    confusion = torch.tensor([[8, 2, 0], [0, 0, 0], [1, 1, 2]])
    shares = per_true_class(confusion)
    assert shares.tolist() == [[0.8, 0.2, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]]


def test_ten_classes_are_drawn_as_one_png(tmp_path: Path) -> None:
    torch.manual_seed(0)
    confusion = torch.diag(torch.full((10,), 40)) + torch.randint(0, 3, (10, 10))
    plot_confusion(confusion, CIFAR_CLASSES, tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]
