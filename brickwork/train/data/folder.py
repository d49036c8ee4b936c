"""``folder:PATH``: an ImageFolder-style tree, read as training needs it.

``PATH/<class>/<image>``, or ``PATH/train/<class>/<image>`` with ``PATH/val/...`` and/or
``PATH/test/...``; the splits that are not there are carved out of train
(:func:`~brickwork.train.data.streamed.carve_splits`). A class folder is read to any depth, in
sorted order, following symbolic links. What a real folder holds besides images is told, not
fatal: hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) and files that are not
images are left out, each kind counted in one note, as are broken links and links back to a
folder already read (which would loop). What cannot be trained on is an error: fewer than two
classes, a class folder without images, or splits whose classes differ.
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
from brickwork.train.data.images import IMAGE_SUFFIXES, image_channels, open_image
from brickwork.train.data.streamed import SPLITS, ImageDataset, Records, carve_splits


@dataclass
class FileRecords:
    """The image files of one split: paths under ``root`` (bytes, one array) and labels.

    The paths are one numpy array rather than a list of strings, so that DataLoader workers,
    which share the parent's memory, do not copy it page by page as reference counts change.
    """

    root: Path
    paths: np.ndarray
    """Each file's path relative to ``root``, as bytes (``os.fsencode``), ``(N,)``."""
    labels: np.ndarray
    """Each file's class index, ``(N,)`` int64."""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> FileRecords:
        return FileRecords(self.root, self.paths[index], self.labels[index])

    def path(self, index: int) -> Path:
        return self.root / os.fsdecode(self.paths[index])

    def open(self, index: int) -> Image.Image:
        return open_image(self.path(index))

    def where(self, index: int) -> str:
        return str(self.path(index))


NOT_IMAGES = f"files that are not images ({', '.join(IMAGE_SUFFIXES)})"


class LeftOut:
    """What a scan left out of a dataset, as lists of paths; :data:`KINDS` names each list
    (its attribute) and says what its files are."""

    KINDS: ClassVar[dict[str, str]] = {}

    def notes(self, name: str) -> list[str]:
        """For each kind of file left out of dataset ``name``, one line with the count and a
        first example; none for a kind with no path."""
        kinds = ((getattr(self, attribute), what) for attribute, what in self.KINDS.items())
        return [
            f"{name}: left out {len(found)} {what}, e.g. {found[0]}"
            for found, what in kinds
            if found
        ]


@dataclass
class Scan(LeftOut):
    """What walking the tree found: the images of each split and what was left out."""

    KINDS: ClassVar[dict[str, str]] = {
        "hidden": "hidden files or folders",
        "not_images": NOT_IMAGES,
        "broken_links": "links to nothing",
        "loops": "links to a folder already read (a loop)",
        "outside": "files outside the class folders",
    }
    classes: list[str]
    splits: dict[str, FileRecords]
    hidden: list[Path] = field(default_factory=list)
    not_images: list[Path] = field(default_factory=list)
    broken_links: list[Path] = field(default_factory=list)
    loops: list[Path] = field(default_factory=list)
    outside: list[Path] = field(default_factory=list)


def scan_folder(root: Path) -> Scan:
    """Walk an image tree: its classes, each split's images, what was left out.

    Raises:
        DataError: no such folder, fewer than 2 classes, a class folder without images, or a
            validation or test folder whose classes differ from train's.
    """
    require_dir(root, "folder", "one sub-folder of images per class")
    trees = (
        {s: root / s for s in SPLITS if (root / s).is_dir()} if (root / "train").is_dir() else {}
    )
    trees = trees or {"train": root}
    scan = Scan(_classes(trees["train"]), {})
    for split, tree in trees.items():
        _note_loose(tree, scan)
        if split != "train":
            _same_classes(tree, trees["train"], scan.classes)
        scan.splits[split] = _read_split(tree, scan)
    return scan


