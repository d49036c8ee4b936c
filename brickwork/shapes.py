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


class OutputsError(ShapeError):
    """A module probed for one output returned several (a tuple, a dict) or none."""


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


_META = torch.device("meta")  # a device object: the string would be parsed on every call

PROBE_BATCH = 2
"""Batch size of shape probes: 2, because batch norm in training mode refuses a batch of one."""


def meta_like(t: torch.Tensor) -> torch.Tensor:
    """An empty ``meta`` tensor with ``t``'s shape, strides and dtype: no memory.

    (``torch.empty_like(t, device="meta")`` does the same through a Python reference
    implementation that imports sympy on first use: half a second.)
    """
    return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=_META)


Signature = tuple[tuple[int, ...], torch.dtype]
"""One sample of a tensor: its per-sample shape (no batch dimension) and its dtype."""

ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Dropout,
)
"""Modules that give a float input's shape and dtype back, whatever that shape: their meta run
is skipped (on ``meta``, some run through Python decompositions, milliseconds each)."""
CHANNEL_NORMS: dict[type[nn.Module], tuple[int, ...]] = {
    nn.BatchNorm1d: (1, 2),
    nn.BatchNorm2d: (3,),
    nn.BatchNorm3d: (4,),
    nn.GroupNorm: (1, 2, 3, 4),
}
"""Norms that keep the shape of a per-sample input of these ranks whose channels (dimension 0)
are theirs; their meta run (a Python decomposition, about 4 ms) is skipped too."""


def _known_output(
    module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype
) -> Signature | None:
    """The output of the simplest modules, known without running them: those that keep their
    input's shape (:func:`_keeps_shape`), ``nn.Linear`` (whose meta run, a Python decomposition
    of ``addmm``, takes milliseconds), and an ``nn.Sequential`` of them, its other children run
    one by one. ``None``: run the module (a child that fails is left for that run to report)."""
    if _keeps_shape(module, shape, dtype):
        return shape, dtype
    exact = type(module) in (nn.Linear, nn.Sequential)  # a subclass may change forward
    if (
        exact
        and isinstance(module, nn.Linear)
        and dtype == module.weight.dtype
        and shape[-1:] == (module.in_features,)
    ):
        return (*shape[:-1], module.out_features), dtype
    if exact and isinstance(module, nn.Sequential):  # children one by one, simplest unrun
        signature: Signature = (shape, dtype)
        for child in module:
            known = _known_output(child, *signature)
            if known is None:
                try:
                    out = _meta_call(child, [signature], "")
                except ShapeError:
                    return None  # the whole module's run says what is wrong
                if not isinstance(out, torch.Tensor) or out.dim() == 0:
                    return None
                if out.shape[0] != PROBE_BATCH:
                    return None
                known = tuple(out.shape[1:]), out.dtype
            signature = known
        return signature
    return None


