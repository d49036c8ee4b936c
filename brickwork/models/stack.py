"""A ``ModuleList`` model that can return every layer's output: the guides' trace pattern."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal, overload

import torch
from torch import nn

from brickwork.blocks import dec_block
from brickwork.errors import size_list
from brickwork.layers import ActivationSpec


class LayerStack(nn.Module):
    """Linear layers in an ``nn.ModuleList`` that can also return each layer's output.

    The guides keep ``self.trace = []`` and append to it in ``forward``: the list grows on every
    call and keeps every call's autograd graph alive. Here the trace is a fresh list per call.

    Args:
        sizes: feature counts, input first (``[784, 256, 10]`` makes two layers).
        activation: activation spec after every layer but the last. Default ``"relu"``.

    Shape:
        ``(B, *, sizes[0])`` → ``(B, *, sizes[-1])``.
    """

    def __init__(self, sizes: Sequence[int], activation: ActivationSpec = "relu") -> None:
        super().__init__()
        sizes = size_list(sizes, "sizes", min_len=2)
        pairs = list(itertools.pairwise(sizes))
        self.layers = nn.ModuleList(
            [dec_block(in_f, out_f, activation) for in_f, out_f in pairs[:-1]]
            + [nn.Linear(*pairs[-1])]
        )

    @overload
    def forward(self, x: torch.Tensor, return_trace: Literal[False] = False) -> torch.Tensor: ...

    @overload
    def forward(
        self, x: torch.Tensor, return_trace: Literal[True]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]: ...

    def forward(
        self, x: torch.Tensor, return_trace: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        trace: list[torch.Tensor] = []  # belongs to this call only
        for layer in self.layers:
            x = layer(x)
            if return_trace:
                trace.append(x)
        return (x, trace) if return_trace else x
