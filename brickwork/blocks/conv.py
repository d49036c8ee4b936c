"""Convolutional bricks."""

from __future__ import annotations

from typing import Any

from torch import nn

from brickwork.errors import ArgumentError, check_kwargs, passes_kwargs_to, positive_int
from brickwork.layers import ActivationSpec, NormSpec, make_act, make_norm
from brickwork.registry import BRICKS, SizeRule


@BRICKS.register("conv_block", sizes=SizeRule(in_arg="in_f", out_arg="out_f", ranks=(3,)))
@passes_kwargs_to(nn.Conv2d, skip=("in_channels", "out_channels"))
def conv_block(
    in_f: int,
    out_f: int,
    activation: ActivationSpec = "relu",
    *args: Any,
    norm: NormSpec = "batchnorm",
    **kwargs: Any,
) -> nn.Sequential:
    """``Conv2d(in_f, out_f, *args, **kwargs)`` → norm → activation, as an ``nn.Sequential``.

    With the defaults, ``print`` shows the guide's three children
    ``(0): Conv2d(...) (1): BatchNorm2d(...) (2): ReLU()``, and the conv keeps its bias (as the
    guide does; pass ``bias=False`` to drop the parameter that a norm makes redundant).

    Args:
        in_f: input channels.
        out_f: output channels.
        activation: activation spec (see :func:`brickwork.make_act`). Default ``"relu"``.
        *args: positional arguments of ``nn.Conv2d`` after the channels (``kernel_size``, ...).
        norm: norm spec (see :func:`brickwork.make_norm`); ``None`` leaves it out, so the block
            is conv → activation. Default ``"batchnorm"``.
        **kwargs: keyword arguments of ``nn.Conv2d`` (``kernel_size``, ``padding``, ``stride``...).

    Shape:
        ``(B, in_f, H, W)`` → ``(B, out_f, H', W')`` with ``H', W'`` as ``nn.Conv2d`` computes them.
    """
    in_f = positive_int(in_f, "conv_block in_f")
    out_f = positive_int(out_f, "conv_block out_f")
    check_kwargs(conv_block, kwargs, "conv_block")  # its own and Conv2d's, less the channels
    if not args and "kernel_size" not in kwargs:
        raise ArgumentError(
            "conv_block needs a kernel size: pass kernel_size=3, padding=1 (say) as keywords"
            + (
                f" (the third positional argument is the activation, here {activation!r})"
                if isinstance(activation, int)
                else ""
            )
        )
    layers: list[nn.Module] = [nn.Conv2d(in_f, out_f, *args, **kwargs)]
    if norm is not None:
        layers.append(make_norm(norm, out_f, dims=2))
    layers.append(make_act(activation))
    return nn.Sequential(*layers)
