"""Residual connections."""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """``body(x) + shortcut(x)``.

    Args:
        body: the branch.
        shortcut: maps ``x`` to the branch's output shape; default ``nn.Identity()``. The spec
            builder makes it a 1×1 convolution (or a ``Linear`` for features) when the branch
            changes the channel count or the stride.

    Shape:
        ``x: (B, *)`` → ``(B, *)`` as the body maps it.
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)  # type: ignore[no-any-return]
