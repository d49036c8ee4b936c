"""MNIST-style IDX files: read, checked, named when damaged or missing."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from brickwork.errors import DataError
from brickwork.train.data import load_dataset, read_idx


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 30)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_datasets_from_a_folder(tiny_mnist: Path, name: str) -> None:
    d = load_dataset(name, tiny_mnist)
    assert d.input_shape == (1, 28, 28)
    assert len(d.y_train) + len(d.y_val) == 120
    assert len(d.y_test) == 30
    assert float(d.x_train.min()) >= 0
    assert float(d.x_train.max()) <= 1


def test_a_truncated_idx_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28) + b"\0" * 100)
    with pytest.raises(
        DataError,
        match=r"truncated or padded: the header says \(10, 28, 28\) = 7840 bytes, the file has 100",
    ):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read it as an IDX file"):
        read_idx(path)


def test_a_folder_without_the_idx_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing train-images-idx3-ubyte\.gz"):
        load_dataset("mnist", tmp_path)
