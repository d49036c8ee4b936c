"""Input shapes and dtypes as users write them, and output shapes learnt on ``meta`` tensors.

The one parser of per-sample input shapes (``"3,32,32"``, ``[3, 32, 32]``, ``(3, 32, 32)``) and
the one parser of input dtypes (``"float32"``, ``"long"``, ``torch.int64``) live here, so that a
spec's ``input``, ``summary(input_shape=...)`` and ``--input-shape`` accept the same things and
refuse them with the same words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from brickwork.errors import (
    BrickworkError,
    ConfigError,
    ShapeError,
    first_line,
    unknown_name_message,
)

DTYPES: dict[str, torch.dtype] = {
    str(value).removeprefix("torch."): value
    for value in vars(torch).values()
    if isinstance(value, torch.dtype)
}
"""Every torch dtype by its canonical name (``float32``, ``int64``, ``bfloat16``, ``bool``...)."""
DTYPE_ALIASES: dict[str, str] = {
    name: str(value).removeprefix("torch.")
    for name, value in vars(torch).items()
    if isinstance(value, torch.dtype) and name not in DTYPES
}
"""torch's other names of them: ``float``, ``long``, ``int``, ``half``, ``double``..."""


MAX_NUMEL = 2**62
"""The most values a tensor brickwork makes may hold: PyTorch indexes with 64-bit integers, and
a batch of samples must still fit (``batch × per-sample values``)."""


def check_numel(shape: Sequence[int], what: str, error: type[BrickworkError] = ConfigError) -> None:
    """Refuse a shape (per sample, or with its batch) that holds more values than PyTorch can
    index, before anything of that size is made.

    Raises:
        error: the product of ``shape`` exceeds :data:`MAX_NUMEL`.
    """
    total = math.prod(shape)
    if total > MAX_NUMEL:
        raise error(
            f"{what}: {' × '.join(map(str, shape))} = {total:.3g} values, more than a tensor can "
            f"hold (2**62)",
            hint="check the sizes for a typo",
        )


def parse_shape(
    value: object, what: str | None = "input_shape", error: type[BrickworkError] = ConfigError
) -> tuple[int, ...]:
    """A per-sample shape from ``"3,32,32"`` (or ``"3x32x32"``), a list or a tuple of sizes.

    Args:
        value: the shape as the user wrote it.
        what: what it is, for the message (``"input"``); ``None`` leaves the prefix out.
        error: the exception type to raise (``SpecError`` for a spec). Default ``ConfigError``.

    Raises:
        error: not a shape, empty, or a size that is not a positive integer (named by index).
    """
    prefix = f"{what}: " if what else ""
    if isinstance(value, str):
        try:
            sizes = [int(part) for part in value.replace("x", ",").split(",")]
        except ValueError:
            sizes = []
        if not sizes or any(size < 1 for size in sizes):
            raise error(
                f"{prefix}expected comma-separated positive integers such as 1,28,28, got {value!r}"
            )
        check_numel(sizes, what or "shape", error)
        return tuple(sizes)
    if isinstance(value, bytes) or not isinstance(value, Sequence) or not value:
        raise error(f"{prefix}expected a list of positive sizes such as [1, 28, 28], got {value!r}")
    for i, size in enumerate(value):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise error(f"{what or 'shape'}[{i}]: sizes must be positive integers, got {size!r}")
    check_numel(value, what or "shape", error)
    return tuple(value)


def dtype_name(value: object, error: type[BrickworkError] = ConfigError) -> str:
    """The canonical name (``"float32"``, ``"int64"``) of a dtype given by name or as a dtype.

    Names are torch's (``"float16"``, ``"bfloat16"``, ``"bool"``), with its aliases (``"long"``,
    ``"half"``) and an optional ``torch.`` prefix.

    Raises:
        error: a name that is not a torch dtype (the message lists the valid names).
    """
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    text = str(value).removeprefix("torch.")
    name = DTYPE_ALIASES.get(text, text)
    if name not in DTYPES:
        raise error(unknown_name_message("input_dtype", str(value), sorted(DTYPES)))
    return name


def parse_dtype(value: object, error: type[BrickworkError] = ConfigError) -> torch.dtype:
    """The dtype ``value`` names (``"long"`` → ``torch.int64``; see :func:`dtype_name`)."""
    return value if isinstance(value, torch.dtype) else DTYPES[dtype_name(value, error)]


PROBE_BATCH = 2
"""Batch size of shape probes: 2, because batch norm in training mode refuses a batch of one."""


def meta_like(t: torch.Tensor) -> torch.Tensor:
    """An empty ``meta`` tensor with ``t``'s shape, strides and dtype: no memory.

    (``torch.empty_like(t, device="meta")`` does the same through a Python reference
    implementation that imports sympy on first use: half a second.)
    """
    return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device="meta")


def probe_output(
    module: nn.Module,
    input_shape: Sequence[int],
    where: str,
    dtype: torch.dtype = torch.float32,
) -> tuple[tuple[int, ...], torch.dtype]:
    """The per-sample output shape and dtype of ``module`` for a per-sample ``input_shape``.

    The module runs on ``meta`` stand-ins for its input, parameters and buffers, so nothing is
    allocated or computed and the module's own tensors (running statistics included) are untouched.

    Args:
        module: any module whose forward takes one tensor.
        input_shape: shape of one sample, without the batch dimension (``(C, H, W)``).
        where: what is being probed, for the error message (``"CNNClassifier encoder"``).
        dtype: dtype of the input (``torch.long`` for token ids). Default ``torch.float32``.

    Raises:
        ShapeError: the module cannot take that input (the message keeps PyTorch's reason), does
            not return a tensor, or changes the batch dimension.
    """
    check_numel((PROBE_BATCH, *input_shape), f"{where}: a probe batch", ShapeError)
    meta_tensors = {
        name: meta_like(t) for name, t in (*module.named_parameters(), *module.named_buffers())
    }
    x = torch.empty((PROBE_BATCH, *input_shape), device="meta", dtype=dtype)
    try:
        with torch.no_grad():
            out = functional_call(module, meta_tensors, (x,))
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as err:
        raise ShapeError(
            f"{where} cannot take input of shape {tuple(input_shape)}: {first_line(err)}"
        ) from err
    if not isinstance(out, torch.Tensor):
        raise ShapeError(f"{where} returned {type(out).__name__}, expected a tensor")
    if out.dim() == 0 or out.shape[0] != PROBE_BATCH:
        raise ShapeError(
            f"{where} changed the batch dimension: {PROBE_BATCH} in, {tuple(out.shape)} out"
        )
    return tuple(out.shape[1:]), out.dtype


def probe_output_shape(
    module: nn.Module, input_shape: Sequence[int], where: str
) -> tuple[int, ...]:
    """The per-sample output shape of ``module`` for a float input; see :func:`probe_output`."""
    return probe_output(module, input_shape, where)[0]
