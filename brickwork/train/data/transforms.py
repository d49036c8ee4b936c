"""What becomes of an image file on its way to a batch: the training crop and the evaluation
crop, with timm's and torchvision's semantics, each decoded in one resize.

- :class:`TrainTransform`: ``RandomResizedCrop(size, scale, ratio=(3/4, 4/3))`` and a
  horizontal flip with probability 1/2; its random numbers come from the generator it is given,
  which the loader seeds from ``(seed, epoch, sample index)``.
- :class:`EvalTransform`: the shorter side resized to ``size / crop_fraction`` (256 for 224),
  then the centre ``size`` cut out: the centred box of the output's shape that spans
  ``crop_fraction`` of the shorter side, resized to ``size``.

Both return ``(H, W, C)`` ``uint8`` arrays: images travel as bytes and are normalised on the
training device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from brickwork.errors import ArgumentError, DataError
from brickwork.train.data.images import Box, decode, decode_mask, open_image, snap_box

CROP_FRACTION = 0.875
"""The share of the shorter side an evaluation crop keeps (224 out of 256), as in timm."""
CROP_SCALE = (0.08, 1.0)
"""The default range of the training crop's area, as a share of the image's."""
CROP_RATIO = (3 / 4, 4 / 3)
"""The range of the training crop's aspect ratio (width / height)."""


@dataclass(frozen=True)
class EvalTransform:
    """The evaluation crop: deterministic.

    Attributes:
        size: the output's ``(H, W)``.
        channels: 1 (grayscale) or 3 (RGB).
        crop_fraction: the share of the shorter side kept, default 0.875.
    """

    size: tuple[int, int]
    channels: int
    crop_fraction: float = CROP_FRACTION

    def box(self, width: int, height: int) -> Box:
        """The region of a ``width`` × ``height`` image that becomes the output."""
        out_h, out_w = self.size
        box_w = min(width, height * out_w / out_h) * self.crop_fraction
        box_h = box_w * out_h / out_w
        left, top = (width - box_w) / 2, (height - box_h) / 2
        return (left, top, left + box_w, top + box_h)

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        """``image`` cropped and resized: ``(H, W, C)`` ``uint8`` (``rng`` is unused)."""
        return decode(image, self.box(image.width, image.height), self.size, self.channels)

    def pair(
        self, image: Image.Image, mask: Image.Image, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``image`` and its mask cropped alike: ``(H, W, C)`` and ``(H, W)`` ``uint8``."""
        same_size(image, mask)
        box = snap_box(image, self.box(image.width, image.height), self.size)
        return decode(image, box, self.size, self.channels), decode_mask(mask, box, self.size)

    def to_metadata(self) -> dict[str, Any]:
        """What a model file keeps so that ``evaluate`` and ``predict`` crop the same way."""
        return {"size": list(self.size), "crop_fraction": self.crop_fraction}


@dataclass(frozen=True)
class TrainTransform:
    """The training crop: a random region of random area and shape, and a random flip.

    Attributes:
        size: the output's ``(H, W)``.
        channels: 1 (grayscale) or 3 (RGB).
        scale: the range of the crop's area as a share of the image's, default (0.08, 1).
        flip: mirror left-right with probability 1/2.
    """

    size: tuple[int, int]
    channels: int
    scale: tuple[float, float] = CROP_SCALE
    flip: bool = True

    def box(self, width: int, height: int, rng: np.random.Generator) -> Box:
        """torchvision's ``RandomResizedCrop.get_params``: ten tries at a random area and
        aspect ratio that fit, else the centred largest box of a ratio within range."""
        area = width * height
        log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            ratio = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target * ratio))
            h = round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return (left, top, left + w, top + h)
        ratio = width / height
        if ratio < CROP_RATIO[0]:
            w, h = width, round(width / CROP_RATIO[0])
        elif ratio > CROP_RATIO[1]:
            w, h = round(height * CROP_RATIO[1]), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return (left, top, left + w, top + h)

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        """``image`` cropped, resized and maybe flipped: ``(H, W, C)`` ``uint8``.

        Args:
            image: an image from :func:`~brickwork.train.data.images.open_image`.
            rng: the sample's generator (seeded from ``(seed, epoch, index)``).
        """
        if rng is None:
            raise ArgumentError("TrainTransform needs the sample's random generator (rng)")
        box = self.box(image.width, image.height, rng)
        flip = self.flip and rng.random() < 0.5
        return decode(image, box, self.size, self.channels, flip)

    def pair(
        self, image: Image.Image, mask: Image.Image, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``image`` and its mask cropped, resized and flipped alike (the mask by nearest
        neighbour): ``(H, W, C)`` and ``(H, W)`` ``uint8``."""
        if rng is None:
            raise ArgumentError("TrainTransform needs the sample's random generator (rng)")
        same_size(image, mask)
        box = snap_box(image, self.box(image.width, image.height, rng), self.size)
        flip = self.flip and rng.random() < 0.5
        array = decode(image, box, self.size, self.channels, flip)
        labels = decode_mask(mask, box, self.size)
        return array, np.ascontiguousarray(labels[:, ::-1]) if flip else labels


def same_size(image: Image.Image, mask: Image.Image) -> None:
    """Raise :class:`DataError` unless ``mask`` has ``image``'s size (pixel for pixel)."""
    if image.size != mask.size:
        raise DataError(
            f"{getattr(mask, 'filename', 'mask')}: {mask.width}×{mask.height} pixels, but its "
            f"image {getattr(image, 'filename', '')} has {image.width}×{image.height}; a mask "
            "gives the class of each pixel of its image"
        )


Transform = EvalTransform | TrainTransform
"""Either crop: called as ``transform(image, rng)``."""


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random numbers of one sample's augmentation in one epoch, whoever computes it."""
    return np.random.default_rng([seed, epoch, index])


def model_input(
    path: Path, input_shape: tuple[int, int, int], crop: Mapping[str, Any] | None
) -> torch.Tensor:
    """An image file as a model trained on images of ``input_shape`` takes it.

    Args:
        path: the image file.
        input_shape: the model's ``(C, H, W)``.
        crop: the evaluation crop its model file keeps (``size``, ``crop_fraction``): a model
            trained on image files; ``None``: the whole image is resized, and must have the
            model's shape within 5% (a model trained on a dataset of one image size).

    Returns:
        ``(1, C, H, W)`` in [0, 1].

    Raises:
        DataError: not an image, a decompression bomb, or (without ``crop``) of another shape.
    """
    channels, height, width = input_shape
    with open_image(path) as image:
        if crop is not None:
            array = EvalTransform((height, width), channels, crop["crop_fraction"])(image)
        elif not math.isclose(image.height / image.width, height / width, rel_tol=0.05):
            raise DataError(
                f"{path}: {image.width}×{image.height} pixels, but the model takes "
                f"{width}×{height} images and this one is not that shape",
                hint="crop it to a square first; it is then resized"
                if width == height
                else f"crop it to a {width}:{height} shape first; it is then resized",
            )
        else:
            array = decode(image, (0, 0, image.width, image.height), (height, width), channels)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255
