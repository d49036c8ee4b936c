"""Direct rules for the heaviest ops on meta tensors: output shapes and multiply-accumulates.

PyTorch's own meta kernels for convolution, batch norm, max-pool, matmul, mean and pointwise ops
are Python functions that cost milliseconds a call (and import ``torch._dynamo`` on first use);
the rules here give the same shapes in microseconds. Each returns ``None`` to hand anything
unusual (a size that does not fit, a channel mismatch) to PyTorch's kernel, which raises its usual
error. (:mod:`~brickwork.inspect.macs` counts each op's multiply-accumulates.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch

_aten = torch.ops.aten
_META = torch.device("meta")  # a device object: the string would be parsed on every call


def _window(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """How many windows of a convolution or pooling fit along one dimension of ``size``."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:  # the last window must start inside the input
        out -= 1
    return out


def _per_dim(value: Sequence[int] | int, n: int) -> list[int]:
    """An int or a one-item list repeated for ``n`` dimensions; a longer list as it is."""
    values = [value] if isinstance(value, int) else list(value)
    return values * n if len(values) == 1 else values


def _like(x: torch.Tensor, shape: Sequence[int], dtype: torch.dtype | None = None) -> torch.Tensor:
    """An empty meta tensor of ``shape``, channels-last when ``x`` is (and both are 4-D)."""
    channels_last = (
        len(shape) == 4
        and x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    if channels_last:
        return torch.empty(
            tuple(shape), dtype=dtype or x.dtype, device=_META, memory_format=torch.channels_last
        )
    return _empty(shape, dtype or x.dtype)


def _empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype, device="meta")``, made with explicit strides (three
    times faster than ``torch.empty``, which parses a memory format)."""
    shape = tuple(shape)
    return torch.empty_strided(shape, _strides(shape), dtype=dtype, device=_META)


@functools.lru_cache(maxsize=4096)
def _strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A contiguous tensor's strides (a model's few shapes come back again and again)."""
    strides = [0] * len(shape)
    step = 1
    for i in range(len(shape) - 1, -1, -1):  # a size of 0 steps as 1, as PyTorch's strides do
        strides[i] = step
        step *= max(shape[i], 1)
    return tuple(strides)


def fast_convolution(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
) -> torch.Tensor | None:
    xs, ws = x.shape, weight.shape  # each .shape is a new object: read once
    n = len(xs) - 2
    if n < 1 or len(ws) != len(xs):
        return None
    kernel = ws[2:]
    s, p, d = _per_dim(stride, n), _per_dim(padding, n), _per_dim(dilation, n)
    # PyTorch's meta kernel lets these two through; the real kernels raise, and so do we.
    out_channels = ws[1] * groups if transposed else ws[0]
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != out_channels):
        raise RuntimeError(
            f"Given weight of size {list(ws)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias.shape)} instead"
        )
    if groups < 1 or ws[0] % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {list(ws)} instead"
        )
    if xs[1] % groups:
        return None
    if transposed:
        if xs[1] != ws[0]:
            return None
        op = _per_dim(output_padding, n)
        sizes = [
            (xs[2 + i] - 1) * s[i] - 2 * p[i] + d[i] * (kernel[i] - 1) + op[i] + 1 for i in range(n)
        ]
    else:
        if xs[1] != ws[1] * groups:
            return None
        sizes = [_window(xs[2 + i], kernel[i], s[i], p[i], d[i], False) for i in range(n)]
    if min(sizes) < 1:
        return None
    return _like(x, (xs[0], out_channels, *sizes))


def fast_batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    channels = x.shape[1] if x.dim() > 1 else 0
    for t in (weight, bias, running_mean, running_var):
        if t is not None and t.shape != (channels,):
            return None
    stats = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    kept = channels if training else 0  # the CPU kernel keeps no batch statistics in eval mode
    return (
        _like(x, x.shape),
        _empty((kept,), stats),
        _empty((kept,), stats),
    )


def _fast_max_pool2d(
    x: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int] = (),
    padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    ceil_mode: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if x.dim() not in (3, 4):
        return None
    k = _per_dim(kernel_size, 2)
    s = _per_dim(stride, 2) if stride else k
    p, d = _per_dim(padding, 2), _per_dim(dilation, 2)
    if any(p[i] > k[i] // 2 for i in range(2)):
        return None
    sizes = [_window(x.shape[-2 + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2)]
    if any(size < 1 for size in sizes):
        return None
    shape = (*x.shape[:-2], *sizes)
    return _like(x, shape), _like(x, shape, torch.int64)


def fast_unary(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    return _like(x, x.shape) if isinstance(x, torch.Tensor) else None


def _fast_inplace(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    return x if isinstance(x, torch.Tensor) else None  # an in-place op returns its input


def _fast_add_(x: torch.Tensor, other: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    fits = not isinstance(other, torch.Tensor) or other.dim() == 0 or other.shape == x.shape
    return x if isinstance(x, torch.Tensor) and fits else None  # else PyTorch checks broadcasting


def _fast_binary(a: Any, b: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    if (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and a.dtype == b.dtype
    ):
        return _like(a, a.shape)
    return None  # broadcasting and type promotion: PyTorch's kernel decides


def _fast_mean(
    x: torch.Tensor,
    dim: Sequence[int] | None = None,
    keepdim: bool = False,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor | None:
    if not x.dtype.is_floating_point or x.dim() == 0:
        return None
    dims = {d % x.dim() for d in dim} if dim else set(range(x.dim()))
    if keepdim:
        shape = [1 if i in dims else size for i, size in enumerate(x.shape)]
    else:
        shape = [size for i, size in enumerate(x.shape) if i not in dims]
    return _empty(shape, dtype or x.dtype)


def _fast_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        return None
    return _empty((a.shape[0], b.shape[1]), a.dtype)


def _fast_addmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta: Any = 1, alpha: Any = 1
) -> torch.Tensor | None:
    out = _fast_mm(a, b)
    if out is None or bias.dtype != a.dtype or bias.dim() > 2:
        return None
    trailing = out.shape[2 - bias.dim() :]  # bias must broadcast to the output
    if any(b not in (1, o) for b, o in zip(bias.shape, trailing, strict=True)):
        return None
    return out


FAST_META: dict[Any, Any] = {
    **dict.fromkeys((_aten.relu.default, _aten.sigmoid.default, _aten.tanh.default), fast_unary),
    _aten.relu_.default: _fast_inplace,
    _aten.add_.Tensor: _fast_add_,
    **dict.fromkeys((_aten.add.Tensor, _aten.mul.Tensor, _aten.sub.Tensor), _fast_binary),
    _aten.mean.dim: _fast_mean,  # global average pooling
    _aten.mm.default: _fast_mm,
    _aten.addmm.default: _fast_addmm,  # nn.Linear
    _aten.convolution.default: fast_convolution,
    _aten.native_batch_norm.default: fast_batch_norm,
    _aten.max_pool2d_with_indices.default: _fast_max_pool2d,
}
"""aten op → a function of the op's arguments that returns its output on ``meta`` (same shapes,
dtypes and memory format as PyTorch's kernel), or ``None`` to leave the op to PyTorch."""
