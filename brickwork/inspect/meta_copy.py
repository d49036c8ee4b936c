"""The meta copy: a model's module tree copied with every parameter and buffer on ``meta``.

Inspection runs on this copy, so the user's model is only read: never run, hooked or changed.
The copy is structural (new module objects and containers, meta tensors, other values shared),
which costs far less than a deep copy; models with lazy modules are deep-copied instead.
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Iterator
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from brickwork.errors import ArgumentError, require_module
from brickwork.shapes import meta_like

MODULE_INTERNALS = frozenset(vars(nn.Module()))
"""Attributes every module has (parameter, buffer, submodule and hook tables, ``training``)."""

_PLAIN = frozenset({type(None), str, int, float, bool, torch.dtype, torch.device})
_USER_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks")


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are ``meta`` tensors (no memory).

    Tied parameters stay tied, lazy parameters stay lazy (and materialise on ``meta``), and
    ``requires_grad`` and dtypes are kept. The model itself is not touched: each module is copied
    with its own attribute dicts, lists and hook tables, so a forward that records something on
    ``self`` records it on the copy. Models with lazy modules are deep-copied, because their
    initialisation hooks are bound to the module they came with.

    Args:
        model: the module to copy.

    Raises:
        ArgumentError: ``model`` is not a module, or (lazy models) an attribute cannot be copied.
    """
    require_module(model, "summary")
    memo: dict[int, Any] = {}
    for tensor in chain(model.parameters(), unique_buffers(model)):
        memo[id(tensor)] = meta_tensor_like(tensor)
    if not any(isinstance(m, LazyModuleMixin) for m in model.modules()):
        return _copy_modules(model, memo, {})
    try:
        return copy.deepcopy(model, memo)
    except Exception as err:  # an attribute that cannot be copied: a lock, a file, a C handle
        raise ArgumentError(
            f"summary cannot copy {type(model).__name__} to inspect it: "
            f"{type(err).__name__}: {err}",
            hint="keep handles (files, locks, sockets) out of the module's attributes",
        ) from err


def meta_tensor_like(tensor: torch.Tensor) -> torch.Tensor:
    """A ``meta`` stand-in for ``tensor`` of the same kind: a parameter stays a parameter (with
    its ``requires_grad``), a lazy parameter or buffer stays lazy.

    Args:
        tensor: a parameter, buffer or any tensor of the model.
    """
    # torch's stubs miss these constructors' device and dtype arguments
    if isinstance(tensor, UninitializedParameter):
        return UninitializedParameter(tensor.requires_grad, device="meta", dtype=tensor.dtype)  # type: ignore[call-arg, arg-type]
    if isinstance(tensor, UninitializedBuffer):
        return UninitializedBuffer(tensor.requires_grad, device="meta", dtype=tensor.dtype)  # type: ignore[call-arg, arg-type]
    meta = meta_like(tensor)
    if isinstance(tensor, nn.Parameter):
        return nn.Parameter(meta, requires_grad=tensor.requires_grad)
    return meta


def unique_buffers(model: nn.Module) -> Iterator[torch.Tensor]:
    """``model``'s buffers, a buffer registered in several modules once.

    Args:
        model: any module.
    """
    seen: set[int] = set()
    for buffer in model.buffers():
        if id(buffer) not in seen:
            seen.add(id(buffer))
            yield buffer


def user_attributes(module: nn.Module) -> Iterator[tuple[str, Any]]:
    """The attributes a module's author set: not PyTorch's tables, nor one that a hook derives
    before each call (old-style ``weight_norm`` recomputes ``weight``).

    Args:
        module: any module.

    Yields:
        ``(name, value)`` pairs, in the order they were set.
    """
    derived = {getattr(hook, "name", None) for hook in module._forward_pre_hooks.values()}
    for attr, value in vars(module).items():
        if attr not in MODULE_INTERNALS and attr not in derived:
            yield attr, value


def numel(tensor: torch.Tensor) -> int:
    """How many values ``tensor`` holds; 0 for a lazy parameter that has no shape yet.

    Args:
        tensor: a parameter or any tensor.
    """
    return 0 if isinstance(tensor, UninitializedParameter) else tensor.numel()


def _copy_modules(module: nn.Module, memo: dict[int, Any], done: dict[int, Any]) -> nn.Module:
    """A structural copy: new module objects and containers, meta tensors, other values shared."""
    if id(module) in done:  # a module registered in two places stays one module
        return done[id(module)]  # type: ignore[no-any-return]
    new = module.__class__.__new__(module.__class__)
    done[id(module)] = new
    state: dict[str, Any] = {}
    for key, value in module.__dict__.items():
        if key in ("_parameters", "_buffers", "_modules"):
            state[key] = {k: _metaize(v, memo, done) for k, v in value.items()}
        elif key in _USER_HOOK_TABLES:
            state[key] = _torch_hooks_only(value)
        elif key in MODULE_INTERNALS:
            state[key] = value.copy() if isinstance(value, dict | set) else value  # hook tables
        else:  # the user's own attributes: plain lists of layers, cached tensors...
            state[key] = _metaize(value, memo, done)
    new.__dict__ = state
    return new


def _torch_hooks_only(hooks: dict[int, Any]) -> dict[int, Any]:
    """The copy keeps PyTorch's own hooks (old-style weight_norm, lazy initialisation) and drops
    the user's: they would run on meta tensors and record them wherever they record things."""
    kept = hooks.copy()
    for key, hook in hooks.items():
        owner = getattr(hook, "__module__", None) or type(hook).__module__
        if not str(owner).startswith("torch."):
            del kept[key]
    return kept


def _metaize(value: Any, memo: dict[int, Any], done: dict[int, Any]) -> Any:
    """``value`` with every tensor replaced by a meta one and every module by its copy."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        if id(value) not in memo:
            meta = meta_tensor_like(value)
            if value.requires_grad and not isinstance(meta, nn.Parameter):
                meta.requires_grad_()
            memo[id(value)] = meta
        return memo[id(value)]
    if isinstance(value, nn.Module):
        return _copy_modules(value, memo, done)
    if id(value) in done:
        return done[id(value)]
    if isinstance(value, list):
        copied: list[Any] = []
        done[id(value)] = copied
        copied.extend(_metaize(v, memo, done) for v in value)
        return copied
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        items = tuple(_metaize(v, memo, done) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        copied_dict = copy.copy(value)  # keeps OrderedDict, defaultdict...
        done[id(value)] = copied_dict
        for k, v in value.items():
            copied_dict[k] = _metaize(v, memo, done)
        return copied_dict
    if isinstance(value, set):
        return {_metaize(v, memo, done) for v in value}
    if isinstance(value, types.MethodType) and isinstance(value.__self__, nn.Module):
        return types.MethodType(value.__func__, _copy_modules(value.__self__, memo, done))
    if isinstance(value, functools.partial):
        args = [_metaize(a, memo, done) for a in value.args]
        keywords = {k: _metaize(v, memo, done) for k, v in value.keywords.items()}
        return functools.partial(value.func, *args, **keywords)
    if _holds_tensors(value):  # a helper object that keeps a module or a tensor
        helper = copy.copy(value)
        done[id(value)] = helper
        helper.__dict__.update({k: _metaize(v, memo, done) for k, v in vars(value).items()})
        return helper
    return value


def _holds_tensors(value: Any) -> bool:
    """``value`` is an object whose attributes hold a tensor or a module."""
    attributes = getattr(value, "__dict__", None)
    if not isinstance(attributes, dict) or isinstance(value, type | types.ModuleType):
        return False
    return any(isinstance(v, torch.Tensor | nn.Module) for v in attributes.values())
