"""A generated segmentation set, for demonstrations, tests and benchmarks: shapes on textured
backgrounds.

Each image holds one to three shapes (a circle, a square or a triangle, the classes 1 to 3;
0 is the background) of random size, place and colour on a background of random stripes and
noise, so that neither colour nor brightness tells a class: only the shape does. The mask marks
each shape's pixels with its class and a one-pixel band around its edge with 255 (ignored), as
Pascal VOC does. :func:`write_shapes` writes ``images/``, ``masks/`` and ``classes.txt``, the
layout of ``seg:PATH``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("background", "circle", "square", "triangle")
"""The class names, index 0 first."""


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Random stripes at a random angle, with noise: ``(size, size, 3)`` ``uint8``."""
    y, x = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
    stripes = np.sin((x * math.cos(angle) + y * math.sin(angle)) * 2 * math.pi / period)
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    mix = (stripes[..., None] + 1) / 2
    picture = low * mix + high * (1 - mix) + rng.normal(0, 12, (size, size, 3))
    return np.asarray(np.clip(picture, 0, 255), dtype=np.uint8)


def _outline(kind: int, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    """The corners of a square (2) or triangle (3) of radius ``r`` turned by ``turn``."""
    corners = 4 if kind == 2 else 3
    return [
        (
            cx + r * math.cos(turn + 2 * math.pi * k / corners),
            cy + r * math.sin(turn + 2 * math.pi * k / corners),
        )
        for k in range(corners)
    ]


def shapes_sample(size: int, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    """One image (RGB) and its mask (``L``: class indices, 255 on the edges)."""
    image = Image.fromarray(_background(size, rng))
    mask = Image.new("L", (size, size), 0)
    paint, label = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(1, 4))
        r = rng.uniform(size * 0.12, size * 0.25)
        cx, cy = rng.uniform(r, size - r, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if kind == 1:
            box = (cx - r, cy - r, cx + r, cy + r)
            paint.ellipse(box, fill=colour)
            label.ellipse(box, fill=1, outline=255)
        else:
            corners = _outline(kind, cx, cy, r, rng.uniform(0, 2 * math.pi))
            paint.polygon(corners, fill=colour)
            label.polygon(corners, fill=kind, outline=255)
    return image, mask


def write_shapes(root: str | Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """Write ``count`` generated images with their masks under ``root`` (``seg:ROOT``).

    Args:
        root: the folder (made if missing).
        count: how many images.
        size: their side, in pixels.
        seed: the images drawn.

    Returns:
        ``root``.
    """
    root = Path(root)
    for part in ("images", "masks"):
        (root / part).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image, mask = shapes_sample(size, rng)
        image.save(root / "images" / f"{i:05d}.png")
        mask.save(root / "masks" / f"{i:05d}.png")
    (root / "classes.txt").write_text("\n".join(SHAPE_CLASSES) + "\n")
    return root
