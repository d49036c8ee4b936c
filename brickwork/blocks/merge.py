"""Merges and splits: several tensors into one (``concat``, ``add``, ``mul``) and one into several
(``split``, ``chunk``), the joints of a graph spec.

``dim`` counts as ``torch.cat`` counts it, the batch included: ``dim: 1`` is the channels of
``(B, C, H, W)``, ``dim: -1`` the last dimension; ``dim: 0``, the batch, is refused. A merge says
which per-sample shapes fit together (:meth:`Merge.clash`), so that a spec's error can name the
two branches that do not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from brickwork.errors import ConfigError, ShapeError, positive_int, size_list
from brickwork.registry import BRICKS, SizeRule

Clash = tuple[int, tuple[int, ...]]
"""Which input does not fit with input 0 (its index) and the per-sample dimensions in which they
differ; no dimensions when their ranks differ."""


def _dim(dim: object, what: str) -> int:
    """A ``dim`` argument: an integer other than 0 (the batch)."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ConfigError(f"{what}: dim must be an integer such as 1 (the channels), got {dim!r}")
    if dim == 0:
        raise ConfigError(
            f"{what}: dim 0 is the batch; dim counts as torch.cat counts it, so the channels of "
            "(B, C, H, W) are dim 1"
        )
    return dim


def sample_dim(dim: int, rank: int, what: str) -> int:
    """The per-sample dimension (no batch) that a batched ``dim`` names, for per-sample ``rank``.

    Raises:
        ShapeError: ``dim`` is outside a batch of that rank.
    """
    index = dim - 1 if dim > 0 else rank + dim
    if not 0 <= index < rank:
        raise ShapeError(
            f"{what}: dim {dim} is outside inputs of {rank + 1} dimensions (batch included)"
        )
    return index


def _differing(a: Sequence[int], b: Sequence[int], skip: int | None = None) -> tuple[int, ...]:
    """The dimensions (same rank) in which ``a`` and ``b`` differ, ``skip`` aside."""
    return tuple(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y and i != skip)


class Merge(nn.Module):
    """Several tensors in, one out. Subclasses say which per-sample shapes fit together."""

    def clash(self, shapes: Sequence[tuple[int, ...]]) -> Clash | None:
        """The first input that does not fit with input 0, or ``None`` when all fit.

        Args:
            shapes: each input's per-sample shape (no batch dimension).
        """
        raise NotImplementedError


class Concat(Merge):
    """``torch.cat(xs, dim)``: inputs of the same shape but along ``dim``.

    Args:
        dim: the dimension to join along, the batch included (``1``: channels). Default 1.

    Shape:
        ``(B, C1, H, W), (B, C2, H, W)`` → ``(B, C1 + C2, H, W)`` for ``dim=1``.
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = _dim(dim, "concat")

    def clash(self, shapes: Sequence[tuple[int, ...]]) -> Clash | None:
        along = sample_dim(self.dim, len(shapes[0]), "concat")
        for j, shape in enumerate(shapes[1:], start=1):
            if len(shape) != len(shapes[0]):
                return j, ()
            differ = _differing(shapes[0], shape, skip=along)
            if differ:
                return j, differ
        return None

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _Elementwise(Merge):
    """Inputs of one rank whose sizes are equal or 1 (broadcast), combined value by value by
    :meth:`combine`, left to right."""

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Two inputs combined: their sum, or their product."""
        raise NotImplementedError

    def clash(self, shapes: Sequence[tuple[int, ...]]) -> Clash | None:
        for j, shape in enumerate(shapes[1:], start=1):
            if len(shape) != len(shapes[0]):
                return j, ()
            differ = tuple(
                i for i in _differing(shapes[0], shape) if 1 not in (shapes[0][i], shape[i])
            )
            if differ:
                return j, differ
        return None

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = self.combine(out, x)
        return out


class Add(_Elementwise):
    """The sum of the inputs, as a residual connection or a feature pyramid adds them.

    Shape:
        inputs of one rank whose sizes are equal or 1 → their broadcast shape.
    """

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Mul(_Elementwise):
    """The product of the inputs, as a gate (squeeze-and-excitation's ``(C, 1, 1)`` scale).

    Shape:
        inputs of one rank whose sizes are equal or 1 → their broadcast shape.
    """

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Split(nn.Module):
    """``torch.split(x, sizes, dim)``: parts of the given sizes, picked in a spec as ``name.0``.

    Args:
        sizes: the size of each part along ``dim``; they add up to the input's size there.
        dim: the dimension to split, the batch included (``1``: channels). Default 1.

    Shape:
        ``(B, sum(sizes), ...)`` → a tuple of ``(B, sizes[i], ...)`` for ``dim=1``.
    """

    def __init__(self, sizes: Sequence[int], dim: int = 1) -> None:
        super().__init__()
        self.sizes = size_list(sizes, "split: sizes", min_len=2)
        self.dim = _dim(dim, "split")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.dim))

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dim={self.dim}"


class Chunk(nn.Module):
    """``torch.chunk(x, chunks, dim)``: equal parts (the last smaller if need be).

    Args:
        chunks: how many parts (PyTorch gives fewer when the size is smaller).
        dim: the dimension to cut, the batch included (``1``: channels). Default 1.

    Shape:
        ``(B, C, ...)`` → a tuple of ``chunks`` tensors ``(B, C / chunks, ...)`` for ``dim=1``.
    """

    def __init__(self, chunks: int, dim: int = 1) -> None:
        super().__init__()
        self.chunks = positive_int(chunks, "chunk: chunks")
        self.dim = _dim(dim, "chunk")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.chunk(x, self.chunks, dim=self.dim))

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, dim={self.dim}"


MERGE = SizeRule(merge=True, any_dtype=True)
BRICKS.register("concat", Concat, aliases=("cat",), sizes=MERGE)
BRICKS.register("add", Add, sizes=MERGE)
BRICKS.register("mul", Mul, sizes=MERGE)
BRICKS.register("split", Split, sizes=SizeRule(any_dtype=True))
BRICKS.register("chunk", Chunk, sizes=SizeRule(any_dtype=True))
