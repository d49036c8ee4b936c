"""Image files opened and decoded as ``uint8`` arrays: any mode, any size, any of the usual
formats, decoded at reduced size when only a smaller region is wanted.

- Modes: ``1``, ``L``, ``LA``, ``P`` (with or without transparency), ``RGB``, ``RGBA``, ``CMYK``,
  ``YCbCr`` and 16-bit grayscale (``I;16``, ``I``: the top 8 bits are kept) all become ``L``
  (1 channel) or ``RGB`` (3 channels), whichever the dataset uses.
- A colour or grayscale JPEG is decoded by libjpeg-turbo through simplejpeg, straight into an
  array (Pillow would decode into its own 4-byte pixels, then copy), and scaled down by 2, 4 or
  8 while it is decoded (libjpeg's DCT scaling), by as much as keeps the wanted region at least
  as large as the output. Any other file, and a JPEG simplejpeg refuses, goes through Pillow,
  which decides whether it is damaged.
- The region, snapped to whole pixels of the decoded image (:func:`snap_box`), is resized by
  PyTorch's antialiased bilinear interpolation of ``uint8`` images (torchvision's, with vector
  kernels for 3 channels): about a third of the time of Pillow's resize.
- An image with more pixels than Pillow's limit (``PIL.Image.MAX_IMAGE_PIXELS``) is refused
  from its header, before any of it is decoded: a small file may hold a decompression bomb.
  :func:`set_pixel_limit` raises the limit for files the user trusts (``--max-pixels``).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import IO

import numpy as np
import simplejpeg
import torch
from PIL import Image
from torch.nn import functional

from brickwork.errors import ConfigError, DataError, positive_int

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
"""The file names read as images (any case); other files in a class folder are left out."""
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""Pillow modes of one-channel images."""

Box = tuple[float, float, float, float]
"""A region of an image, ``(left, top, right, bottom)`` in pixels."""
JPEG_FORMATS = ("JPEG", "MPO")
"""Pillow's formats of JPEG files (MPO: a camera's JPEG with more pictures after the first)."""


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
        box: the region to keep, in the image's pixels (snapped as :func:`snap_box` says).
        size: the output's ``(H, W)``.
        channels: 1 (grayscale) or 3 (RGB).
        flip: mirror the output left-right.

    Returns:
        ``(H, W, channels)`` ``uint8``, writable.

    Raises:
        DataError: a truncated or damaged file (found while decoding).
    """
    try:
        factor = reduction(image, box, size)
        left, top, right, bottom = _snapped(image, box, factor)
        pixels, factor = _pixels(image, channels, factor)
        region = pixels[top // factor : -(-bottom // factor), left // factor : -(-right // factor)]
        return resized(region, size, flip)
    except Exception as err:  # a damaged file makes Pillow's decoders raise almost anything
        where = getattr(image, "filename", "") or "image"
        raise DataError(f"{where}: cannot decode it ({_reason(err)})") from None


def reduction(image: Image.Image, box: Box, size: tuple[int, int]) -> int:
    """1, 2, 4 or 8: how much a JPEG is scaled down while it is decoded, the most that keeps
    ``box`` at least ``size`` (1 for other files)."""
    if not _simple_jpeg(image):
        return 1
    left, top, right, bottom = box
    scale = min((right - left) / size[1], (bottom - top) / size[0])
    return next((f for f in (8, 4, 2) if scale >= f), 1)


def snap_box(image: Image.Image, box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` rounded to whole pixels of ``image`` decoded at ``1 / reduction``, in the
    image's own pixels (a multiple of the reduction, or the image's edge), never empty.

    Each edge moves by at most half a pixel of the decoded image, as torchvision's crops, which
    are whole pixels too. That is under half an output pixel whenever the image is at least as
    large as the output; an image smaller than the output, upscaled, sees its crop move by up
    to half of one of its own pixels. A mask cropped with this box covers exactly the pixels
    its decoded image does.
    """
    return _snapped(image, box, reduction(image, box, size))


def _snapped(image: Image.Image, box: Box, factor: int) -> tuple[int, int, int, int]:
    """``box`` rounded to whole pixels of ``image`` decoded at ``1 / factor`` (see
    :func:`snap_box`)."""
    width, height = image.size
    cols, rows = -(-width // factor), -(-height // factor)  # the decoded image's size
    left, top, right, bottom = box
    x0 = min(max(round(left / factor), 0), cols - 1)
    y0 = min(max(round(top / factor), 0), rows - 1)
    x1 = min(max(round(right / factor), x0 + 1), cols)
    y1 = min(max(round(bottom / factor), y0 + 1), rows)
    return (x0 * factor, y0 * factor, min(x1 * factor, width), min(y1 * factor, height))


def _pixels(image: Image.Image, channels: int, factor: int) -> tuple[np.ndarray, int]:
    """The whole image as ``(h, w, channels)`` ``uint8``, scaled down by ``factor`` if it is a
    JPEG simplejpeg decodes, else at full size; and the factor it has."""
    content = _content(image) if _simple_jpeg(image) else None
    if content is not None:
        try:
            array = simplejpeg.decode_jpeg(
                content,
                "GRAY" if channels == 1 else "RGB",
                min_height=-(-image.height // factor),
                min_width=-(-image.width // factor),
            )
        except (ValueError, RuntimeError):
            pass  # Pillow decides: it reads what libjpeg only warns about, and names the rest
        else:
            return array, factor
    converted = np.asarray(to_mode(image, channels))
    return converted.reshape(image.height, image.width, channels), 1


def _simple_jpeg(image: Image.Image) -> bool:
    """A colour (YCbCr or RGB) or grayscale JPEG: what simplejpeg decodes (not CMYK)."""
    return image.format in JPEG_FORMATS and image.mode in ("RGB", "L")


def _content(image: Image.Image) -> bytes | None:
    """The bytes of the file ``image`` was opened from (``None`` once Pillow has read it)."""
    source = getattr(image, "fp", None)
    if source is None:
        return None
    source.seek(0)
    return source.read()  # type: ignore[no-any-return]


def resized(pixels: np.ndarray, size: tuple[int, int], flip: bool = False) -> np.ndarray:
    """``(h, w, C)`` ``uint8`` resized (bilinear, antialiased) to ``size``, maybe mirrored:
    ``(H, W, C)`` ``uint8``, writable.

    The pixels are copied together first and given the strides of a channels-last batch of one,
    which PyTorch's vector kernel takes and keeps: a view of a larger image, or a batch axis
    NumPy gives stride 0, sends it down a path several times slower that returns planes.
    """
    x = torch.from_numpy(np.require(pixels, requirements=("C", "W")))  # (h, w, C)
    if tuple(x.shape[:2]) != size:
        height, width, channels = x.shape
        batch = x.as_strided(
            (1, channels, height, width), (x.numel(), 1, width * channels, channels)
        )
        out = functional.interpolate(batch, size=size, mode="bilinear", antialias=True)
        x = out[0].permute(1, 2, 0)  # (H, W, C), contiguous
    return np.ascontiguousarray((x.flip(1) if flip else x).numpy())


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
