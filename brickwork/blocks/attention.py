"""Self-attention over the positions of a feature map (SAGAN)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from brickwork.errors import positive_int
from brickwork.registry import BRICKS, SizeRule


@BRICKS.register(
    "self_attention2d", aliases=("sagan_attention",), sizes=SizeRule(in_arg="channels", ranks=(3,))
)
class SelfAttention2d(nn.Module):
    """SAGAN self-attention: every position attends to every other one.

    Query and key are 1×1 convolutions to ``max(1, channels // reduction)`` channels, the value a
    1×1 convolution to ``channels``. The output is ``gamma * attended + x`` with ``gamma`` a
    learnt scalar that starts at 0, so the block is the identity at initialisation.

    Args:
        channels: input (and output) channels; any count, 1 included.
        reduction: how much smaller query and key are than ``channels``. Default 8.
        spectral_norm: wrap the three convolutions in spectral normalisation (as SAGAN's
            discriminator does). Default ``False``.

    Shape:
        ``(B, C, H, W)`` → ``(B, C, H, W)``; memory grows as ``(H * W)²``.
    """

    def __init__(self, channels: int, reduction: int = 8, spectral_norm: bool = False) -> None:
        super().__init__()
        channels = positive_int(channels, "SelfAttention2d channels")
        reduction = positive_int(reduction, "SelfAttention2d reduction")
        inner = max(1, channels // reduction)
        self.query: nn.Module = nn.Conv2d(channels, inner, 1)
        self.key: nn.Module = nn.Conv2d(channels, inner, 1)
        self.value: nn.Module = nn.Conv2d(channels, channels, 1)
        if spectral_norm:
            self.query = add_spectral_norm(self.query)
            self.key = add_spectral_norm(self.key)
            self.value = add_spectral_norm(self.value)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, N, C'), N = H * W positions
        k = self.key(x).flatten(2)  # (B, C', N)
        attention = torch.bmm(q, k).softmax(dim=-1)  # (B, N, N): row i = where position i looks
        v = self.value(x).flatten(2)  # (B, C, N)
        attended = torch.bmm(v, attention.transpose(1, 2)).view(b, c, h, w)
        return self.gamma * attended + x
