"""The meta copy: a model's module tree copied with every parameter and buffer on ``meta``.

Inspection runs on this copy, so the user's model is only read: never run, hooked or changed.
The copy is structural (new module objects and containers, meta tensors, other values shared),
which costs far less than a deep copy; models with lazy modules are deep-copied instead. The same
copy with the model's own tensors shared is what a real run uses
(:mod:`~brickwork.inspect.real_run`).
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from brickwork.errors import ArgumentError, require_module
from brickwork.shapes import meta_like

MODULE_INTERNALS = frozenset(vars(nn.Module())) | {"_compiled_call_impl"}
"""Attributes every module has (parameter, buffer, submodule and hook tables, ``training``), and
the one ``module.compile()`` sets."""

_PLAIN = frozenset({type(None), str, int, float, bool, torch.dtype, torch.device})
_TENSOR_TABLES = ("_parameters", "_buffers", "_modules")
_TABLES = frozenset(
    key for key, value in vars(nn.Module()).items() if isinstance(value, dict | set)
) - set(_TENSOR_TABLES)
"""A module's hook tables (dicts and sets of its own, which the copy must not share)."""
_TABLE_TYPES = tuple(
    (key, type(value)) for key, value in vars(nn.Module()).items() if key in _TABLES
)
_USER_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks")
_SIZED = frozenset({torch.Tensor, nn.Parameter})


