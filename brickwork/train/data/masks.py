"""``seg:PATH``: images and their masks of class indices, for segmentation, read as training
needs them.

``PATH/images/<name>.<png|jpg|...>`` with ``PATH/masks/<name>.png``, one class index per pixel
(255: ignored, as in Pascal VOC); or the same under ``PATH/train/``, ``PATH/val/`` and
``PATH/test/``, the missing splits carved out of train as for ``folder:PATH``. The class names
are the lines of ``PATH/classes.txt``; without it, the classes are ``0`` to the largest index
found in the training masks (every mask is read once to find it). An image without a mask is
an error; a mask without an image, hidden files and files that are not images are left out and
told in one note each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data.download import require_dir
from brickwork.train.data.folder import NOT_IMAGES, LeftOut, first_image
from brickwork.train.data.images import IMAGE_SUFFIXES, decode_mask, image_channels, open_image
from brickwork.train.data.streamed import SPLITS, ImageDataset, carve_splits

IGNORE = 255
"""The mask value of pixels that count for nothing (borders, unlabelled regions)."""
SEG_CROP_SCALE = (0.25, 1.0)
"""The default range of a segmentation training crop's area: objects keep a recognisable size
(classification's 0.08 would blow a small shape up to fill the image)."""


@dataclass
class MaskRecords:
    """The images of one split and their masks: paths under ``root`` (bytes, one array each)."""

    root: Path
    images: np.ndarray
    """Each image's path relative to ``root / "images"``, as bytes."""
    masks: np.ndarray
    """Its mask's path relative to ``root / "masks"``, as bytes."""

    @property
    def labels(self) -> np.ndarray:
        """No class per image: all 0, so that a carved split is a plain random one."""
        return np.zeros(len(self.images), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> MaskRecords:
        return MaskRecords(self.root, self.images[index], self.masks[index])

    def path(self, index: int) -> Path:
        return self.root / "images" / os.fsdecode(self.images[index])

    def mask_path(self, index: int) -> Path:
        return self.root / "masks" / os.fsdecode(self.masks[index])

    def open(self, index: int) -> Image.Image:
        return open_image(self.path(index))

    def open_mask(self, index: int) -> Image.Image:
        return open_image(self.mask_path(index))

    def where(self, index: int) -> str:
        return str(self.path(index))


@dataclass
class Found(LeftOut):
    """What scanning one split left out, for the notes."""

    KINDS: ClassVar[dict[str, str]] = {
        "hidden": "hidden files",
        "not_images": NOT_IMAGES,
        "lonely_masks": "masks without an image",
    }
    hidden: list[Path] = field(default_factory=list)
    not_images: list[Path] = field(default_factory=list)
    lonely_masks: list[Path] = field(default_factory=list)


def _files(folder: Path, found: Found) -> dict[str, Path]:
    """The image files under ``folder`` at any depth, by path without suffix."""
    files: dict[str, Path] = {}
    for top, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(top) / name
            if name.startswith("."):
                found.hidden.append(path)
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                found.not_images.append(path)
            else:
                files[path.relative_to(folder).with_suffix("").as_posix()] = path
    return files


def scan_split(root: Path, found: Found) -> MaskRecords:
    """The image/mask pairs of ``root/images`` and ``root/masks``.

    Raises:
        DataError: either folder missing, no images, or an image without a mask.
    """
    for part in ("images", "masks"):
        if not (root / part).is_dir():
            raise DataError(
                f"{root}: no {part}/ folder; seg:PATH wants PATH/images/<name>.png with "
                "PATH/masks/<name>.png (or the same under PATH/train/)"
            )
    images = _files(root / "images", found)
    masks = _files(root / "masks", found)
    if not images:
        raise DataError(f"{root / 'images'}: no images ({', '.join(IMAGE_SUFFIXES)})")
    missing = [path for key, path in images.items() if key not in masks]
    if missing:
        raise DataError(
            f"{missing[0]}: no mask for it in {root / 'masks'} ({len(missing)} of "
            f"{len(images)} images have none)",
            hint="give each image a mask of the same name (.png), or remove the image",
        )
    found.lonely_masks += [path for key, path in masks.items() if key not in images]
    keys = sorted(images)
    return MaskRecords(
        root,
        np.array([os.fsencode(images[k].relative_to(root / "images")) for k in keys]),
        np.array([os.fsencode(masks[k].relative_to(root / "masks")) for k in keys]),
    )


def class_names(root: Path, train: MaskRecords) -> list[str]:
    """``root/classes.txt``'s lines, or ``0`` to the largest index in the training masks.

    Raises:
        DataError: fewer than 2 classes, or a mask that cannot be read.
    """
    listed = root / "classes.txt"
    if listed.is_file():
        names = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
        where = str(listed)
    else:
        largest = max(_largest_index(train, i) for i in range(len(train)))
        names = [str(i) for i in range(largest + 1)]
        where = f"{root}'s masks (largest class index {largest})"
    if len(names) < 2:
        raise DataError(f"{where}: {len(names)} class(es); segmentation needs at least 2")
    if len(names) > IGNORE:
        raise DataError(f"{where}: {len(names)} classes; masks hold indices 0-254")
    return names


def _largest_index(records: MaskRecords, index: int) -> int:
    with records.open_mask(index) as mask:
        values = decode_mask(mask, (0, 0, mask.width, mask.height), (mask.height, mask.width))
    labelled = values[values != IGNORE]
    return int(labelled.max(initial=0))


def segmentation(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> ImageDataset:
    """The images and masks of ``PATH`` (see the module's description).

    Args:
        argument: ``PATH`` (the part after ``seg:``); empty: ``data_dir``.
        data_dir: the folder when ``argument`` is empty.
        seed: the seed of the carved splits and of the normalisation's sample.
    """
    root = Path(argument or (data_dir or ""))
    require_dir(root, "seg", "images/ and masks/")
    tops = [s for s in SPLITS if (root / s).is_dir()] if (root / "train").is_dir() else []
    found = Found()
    scanned = {s: scan_split(root / s, found) for s in tops} or {"train": scan_split(root, found)}
    classes = class_names(root, scanned["train"])
    splits = carve_splits(scanned, seed)
    with first_image(scanned["train"]) as image:
        channels, size = image_channels(image), (image.height, image.width)
    name = f"seg:{root}"
    return ImageDataset(
        name,
        classes,
        splits,
        channels,
        size,
        crop_scale=SEG_CROP_SCALE,
        crop_fraction=1.0,
        seed=seed,
        notes=found.notes(name),
        task="segmentation",
    )
