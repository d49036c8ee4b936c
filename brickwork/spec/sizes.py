"""How a brick's :class:`SizeRule` meets the shape that reaches it in a spec.

The builder carries a :class:`Flow` from item to item. Before a brick is built, its rule is
checked against the incoming flow (:func:`check_input`), the arguments the rule infers are filled
in from it (:func:`fill_sizes`), and every argument is checked against what the brick takes
(:func:`check_arguments`). Each error names the spec path, the incoming shape and what would fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from brickwork.errors import REQUIRED, SpecError, arguments_of, positive_int, unknown_name_message
from brickwork.registry import SizeRule
from brickwork.shapes import dtype_name

RANK_NAMES = {1: "(F,)", 2: "(C, L)", 3: "(C, H, W)", 4: "(C, D, H, W)"}
"""The per-sample shape of each rank, as messages write it."""


@dataclass(frozen=True)
class Flow:
    """What flows from one spec item to the next: the per-sample shape and dtype.

    Attributes:
        shape: the per-sample shape, without the batch dimension: ``(C, H, W)`` for images.
        dtype: the values' dtype: ``float32``, or ``int64`` for token ids.
    """

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32


Value = Flow | tuple[Flow, ...]
"""What a spec item gives: one tensor's flow, or one per tensor of an output of several (a
split)."""


def describe_ranks(ranks: tuple[int, ...]) -> str:
    """``(3,)`` → ``"(C, H, W)"``: the per-sample shapes of those ranks, for messages."""
    return " or ".join(RANK_NAMES.get(r, f"rank {r}") for r in ranks)


def check_input(rule: SizeRule, where: str, flow: Flow) -> None:
    """Refuse an incoming flow that the brick cannot take: its dtype, or its rank.

    Args:
        rule: the brick's size rule.
        where: the spec path of the brick, for messages (``model[3].conv2d``).
        flow: what reaches the brick.

    Raises:
        SpecError: ids where floats are needed or the reverse, a rank the brick does not take
            (saying so when a flatten came before), or a scalar where a size is to be inferred.
    """
    if rule.int_input and flow.dtype.is_floating_point:
        raise SpecError(
            f"{where}: takes integer token ids but receives {dtype_name(flow.dtype, SpecError)} "
            f"values of shape {flow.shape}",
            hint="put it first and set `input_dtype: long` in the spec",
        )
    if not (rule.int_input or rule.any_dtype or flow.dtype.is_floating_point):
        raise SpecError(
            f"{where}: takes floating-point values but receives "
            f"{dtype_name(flow.dtype, SpecError)} ids of shape {flow.shape}",
            hint="turn ids into vectors first with an embedding",
        )
    if rule.ranks is not None and len(flow.shape) not in rule.ranks:
        flat = len(flow.shape) == 1
        raise SpecError(
            f"{where}: needs input of shape {describe_ranks(rule.ranks)} "
            f"but receives {flow.shape}"
            + (
                " (it comes after a flatten or a linear layer)"
                if flat and min(rule.ranks) > 1
                else ""
            ),
            hint="move it before the flatten, or use a brick for this input such as linear"
            if flat
            else None,
        )
    if rule.in_arg is not None and not flow.shape:
        raise SpecError(
            f"{where}: needs at least one input dimension, receives a scalar per sample"
        )


def fill_sizes(rule: SizeRule, kwargs: dict[str, Any], where: str, flow: Flow) -> None:
    """Set the arguments inferred from the incoming shape, and map ``out`` to its argument.

    A size written by hand is accepted when it agrees with the inferred one (a ``LayerNorm``'s
    ``normalized_shape: [12]`` agrees with 12), and refused otherwise.

    Args:
        rule: the brick's size rule.
        kwargs: the brick's arguments as the spec gives them; changed in place.
        where: the spec path of the brick, for messages.
        flow: what reaches the brick.

    Raises:
        SpecError: ``out`` for a brick without an output size, or with its argument too; an
            output size that is not a positive integer; a size that disagrees with the shape.
    """
    if "out" in kwargs:
        if rule.out_arg is None:
            raise SpecError(f"{where}.out: this brick has no output size to set")
        if rule.out_arg in kwargs:
            raise SpecError(f"{where}: give either out or {rule.out_arg}, not both")
        kwargs[rule.out_arg] = kwargs.pop("out")
    if rule.out_arg is not None and rule.out_arg in kwargs:
        context = f" (incoming shape {flow.shape})"
        positive_int(kwargs[rule.out_arg], f"{where}.out:", SpecError, context=context)
    for arg, value in _inferred(rule, flow).items():
        if arg in kwargs and _written(arg, kwargs[arg]) != value:
            raise SpecError(
                f"{where}.{arg}: {kwargs[arg]!r} disagrees with the incoming shape "
                f"{flow.shape}, which gives {value!r}",
                hint=f"leave {arg} out: brickwork infers it",
            )
        kwargs[arg] = value


def _inferred(rule: SizeRule, flow: Flow) -> dict[str, Any]:
    """The arguments ``rule`` takes from the incoming shape, with their values."""
    inferred: dict[str, Any] = {}
    if rule.in_arg is not None:
        inferred[rule.in_arg] = math.prod(flow.shape) if rule.flat else flow.shape[rule.in_dim]
    if rule.shape_arg is not None:
        inferred[rule.shape_arg] = list(flow.shape[1:])
    if rule.dims_arg is not None:
        inferred[rule.dims_arg] = max(1, len(flow.shape) - 1)  # (F,) and (C, L) are both 1-d
    return inferred


def _written(arg: str, given: Any) -> Any:
    """A size as written by hand, in the form the inferred one takes (lists, not tuples)."""
    given = list(given) if isinstance(given, tuple | list) else given
    if arg == "normalized_shape" and isinstance(given, list) and len(given) == 1:
        given = given[0]
    return given


def check_arguments(
    factory: Callable[..., Any], rule: SizeRule, kwargs: dict[str, Any], where: str
) -> None:
    """Refuse an argument the brick does not take, and a required one that is missing.

    Args:
        factory: the brick's registered factory.
        rule: its size rule: messages call its output size ``out``, and leave out what is
            inferred.
        kwargs: the arguments, sizes filled in.
        where: the spec path of the brick, for messages.

    Raises:
        SpecError: an unknown argument (with the closest valid one), or a missing one.
    """
    arguments = arguments_of(factory)
    if arguments is None:
        return
    filled = (rule.in_arg, rule.shape_arg, rule.dims_arg)
    for key in kwargs:
        if key not in dict(arguments):
            shown = [("out" if n == rule.out_arg else n) for n, _ in arguments if n not in filled]
            raise SpecError(
                f"{where}: {unknown_name_message('argument', str(key), shown)}",
                hint="name an item beside its brick, not among its arguments: "
                "`- {conv_block: {out: 32}, name: conv1}`"
                if key == "name"
                else None,
            )
    for name, default in arguments:
        if default is REQUIRED and name not in kwargs:
            raise SpecError(
                f"{where}: missing argument {'out' if name == rule.out_arg else name!r}"
            )


def projection(
    in_shape: tuple[int, ...], out_shape: tuple[int, ...], where: str
) -> nn.Module | None:
    """The shortcut that maps a residual's input shape to its branch's output shape.

    ``None`` (identity) when the shapes agree; a ``Linear`` for features; otherwise a 1×1
    convolution with the stride that gives the branch's spatial size.
    """
    if in_shape == out_shape:
        return None
    fail = SpecError(
        f"{where}: the branch maps {in_shape} to {out_shape}, which no 1×1 projection of the input "
        "can match",
        hint="keep the rank, and shrink H and W only by an integer stride",
    )
    if len(in_shape) != len(out_shape):
        raise fail
    if len(in_shape) == 1:
        return nn.Linear(in_shape[0], out_shape[0], bias=False)
    conv = {2: nn.Conv1d, 3: nn.Conv2d, 4: nn.Conv3d}.get(len(in_shape))
    if conv is None:
        raise fail
    strides: list[int] = []
    for size_in, size_out in zip(in_shape[1:], out_shape[1:], strict=True):
        stride = math.ceil(size_in / size_out)
        if (size_in - 1) // stride + 1 != size_out:
            raise fail
        strides.append(stride)
    per_dim: Any = tuple(strides)  # one stride per spatial dimension
    shortcut: nn.Module = conv(in_shape[0], out_shape[0], kernel_size=1, stride=per_dim, bias=False)
    return shortcut
