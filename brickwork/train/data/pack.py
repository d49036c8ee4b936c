"""``brickwork pack folder:PATH --out DIR``: an image folder as WebDataset-style tar shards.

Each split found in the folder (``train``, and ``val`` and ``test`` when they are there) becomes
shards ``DIR/<split>-000000.tar`` ... of about ``--shard-size`` bytes each. Sample ``k`` of a
split is two members, ``<k:08d>.<ext>`` (the image file's bytes, not decoded or re-encoded) and
``<k:08d>.cls`` (its class index as text), as webdataset expects. The tar files are written by
Python's ``tarfile`` (reproducibly: no dates, owners or permissions from the folder);
``DIR/index.json``, written last, holds the classes and, for each sample, its shard, the byte
offset and length of its image, its label and the path it came from.

Images are copied, not decoded: an unreadable image is packed as it is, and training reports and
skips it exactly as it would from the folder, so ``shards:DIR`` and ``folder:PATH`` train on the
same samples in the same order.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brickwork.errors import ConfigError, DataError
from brickwork.files import atomic_write
from brickwork.train.data.folder import FileRecords, first_image, scan_folder
from brickwork.train.data.images import image_channels
from brickwork.train.data.shards import INDEX, INDEX_FORMAT, INDEX_VERSION

BLOCK = tarfile.BLOCKSIZE


@dataclass
class Packed:
    """What a pack wrote: per split, its samples and shards; and the bytes in all."""

    samples: dict[str, int]
    shards: dict[str, int]
    bytes: int


def pack(
    source: str, out: Path, shard_size: int, log: Callable[[str], None] = lambda _: None
) -> Packed:
    """Write the image folder ``source`` (``folder:PATH``) as tar shards and an index in ``out``.

    Args:
        source: ``folder:PATH``.
        out: a new or empty folder.
        shard_size: the most bytes a shard holds (a shard holds one image at least).
        log: told of each shard written.

    Raises:
        ConfigError: ``source`` is not ``folder:PATH``, or ``out`` is a file or not empty.
        DataError: what reading the folder raises (see :func:`scan_folder`).
    """
    kind, _, path = source.partition(":")
    if kind != "folder" or not path:
        raise ConfigError(f"{source!r}: brickwork pack reads folder:PATH (an image folder tree)")
    _check_out(out)
    scan = scan_folder(Path(path))
    for note in scan.notes(source):
        log(note)
    with first_image(scan.splits["train"]) as image:
        channels, size = image_channels(image), [image.height, image.width]
    splits, total = {}, 0
    for name, records in scan.splits.items():
        splits[name] = _write_split(out, name, records, shard_size, log)
        total += sum(os.path.getsize(out / s) for s in splits[name]["shards"])
    index = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "classes": scan.classes,
        "channels": channels,
        "size": size,
        "splits": splits,
    }
    text = json.dumps(index, separators=(",", ":"))
    atomic_write(out / INDEX, lambda p: p.write_text(text))
    return Packed(
        {name: len(s["label"]) for name, s in splits.items()},
        {name: len(s["shards"]) for name, s in splits.items()},
        total,
    )


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(
            f"--out {out}: not empty; pack writes its shards into a new or empty folder",
            hint="choose another --out, or remove the folder",
        )


def _plan(records: FileRecords, shard_size: int) -> Iterator[range]:
    """The samples of each shard, in order: as many as fit in ``shard_size`` (one at least)."""
    start, used = 0, 0
    for index in range(len(records)):
        need = 3 * BLOCK + _padded(records.path(index).stat().st_size)  # 2 headers + .cls data
        if used and used + need > shard_size:
            yield range(start, index)
            start, used = index, 0
        used += need
    if len(records):
        yield range(start, len(records))


def _padded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def _write_split(
    out: Path, split: str, records: FileRecords, shard_size: int, log: Callable[[str], None]
) -> dict[str, Any]:
    columns: dict[str, list[Any]] = {
        "shards": [], "shard": [], "offset": [], "length": [], "label": [], "source": []
    }  # fmt: skip
    for number, samples in enumerate(_plan(records, shard_size)):
        name = f"{split}-{number:06d}.tar"
        rows: list[tuple[int, int]] = []

        def write(tmp: Path, samples: range = samples, rows: list[tuple[int, int]] = rows) -> None:
            _write_shard(tmp, records, samples, rows)

        atomic_write(out / name, write)
        columns["shards"].append(name)
        for index, (offset, length) in zip(samples, rows, strict=True):
            columns["shard"].append(number)
            columns["offset"].append(offset)
            columns["length"].append(length)
            columns["label"].append(int(records.labels[index]))
            columns["source"].append(os.fsdecode(records.paths[index]))
        log(f"wrote {out / name}: {len(samples)} images")
    return columns


def _write_shard(
    tmp: Path, records: FileRecords, samples: range, rows: list[tuple[int, int]]
) -> None:
    """Write the shard; append each image's ``(offset, length)`` in it to ``rows``."""
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for index in samples:
            path = records.path(index)
            key = f"{index:08d}"
            try:
                data = path.read_bytes()
            except OSError as err:
                raise DataError(f"{path}: cannot read it ({err.strerror})") from None
            _add(tar, f"{key}{path.suffix.lower()}", data)
            rows.append((tar.offset - _padded(len(data)), len(data)))
            _add(tar, f"{key}.cls", str(int(records.labels[index])).encode())


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
