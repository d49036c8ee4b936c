"""Activations and normalisation layers chosen by name.

``make_act("lrelu")`` and ``make_norm("batchnorm", 64)`` build a fresh module on every call;
there is no per-call ``ModuleDict`` of every choice as in the guides.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, positive_int, unknown_name_message
from brickwork.registry import ComponentSpec, Registry, parse_component_spec

ActivationSpec = ComponentSpec | nn.Module | type[nn.Module] | None
"""An activation as :func:`make_act` takes it: a component spec, a module (copied), a module
class, or ``None`` for none."""
NormSpec = ComponentSpec | None
"""A norm as :func:`make_norm` takes it: a component spec, or ``None`` for none."""

ACTIVATIONS: Registry[Any] = Registry("activation")
"""Activation modules by name. Each factory takes the module's own keyword arguments."""

NORMS: Registry[Any] = Registry("norm")
"""Normalisation modules by name. Each factory takes ``(channels, dims=2, **kwargs)``."""

for _name, _cls, _aliases in [
    ("relu", nn.ReLU, ()),
    ("lrelu", nn.LeakyReLU, ("leaky_relu", "leakyrelu")),
    ("gelu", nn.GELU, ()),
    ("silu", nn.SiLU, ("swish",)),
    ("mish", nn.Mish, ()),
    ("elu", nn.ELU, ()),
    ("selu", nn.SELU, ()),
    ("celu", nn.CELU, ()),
    ("prelu", nn.PReLU, ()),
    ("relu6", nn.ReLU6, ()),
    ("softplus", nn.Softplus, ()),
    ("tanh", nn.Tanh, ()),
    ("sigmoid", nn.Sigmoid, ()),
    ("hardswish", nn.Hardswish, ()),
    ("identity", nn.Identity, ("none", "linear")),
]:
    ACTIVATIONS.register(_name, _cls, aliases=_aliases)


def make_act(spec: ActivationSpec = "relu") -> nn.Module:
    """A new activation module.

    Args:
        spec: a registered name (``"relu"``, ``"lrelu"``, ...), ``(name, kwargs)``,
            ``{name: kwargs}``, ``None`` (identity), an ``nn.Module`` class (instantiated) or an
            instance (copied, so two blocks never share one module). Default ``"relu"``.

    Raises:
        ConfigError: unknown name, with the closest valid one.
        ArgumentError: an argument the activation does not take.
    """
    if spec is None:
        return nn.Identity()
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec)
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec()
    module: nn.Module = ACTIVATIONS.build(spec)
    return module


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel dimension of a ``(B, C, *spatial)`` tensor, at each position.

    ``nn.LayerNorm(C)`` on an image would normalise over its last (width) dimension instead.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)  # (B, *spatial, C)
        x = super().forward(x)
        return x.movedim(-1, 1)


def _check_dims(name: str, dims: int) -> int:
    if type(dims) is not int or dims not in (1, 2, 3):
        raise ConfigError(f"norm {name!r}: dims must be 1, 2 or 3, got {dims!r}")
    return dims


@NORMS.register("batchnorm", aliases=("bn", "batchnorm2d"))
def batchnorm(
    channels: int,
    dims: int = 2,
    eps: float = 1e-5,
    momentum: float | None = 0.1,
    affine: bool = True,
    track_running_stats: bool = True,
) -> nn.Module:
    """``BatchNorm1d`` / ``2d`` / ``3d`` for ``dims`` 1, 2 or 3 (default 2)."""
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[_check_dims("batchnorm", dims)]
    return cls(
        channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats
    )


LAYERNORM_OVER = ("channels", "sample")


