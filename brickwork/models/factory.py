"""The model registry's front door: ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar, overload

from torch import nn

from brickwork.registry import MODELS, SizeRule

F = TypeVar("F", bound=Callable[..., Any])


@overload
def register_model(fn: F, *, name: str | None = None, sizes: SizeRule | None = None) -> F: ...


@overload
def register_model(
    fn: None = None, *, name: str | None = None, sizes: SizeRule | None = None
) -> Callable[[F], F]: ...


def register_model(
    fn: F | None = None, *, name: str | None = None, sizes: SizeRule | None = None
) -> F | Callable[[F], F]:
    """Register a function (or class) that builds a model, under ``name`` or its own name.

    Usable as ``@register_model`` or ``@register_model(name=..., sizes=SizeRule(...))``; ``sizes``
    tells specs which argument takes the input channels. A name registered twice is an error.
    """
    if fn is None:
        return lambda f: register_model(f, name=name, sizes=sizes)
    MODELS.register(name or fn.__name__, fn, sizes=sizes)
    return fn


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` (any spelling) with ``kwargs``.

    Raises:
        ConfigError: unknown name, with the closest registered one.
        ArgumentError: an argument the model does not take, with the closest valid one.
    """
    model: nn.Module = MODELS.build((name, kwargs))
    return model


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` filters them as a glob (``"resnet*"``)."""
    names = MODELS.names()
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names
