"""The guides' small custom modules as families: an MLP and a stride-2 conv net."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from brickwork.errors import positive_int, size_list
from brickwork.layers import ActivationSpec, NormSpec, make_act, make_norm
from brickwork.models.factory import register_model
from brickwork.registry import SizeRule


class MLP(nn.Module):
    """Linear layers over the flattened input: ``Linear → norm → activation → dropout``, then a
    plain ``Linear``.

    Args:
        sizes: feature counts, input first (``[784, 256, 10]``: one hidden layer of 256).
        activation: activation spec between layers. Default ``"relu"``.
        dropout: dropout probability after each hidden activation. Default 0.
        norm: norm spec after each hidden linear (``"batchnorm"``, ``"layernorm"``...); default
            ``None``.

    Shape:
        ``(B, *)`` with ``prod(*) == sizes[0]`` → ``(B, sizes[-1])``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: ActivationSpec = "relu",
        dropout: float = 0.0,
        norm: NormSpec = None,
    ) -> None:
        super().__init__()
        sizes = size_list(sizes, "sizes", min_len=2)
        layers: list[nn.Module] = []
        for in_f, out_f in itertools.pairwise(sizes[:-1]):
            layers.append(nn.Linear(in_f, out_f))
            if norm is not None:
                layers.append(make_norm(norm, out_f, dims=1))
            layers.append(make_act(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.layers = nn.Sequential(*layers)
        self.in_features = sizes[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))  # type: ignore[no-any-return]


@register_model(sizes=SizeRule(in_arg="in_features", flat=True))
def mlp(
    in_features: int = 784,
    hidden: Sequence[int] = (256, 128),
    n_classes: int = 10,
    activation: ActivationSpec = "relu",
    dropout: float = 0.0,
    norm: NormSpec = None,
) -> MLP:
    """An MLP over 28×28 images by default: 784 → 256 → 128 → 10."""
    sizes = [in_features, *size_list(hidden, "hidden", min_len=0), n_classes]
    return MLP(sizes, activation, dropout, norm)


class SimpleConvNet(nn.Module):
    """Stride-2 3×3 convolutions, global average pooling and a linear head.

    Args:
        in_chans: input channels. Default 1.
        widths: channels of each stride-2 convolution. Default ``(32, 64, 128)``.
        n_classes: outputs. Default 10.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec after each convolution; ``None`` for none, and then the convolutions
            have a bias (a norm's mean subtraction would cancel it). Default ``"batchnorm"``.

    Shape:
        ``(B, in_chans, H, W)`` → ``(B, n_classes)`` for any H, W ≥ 1.
    """

    def __init__(
        self,
        in_chans: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        n_classes: int = 10,
        activation: ActivationSpec = "relu",
        norm: NormSpec = "batchnorm",
    ) -> None:
        super().__init__()
        channels = [positive_int(in_chans, "in_chans"), *size_list(widths, "widths")]
        blocks = []
        for in_c, out_c in itertools.pairwise(channels):
            conv = nn.Conv2d(in_c, out_c, 3, stride=2, padding=1, bias=norm is None)
            layers: list[nn.Module] = [conv]
            if norm is not None:
                layers.append(make_norm(norm, out_c))
            layers.append(make_act(activation))
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels[-1], positive_int(n_classes, "n_classes"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)  # (B, widths[-1])
        return self.head(x)  # type: ignore[no-any-return]


register_model(SimpleConvNet, name="simple_convnet", sizes=SizeRule(in_arg="in_chans", ranks=(3,)))
