"""Hand-written baselines that the benchmarks compare brickwork against."""

from __future__ import annotations

import torch
from torch import nn


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


class Bottleneck(nn.Module):
    """ResNet-50's block, written out: 1×1 → 3×3 (stride) → 1×1 ×4, with a projection shortcut."""

    expansion = 4

    def __init__(self, in_c: int, width: int, stride: int) -> None:
        super().__init__()
        out_c = width * self.expansion
        self.conv1 = nn.Conv2d(in_c, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_c)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c)
            )
            if stride != 1 or in_c != out_c
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.downsample(x))


class ResNet50ByHand(nn.Module):
    """A ResNet-50 written out by hand (25,557,032 parameters at 1000 classes)."""

    def __init__(self, n_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, in_c = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(in_c, width, stride if i == 0 else 1))
                in_c = width * Bottleneck.expansion
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))  # type: ignore[no-any-return]
