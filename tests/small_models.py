"""The guide's classifier, small enough for the 8×8 digits, with the same weights every call."""

import torch

import brickwork


def small_model(n_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(1)
    return brickwork.CNNClassifier(1, [4, 8], [16], n_classes, input_shape=(8, 8))


def smaller_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return brickwork.CNNClassifier(1, [4], [8], 10, input_shape=(8, 8))
