"""Hand-written baselines that the benchmarks compare brickwork against."""

from __future__ import annotations

import torch
from torch import nn

import torchvision_resnet


class GuideClassifierByHand(nn.Module):
    """The guide's classifier as people write it: layers as attributes, flatten size by hand.

    Same layers, order and parameter shapes as
    ``brickwork.CNNClassifier(1, [32, 64], [1024, 512], 10, activation="lrelu")``.
    """

    def __init__(self, size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * size * size, 1024)
        self.fc2 = nn.Linear(1024, 512)
        self.last = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.leaky_relu(self.bn1(self.conv1(x)))
        x = nn.functional.leaky_relu(self.bn2(self.conv2(x)))
        x = x.flatten(1)
        x = torch.sigmoid(self.fc1(x))
        x = torch.sigmoid(self.fc2(x))
        return self.last(x)  # type: ignore[no-any-return]


def ResNet50ByHand(n_classes: int = 1000) -> nn.Module:  # noqa: N802 - reads as the class it was
    """A ResNet-50 written out by hand in torchvision's style (25,557,032 parameters)."""
    return torchvision_resnet.resnet50(n_classes)
