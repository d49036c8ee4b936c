"""``brickwork predict`` with a segmentation model: a mask PNG per image, at the image's own
size, and with ``--overlay`` the image in grey with the mask's colours over it.

Each image is resized whole to the model's input (no crop: every pixel gets a class), and the
score maps are resized back to the image's size (bilinear) before each pixel takes its best
class. A mask is a palette PNG: its values are the class indices, its palette the colours of
``samples.png``, so it reads as a picture and as data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from brickwork.errors import DataError
from brickwork.files import atomic_write
from brickwork.train.data.images import decode, open_image
from brickwork.train.pictures import check_pictures, png_info
from brickwork.train.tasks.samples import overlay, palette


def save_png(picture: Image.Image, path: Path) -> None:
    """Write ``picture`` to ``path`` as a PNG, atomically."""
    atomic_write(path, lambda p: picture.save(p, format="PNG", pnginfo=png_info()))


def mask_names(paths: list[Path], out: Path) -> list[Path]:
    """Where each image's mask goes: ``out/<name>.png``, with ``-2``, ``-3``... after a name
    that two images share."""
    taken: set[str] = set()
    names = []
    for path in paths:
        name, n = f"{path.stem}.png", 1
        while name in taken:
            n += 1
            name = f"{path.stem}-{n}.png"
        taken.add(name)
        names.append(out / name)
    return names


@torch.no_grad()
def predicted_mask(
    model: nn.Module, image: Image.Image, shape: tuple[int, int, int], normalise: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The image as RGB ``(h, w, 3)`` and its predicted classes ``(h, w)`` ``uint8``, at its
    own size."""
    channels, height, width = shape
    whole = (0, 0, image.width, image.height)
    array = decode(image, whole, (height, width), channels)
    x = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255
    scores = model(normalise(x)).float()
    scores = nn.functional.interpolate(
        scores, size=(image.height, image.width), mode="bilinear", align_corners=False
    )
    classes = scores.argmax(1)[0].to(torch.uint8).numpy()
    rgb = decode(image, whole, (image.height, image.width), 3)
    return rgb, classes


def segment_files(
    model: nn.Module,
    paths: list[Path],
    shape: tuple[int, int, int],
    normalise: Any,
    classes: list[str],
    out: Path,
    with_overlay: bool = False,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Write a mask (and an overlay) per image into ``out`` (made if missing).

    Before anything is written, a file in the way that is not a picture of brickwork's (an
    input image, when ``out`` is its folder) is refused, unless ``overwrite``.

    Returns:
        One dict per image: ``image``, ``mask`` (and ``overlay``), and ``pixels``, the share of
        the image each class covers; or ``image``, ``error`` and ``hint`` for a file that
        cannot be read.

    Raises:
        ConfigError: a file in the way that brickwork did not write (without ``overwrite``).
    """
    targets = mask_names(paths, out)
    laid = [_overlay_name(target) for target in targets] if with_overlay else []
    check_pictures([*targets, *laid], overwrite)
    out.mkdir(parents=True, exist_ok=True)
    colours = palette(len(classes))
    flat_palette = colours.flatten().tolist()
    results: list[dict[str, Any]] = []
    for path, target in zip(paths, targets, strict=True):
        try:
            with open_image(path) as image:
                rgb, mask = predicted_mask(model, image, shape, normalise)
        except (DataError, OSError) as err:
            hint = getattr(err, "hint", None)
            results.append({"image": str(path), "error": str(err), "hint": hint})
            continue
        picture = Image.fromarray(mask, "P")
        picture.putpalette(flat_palette)
        save_png(picture, target)
        result: dict[str, Any] = {"image": str(path), "mask": str(target)}
        if with_overlay:
            over = _overlay_name(target)
            save_png(Image.fromarray(overlay(rgb, mask, colours)), over)
            result["overlay"] = str(over)
        counts = np.bincount(mask.ravel(), minlength=len(classes))[: len(classes)]
        result["pixels"] = {c: float(n) / mask.size for c, n in zip(classes, counts, strict=True)}
        results.append(result)
    return results


def _overlay_name(mask: Path) -> Path:
    """Where the overlay of the image whose mask is ``mask`` goes: ``NAME_overlay.png``."""
    return mask.with_name(f"{mask.stem}_overlay.png")
