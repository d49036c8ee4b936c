"""The guides' encoder/decoder CNN classifier, with the decoder's input size inferred."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from brickwork.blocks import conv_block, dec_block
from brickwork.errors import ConfigError, ShapeError, passes_kwargs_to, positive_int, size_list
from brickwork.layers import ActivationSpec, NormSpec
from brickwork.models.factory import register_model
from brickwork.registry import Registry, SizeRule
from brickwork.shapes import probe_output_shape

POOLS: Registry[Any] = Registry("pool")
"""2×2 pooling layers that :class:`Encoder` can add after each conv block."""
POOLS.register("max", nn.MaxPool2d, aliases=("maxpool",))
POOLS.register("avg", nn.AvgPool2d, aliases=("avgpool", "mean"))


class Encoder(nn.Module):
    """Conv blocks over ``zip(enc_sizes, enc_sizes[1:])``, held in ``self.conv_blocks``.

    Args:
        enc_sizes: channel counts, input channels first (``[1, 32, 64]`` makes two blocks).
        activation: activation spec of every block. Default ``"relu"``.
        norm: norm spec of every block; ``None`` for none. Default ``"batchnorm"``.
        pool: ``"max"`` or ``"avg"`` appends a 2×2 pooling layer to every block, halving H and
            W each time; default ``None`` (no pooling, as in the guide).
        **conv_kwargs: ``nn.Conv2d`` keyword arguments; default ``kernel_size=3, padding=1``.

    Shape:
        ``(B, enc_sizes[0], H, W)`` → ``(B, enc_sizes[-1], H', W')``; ``H' = H`` without pooling.
    """

    def __init__(
        self,
        enc_sizes: Sequence[int],
        activation: ActivationSpec = "relu",
        *,
        norm: NormSpec = "batchnorm",
        pool: str | None = None,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        sizes = size_list(enc_sizes, "enc_sizes", min_len=2)
        conv_kwargs = {"kernel_size": 3, "padding": 1, **conv_kwargs}
        pool_cls = None if pool is None else POOLS.get(pool)
        blocks = []
        for in_f, out_f in itertools.pairwise(sizes):
            block = conv_block(in_f, out_f, activation, norm=norm, **conv_kwargs)
            if pool_cls is not None:
                block.append(pool_cls(2))
            blocks.append(block)
        self.conv_blocks = nn.Sequential(*blocks)
        self.in_channels = sizes[0]
        self.out_channels = sizes[-1]
        self.n_pools = len(blocks) if pool_cls is not None else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_blocks(x)  # type: ignore[no-any-return]


class Decoder(nn.Module):
    """Dense blocks over ``zip(dec_sizes, dec_sizes[1:])``, then a plain ``Linear`` named ``last``.

    Args:
        dec_sizes: feature counts, input features first (``[50176, 1024, 512]`` makes two
            blocks; ``[512]`` makes only ``last``).
        n_classes: outputs of ``last``.
        activation: activation spec of every block. Default ``"sigmoid"``, as in the guide.
        **linear_kwargs: ``nn.Linear`` keyword arguments of the blocks (``bias``).

    Shape:
        ``(B, dec_sizes[0])`` → ``(B, n_classes)``.
    """

    def __init__(
        self,
        dec_sizes: Sequence[int],
        n_classes: int,
        activation: ActivationSpec = "sigmoid",
        **linear_kwargs: Any,
    ) -> None:
        super().__init__()
        sizes = size_list(dec_sizes, "dec_sizes", min_len=1)
        n_classes = positive_int(n_classes, "n_classes")
        self.dec_blocks = nn.Sequential(
            *(
                dec_block(in_f, out_f, activation, **linear_kwargs)
                for in_f, out_f in itertools.pairwise(sizes)
            )
        )
        self.last = nn.Linear(sizes[-1], n_classes)
        self.in_features = sizes[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dec_blocks(x)
        return self.last(x)  # type: ignore[no-any-return]


def _spatial_shape(input_shape: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape, input_shape)
    if (
        isinstance(input_shape, str)
        or not isinstance(input_shape, Sequence)
        or len(input_shape) != 2
    ):
        raise ConfigError(
            f"input_shape must be (H, W) or one int for a square, got {input_shape!r}"
        )
    h = positive_int(input_shape[0], "input_shape H")
    w = positive_int(input_shape[1], "input_shape W")
    return h, w


class CNNClassifier(nn.Module):
    """Encoder → flatten → decoder: the guides' CNN classifier, correct for any input size.

    The decoder's first ``in_features`` is the encoder's real output size for ``input_shape``,
    found by running the encoder on ``meta`` tensors, so nobody types ``64 * 28 * 28``.

    Args:
        in_c: input channels.
        enc_sizes: output channels of each conv block (``[32, 64]``); at least one.
        dec_sizes: output features of each dense block (``[1024, 512]``); may be empty for a
            linear head.
        n_classes: number of classes (outputs of ``decoder.last``).
        activation: activation spec of the conv blocks. Default ``"relu"``.
        input_shape: ``(H, W)`` of the inputs (or one int for square ones). Default ``(28, 28)``.
        pool: ``"max"`` or ``"avg"`` adds 2×2 pooling after each conv block; default ``None``.
        dec_activation: activation spec of the dense blocks. Default ``"sigmoid"`` (the guide's).
        norm: norm spec of the conv blocks. Default ``"batchnorm"``.

    Shape:
        ``x: (B, in_c, H, W)`` with ``(H, W) == input_shape`` → logits ``(B, n_classes)``.

    Example:
        >>> model = CNNClassifier(1, [32, 64], [1024, 512], 10, activation="lrelu")
        >>> model(torch.randn(8, 1, 28, 28)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        in_c: int,
        enc_sizes: Sequence[int],
        dec_sizes: Sequence[int],
        n_classes: int,
        activation: ActivationSpec = "relu",
        input_shape: int | Sequence[int] = (28, 28),
        pool: str | None = None,
        *,
        dec_activation: ActivationSpec = "sigmoid",
        norm: NormSpec = "batchnorm",
    ) -> None:
        super().__init__()
        self.in_c = positive_int(in_c, "in_c")
        enc = size_list(enc_sizes, "enc_sizes", min_len=1)
        dec = size_list(dec_sizes, "dec_sizes", min_len=0)
        self.n_classes = positive_int(n_classes, "n_classes")
        self.input_shape = _spatial_shape(input_shape)
        self.encoder = Encoder([self.in_c, *enc], activation, norm=norm, pool=pool)
        min_side = 2**self.encoder.n_pools
        if min(self.input_shape) < min_side:
            raise ShapeError(
                f"input_shape {self.input_shape} is too small for CNNClassifier: its "
                f"{self.encoder.n_pools} conv blocks each pool by 2, so H and W must be at least "
                f"{min_side}",
                hint="use fewer enc_sizes, pool=None, or larger inputs",
            )
        enc_out = probe_output_shape(
            self.encoder, (self.in_c, *self.input_shape), "CNNClassifier encoder"
        )
        self.decoder = Decoder([math.prod(enc_out), *dec], self.n_classes, dec_activation)
        self._arguments = {
            "enc_sizes": enc,
            "dec_sizes": dec,
            "n_classes": self.n_classes,
            "activation": activation,
            "pool": pool,
            "dec_activation": dec_activation,
            "norm": norm,
        }

    def brickwork_spec(self) -> dict[str, Any]:
        """This model as a spec: the ``cnn_classifier`` family with its arguments."""
        return {
            "input": [self.in_c, *self.input_shape],
            "model": {"cnn_classifier": dict(self._arguments)},
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_c:
            raise ShapeError(
                f"CNNClassifier expects input (B, in_c={self.in_c}, H, W), got {tuple(x.shape)}"
                + (f": {x.shape[1]} channels but in_c={self.in_c}" if x.dim() == 4 else ""),
                hint="images stored (B, H, W, C) need x.permute(0, 3, 1, 2)"
                if x.dim() == 4 and x.shape[-1] == self.in_c
                else None,
            )
        if x.shape[2:] != self.input_shape:
            raise ShapeError(
                f"CNNClassifier was built for input_shape={self.input_shape} (its decoder takes "
                f"{self.decoder.in_features} features), but got H, W = {tuple(x.shape[2:])}; "
                f"build it with input_shape={tuple(x.shape[2:])}"
            )
        features = self.encoder(x).flatten(1)  # (B, C * H' * W')
        return self.decoder(features)  # type: ignore[no-any-return]


@register_model(sizes=SizeRule(in_arg="in_c", ranks=(3,), shape_arg="input_shape"))
@passes_kwargs_to(CNNClassifier)
def cnn_classifier(
    in_c: int = 1,
    enc_sizes: Sequence[int] = (32, 64),
    dec_sizes: Sequence[int] = (1024, 512),
    n_classes: int = 10,
    **kwargs: Any,
) -> CNNClassifier:
    """The guide's classifier: :class:`CNNClassifier` with its sizes as defaults."""
    return CNNClassifier(in_c, enc_sizes, dec_sizes, n_classes, **kwargs)