def _note_loose(tree: Path, scan: Scan) -> None:
    """Note what lies beside the class folders of ``tree``: hidden entries and plain files."""
    for p in sorted(tree.iterdir()):
        if p.name.startswith("."):
            scan.hidden.append(p)
        elif not p.is_dir():
            scan.outside.append(p)


def _class_folders(tree: Path) -> list[str]:
    return sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))


def _classes(tree: Path) -> list[str]:
    classes = _class_folders(tree)
    if len(classes) < 2:
        raise DataError(
            f"{tree}: {len(classes)} class sub-folder(s); a classifier needs at least 2 "
            f"(expected {tree}/<class>/<image>.jpg)"
        )
    return classes


def _same_classes(tree: Path, train: Path, classes: list[str]) -> None:
    found = set(_class_folders(tree))
    missing = [c for c in classes if c not in found]
    if missing:
        raise DataError(
            f"{tree}: no folder for class {missing[0]!r}, which {train} has "
            f"({len(missing)} class(es) missing); every split needs every class",
            hint=f"add {tree / missing[0]}, or remove {tree} to carve the split out of train",
        )
    extra = sorted(found - set(classes))
    if extra:
        raise DataError(
            f"{tree}: class folder {extra[0]!r} is not in {train}; a class without training "
            "images cannot be learnt",
            hint=f"add {train / extra[0]} with training images, or remove {tree / extra[0]}",
        )


def _read_split(tree: Path, scan: Scan) -> FileRecords:
    paths: list[bytes] = []
    labels: list[int] = []
    for label, name in enumerate(scan.classes):
        found = _images_under(tree / name, scan)
        if not found:
            raise DataError(
                f"{tree / name}: a class folder without images (expected "
                f"{', '.join(IMAGE_SUFFIXES)} files)",
                hint=f"add images to it, or remove it if {name!r} is not a class",
            )
        paths += [os.fsencode(p.relative_to(tree)) for p in found]
        labels += [label] * len(found)
    return FileRecords(tree, np.array(paths), np.array(labels, dtype=np.int64))


def _images_under(folder: Path, scan: Scan) -> list[Path]:
    """The image files under ``folder`` at any depth, sorted; the rest noted in ``scan``."""
    found: list[Path] = []
    seen = {os.path.realpath(folder)}
    for top, dirs, files in os.walk(folder, followlinks=True):
        here = Path(top)
        kept = []
        for d in sorted(dirs):
            real = os.path.realpath(here / d)
            if d.startswith("."):
                scan.hidden.append(here / d)
            elif real in seen:
                scan.loops.append(here / d)
            else:
                seen.add(real)
                kept.append(d)
        dirs[:] = kept
        for f in sorted(files):
            path = here / f
            if f.startswith("."):
                scan.hidden.append(path)
            elif not path.exists():
                scan.broken_links.append(path)
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                scan.not_images.append(path)
            else:
                found.append(path)
    return found


def first_image(records: Records, tries: int = 20) -> Image.Image:
    """The first of the first ``tries`` images that opens (its channels and size are the
    dataset's defaults).

    Raises:
        DataError: none of them opens (the last one's message).
    """
    error: DataError | None = None
    for index in range(min(tries, len(records))):
        try:
            return records.open(index)
        except DataError as err:
            error = err
    raise error or DataError("no images")


def folder(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> ImageDataset:
    """The images of a folder tree, read while training.

    Their channels (1 if the first image is grayscale, else 3) and default size (the first
    image's) come from the first training image; ``--image-size`` sets the size.

    Args:
        argument: ``PATH`` (the part after ``folder:``); empty: ``data_dir``.
        data_dir: the folder when ``argument`` is empty.
        seed: the seed of the carved splits and of the sample the normalisation comes from.
    """
    root = Path(argument or (data_dir or ""))
    scan = scan_folder(root)
    splits = carve_splits(scan.splits, seed)
    with first_image(scan.splits["train"]) as image:
        channels, size = image_channels(image), (image.height, image.width)
    name = f"folder:{root}"
    return ImageDataset(
        name, scan.classes, dict(splits), channels, size, seed=seed, notes=scan.notes(name)
    )
