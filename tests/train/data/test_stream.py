"""Streamed batches: the same with any number of workers, from any step, in any process's
share; unreadable images told once and skipped, and fatal past 1%."""

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from image_trees import make_tree

from brickwork.errors import DataError
from brickwork.train import distributed
from brickwork.train.data import Batch, ImageDataset, LoaderOptions, load_dataset, open_batches
from brickwork.train.data.stream import KeyedImages, collate
from brickwork.train.distributed import World


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> ImageDataset:
    root = make_tree(tmp_path_factory.mktemp("photos"), {"a": 12, "b": 12, "c": 12})
    data = load_dataset(f"folder:{root}", image_size=[16])
    assert isinstance(data, ImageDataset)
    return data


def epoch(
    data: ImageDataset, workers: int, number: int = 1, start: int = 0, **kw: object
) -> list[Batch]:
    options = LoaderOptions(batch_size=8, seed=5, workers=workers, **kw)  # type: ignore[arg-type]
    return list(open_batches(data, options).epoch(number, start))


def same(a: list[Batch], b: list[Batch]) -> bool:
    return len(a) == len(b) and all(
        p.step == q.step and p.size == q.size and torch.equal(p.x, q.x) and torch.equal(p.y, q.y)
        for p, q in zip(a, b, strict=True)
    )


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
def test_the_number_of_workers_changes_nothing(folder: ImageDataset) -> None:
    alone = epoch(folder, 0)
    assert same(epoch(folder, 1), alone)
    assert same(epoch(folder, 4), alone)
    assert [b.size for b in alone] == [8, 8, 8, 1]  # 25 training images
    assert alone[0].x.shape == (8, 3, 16, 16)
    assert alone[0].x.dtype == torch.float32


def test_an_epoch_resumed_at_a_step_reads_the_rest_exactly(folder: ImageDataset) -> None:
    whole = epoch(folder, 2)
    assert same(epoch(folder, 2, start=2), whole[2:])
    assert not same(epoch(folder, 0, number=2), whole)  # each epoch its own order and crops


def test_augmentation_is_random_resized_crops_and_without_it_the_eval_crop(
    folder: ImageDataset,
) -> None:
    plain = epoch(folder, 0, augment=False)
    augmented = epoch(folder, 0)
    assert all(torch.equal(p.y, a.y) for p, a in zip(plain, augmented, strict=True))
    assert not torch.equal(plain[0].x, augmented[0].x)
    # unaugmented, an epoch is the evaluation crop of every training image, shuffled
    shuffled = torch.cat([b.x for b in plain]).flatten(1).sum(1).sort().values
    evaluated = torch.cat([x for x, _ in open_batches(folder, LoaderOptions(8)).split("train")])
    torch.testing.assert_close(shuffled, evaluated.flatten(1).sum(1).sort().values)


def test_images_travel_as_bytes_and_are_normalised_on_the_device(folder: ImageDataset) -> None:
    images = KeyedImages(folder.splits["train"], folder.eval_transform(), seed=0)
    x, labels, skipped = collate([images[(-1, 0)], images[(-1, 1)]])
    assert labels.tolist() == folder.splits["train"].labels[:2].tolist()
    assert x.dtype == torch.uint8
    assert x.shape == (2, 16, 16, 3)
    assert skipped == []
    [(normalised, labels)] = list(open_batches(folder, LoaderOptions(2)).split("val"))[:1]
    assert labels.dtype == torch.long
    val = KeyedImages(folder.splits["val"], folder.eval_transform(), seed=0)
    raw = torch.from_numpy(val[(-1, 0)][0]).permute(2, 0, 1).float() / 255  # type: ignore[index]
    mean = torch.tensor(folder.mean).view(-1, 1, 1)
    std = torch.tensor(folder.std).view(-1, 1, 1)
    torch.testing.assert_close(normalised[0], (raw - mean) / std)


