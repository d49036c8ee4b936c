"""The per-channel mean and standard deviation of a folder's images, from a seeded sample.

Reading every image of a large folder to normalise it would take as long as an epoch; a fixed
sample of :data:`SAMPLE` training images, chosen with the run's seed, each cropped to its centre
square at :data:`STATS_SIZE` pixels, gives the statistics to two decimals.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from brickwork.errors import DataError
from brickwork.train.data.transforms import EvalTransform

if TYPE_CHECKING:
    from brickwork.train.data.streamed import Records

SAMPLE = 256
"""How many training images the statistics come from (all of them when there are fewer)."""
STATS_SIZE = (64, 64)
"""The size each sampled image is cropped to."""


def channel_stats(
    records: Records, channels: int, seed: int, count: int = SAMPLE
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation per channel (values in [0, 1]) of a sample of ``records``.

    Args:
        records: the training split.
        channels: 1 or 3.
        seed: chooses the sample.
        count: the sample's size.

    Raises:
        DataError: not one image of the sample can be read.
    """
    rng = np.random.default_rng(seed)
    n = len(records)
    chosen = np.sort(rng.choice(n, size=min(n, count), replace=False))
    crop = EvalTransform(STATS_SIZE, channels, crop_fraction=1.0)
    sums = np.zeros(channels)
    squares = np.zeros(channels)
    pixels, last_error = 0, ""
    for index in chosen:
        try:
            with records.open(int(index)) as image:
                values = crop(image).reshape(-1, channels).astype(np.float64) / 255.0
        except DataError as err:
            last_error = str(err)
            continue
        sums += values.sum(0)
        squares += (values * values).sum(0)
        pixels += len(values)
    if pixels == 0:
        raise DataError(f"none of {len(chosen)} training images could be read ({last_error})")
    mean = sums / pixels
    variance = np.maximum(squares / pixels - mean * mean, 0.0)
    return [float(m) for m in mean], [max(math.sqrt(v), 1e-6) for v in variance]
