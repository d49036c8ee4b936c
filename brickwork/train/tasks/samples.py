"""``samples.png``: validation images with their masks and the model's, side by side; and for a
classifier's TensorBoard, validation images captioned with their class and the model's.

One row per image: the image, the ground truth laid over it, the prediction laid over it (both
on the image in grey). Each class has a colour (the background, class 0, stays clear); ignored
pixels (255) are white in the truth. A legend under the grid names the colours. Small images
are enlarged (nearest neighbour) so that a 64×64 mask reads at a glance. The same grid goes to
TensorBoard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from brickwork.files import atomic_write
from brickwork.train.data.masks import IGNORE
from brickwork.train.pictures import png_info

SAMPLES = 6
"""Validation images in a segmentation grid (a classifier's shows :data:`LABELLED`)."""
LABELLED = 8
CELL = 160
"""The smallest side of one picture of the grid, in pixels."""
ALPHA = 0.65
"""How much of a class's colour covers the image."""
COLUMNS = ("image", "truth", "prediction")

_BASE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (170, 110, 40), (128, 0, 0), (170, 255, 195), (128, 128, 0), (0, 0, 128),
]  # fmt: skip


def palette(n_classes: int) -> np.ndarray:
    """A colour per class, ``(n_classes, 3)`` ``uint8``: black for the background (0), then
    distinct colours (repeating after 16)."""
    colours = [(0, 0, 0)] + [_BASE[i % len(_BASE)] for i in range(max(n_classes - 1, 0))]
    return np.array(colours, dtype=np.uint8)


def overlay(image: np.ndarray, mask: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` ``uint8`` in grey, with each labelled pixel of ``mask`` ``(H, W)``
    tinted by its class's colour (on grey, a hue is the class's alone); background clear,
    ignored pixels white."""
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = np.repeat(grey[..., None], 3, axis=2)
    tinted = (mask > 0) & (mask != IGNORE)
    colour = colours[np.where(tinted, mask, 0).clip(0, len(colours) - 1)].astype(np.float32)
    out[tinted] = (1 - ALPHA) * out[tinted] + ALPHA * colour[tinted]
    out[mask == IGNORE] = 255
    return np.asarray(out.round(), dtype=np.uint8)


def as_pixels(x: torch.Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """Normalised images ``(b, C, H, W)`` back to ``(b, H, W, 3)`` ``uint8`` (grey as RGB)."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    values = ((x.float() * s + m).clamp(0, 1) * 255).round().byte()
    if values.shape[1] == 1:
        values = values.expand(-1, 3, -1, -1)
    return values.permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(
    images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: list[str]
) -> np.ndarray:
    """The grid: a header, one row per image (image, truth, prediction), a legend.

    Args:
        images: ``(n, H, W, 3)`` ``uint8``.
        truth: ``(n, H, W)`` class indices (255: ignored).
        predicted: ``(n, H, W)`` class indices.
        classes: the class names.

    Returns:
        ``(rows, columns, 3)`` ``uint8``.
    """
    colours = palette(len(classes))
    height, width = images.shape[1:3]
    zoom = max(1, -(-CELL // max(height, width)))
    cell_w, cell_h, gap, header = width * zoom, height * zoom, 4, 18
    legend = 18 * (1 + (len(classes) - 1) // 4)
    canvas = Image.new(
        "RGB",
        (3 * cell_w + 4 * gap, header + len(images) * (cell_h + gap) + gap + legend),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(COLUMNS):
        draw.text((gap + c * (cell_w + gap), 3), title, fill=(0, 0, 0))
    for r, (image, true, guess) in enumerate(zip(images, truth, predicted, strict=True)):
        cells = (image, overlay(image, true, colours), overlay(image, guess, colours))
        for c, cell in enumerate(cells):
            picture = Image.fromarray(cell).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            canvas.paste(picture, (gap + c * (cell_w + gap), header + r * (cell_h + gap)))
    top = header + len(images) * (cell_h + gap) + gap
    for i, name in enumerate(classes[1:], start=1):
        x, y = gap + ((i - 1) % 4) * (3 * cell_w // 4), top + 18 * ((i - 1) // 4)
        draw.rectangle((x, y + 2, x + 12, y + 14), fill=tuple(int(v) for v in colours[i]))
        draw.text((x + 16, y + 2), name, fill=(0, 0, 0))
    return np.asarray(canvas)


def label_grid(
    images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: list[str]
) -> np.ndarray:
    """A classifier's grid: each image enlarged, captioned with its true class and the model's
    (green when they agree, red when not), four to a row.

    Args:
        images: ``(n, H, W, 3)`` ``uint8``.
        truth: ``(n,)`` class indices.
        predicted: ``(n,)`` class indices.
        classes: the class names.

    Returns:
        ``(rows, columns, 3)`` ``uint8``.
    """
    height, width = images.shape[1:3]
    zoom = max(1, -(-CELL // max(height, width)))
    cell_w, cell_h, gap, caption, across = width * zoom, height * zoom, 4, 14, 4
    rows = -(-len(images) // across)
    size = (across * (cell_w + gap) + gap, rows * (cell_h + caption + gap) + gap)
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (image, true, guess) in enumerate(zip(images, truth, predicted, strict=True)):
        x = gap + (i % across) * (cell_w + gap)
        y = gap + (i // across) * (cell_h + caption + gap)
        picture = Image.fromarray(image).resize((cell_w, cell_h), Image.Resampling.NEAREST)
        canvas.paste(picture, (x, y + caption))
        colour = (0, 128, 0) if true == guess else (200, 0, 0)
        draw.text((x, y), f"{classes[int(true)]} -> {classes[int(guess)]}", fill=colour)
    return np.asarray(canvas)


@torch.no_grad()
def predicted_samples(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, count: int = SAMPLES
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``count`` images of a batch, their labels or masks and the model's (eval
    mode)."""
    model.eval()
    x, y = x[:count], y[:count]
    return x, y, model(x).argmax(1)


def save_grid(grid: np.ndarray, path: Path) -> None:
    """Write ``grid`` as a PNG, atomically."""
    atomic_write(path, lambda p: Image.fromarray(grid).save(p, format="PNG", pnginfo=png_info()))
