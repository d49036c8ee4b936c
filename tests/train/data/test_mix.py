"""Mixup and CutMix: images mixed with the mirrored batch, targets weighted to match."""

import pytest
import torch

from brickwork.train.data import Dataset, LoaderOptions, Mixing, TensorBatches
from brickwork.train.data.mix import mix


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    return x, torch.tensor([0, 1, 2, 3])


def test_mixup_blends_each_image_with_its_mirror_and_weights_the_targets_alike() -> None:
    x, y = batch()
    mixed, target = mix(x, y, 5, Mixing(mixup=0.4), seed=11)
    lam = float(target[0, 0])
    assert 0 < lam < 1
    torch.testing.assert_close(mixed[0], x[0] * lam + x[3] * (1 - lam))
    torch.testing.assert_close(target.sum(1), torch.ones(4))
    assert target[0, 3] == pytest.approx(1 - lam)
    assert torch.equal(x, batch()[0])  # the input is left as it was


def test_cutmix_pastes_a_box_and_weights_the_targets_by_its_area() -> None:
    x, y = batch()
    for seed in range(20):
        mixed, target = mix(x, y, 4, Mixing(cutmix=1.0), seed=seed)
        pasted = float((mixed[0] == 3).float().mean())  # image 0 holds image 3's box
        assert target[0, 3] == pytest.approx(pasted)
        assert target[0, 0] == pytest.approx(1 - pasted)
        assert set(mixed[0].unique().tolist()) <= {0.0, 3.0}


def test_with_both_a_batch_uses_one_or_the_other_and_the_same_seed_the_same() -> None:
    x, y = batch()
    kinds = set()
    for seed in range(30):
        mixed, target = mix(x, y, 4, Mixing(mixup=0.2, cutmix=1.0), seed=seed)
        again, target_again = mix(x, y, 4, Mixing(mixup=0.2, cutmix=1.0), seed=seed)
        assert torch.equal(mixed, again)
        assert torch.equal(target, target_again)
        kinds.add("cutmix" if set(mixed[0].unique().tolist()) <= {0.0, 3.0} else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_tensor_batches_carry_soft_targets_when_mixing() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 4, 4, generator=g), torch.arange(20) % 4
    data = Dataset("noise", list("abcd"), x, y, x, y, x, y)
    options = LoaderOptions(batch_size=8, augment=False, mixing=Mixing(mixup=0.2))
    [first, *_] = TensorBatches(data, options).epoch(0)
    assert first.target.shape == (8, 4)
    torch.testing.assert_close(first.target.sum(1), torch.ones(8))
    for row, own, mirror in zip(first.target, first.y, first.y.flip(0), strict=True):
        assert float(row[own] + (row[mirror] if mirror != own else 0)) == pytest.approx(1)
