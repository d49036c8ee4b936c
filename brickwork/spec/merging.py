"""Merges in a spec: values that do not fit together, named with their shapes and the fix.

``concat`` needs equal sizes outside its ``dim``; ``add`` and ``mul`` need equal sizes or 1. When
two branches do not fit, the error names both with their shapes (``up3 (64, 32, 32) and enc2
(64, 30, 30)``) and, when one is known, the fix: pad the smaller or crop the larger when their
height and width differ, a 1×1 convolution when only their channels do.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from brickwork.blocks import Concat, Merge
from brickwork.errors import ShapeError, SpecError
from brickwork.spec.graph import Ref


def check_merge(
    module: nn.Module, name: str, where: str, refs: Sequence[Ref], shapes: Sequence[tuple[int, ...]]
) -> None:
    """Refuse inputs whose shapes ``module`` cannot merge.

    Args:
        module: the merge (a :class:`~brickwork.blocks.Merge`).
        name: its brick name, for the message (``concat``).
        where: the spec path of what it reads (``model.cat3.from``).
        refs: the values it reads, in order.
        shapes: their per-sample shapes.

    Raises:
        SpecError: the first input that does not fit with the first, both named with their
            shapes, and a fix when one is known.
    """
    if not isinstance(module, Merge):
        return
    try:
        clash = module.clash(shapes)
    except ShapeError as err:
        raise SpecError(f"{where}: {err} (inputs {_pairs(refs, shapes)})") from err
    if clash is None:
        return
    j, dims = clash
    pair = f"{refs[0]} {shapes[0]} and {refs[j]} {shapes[j]}"
    if not dims:
        raise SpecError(f"{where}: {pair} differ in rank; {name} takes inputs of one rank")
    if isinstance(module, Concat):
        need = f"{name} along dim {module.dim} needs equal sizes in every other dimension"
    else:
        need = f"{name} needs equal sizes (or 1) in every dimension"
    which = ", ".join(str(d + 1) for d in dims)  # counted as torch counts: the batch is dim 0
    raise SpecError(
        f"{where}: {pair} do not fit: {need}, and they differ in dim{'s' * (len(dims) > 1)} "
        f"{which}",
        hint=_fix((refs[0], shapes[0]), (refs[j], shapes[j]), dims),
    )


def _pairs(refs: Sequence[Ref], shapes: Sequence[tuple[int, ...]]) -> str:
    return ", ".join(f"{ref} {shape}" for ref, shape in zip(refs, shapes, strict=True))


def _fix(
    first: tuple[Ref, tuple[int, ...]], other: tuple[Ref, tuple[int, ...]], dims: tuple[int, ...]
) -> str | None:
    """How to make two images fit: pad or crop when height and width differ (the larger in
    both), a 1×1 convolution when only the channels do; ``None`` otherwise."""
    (_, shape_a), (b, shape_b) = first, other
    if dims == (0,):
        return (
            f"give {b} {shape_a[0]} channels with a 1×1 convolution read instead of it: "
            f"`{{conv2d: {{out: {shape_a[0]}, kernel_size: 1}}, from: {b}}}`"
        )
    if len(shape_a) != 3 or 0 in dims:
        return None
    if all(shape_a[d] > shape_b[d] for d in dims):
        (big, big_shape), (small, small_shape) = first, other
    elif all(shape_b[d] > shape_a[d] for d in dims):
        (big, big_shape), (small, small_shape) = other, first
    else:
        return None
    padding = []
    for d in (2, 1):  # ZeroPad2d's order: left, right, top, bottom
        diff = big_shape[d] - small_shape[d]
        padding += [diff // 2, diff - diff // 2]
    crop = [-p for p in padding]  # ZeroPad2d crops by negative padding
    return (
        f"pad {small} to {big_shape[1]}×{big_shape[2]} with an item read instead of it, "
        f"`{{zeropad2d: {{padding: {padding}}}, from: {small}}}`, or crop {big} to "
        f"{small_shape[1]}×{small_shape[2]}, `{{zeropad2d: {{padding: {crop}}}, from: {big}}}`; "
        "or keep the size in the convolutions before (padding: 1 for a 3×3)"
    )
