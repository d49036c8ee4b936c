"""The output of every submodule for one call, without leaving anything on the model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from brickwork.errors import ConfigError, require_module, unknown_name_message

_PENDING = object()  # a module that was called and has not returned yet


def trace(model: nn.Module, x: Any, names: str | Iterable[str] | None = None) -> dict[str, Any]:
    """Run ``model(x)`` once and return the outputs of its named submodules, in call order.

    Hooks are added for this call and removed afterwards, also when forward raises, and the
    model's buffers (batch-norm running statistics) are put back as they were, so nothing
    accumulates on the model and two calls give two independent results. A module called more
    than once gets one entry per call: ``name``, ``name#2``, ``name#3``...

    Args:
        model: any module.
        x: its input (a tensor, or a tuple of positional arguments).
        names: a module path or paths to keep (as in ``named_modules()``; ``""`` is the model
            itself); default every submodule. A named module that the forward never calls has
            no entry.

    Returns:
        ``{module path: output}`` in the order the modules were called (a container before the
        modules it calls). Outputs are what each module returned, attached to the autograd
        graph as usual; a later in-place operation (``ReLU(inplace=True)``) changes them too.

    Raises:
        ConfigError: a name that is not a submodule of ``model``, with the closest one.
    """
    require_module(model, "trace")
    modules = dict(model.named_modules())
    if names is None:
        modules.pop("", None)  # the model's own output is the return value
    else:
        wanted = [names] if isinstance(names, str) else list(names)
        for name in wanted:
            if name not in modules:
                raise ConfigError(unknown_name_message("submodule", name, modules))
        modules = {name: modules[name] for name in wanted}

    outputs: dict[str, Any] = {}
    open_calls: dict[str, list[str]] = {}  # module path → entry keys of its calls not returned yet
    calls: dict[str, int] = {}

    def pre_hook_for(name: str) -> Any:
        def pre_hook(module: nn.Module, args: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            key = name if calls[name] == 1 else f"{name}#{calls[name]}"
            outputs[key] = _PENDING  # reserves the slot: entries come in call order
            open_calls.setdefault(name, []).append(key)

        return pre_hook

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            outputs[open_calls[name].pop()] = output

        return hook

    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    handles: list[RemovableHandle] = []
    for name, module in modules.items():
        handles.append(module.register_forward_pre_hook(pre_hook_for(name)))
        handles.append(module.register_forward_hook(hook_for(name)))
    try:
        model(*x) if isinstance(x, tuple) else model(x)
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in saved:
                    buffer.copy_(saved[name])
    return {key: out for key, out in outputs.items() if out is not _PENDING}
