"""Image files opened and decoded as ``uint8`` arrays: any mode, any size, any of the usual
formats, decoded at reduced size when only a smaller region is wanted.

- Modes: ``1``, ``L``, ``LA``, ``P`` (with or without transparency), ``RGB``, ``RGBA``, ``CMYK``,
  ``YCbCr`` and 16-bit grayscale (``I;16``, ``I``: the top 8 bits are kept) all become ``L``
  (1 channel) or ``RGB`` (3 channels), whichever the dataset uses.
- JPEGs are decoded with Pillow's draft mode: libjpeg scales the picture down by 2, 4 or 8
  while decoding, by as much as keeps the wanted region at least as large as the output.
- An image with more pixels than Pillow's limit (``PIL.Image.MAX_IMAGE_PIXELS``) is refused
  from its header, before any of it is decoded: a small file may hold a decompression bomb.
  :func:`set_pixel_limit` raises the limit for files the user trusts (``--max-pixels``).
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from brickwork.errors import ConfigError, DataError, positive_int

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
"""The file names read as images (any case); other files in a class folder are left out."""
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""Pillow modes of one-channel images."""

Box = tuple[float, float, float, float]
"""A region of an image, ``(left, top, right, bottom)`` in pixels."""


def open_image(source: Path | bytes, where: str | None = None) -> Image.Image:
    """Open an image file (or its bytes) without decoding it, refusing decompression bombs.

    Args:
        source: the file, or its content (a record of a shard).
        where: how messages name it; default the path.

    Raises:
        DataError: not an image Pillow reads, or more pixels than Pillow's limit.
    """
    name = where or str(source)
    fp: Path | IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise DataError(
            f"{name}: {pixels}, more than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} "
            "(PIL.Image.MAX_IMAGE_PIXELS); refused as a possible decompression bomb",
            hint="if you trust the file, raise the limit: --max-pixels N on the command line, "
            "PIL.Image.MAX_IMAGE_PIXELS = N in Python",
        ) from None
    except Exception as err:  # a damaged file makes Pillow's parsers raise almost anything
        raise DataError(f"{name}: cannot read it as an image ({_reason(err)})") from None
    image.filename = name  # what decode's messages call it
    return image


def set_pixel_limit(pixels: int) -> None:
    """Open images of up to ``pixels`` pixels (Pillow's ``MAX_IMAGE_PIXELS``, for this process and
    the DataLoader workers it starts afterwards).

    Raises:
        ConfigError: ``pixels`` is not a positive integer.
    """
    Image.MAX_IMAGE_PIXELS = positive_int(pixels, "--max-pixels", ConfigError)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def image_channels(image: Image.Image) -> int:
    """1 for a grayscale image, 3 for any other."""
    return 1 if image.mode in GRAYSCALE_MODES else 3


def decode(
    image: Image.Image, box: Box, size: tuple[int, int], channels: int, flip: bool = False
) -> np.ndarray:
    """The region ``box`` of ``image``, resized (bilinear, antialiased) to ``size``.

    Args:
        image: an image from :func:`open_image` (not yet decoded).
        box: the region to keep, in the image's pixels.
        size: the output's ``(H, W)``.
        channels: 1 (grayscale) or 3 (RGB).
        flip: mirror the output left-right (Pillow does it several times faster than a
            copy of a reversed array view).

    Returns:
        ``(H, W, channels)`` ``uint8``.

    Raises:
        DataError: a truncated or damaged file (found while decoding).
    """
    height, width = size
    try:
        box = _draft(image, box, size, channels)
        converted = to_mode(image, channels)
        resized = converted.resize((width, height), Image.Resampling.BILINEAR, box=box)
        if flip:
            resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        array = np.array(resized, dtype=np.uint8)  # writable, for torch.from_numpy
    except Exception as err:  # a damaged file makes Pillow's decoders raise almost anything
        where = getattr(image, "filename", "") or "image"
        raise DataError(f"{where}: cannot decode it ({_reason(err)})") from None
    return array.reshape(height, width, channels)


def _draft(image: Image.Image, box: Box, size: tuple[int, int], channels: int) -> Box:
    """Ask a JPEG to decode at the largest reduction that keeps ``box`` at least ``size``;
    ``box`` in the reduced image's pixels (other formats: as it was)."""
    if image.format != "JPEG":
        return box
    left, top, right, bottom = box
    scale = min((right - left) / size[1], (bottom - top) / size[0])
    if scale < 2:
        return box
    wanted = (math.ceil(image.width / scale), math.ceil(image.height / scale))
    original = image.size
    drafted = image.draft("L" if channels == 1 else "RGB", wanted)
    if drafted is None:
        return box
    fx, fy = drafted[1][2] / original[0], drafted[1][3] / original[1]
    w, h = image.size  # the reduced size: the box is clamped to it
    return (
        min(left * fx, w),
        min(top * fy, h),
        min(right * fx, w),
        min(bottom * fy, h),
    )


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """``image`` as ``L`` (``channels`` 1) or ``RGB`` (3), decoding it.

    16-bit grayscale keeps its top 8 bits (Pillow's own conversion would clip at 255); palette
    images with transparency go through ``RGBA``; alpha is dropped.
    """
    target = "L" if channels == 1 else "RGB"
    if image.mode == target:
        return image
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image)
        if image.mode != "F":
            values = np.clip(values, 0, 65535) >> 8  # 16-bit range to 8 bits
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
        return image if target == "L" else image.convert(target)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert(target)


MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N")
"""Pillow modes a mask of class indices may have: one value per pixel."""


def decode_mask(mask: Image.Image, box: Box, size: tuple[int, int]) -> np.ndarray:
    """The region ``box`` of a mask of class indices, resized to ``size`` by nearest neighbour
    (a resized index is still an index: never a blend of two classes).

    Args:
        mask: a mask from :func:`open_image` (one value per pixel: ``L``, ``P``, ``I;16``...).
        box: the region to keep, in the mask's pixels (the image's, the two being one size).
        size: the output's ``(H, W)``.

    Returns:
        ``(H, W)`` ``uint8`` class indices (255: ignored).

    Raises:
        DataError: a mask of colours (RGB) instead of indices, an index above 255, or a
            damaged file.
    """
    where = getattr(mask, "filename", "") or "mask"
    if mask.mode not in MASK_MODES:
        raise DataError(
            f"{where}: a {mask.mode} mask; a mask holds one class index per pixel "
            "(an L or P PNG, 255 = ignore)",
            hint="save masks as 8-bit grayscale or palette PNGs of class indices",
        )
    try:
        resized = mask.resize((size[1], size[0]), Image.Resampling.NEAREST, box=box)
        values = np.asarray(resized)
    except Exception as err:  # a damaged file makes Pillow's decoders raise almost anything
        raise DataError(f"{where}: cannot decode it ({_reason(err)})") from None
    if values.max(initial=0) > 255:
        raise DataError(f"{where}: class index {int(values.max())} is above 255")
    return values.astype(np.uint8)
