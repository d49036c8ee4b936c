"""Output shapes learnt by running modules on ``meta`` tensors: no memory, no compute."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from brickwork.errors import ShapeError

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
    meta_tensors = {
        name: meta_like(t) for name, t in (*module.named_parameters(), *module.named_buffers())
    }
    x = torch.empty((PROBE_BATCH, *input_shape), device="meta", dtype=dtype)
    try:
        with torch.no_grad():
            out = functional_call(module, meta_tensors, (x,))
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(
            f"{where} cannot take input of shape {tuple(input_shape)}: {reason}"
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
