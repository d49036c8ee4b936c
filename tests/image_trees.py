"""Image folders made for the tests: small photos of random sizes, in a class tree."""

from pathlib import Path

import numpy as np
from PIL import Image


def photo(rng: np.random.Generator, height: int, width: int, tint: int) -> Image.Image:
    """A smooth picture with some noise, tinted by class, so crops differ from each other."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 // max(width, 1), y * 255 // max(height, 1), np.full_like(x, tint)], -1
    )
    noise = rng.integers(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def make_tree(
    root: Path,
    per_class: dict[str, int],
    *,
    sizes: tuple[int, int] = (20, 48),
    suffix: str = ".jpg",
    seed: int = 0,
) -> Path:
    """``root/<class>/<i><suffix>`` for each class, images of random sizes within ``sizes``."""
    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(per_class.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            height, width = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, 2))
            photo(rng, height, width, 60 * label).save(root / name / f"{i:03d}{suffix}")
    return root
