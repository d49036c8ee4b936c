"""``folder:PATH``: a folder of images, one sub-folder per class."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data import load_dataset


def test_image_folders(tmp_path: Path) -> None:
    for label, value in (("cat", 30), ("dog", 220)):
        (tmp_path / label).mkdir()
        for i in range(10):
            Image.fromarray(np.full((6, 5, 3), value + i, dtype=np.uint8)).save(
                tmp_path / label / f"{i}.png"
            )
    d = load_dataset(f"folder:{tmp_path}")
    assert d.classes == ["cat", "dog"]
    assert d.input_shape == (3, 6, 5)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 20


def test_small_datasets_split_without_stratifying(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(
                tmp_path / label / f"{i}.png"
            )
    d = load_dataset(f"folder:{tmp_path}")
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 4
    assert len(d.y_test) >= 1


def test_a_folder_of_one_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "only" / "0.png")
    with pytest.raises(DataError, match="1 class sub-folder"):
        load_dataset(f"folder:{tmp_path}")
