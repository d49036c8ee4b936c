"""Fully connected bricks."""

from __future__ import annotations

from typing import Any

from torch import nn

from brickwork.errors import check_kwargs, passes_kwargs_to, positive_int
from brickwork.layers import ActivationSpec, make_act
from brickwork.registry import BRICKS, SizeRule


@BRICKS.register(
    "dec_block",
    aliases=("linear_block",),
    sizes=SizeRule(in_arg="in_f", in_dim=-1, out_arg="out_f"),
)
@passes_kwargs_to(nn.Linear, skip=("in_features", "out_features"))
def dec_block(
    in_f: int, out_f: int, activation: ActivationSpec = "sigmoid", **kwargs: Any
) -> nn.Sequential:
    """``Linear(in_f, out_f, **kwargs)`` → activation, as an ``nn.Sequential``.

    Args:
        in_f: input features.
        out_f: output features.
        activation: activation spec (see :func:`brickwork.make_act`). Default ``"sigmoid"``, as
            in the guide.
        **kwargs: keyword arguments of ``nn.Linear`` (``bias``).

    Shape:
        ``(B, *, in_f)`` → ``(B, *, out_f)``.
    """
    in_f = positive_int(in_f, "dec_block in_f")
    out_f = positive_int(out_f, "dec_block out_f")
    check_kwargs(dec_block, kwargs, "dec_block")  # its own and Linear's, less the features
    return nn.Sequential(nn.Linear(in_f, out_f, **kwargs), make_act(activation))


linear_block = dec_block
"""Another name for :func:`dec_block`."""
