"""``TensorBatches``: the batches of an epoch, from any step on, shared out among processes."""

import pytest
import torch

from brickwork.train import distributed
from brickwork.train.data import Batch, Dataset, LoaderOptions, TensorBatches, step_seed
from brickwork.train.distributed import World


def dataset(n: int = 50, flips: bool = True) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 3, 8, 8, generator=g), torch.arange(n) % 5
    return Dataset("noise", list("abcde"), x, y, x[:5], y[:5], x[:5], y[:5], flips=flips)


def tensor_batches(data: Dataset, batch_size: int, seed: int, augment: bool) -> TensorBatches:
    return TensorBatches(data, LoaderOptions(batch_size, seed, augment))


def same(a: list[Batch], b: list[Batch]) -> bool:
    return len(a) == len(b) and all(
        p.step == q.step and p.size == q.size and torch.equal(p.x, q.x) and torch.equal(p.y, q.y)
        for p, q in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(("n", "batch_size", "steps"), [(50, 16, 4), (48, 16, 3), (5, 64, 1)])
def test_an_epoch_has_a_step_per_batch_and_the_last_may_be_smaller(
    n: int, batch_size: int, steps: int
) -> None:
    source = tensor_batches(dataset(n), batch_size, seed=0, augment=False)
    epoch = list(source.epoch(0))
    assert len(source) == len(epoch) == steps
    assert [b.step for b in epoch] == list(range(steps))
    assert [b.size for b in epoch] == [min(batch_size, n - i * batch_size) for i in range(steps)]


def test_without_augmentation_an_epoch_is_every_image_once_in_shuffled_order_normalised() -> None:
    data = dataset()
    epoch = list(tensor_batches(data, 16, seed=0, augment=False).epoch(0))
    x, y = torch.cat([b.x for b in epoch]), torch.cat([b.y for b in epoch])
    order = torch.randperm(50, generator=torch.Generator().manual_seed(step_seed(0, 0, -1)))
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    assert torch.equal(x, (data.x_train[order] - mean) / std)
    assert all(b.target is b.y for b in epoch)  # no mixing: the loss takes the labels
    assert torch.equal(y, data.y_train[order])


@pytest.mark.parametrize("augment", [False, True])
def test_a_resumed_epoch_continues_with_the_batches_of_an_uninterrupted_one(
    augment: bool,
) -> None:
    source = tensor_batches(dataset(), 16, seed=3, augment=augment)
    whole = list(source.epoch(2))
    assert same(list(source.epoch(2, start=2)), whole[2:])
    assert same(list(source.epoch(2)), whole)  # nothing depends on what ran before
    assert not same(list(source.epoch(1)), whole)  # each epoch has its own order


def test_augmentation_shifts_and_flips_within_the_image() -> None:
    data = dataset()
    plain = list(tensor_batches(data, 16, seed=0, augment=False).epoch(0))
    augmented = list(tensor_batches(data, 16, seed=0, augment=True).epoch(0))
    assert all(torch.equal(p.y, a.y) for p, a in zip(plain, augmented, strict=True))
    assert not all(torch.equal(p.x, a.x) for p, a in zip(plain, augmented, strict=True))
    assert all(a.x.shape == p.x.shape for p, a in zip(plain, augmented, strict=True))


def test_each_process_takes_its_share_of_the_batch_augmented_as_in_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tensor_batches(dataset(), 15, seed=1, augment=True)
    alone = list(source.epoch(0))
    shares = []
    for rank in range(2):
        monkeypatch.setattr(distributed, "current", lambda rank=rank: World(rank, 2, rank))
        shares.append(list(source.epoch(0)))
    for one, first, second in zip(alone, *shares, strict=True):
        assert first.size == second.size == one.size == len(one.y)
        assert len(first.y) - len(second.y) in (0, 1)
        assert torch.equal(torch.cat([first.x, second.x]), one.x)
        assert torch.equal(torch.cat([first.y, second.y]), one.y)