def test_each_process_reads_only_its_share_of_each_batch(
    folder: ImageDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = epoch(folder, 0)
    shares = []
    for rank in range(2):
        monkeypatch.setattr(distributed, "current", lambda rank=rank: World(rank, 2, rank))
        monkeypatch.setattr(distributed, "gather_objects", lambda value: [value])
        shares.append(epoch(folder, 2))
    for one, first, second in zip(alone, *shares, strict=True):
        assert first.size == second.size == one.size
        assert torch.equal(torch.cat([first.x, second.x]), one.x)
        assert torch.equal(torch.cat([first.y, second.y]), one.y)


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    return make_tree(tmp_path, {"a": 60, "b": 60}, sizes=(12, 16), suffix=".png")


def spoil(root: Path, *names: str) -> list[Path]:
    paths = [root / name for name in names]
    for path in paths:
        path.write_bytes(path.read_bytes()[:40])  # truncated
    return paths


def test_an_unreadable_image_is_told_once_and_skipped_with_a_count(damaged: Path) -> None:
    [bad] = spoil(damaged, "a/007.png")
    data = load_dataset(f"folder:{damaged}", image_size=[8], seed=0)
    assert isinstance(data, ImageDataset)
    lines: list[str] = []
    options = LoaderOptions(batch_size=16, seed=0, workers=2, log=lines.append)
    batches = open_batches(data, options)
    where = next(
        s
        for s in data.splits
        if str(bad) in [data.splits[s].where(i) for i in range(data.split_size(s))]
    )
    for number in range(2):
        if where == "train":
            assert sum(len(b.y) for b in batches.epoch(number)) == data.split_size("train") - 1
        else:
            assert sum(len(y) for _, y in batches.split(where)) == data.split_size(where) - 1
    told = [line for line in lines if str(bad) in line]
    assert len(told) == 1
    assert told[0].startswith(f"skipped an unreadable image: {bad}: cannot")
    counts = [line for line in lines if "skipped 1 unreadable image(s)" in line]
    assert len(counts) == 2  # one at the end of each pass


def test_more_than_one_percent_unreadable_stops_with_the_list(damaged: Path) -> None:
    bad = spoil(damaged, *(f"a/{i:03d}.png" for i in range(0, 60, 4)))
    data = load_dataset(f"folder:{damaged}", image_size=[8], seed=0)
    assert isinstance(data, ImageDataset)
    batches = open_batches(data, LoaderOptions(batch_size=16, workers=0))
    with pytest.raises(
        DataError,
        match=r"of the \d+ images of the train split are unreadable, more than 1% of the dataset's 120: ",
    ) as info:
        list(batches.epoch(0))
    named = [p for p in bad if str(p) in str(info.value)]
    assert 1 <= len(named) <= 5
    assert "\n" not in str(info.value)
    assert "repair or remove" in (info.value.hint or "")


def children() -> list[int]:
    """The processes this one started that are still running (here: DataLoader workers)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields.get("PPid", "0").strip() or 0) == os.getpid():
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_workers_leave_sigterm_and_ctrl_c_to_the_training_loop(folder: ImageDataset) -> None:
    # a terminal's Ctrl-C and torchrun's SIGTERM reach the whole process group: the workers
    # must keep going until the loop stops at a step, or the loop finds them dead mid-batch
    batches = open_batches(folder, LoaderOptions(batch_size=4, workers=2)).epoch(0)
    first = [next(batches), next(batches)]  # one from each worker: both have started
    workers = children()
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    rest = list(batches)
    assert [b.step for b in [*first, *rest]] == list(range(7))


def test_batches_let_go_one_by_one_are_those_kept_all_at_once(folder: ImageDataset) -> None:
    """Each batch's memory is used again by a later one only after the loop lets it go."""
    options = LoaderOptions(batch_size=8, seed=5)
    kept = list(open_batches(folder, options).epoch(0))
    one_by_one = [b.x.clone() for b in open_batches(folder, options).epoch(0)]
    assert all(torch.equal(k.x, x) for k, x in zip(kept, one_by_one, strict=True))
    assert len({b.x.data_ptr() for b in kept}) == len(kept)
