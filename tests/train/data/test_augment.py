"""Augmentation of batch tensors."""

import torch

from brickwork.train.data import random_flip, random_shift


def test_batch_augmentation_shifts_and_flips() -> None:
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    shifted = random_shift(x, 1, torch.Generator().manual_seed(0))
    positions = {tuple(torch.nonzero(img[0])[0].tolist()) for img in shifted}
    assert positions <= {(r, c) for r in (3, 4, 5) for c in (3, 4, 5)}
    assert len(positions) > 3
    assert shifted.sum() == 64
    flipped = random_flip(
        torch.arange(8.0).view(1, 1, 1, 8).repeat(64, 1, 1, 1), torch.Generator().manual_seed(0)
    )
    assert {float(img[0, 0, 0]) for img in flipped} == {0.0, 7.0}