class ScriptedModuleError(Exception):
    """The model holds a TorchScript module: its code and tensors live in C++, out of reach of
    a meta copy. The inspection runs it for real instead."""


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are ``meta`` tensors (no memory).

    Tied parameters stay tied, lazy parameters stay lazy (and materialise on ``meta``), and
    ``requires_grad`` and dtypes are kept. The model itself is not touched: each module is copied
    with its own attribute dicts, lists and hook tables, so a forward that records something on
    ``self`` records it on the copy. Models with lazy modules are deep-copied, because their
    initialisation hooks are bound to the module they came with. A ``torch.compile`` wrapper is
    replaced by a copy of the module it wraps.

    Args:
        model: the module to copy.

    Raises:
        ArgumentError: ``model`` is not a module, or (lazy models) an attribute cannot be copied.
        ScriptedModuleError: the model holds a TorchScript module, whose code and tensors live
            in C++ and cannot be moved to ``meta`` without changing it.
    """
    require_module(model, "summary")
    modules = named_modules(model)
    scripted = next((path for path, m in modules if is_scripted(m)), None)
    if scripted is not None:
        where = f"`{scripted}`" if scripted else type_name(model)
        raise ScriptedModuleError(f"{where} is a TorchScript module, which cannot run on meta")
    return structural_copy(model, meta_tensor_like, [m for _, m in modules])


def structural_copy(
    model: nn.Module,
    tensor: Callable[[torch.Tensor], torch.Tensor],
    modules: list[nn.Module] | None = None,
) -> nn.Module:
    """A copy of ``model``'s module tree with each tensor replaced by ``tensor(t)``.

    New module objects, attribute dicts, containers and hook tables (the user's hooks dropped);
    other values shared. Models with lazy modules are deep-copied (their initialisation hooks are
    bound to their module), with ``tensor(t)`` for every tensor that is not lazy.

    Args:
        model: the module to copy.
        tensor: what each parameter, buffer or tensor attribute becomes (called once per tensor).
        modules: ``model``'s modules, when the caller has walked them already.
    """
    memo: dict[int, Any] = {}
    if modules is None:
        modules = [m for _, m in named_modules(model)]
    if not any(isinstance(m, LazyModuleMixin) for m in modules):
        return _Copier(memo, tensor).module(model)
    for t in chain(model.parameters(), unique_buffers(model)):
        mapped = tensor(t)
        if mapped is t and isinstance(t, UninitializedParameter | UninitializedBuffer):
            continue  # deep-copied instead of shared: materialising a lazy tensor writes to it
        memo[id(t)] = mapped
    try:
        return copy.deepcopy(model, memo)
    except Exception as err:  # an attribute that cannot be copied: a lock, a file, a C handle
        raise ArgumentError(
            f"summary cannot copy {type(model).__name__} to inspect it: "
            f"{type(err).__name__}: {err}",
            hint="keep handles (files, locks, sockets) out of the module's attributes",
        ) from err


def is_scripted(module: nn.Module) -> bool:
    """``module`` is a TorchScript module (``torch.jit.script`` or ``trace``).

    Args:
        module: any module.
    """
    kind = type(module)
    scripted = _SCRIPTED.get(kind)
    if scripted is None:  # once per class: an isinstance check here is a slow one
        scripted = _SCRIPTED[kind] = issubclass(kind, torch.jit.ScriptModule)
    return scripted


_SCRIPTED: dict[type, bool] = {}
"""Module class → whether it is a TorchScript class (a summary asks about 900 times)."""


def type_name(module: nn.Module) -> str:
    """The module's class name; a TorchScript module's original class name (``Sequential``).

    Args:
        module: any module.
    """
    name = getattr(module, "original_name", None) if is_scripted(module) else None
    return name if isinstance(name, str) and name else type(module).__name__


def unwrap_compiled(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper (``OptimizedModule``) wraps; any other as it is.

    Args:
        module: any module.
    """
    while type(module).__name__ == "OptimizedModule" and "_orig_mod" in module._modules:
        inner = module._modules["_orig_mod"]
        assert inner is not None
        module = inner
    return module


def meta_tensor_like(tensor: torch.Tensor) -> torch.Tensor:
    """A ``meta`` stand-in for ``tensor`` of the same kind: a parameter stays a parameter (with
    its ``requires_grad``), a lazy parameter or buffer stays lazy.

    Args:
        tensor: a parameter, buffer or any tensor of the model.
    """
    kind = type(tensor)
    if kind is nn.Parameter:  # the common cases first: isinstance on parameters is slow
        # what nn.Parameter(meta, requires_grad) does for a plain tensor, without its checks
        return torch.Tensor._make_subclass(nn.Parameter, meta_like(tensor), tensor.requires_grad)
    if kind is torch.Tensor:
        return meta_like(tensor)
    # torch's stubs miss these constructors' device and dtype arguments
    if isinstance(tensor, UninitializedParameter):
        return UninitializedParameter(tensor.requires_grad, device="meta", dtype=tensor.dtype)  # type: ignore[call-arg, arg-type]
    if isinstance(tensor, UninitializedBuffer):
        return UninitializedBuffer(tensor.requires_grad, device="meta", dtype=tensor.dtype)  # type: ignore[call-arg, arg-type]
    meta = meta_like(tensor)
    if isinstance(tensor, nn.Parameter):
        return nn.Parameter(meta, requires_grad=tensor.requires_grad)
    return meta


def named_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``list(model.named_modules())``, walked directly: the same paths in the same order, a
    module registered in several places once, under its first path (``named_modules`` nests a
    generator per level, which costs more than the rest of a summary's bookkeeping).

    Args:
        model: any module.
    """
    found: list[tuple[str, nn.Module]] = [("", model)]
    _walk("", model, found, {id(model)})
    return found


def _walk(
    prefix: str, module: nn.Module, found: list[tuple[str, nn.Module]], seen: set[int]
) -> None:
    """Append ``module``'s descendants to ``found``, depth first, each once (leaves end there)."""
    for name, child in module._modules.items():
        if child is None or id(child) in seen:
            continue
        seen.add(id(child))
        path = prefix + name
        found.append((path, child))
        if child._modules:
            _walk(f"{path}.", child, found, seen)


def unique_weights(modules: Iterable[nn.Module]) -> tuple[list[nn.Parameter], list[torch.Tensor]]:
    """The parameters and the buffers of ``modules``, each tensor once, in the order of
    ``parameters()`` and ``buffers()`` when ``modules`` are :func:`named_modules`' modules.

    Args:
        modules: a model's modules.
    """
    params: dict[int, nn.Parameter] = {}
    buffers: dict[int, torch.Tensor] = {}
    for module in modules:
        for p in module._parameters.values():
            if p is not None:
                params.setdefault(id(p), p)
        for b in module._buffers.values():
            if b is not None:
                buffers.setdefault(id(b), b)
    return list(params.values()), list(buffers.values())


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
    before each call (old-style ``weight_norm`` recomputes ``weight``, pruning too).

    Args:
        module: any module.

    Yields:
        ``(name, value)`` pairs, in the order they were set.
    """
    hooks = module._forward_pre_hooks.values()
    derived = {getattr(hook, "name", None) for hook in hooks}
    derived |= {getattr(hook, "_tensor_name", None) for hook in hooks}  # torch.nn.utils.prune
    for attr, value in vars(module).items():
        if attr not in MODULE_INTERNALS and attr not in derived:
            yield attr, value


def numel(tensor: torch.Tensor) -> int:
    """How many values ``tensor`` holds; 0 for a lazy parameter that has no shape yet.

    Args:
        tensor: a parameter or any tensor.
    """
    if type(tensor) in _SIZED:  # isinstance(..., Parameter) is a slow metaclass check
        return tensor.numel()
    return 0 if isinstance(tensor, UninitializedParameter) else tensor.numel()


def _torch_hooks_only(hooks: dict[int, Any]) -> dict[int, Any]:
    """The copy keeps PyTorch's own hooks (old-style weight_norm, lazy initialisation) and drops
    the user's: they would run on meta tensors and record them wherever they record things."""
    kept = hooks.copy()
    for key, hook in hooks.items():
        owner = getattr(hook, "__module__", None) or type(hook).__module__
        if not str(owner).startswith("torch."):
            del kept[key]
    return kept


class _Copier:
    """The structural copy: new modules and containers, tensors mapped, other values shared."""

    def __init__(self, memo: dict[int, Any], tensor: Callable[[torch.Tensor], torch.Tensor]):
        self.memo = memo  # id of a tensor → its copy
        self.done: dict[int, Any] = {}  # id of a module or container → its copy
        self.tensor = tensor

    def module(self, module: nn.Module) -> nn.Module:
        """A copy of ``module``: a compile wrapper unwrapped, a TorchScript module shared."""
        module = unwrap_compiled(module)
        if id(module) in self.done:  # a module registered in two places stays one module
            return self.done[id(module)]  # type: ignore[no-any-return]
        if is_scripted(module):  # its code and tensors live in C++; a real run shares it
            self.done[id(module)] = module
            return module
        new = module.__class__.__new__(module.__class__)
        self.done[id(module)] = new
        state = module.__dict__.copy()  # one pass in C; then only what must differ
        state.pop("_compiled_call_impl", None)  # module.compile(): the copy runs eagerly
        for key, kind in _TABLE_TYPES:  # hook tables: the copy's own, empty ones fresh
            value = state.get(key)
            if value is not None:
                state[key] = value.copy() if value else kind()
        for key in _USER_HOOK_TABLES:
            if state.get(key):
                state[key] = _torch_hooks_only(state[key])
        if "_parameters" in state:
            state["_parameters"] = {k: self.value(v) for k, v in state["_parameters"].items()}
        if "_buffers" in state:
            state["_buffers"] = {k: self.value(v) for k, v in state["_buffers"].items()}
        if "_modules" in state:  # each a module or None
            state["_modules"] = {
                k: v if v is None else self.module(v) for k, v in state["_modules"].items()
            }
        for key in state.keys() - MODULE_INTERNALS:  # the user's own: lists of layers, tensors
            value = state[key]
            if type(value) not in _PLAIN and not _plain_tuple(value):
                state[key] = self.value(value)
        object.__setattr__(new, "__dict__", state)  # as it is: no module __setattr__ checks
        return new

    def value(self, value: Any) -> Any:
        """``value`` with every tensor mapped and every module copied."""
        if type(value) in _PLAIN:
            return value
        if isinstance(value, torch.Tensor):
            if id(value) not in self.memo:
                copied = self.tensor(value)
                if value.requires_grad and not copied.requires_grad and copied.is_leaf:
                    copied.requires_grad_()
                self.memo[id(value)] = copied
            return self.memo[id(value)]
        if isinstance(value, nn.Module):
            return self.module(value)
        if id(value) in self.done:
            return self.done[id(value)]
        return self._container(value)

    def _container(self, value: Any) -> Any:
        if isinstance(value, list):
            copied: list[Any] = []
            self.done[id(value)] = copied
            copied.extend(self.value(v) for v in value)
            return copied
        if _plain_tuple(value):
            return value  # a kernel size, a padding: nothing to map
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            items = tuple(self.value(v) for v in value)
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if isinstance(value, dict):
            copied_dict = copy.copy(value)  # keeps OrderedDict, defaultdict...
            self.done[id(value)] = copied_dict
            for k, v in value.items():
                copied_dict[k] = self.value(v)
            return copied_dict
        if isinstance(value, set):
            return {self.value(v) for v in value}
        if isinstance(value, types.MethodType) and isinstance(value.__self__, nn.Module):
            return types.MethodType(value.__func__, self.module(value.__self__))
        if isinstance(value, functools.partial):
            args = [self.value(a) for a in value.args]
            keywords = {k: self.value(v) for k, v in value.keywords.items()}
            return functools.partial(value.func, *args, **keywords)
        if _holds_tensors(value):  # a helper object that keeps a module or a tensor
            helper = copy.copy(value)
            self.done[id(value)] = helper
            helper.__dict__.update({k: self.value(v) for k, v in vars(value).items()})
            return helper
        return value


def _plain_tuple(value: Any) -> bool:
    """``value`` is a tuple of plain values (a kernel size, a padding): nothing to map."""
    return type(value) is tuple and _PLAIN.issuperset(map(type, value))


def _holds_tensors(value: Any) -> bool:
    """``value`` is an object whose attributes hold a tensor or a module."""
    attributes = getattr(value, "__dict__", None)
    if not isinstance(attributes, dict) or isinstance(value, type | types.ModuleType):
        return False
    return any(isinstance(v, torch.Tensor | nn.Module) for v in attributes.values())
