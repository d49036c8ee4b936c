"""Mixup and CutMix on a batch on the training device, with the soft targets they need.

As timm does it: each image is mixed with the batch's image in the mirrored position (the batch
flipped), with one mixing weight ``lam`` per batch drawn from ``Beta(alpha, alpha)``. Mixup blends
whole images; CutMix pastes a box covering ``1 - lam`` of the image (``lam`` then corrected to
the box actually pasted). With both, each batch uses one or the other with probability 1/2. The
targets are ``lam * one_hot(y) + (1 - lam) * one_hot(y flipped)``, which cross-entropy takes
as class probabilities (label smoothing applies on top). Every draw comes from the step's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Mixing:
    """The mixing options: ``alpha`` of Mixup and of CutMix (0: off; checked with the run's
    options, :meth:`~brickwork.train.config.TrainConfig.check`)."""

    mixup: float = 0.0
    cutmix: float = 0.0

    @property
    def on(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0


def mix(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, mixing: Mixing, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mixed images and their soft targets.

    Args:
        x: images ``(B, C, H, W)`` (normalised).
        y: labels ``(B,)``.
        n_classes: the targets' width.
        mixing: the options (at least one on).
        seed: the step's seed.

    Returns:
        ``x`` mixed (a new tensor), and targets ``(B, n_classes)``.
    """
    rng = np.random.default_rng(seed)
    use_cutmix = mixing.cutmix > 0 and (mixing.mixup == 0 or rng.random() < 0.5)
    alpha = mixing.cutmix if use_cutmix else mixing.mixup
    lam = float(rng.beta(alpha, alpha))
    flipped = x.flip(0)
    if use_cutmix:
        height, width = x.shape[-2:]
        top, bottom, left, right = _box(height, width, lam, rng)
        x = x.clone()
        x[..., top:bottom, left:right] = flipped[..., top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / (height * width)
    else:
        x = x * lam + flipped * (1 - lam)
    one_hot = torch.nn.functional.one_hot(y, n_classes).to(x.dtype)
    return x, one_hot * lam + one_hot.flip(0) * (1 - lam)


def _box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, ...]:
    """A box of about ``1 - lam`` of the image's area around a random centre, clipped."""
    cut = math.sqrt(1 - lam)
    h, w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = max(cy - h // 2, 0), min(cy + h // 2, height)
    left, right = max(cx - w // 2, 0), min(cx + w // 2, width)
    return top, bottom, left, right
