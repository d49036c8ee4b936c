"""``cifar10``: the binary version (``cifar-10-batches-bin``), from ``--data-dir`` or downloaded."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from brickwork.errors import DataError
from brickwork.train.data.dataset import Dataset, split_validation
from brickwork.train.data.download import cache_folder, locate, require_dir

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
CIFAR_ARCHIVE = {"cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530"}
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR_RECORD = 1 + 3 * 32 * 32
"""Bytes per image in a binary batch: a label, then 3×32×32 pixels."""


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch: records of one label byte and 3×32×32 pixel bytes."""
    data = path.read_bytes()
    if not data or len(data) % CIFAR_RECORD:
        raise DataError(
            f"{path}: not a CIFAR-10 binary batch ({len(data)} bytes is not a whole number of "
            f"{CIFAR_RECORD}-byte records)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataError(f"{path}: label {labels.max()} is not a CIFAR-10 class (0-9)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def cifar10(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """CIFAR-10; validation: a tenth of the training batches.

    Args:
        argument: unused (the part after ``cifar10:``).
        data_dir: the folder of the batches or of ``cifar-10-binary.tar.gz``; ``None``: the
            cache, downloading the archive there.
        seed: the validation split's seed.
    """
    folder = _cifar_folder(data_dir)
    train = [read_cifar_batch(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    x_test_np, y_test_np = read_cifar_batch(folder / "test_batch.bin")
    x = torch.from_numpy(np.concatenate([b[0] for b in train])).float().div(255)
    y = torch.from_numpy(np.concatenate([b[1] for b in train])).long()
    x_train, y_train, x_val, y_val = split_validation(x, y, 0.1, seed)
    x_test = torch.from_numpy(x_test_np.copy()).float().div(255)
    y_test = torch.from_numpy(y_test_np.copy()).long()
    return Dataset(
        "cifar10", CIFAR_CLASSES, x_train, y_train, x_val, y_val, x_test, y_test, flips=True
    )


def _cifar_folder(data_dir: str | os.PathLike[str] | None) -> Path:
    for candidate in [Path(data_dir), Path(data_dir) / "cifar-10-batches-bin"] if data_dir else []:
        if (candidate / "test_batch.bin").is_file():
            return candidate
    if data_dir is not None:
        require_dir(
            Path(data_dir), "cifar10", "data_batch_1.bin ... data_batch_5.bin, test_batch.bin"
        )
        archive = Path(data_dir) / "cifar-10-binary.tar.gz"
        if archive.is_file():
            return _extract_cifar(archive)
        raise DataError(
            f"{data_dir}: no CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin) and no "
            "cifar-10-binary.tar.gz in it"
        )
    cached = cache_folder("cifar10") / "cifar-10-batches-bin"
    if (cached / "test_batch.bin").is_file():
        return cached
    folder = locate("cifar10", None, CIFAR_ARCHIVE, CIFAR_URL)
    return _extract_cifar(folder / "cifar-10-binary.tar.gz")


def _extract_cifar(archive: Path) -> Path:
    target = archive.parent
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith(".bin") and m.isfile()]
            for member in members:  # only plain files named *.bin: nothing else is written
                member.name = "cifar-10-batches-bin/" + Path(member.name).name
                tar.extract(member, target)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{archive}: cannot extract it ({err})") from err
    return target / "cifar-10-batches-bin"
