"""``shards:DIR``: WebDataset-style tar shards written by ``brickwork pack``, read by sample.

``DIR/index.json`` says, for each sample of each split, which shard holds its image, at which
byte offset and how long it is, and its label. A sample is one ``pread`` of that range: any
worker of any rank reads any sample directly, so the order of an epoch (a permutation of every
sample, from ``(seed, epoch)``) does not depend on the number of workers or ranks, and each
rank reads only the bytes of its own share of each batch. The shards themselves are plain tar
files of ``<key>.<ext>`` images and ``<key>.cls`` labels, as webdataset reads them.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data.download import require_dir
from brickwork.train.data.images import open_image
from brickwork.train.data.streamed import SPLITS, ImageDataset, carve_splits

INDEX = "index.json"
INDEX_FORMAT = "brickwork-shards"
INDEX_VERSION = 1
COLUMNS = ("shard", "offset", "length", "label")
"""The integer columns of a split in the index, one value per sample."""
OPEN_FILES = 64
"""How many shard files a process keeps open at once."""

_open: OrderedDict[str, int] = OrderedDict()  # shard path -> file descriptor, in this process


def read_range(path: str, offset: int, length: int) -> bytes:
    """``length`` bytes of ``path`` from ``offset`` (the file kept open for the next read)."""
    fd = _open.pop(path, None)
    if fd is None:
        fd = os.open(path, os.O_RDONLY)
        if len(_open) >= OPEN_FILES:
            os.close(_open.popitem(last=False)[1])
    _open[path] = fd
    return os.pread(fd, length, offset)


@dataclass
class ShardRecords:
    """The samples of one split: byte ranges of shards, and labels."""

    folder: Path
    shards: list[str]
    """The split's shard file names, indexed by ``shard``."""
    shard: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    """Each image's path in the folder it was packed from (bytes), for messages."""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ShardRecords:
        return ShardRecords(
            self.folder,
            self.shards,
            self.shard[index],
            self.offset[index],
            self.length[index],
            self.labels[index],
            self.sources[index],
        )

    def where(self, index: int) -> str:
        source = os.fsdecode(self.sources[index])
        return f"{self.folder / self.shards[self.shard[index]]}:{source}"

    def open(self, index: int) -> Image.Image:
        path = str(self.folder / self.shards[self.shard[index]])
        length = int(self.length[index])
        try:
            data = read_range(path, int(self.offset[index]), length)
        except OSError as err:
            raise DataError(f"{self.where(index)}: cannot read it ({err.strerror})") from None
        if len(data) != length:
            raise DataError(
                f"{self.where(index)}: the shard ends {length - len(data)} bytes short of this "
                "image (truncated?)"
            )
        return open_image(data, self.where(index))


def read_index(folder: Path) -> dict[str, Any]:
    """``folder/index.json``, checked: its format, classes and every split's columns.

    Raises:
        DataError: no index, a damaged one, or a shard it names that is missing or short.
    """
    require_dir(folder, "shards", f"{INDEX} and the .tar shards brickwork pack writes")
    path = folder / INDEX
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; shards:DIR reads a folder written by brickwork pack",
            hint="an interrupted pack leaves shards without an index: pack again into an empty "
            "folder",
        )
    try:
        index = json.loads(path.read_text())
        _check_index(index)
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: damaged ({err}); pack the folder again") from None
    for split in index["splits"].values():
        _check_shards(folder, split)
    return index  # type: ignore[no-any-return]


def _check_index(index: Any) -> None:
    if index.get("format") != INDEX_FORMAT or index.get("version") != INDEX_VERSION:
        raise ValueError(f"not a {INDEX_FORMAT} index of version {INDEX_VERSION}")
    if "train" not in index["splits"] or not set(index["splits"]) <= set(SPLITS):
        raise ValueError(f"its splits are {sorted(index['splits'])}, not train and val/test")
    if len(index["classes"]) < 2 or index["channels"] not in (1, 3) or len(index["size"]) != 2:
        raise ValueError("classes, channels or size out of range")
    for name, split in index["splits"].items():
        n = len(split["label"])
        if any(len(split[c]) != n for c in (*COLUMNS, "source")):
            raise ValueError(f"the columns of split {name!r} differ in length")
        if n and (max(split["label"]) >= len(index["classes"]) or min(split["label"]) < 0):
            raise ValueError(f"a label of split {name!r} is not a class")
        if n and (max(split["shard"]) >= len(split["shards"]) or min(split["shard"]) < 0):
            raise ValueError(f"a shard number of split {name!r} names no shard")
        if any(Path(s).name != s or s.startswith(".") for s in split["shards"]):
            raise ValueError(f"split {name!r} names a shard outside the folder")


def _check_shards(folder: Path, split: dict[str, Any]) -> None:
    ends: dict[int, int] = {}
    for shard, offset, length in zip(split["shard"], split["offset"], split["length"], strict=True):
        ends[shard] = max(ends.get(shard, 0), offset + length)
    for shard, end in ends.items():
        path = folder / split["shards"][shard]
        size = path.stat().st_size if path.is_file() else None
        if size is None or size < end:
            found = "missing" if size is None else f"{size} bytes, the index needs {end}"
            raise DataError(f"{path}: {found}; the shards are incomplete, pack the folder again")


def _records(folder: Path, split: dict[str, Any]) -> ShardRecords:
    columns = {c: np.asarray(split[c], dtype=np.int64) for c in COLUMNS}
    sources = np.array([os.fsencode(s) for s in split["source"]])
    return ShardRecords(
        folder,
        list(split["shards"]),
        columns["shard"],
        columns["offset"],
        columns["length"],
        columns["label"],
        sources,
    )


def shards(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> ImageDataset:
    """The samples of a folder of shards, read while training; missing splits carved from
    train as for ``folder:PATH`` (so both give the same splits of the same images).

    Args:
        argument: ``DIR`` (the part after ``shards:``); empty: ``data_dir``.
        data_dir: the folder when ``argument`` is empty.
        seed: the seed of the carved splits and of the normalisation's sample.
    """
    folder = Path(argument or (data_dir or ""))
    index = read_index(folder)
    found = {name: _records(folder, split) for name, split in index["splits"].items()}
    size = (int(index["size"][0]), int(index["size"][1]))
    return ImageDataset(
        f"shards:{folder}",
        list(index["classes"]),
        dict(carve_splits(found, seed)),
        int(index["channels"]),
        size,
        seed=seed,
    )
