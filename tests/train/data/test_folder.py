"""``folder:PATH``: an image tree as real folders have it, read as training needs it."""

import os
from pathlib import Path

import numpy as np
import pytest
from image_trees import make_tree
from PIL import Image

from brickwork.errors import ConfigError, DataError
from brickwork.train.data import ImageDataset, load_dataset


def loaded(root: Path, seed: int = 0, **options: object) -> ImageDataset:
    data = load_dataset(f"folder:{root}", seed=seed, **options)  # type: ignore[arg-type]
    assert isinstance(data, ImageDataset)
    return data


def files(data: ImageDataset, split: str) -> list[str]:
    return [data.splits[split].where(i) for i in range(data.split_size(split))]


def test_a_flat_tree_is_carved_into_stratified_seeded_splits(tmp_path: Path) -> None:
    make_tree(tmp_path, {"cat": 20, "dog": 20})
    data = loaded(tmp_path)
    assert data.classes == ["cat", "dog"]
    assert [data.split_size(s) for s in ("train", "val", "test")] == [28, 4, 8]
    everything = sorted(f for s in ("train", "val", "test") for f in files(data, s))
    assert everything == sorted(str(p) for p in tmp_path.rglob("*.jpg"))  # each file once
    for split in ("val", "test"):  # stratified: both classes, equally
        assert np.bincount(data.splits[split].labels).tolist() == [data.split_size(split) // 2] * 2
    assert files(loaded(tmp_path), "test") == files(data, "test")
    assert files(loaded(tmp_path, seed=1), "test") != files(data, "test")


@pytest.mark.parametrize(
    ("present", "sizes"),
    [
        (("train", "val", "test"), [10, 4, 6]),
        (("train", "test"), [9, 1, 6]),  # val: an eighth of train, rounded
        (("train", "val"), [8, 4, 2]),  # test: a fifth of train
    ],
)
def test_split_folders_are_used_and_missing_ones_carved_from_train(
    tmp_path: Path, present: tuple[str, ...], sizes: list[int]
) -> None:
    counts = {"train": 5, "val": 2, "test": 3}
    for split in present:
        make_tree(tmp_path / split, {"a": counts[split], "b": counts[split]})
    data = loaded(tmp_path)
    assert [data.split_size(s) for s in ("train", "val", "test")] == sizes
    for split in present[1:]:
        assert all(f"/{split}/" in f for f in files(data, split))


def test_channels_and_default_size_come_from_the_first_image(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("L", (30 + i, 20), 100).save(tmp_path / label / f"{i}.png")
    data = loaded(tmp_path)
    assert data.input_shape == (1, 20, 30)
    assert loaded(tmp_path, image_size=[16]).input_shape == (1, 16, 16)
    assert loaded(tmp_path, image_size=[12, 24]).input_shape == (1, 12, 24)
    with pytest.raises(ConfigError, match="--image-size applies to image files"):
        load_dataset("digits", image_size=[16])


def test_what_is_not_an_image_is_left_out_with_one_line_each(tmp_path: Path) -> None:
    make_tree(tmp_path, {"cat": 3, "dog": 3})
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("cats")
    (tmp_path / "dog" / "labels.csv").write_text("x")
    (tmp_path / "README.md").write_text("my photos")
    (tmp_path / "dog" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "dog" / "again").symlink_to(tmp_path / "dog")  # a loop
    data = loaded(tmp_path)
    assert data.split_size("train") + data.split_size("val") + data.split_size("test") == 6
    name = f"folder:{tmp_path}"
    assert data.notes == [
        f"{name}: left out 2 hidden files or folders, e.g. {tmp_path / '.ipynb_checkpoints'}",
        f"{name}: left out 2 files that are not images (.jpg, .jpeg, .png, .webp, .bmp, .gif), "
        f"e.g. {tmp_path / 'cat' / 'notes.txt'}",
        f"{name}: left out 1 links to nothing, e.g. {tmp_path / 'dog' / 'gone.jpg'}",
        f"{name}: left out 1 links to a folder already read (a loop), e.g. "
        f"{tmp_path / 'dog' / 'again'}",
        f"{name}: left out 1 files outside the class folders, e.g. {tmp_path / 'README.md'}",
    ]


def test_symlinked_class_folders_and_nested_folders_are_read(tmp_path: Path) -> None:
    elsewhere = make_tree(tmp_path / "elsewhere", {"cat": 3})
    root = make_tree(tmp_path / "data", {"dog": 3})
    (root / "cat").symlink_to(elsewhere / "cat")
    make_tree(root / "dog" / "puppies", {"small": 2})
    data = loaded(root)
    assert data.classes == ["cat", "dog"]
    total = sum(data.split_size(s) for s in ("train", "val", "test"))
    assert total == 8
    assert data.notes == []


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"train/a": 3, "train/b": 0}, r"train/b: a class folder without images \(expected .jpg"),
        ({"a": 3, "b": 0}, r"/b: a class folder without images"),
        (
            {"train/a": 3, "train/b": 3, "val/a": 2},
            r"val: no folder for class 'b', which .*/train has",
        ),
        (
            {"train/a": 3, "train/b": 3, "test/a": 2, "test/b": 2, "test/c": 1},
            r"test: class folder 'c' is not in .*/train",
        ),
        ({"only": 3}, r"1 class sub-folder\(s\); a classifier needs at least 2"),
        (
            {"train/a": 3, "train/b": 3, "val/a": 2, "val/b": 0},
            r"val/b: a class folder without images",
        ),
    ],
)
def test_trees_that_cannot_be_trained_on_are_one_clear_line(
    tmp_path: Path, layout: dict[str, int], message: str
) -> None:
    for folder, count in layout.items():
        (tmp_path / folder).mkdir(parents=True)
        if count:
            make_tree(tmp_path / folder, {"x": count})
            for f in (tmp_path / folder / "x").iterdir():
                f.rename(tmp_path / folder / f.name)
            (tmp_path / folder / "x").rmdir()
    with pytest.raises(DataError, match=message) as info:
        load_dataset(f"folder:{tmp_path}")
    assert "\n" not in str(info.value)


def test_no_such_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"folder:.*/missing: no such directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")


def test_paths_are_held_in_one_array_not_a_list_of_strings(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 4, "b": 4})
    records = loaded(tmp_path).splits["train"]
    assert isinstance(records.paths, np.ndarray)  # type: ignore[attr-defined]
    assert records.paths.dtype.kind == "S"  # type: ignore[attr-defined]
    assert os.path.exists(records.where(0))