def _keeps_shape(module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> bool:
    """Whether ``module`` surely maps a float32 input of ``shape`` to the same shape and dtype.

    Exact types only: a subclass may change ``forward``.
    """
    kind = type(module)
    if kind is nn.Identity:
        return True
    if dtype != torch.float32:
        return False
    if kind in ELEMENTWISE:
        return True
    ranks = CHANNEL_NORMS.get(kind)
    if ranks is None or len(shape) not in ranks:
        return False
    channels = getattr(module, "num_channels" if kind is nn.GroupNorm else "num_features", None)
    weights = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return bool(channels == shape[0]) and all(t.dtype == dtype for t in weights)


def probe_outputs(
    module: nn.Module, inputs: Sequence[Signature], where: str
) -> Signature | list[Signature]:
    """The per-sample shape and dtype of each output of ``module`` called on ``inputs``.

    The module runs on ``meta`` stand-ins for its inputs, parameters and buffers, so nothing is
    allocated or computed and the module's own tensors (running statistics included) are
    untouched. The simplest modules are not run at all: those that surely keep their input's
    shape (activations, dropout, norms whose channels match) and ``nn.Linear``.

    Args:
        module: any module whose forward takes ``len(inputs)`` tensors.
        inputs: shape (one sample, no batch dimension) and dtype of each input.
        where: what is being probed, for the error message (``"model.up3.concat"``).

    Returns:
        The signature of a tensor output; a list of them, one per tensor, for a tuple or list
        of tensors.

    Raises:
        ShapeError: the module cannot take those inputs (the message keeps PyTorch's reason),
            returns something other than tensors, or changes the batch dimension.
    """
    for shape, _ in inputs:  # whether or not the module runs
        check_numel((PROBE_BATCH, *shape), f"{where}: a probe batch", ShapeError)
    known = _known_output(module, *inputs[0]) if len(inputs) == 1 else None
    if known is not None:
        return known
    out = _meta_call(module, inputs, where)
    if isinstance(out, torch.Tensor):
        return _signature(out, where)
    if not isinstance(out, tuple | list) or not out:
        raise ShapeError(f"{where} returned {type(out).__name__}, expected tensors")
    if not all(isinstance(t, torch.Tensor) for t in out):
        kinds = ", ".join(sorted({type(t).__name__ for t in out}))
        raise ShapeError(f"{where} returned a {type(out).__name__} of {kinds}, expected tensors")
    return [_signature(t, where) for t in out]


def _meta_call(module: nn.Module, inputs: Sequence[Signature], where: str) -> object:
    """What ``module`` returns for meta ``inputs`` (batch :data:`PROBE_BATCH`), run with meta
    stand-ins for its parameters and buffers."""
    for shape, _ in inputs:
        check_numel((PROBE_BATCH, *shape), f"{where}: a probe batch", ShapeError)
    meta_tensors = {
        name: meta_like(t) for name, t in (*module.named_parameters(), *module.named_buffers())
    }
    xs = tuple(
        torch.empty((PROBE_BATCH, *shape), device="meta", dtype=dtype) for shape, dtype in inputs
    )
    try:
        with torch.no_grad():
            return functional_call(module, meta_tensors, xs)
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as err:
        shapes = " and ".join(str(tuple(shape)) for shape, _ in inputs)
        raise ShapeError(f"{where} cannot take input of shape {shapes}: {first_line(err)}") from err


def _signature(t: torch.Tensor, where: str) -> Signature:
    """A probe output's per-sample shape and dtype; its batch must be the probe's."""
    if t.dim() == 0 or t.shape[0] != PROBE_BATCH:
        raise ShapeError(
            f"{where} changed the batch dimension: {PROBE_BATCH} in, {tuple(t.shape)} out"
        )
    return tuple(t.shape[1:]), t.dtype


def probe_output(
    module: nn.Module,
    input_shape: Sequence[int],
    where: str,
    dtype: torch.dtype = torch.float32,
) -> Signature:
    """The per-sample output shape and dtype of ``module`` for a per-sample ``input_shape``.

    See :func:`probe_outputs`; this one takes one input and wants one tensor out.

    Args:
        module: any module whose forward takes one tensor.
        input_shape: shape of one sample, without the batch dimension (``(C, H, W)``).
        where: what is being probed, for the error message (``"CNNClassifier encoder"``).
        dtype: dtype of the input (``torch.long`` for token ids). Default ``torch.float32``.

    Raises:
        ShapeError: the module cannot take that input (the message keeps PyTorch's reason), does
            not return a tensor, or changes the batch dimension.
    """
    given: Signature = (tuple(input_shape), dtype)
    check_numel((PROBE_BATCH, *given[0]), f"{where}: a probe batch", ShapeError)
    known = _known_output(module, *given)
    if known is not None:
        return known
    out = _meta_call(module, [given], where)
    if not isinstance(out, torch.Tensor):
        raise OutputsError(f"{where} returned {_several(out)}, expected one tensor")
    return _signature(out, where)


def _several(out: object) -> str:
    """``"a dict of 2 outputs (logits, box)"``, ``"a tuple of 2 outputs"``, ``"NoneType"``."""
    if isinstance(out, dict):
        return f"a dict of {len(out)} outputs ({', '.join(map(str, out))})"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} outputs"
    return type(out).__name__


def probe_output_shape(
    module: nn.Module, input_shape: Sequence[int], where: str
) -> tuple[int, ...]:
    """The per-sample output shape of ``module`` for a float input; see :func:`probe_output`."""
    return probe_output(module, input_shape, where)[0]
