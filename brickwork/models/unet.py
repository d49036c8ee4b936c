"""U-Net: why the guides reach for ``ModuleList`` — the decoder needs the encoder's outputs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from brickwork.errors import ShapeError, positive_int, size_list
from brickwork.layers import ActivationSpec, NormSpec, make_act, make_norm
from brickwork.models.factory import register_model
from brickwork.registry import Registry, SizeRule

UPSAMPLES: Registry[Callable[[int, int], nn.Module]] = Registry("upsample")
"""How the U-Net's expanding path doubles H and W: ``(in_chans, out_chans)`` → module."""


@UPSAMPLES.register("transpose")
def transpose_upsample(in_chans: int, out_chans: int) -> nn.Module:
    """A 2×2 stride-2 transposed convolution (the paper's up-convolution)."""
    return nn.ConvTranspose2d(in_chans, out_chans, 2, stride=2)


@UPSAMPLES.register("bilinear")
def bilinear_upsample(in_chans: int, out_chans: int) -> nn.Module:
    """Bilinear upsampling, then a 1×1 convolution to ``out_chans``."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_chans, out_chans, 1),
    )


class DoubleConv(nn.Sequential):
    """(3×3 convolution → norm → activation) twice: U-Net's basic block."""

    def __init__(
        self, in_chans: int, out_chans: int, activation: ActivationSpec, norm: NormSpec
    ) -> None:
        bias = norm is None
        super().__init__(
            nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=bias),
            make_norm(norm, out_chans),
            make_act(activation),
            nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=bias),
            make_norm(norm, out_chans),
            make_act(activation),
        )


class UNet(nn.Module):
    """U-Net for segmentation: a contracting path, an expanding path and skip connections.

    The encoder and decoder paths are ``nn.ModuleList``s; ``forward`` keeps each encoder
    output in a local list and concatenates it into the decoder step of the same size.

    Args:
        in_chans: input channels.
        n_classes: output channels (one score map per class).
        widths: channels at each level, top first. Default ``(64, 128, 256, 512, 1024)`` (the
            paper's). The input is halved ``len(widths) - 1`` times.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec; ``None`` gives the paper's convolutions with bias and no norm. Default
            ``"batchnorm"``.
        upsample: a name in :data:`UPSAMPLES`: ``"transpose"`` (2×2 transposed convolution) or
            ``"bilinear"`` (bilinear upsampling and a 1×1 convolution). Default ``"transpose"``.
        pad: pad inputs whose H or W is not a multiple of ``2 ** (len(widths) - 1)`` and crop
            the output back; with ``False`` (default) such inputs are a ``ShapeError``.

    Shape:
        ``(B, in_chans, H, W)`` → ``(B, n_classes, H, W)``.
    """

    def __init__(
        self,
        in_chans: int = 1,
        n_classes: int = 2,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        *,
        activation: ActivationSpec = "relu",
        norm: NormSpec = "batchnorm",
        upsample: str = "transpose",
        pad: bool = False,
    ) -> None:
        super().__init__()
        widths = size_list(widths, "widths", min_len=2)
        make_up = UPSAMPLES.get(upsample)
        self.in_chans = positive_int(in_chans, "in_chans")
        self.n_classes = positive_int(n_classes, "n_classes")
        self.multiple = 2 ** (len(widths) - 1)
        self.pad = pad
        self.encoder = nn.ModuleList(
            DoubleConv(in_chans, out_chans, activation, norm)
            for in_chans, out_chans in itertools.pairwise([self.in_chans, *widths])
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for low, high in reversed(list(itertools.pairwise(widths))):  # e.g. (512, 1024) first
            self.up.append(make_up(high, low))
            self.decoder.append(DoubleConv(2 * low, low, activation, norm))
        self.head = nn.Conv2d(widths[0], self.n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            if not self.pad:
                fits = [
                    f"{size // self.multiple * self.multiple or self.multiple} or "
                    f"{(size // self.multiple + 1) * self.multiple}"
                    for size in (h, w)
                ]
                raise ShapeError(
                    f"UNet halves its input {len(self.encoder) - 1} times, so H and W must be "
                    f"multiples of {self.multiple}; got {h}×{w} (nearest: H {fits[0]}, "
                    f"W {fits[1]})",
                    hint="resize or crop the input, or build the UNet with pad=True",
                )
            pad_h, pad_w = -h % self.multiple, -w % self.multiple
            x = nn.functional.pad(
                x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > 1 else "replicate"
            )
        skips = []  # this call's encoder outputs, top level first
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, block, skip in zip(self.up, self.decoder, reversed(skips[:-1]), strict=True):
            x = block(torch.cat([skip, up(x)], dim=1))  # (B, 2 * width, H', W')
        return self.head(x)[..., :h, :w]  # type: ignore[no-any-return]


register_model(UNet, name="unet", sizes=SizeRule(in_arg="in_chans", ranks=(3,)))