@NORMS.register("layernorm", aliases=("ln",))
def layernorm(
    channels: int,
    dims: int = 2,
    eps: float = 1e-5,
    elementwise_affine: bool = True,
    over: str = "channels",
    spatial: Sequence[int] | None = None,
) -> nn.Module:
    """LayerNorm over the channels of ``(B, C, *)`` at each position, or over the whole sample.

    Args:
        channels: ``C``.
        dims: spatial rank (1 for ``(B, C)`` and ``(B, C, L)``, 2 for images, 3 for volumes).
        eps: added to the variance. Default 1e-5.
        elementwise_affine: learn a scale and a shift. Default ``True``.
        over: ``"channels"`` (default): each position's ``C`` values are normalised, as ConvNeXt
            does; for ``(B, C)`` features that is ``nn.LayerNorm(C)``, and for images it is not
            the last dimension (as plain ``nn.LayerNorm(C)`` would take) but ``C``.
            ``"sample"``: all of a sample's ``C × *spatial`` values together, as
            ``nn.LayerNorm([C, H, W])`` does in the guides (a scale and a shift per value).
        spatial: the sample's spatial sizes, needed by ``over="sample"``; a spec fills it in.
    """
    _check_dims("layernorm", dims)
    if over not in LAYERNORM_OVER:
        raise ConfigError(unknown_name_message("layernorm 'over' value", str(over), LAYERNORM_OVER))
    if over == "channels":
        return ChannelLayerNorm(channels, eps=eps, elementwise_affine=elementwise_affine)
    if spatial is None:
        raise ConfigError(
            "norm 'layernorm' over the whole sample needs the sample's shape",
            hint="use it as a spec brick (`- layernorm: {over: sample}`), where the shape is "
            "inferred, or nn.LayerNorm([C, H, W])",
        )
    shape = [channels, *(positive_int(s, "layernorm spatial size") for s in spatial)]
    return nn.LayerNorm(shape, eps=eps, elementwise_affine=elementwise_affine)


@NORMS.register("groupnorm", aliases=("gn",))
def groupnorm(
    channels: int, dims: int = 2, groups: int | None = None, eps: float = 1e-5, affine: bool = True
) -> nn.Module:
    """``nn.GroupNorm``; ``groups`` defaults to the largest divisor of ``channels`` up to 32."""
    _check_dims("groupnorm", dims)
    if groups is None:
        groups = max(g for g in range(1, min(32, channels) + 1) if channels % g == 0)
    groups = positive_int(groups, "norm 'groupnorm': groups")
    if channels % groups:
        divisors = [g for g in range(1, channels + 1) if channels % g == 0]
        raise ConfigError(
            f"norm 'groupnorm': {channels} channels cannot be split into groups={groups!r}; "
            f"use a divisor of {channels}: {', '.join(map(str, divisors))}"
        )
    return nn.GroupNorm(groups, channels, eps=eps, affine=affine)


@NORMS.register("instancenorm", aliases=("in",))
def instancenorm(
    channels: int,
    dims: int = 2,
    eps: float = 1e-5,
    momentum: float = 0.1,
    affine: bool = False,
    track_running_stats: bool = False,
) -> nn.Module:
    """``InstanceNorm1d`` / ``2d`` / ``3d``, PyTorch's defaults (no affine, no running stats)."""
    cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[
        _check_dims("instancenorm", dims)
    ]
    return cls(
        channels,
        eps=eps,
        momentum=momentum,
        affine=affine,
        track_running_stats=track_running_stats,
    )


@NORMS.register("none", aliases=("identity",))
def no_norm(channels: int, dims: int = 2) -> nn.Module:
    """No normalisation: ``nn.Identity``."""
    del channels, dims
    return nn.Identity()


def make_norm(spec: NormSpec, channels: int, dims: int = 2) -> nn.Module:
    """A new normalisation module for ``channels`` channels (or features).

    Args:
        spec: a registered name (``"batchnorm"``, ``"layernorm"``, ``"groupnorm"``,
            ``"instancenorm"``, ``"none"``), ``(name, kwargs)``, ``{name: kwargs}`` or ``None``
            (no norm). The spec may set ``dims`` itself.
        channels: number of channels (``C`` of ``(B, C, ...)``) or features.
        dims: spatial rank of the input: 1 for ``(B, C)`` or ``(B, C, L)``, 2 for
            ``(B, C, H, W)``, 3 for volumes. Default 2. (``instancenorm`` normalises over
            positions, so it needs ``(B, C, L)`` or more, not ``(B, C)``.)

    Raises:
        ConfigError: unknown name, bad ``dims`` or a group count that does not divide ``channels``.
        ArgumentError: an argument the norm does not take.
    """
    channels = positive_int(channels, "norm channels")
    if spec is None:
        return nn.Identity()
    name, kwargs = parse_component_spec(spec, "norm")
    kwargs.setdefault("dims", dims)
    module: nn.Module = NORMS.build((name, kwargs), channels)
    return module
