"""``synthetic:C,H,W,K,N``: N random C×H×W images in K classes, for benchmarks."""

from __future__ import annotations

import os

import torch

from brickwork.errors import DataError
from brickwork.train.data.dataset import Dataset, split_validation
from brickwork.train.free_memory import check_fits


def synthetic(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """Uniform noise in [0, 1], every class present; test: a fifth, validation: an eighth of the
    rest.

    Args:
        argument: ``C,H,W,K,N`` (the part after ``synthetic:``).
        data_dir: unused.
        seed: the images' and the splits' seed.

    Raises:
        DataError: not five integers, a size below 1, fewer than 2 classes or 10 images a class.
    """
    try:
        c, h, w, k, n = (int(v) for v in argument.split(","))
    except ValueError:
        raise DataError(
            f"synthetic:{argument}: expected synthetic:C,H,W,K,N (channels, height, width, "
            "classes, samples), e.g. synthetic:3,32,32,10,5000"
        ) from None
    if min(c, h, w, n) < 1 or k < 2 or n < 10 * k:
        raise DataError(f"synthetic:{argument}: sizes must be positive, K ≥ 2 and N ≥ 10·K")
    check_fits(
        n * c * h * w * 4,
        f"synthetic:{argument}: its images, held whole",
        DataError,
        hint="use fewer images (N); for data larger than memory use image files (folder:PATH), "
        "which are streamed",
    )
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k  # every class present
    x = torch.rand(n, c, h, w, generator=g)
    x_rest, y_rest, x_test, y_test = split_validation(x, y, 0.2, seed)
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, 0.125, seed)
    return Dataset(
        f"synthetic:{argument}",
        [str(i) for i in range(k)],
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
    )
