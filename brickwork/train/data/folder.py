"""``folder:PATH``: a tree ``PATH/<class>/<image>.png|jpg`` (or ``PATH/train/...`` and
``PATH/test/...``), and :func:`read_image`, which ``predict`` uses too."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from brickwork.errors import DataError
from brickwork.train.data.dataset import Dataset, split_validation
from brickwork.train.data.download import require_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_image(path: Path, channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    """An image file as a ``(C, H, W)`` float tensor in [0, 1], resized to ``size`` if given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"{path}: cannot read it as an image ({err})") from err
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


def folder(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """The images of a folder tree, each resized to the first image's size and mode.

    Without ``PATH/test``, a fifth of the images is the test split; validation is an eighth of
    the rest.

    Args:
        argument: ``PATH`` (the part after ``folder:``); empty: ``data_dir``.
        data_dir: the folder when ``argument`` is empty.
        seed: the splits' seed.
    """
    root = Path(argument or (data_dir or ""))
    require_dir(root, "folder", "one sub-folder of images per class")
    splits = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    tree = splits.get("train", root)
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(
            f"{tree}: {len(classes)} class sub-folder(s); a classifier needs at least 2 "
            f"(expected {tree}/<class>/<image>.png)"
        )
    channels, size = _first_image_format(tree, classes)
    x, y = _read_tree(tree, classes, channels, size)
    if "test" in splits:
        x_test, y_test = _read_tree(splits["test"], classes, channels, size)
    else:
        x, y, x_test, y_test = split_validation(x, y, 0.2, seed)
    x_train, y_train, x_val, y_val = split_validation(x, y, 0.125, seed)
    return Dataset(
        f"folder:{root}", classes, x_train, y_train, x_val, y_val, x_test, y_test, flips=True
    )


def _first_image_format(tree: Path, classes: list[str]) -> tuple[int, tuple[int, int]]:
    """The channel count and ``(H, W)`` of the tree's first image: every image gets them."""
    first = next(
        (
            f
            for c in classes
            for f in sorted((tree / c).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ),
        None,
    )
    if first is None:
        raise DataError(f"{tree}: no PNG or JPG images in the class folders")
    from PIL import Image

    with Image.open(first) as image:
        channels = 1 if image.mode in ("L", "1", "I;16") else 3
        size = (image.size[1], image.size[0])
    return channels, size


def _read_tree(
    tree: Path, classes: list[str], channels: int, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted((tree / name).iterdir()) if (tree / name).is_dir() else []:
            if f.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_image(f, channels, size))
                labels.append(label)
    if not images:
        raise DataError(f"{tree}: no images")
    return torch.stack(images), torch.tensor(labels)
