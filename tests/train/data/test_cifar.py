"""CIFAR-10's binary batches."""

from pathlib import Path

import numpy as np
import pytest

from brickwork.errors import DataError
from brickwork.train.data import load_dataset


def test_cifar10_binary_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}.bin", 20) for i in range(1, 6)), ("test_batch.bin", 10)]:
        records = np.concatenate(
            [(np.arange(n) % 10)[:, None], rng.integers(0, 256, (n, 3072))], axis=1
        )
        (tmp_path / name).write_bytes(records.astype(np.uint8).tobytes())
    d = load_dataset("cifar10", tmp_path)
    assert d.input_shape == (3, 32, 32)
    assert len(d.y_test) == 10
    assert d.flips
    (tmp_path / "test_batch.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(DataError, match="not a CIFAR-10 binary batch"):
        load_dataset("cifar10", tmp_path)
