"""``mnist`` and ``fashion-mnist``: IDX gzip files from ``--data-dir``, or downloaded (checked)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brickwork.errors import DataError
from brickwork.train.data.dataset import Dataset, split_validation
from brickwork.train.data.download import locate

IDX_FILES: dict[str, dict[str, Any]] = {
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "classes": [str(d) for d in range(10)],
        "files": {
            "train-images-idx3-ubyte.gz": (
                "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            "train-labels-idx1-ubyte.gz": (
                "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
    },
    "fashion-mnist": {
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "classes": [
            "t-shirt",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle-boot",
        ],
        "files": {
            "train-images-idx3-ubyte.gz": (
                "sha256:08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"
            ),
            "train-labels-idx1-ubyte.gz": (
                "sha256:b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "sha256:78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "sha256:42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"
            ),
        },
    },
}
"""Each IDX dataset's address, class names and files (name → digest)."""


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``.gz`` or not) as an array: magic ``0x0000 TT DD``, DD big-endian sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read it as an IDX file ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    dims = data[3]
    header = 4 + 4 * dims
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(
            f"{path}: truncated or padded: the header says {shape} = {expected} bytes, "
            f"the file has {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def idx_dataset(kind: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """The IDX dataset ``kind`` (a key of :data:`IDX_FILES`); validation: 1/12 of train.

    Args:
        kind: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: the folder holding the four ``.gz`` files, or ``None`` to download them.
        seed: the validation split's seed.
    """
    info = IDX_FILES[kind]
    folder = locate(kind, data_dir, info["files"], info["url"])
    arrays = {name: read_idx(folder / name) for name in info["files"]}
    x = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"].copy()).float().div(255).unsqueeze(1)
    y = torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"].copy()).long()
    x_test = (
        torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"].copy()).float().div(255).unsqueeze(1)
    )
    y_test = torch.from_numpy(arrays["t10k-labels-idx1-ubyte.gz"].copy()).long()
    if len(x) != len(y) or len(x_test) != len(y_test):
        raise DataError(f"{folder}: images and labels differ in number")
    x_train, y_train, x_val, y_val = split_validation(x, y, 1 / 12, seed)
    return Dataset(kind, list(info["classes"]), x_train, y_train, x_val, y_val, x_test, y_test)


def mnist(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """MNIST (see :func:`idx_dataset`; ``argument`` is unused)."""
    return idx_dataset("mnist", data_dir, seed)


def fashion_mnist(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """Fashion-MNIST (see :func:`idx_dataset`; ``argument`` is unused)."""
    return idx_dataset("fashion-mnist", data_dir, seed)
