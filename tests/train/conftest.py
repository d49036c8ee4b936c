"""What the training tests share: the digits, loaded once per test module."""

import pytest

from brickwork.train.data import Dataset, load_dataset


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")
