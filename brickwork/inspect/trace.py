"""The output of every submodule for one call, without leaving anything on the model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn
from torch.utils.hooks import RemovableHandle

from brickwork.errors import ConfigError, unknown_name_message


def trace(model: nn.Module, x: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Run ``model(x)`` once and return the outputs of its named submodules, in call order.

    Forward hooks are added for this call and removed afterwards, also when forward raises, so
    nothing accumulates on the model and two calls give two independent results. A module called
    more than once in the forward gets one entry per call: ``name``, ``name#2``, ``name#3``...

    Args:
        model: any module.
        x: its input (a tensor, or a tuple of positional arguments).
        names: module paths to keep (as in ``named_modules()``); default every submodule.

    Returns:
        ``{module path: output}`` in the order the modules returned. Outputs are what each module
        returned (usually a tensor), attached to the autograd graph as usual.

    Raises:
        ConfigError: a name that is not a submodule of ``model``, with the closest one.
    """
    modules = dict(model.named_modules())
    modules.pop("", None)  # the model's own output is the return value, not a trace entry
    if names is not None:
        wanted = list(names)
        for name in wanted:
            if name not in modules:
                raise ConfigError(unknown_name_message("submodule", name, modules))
        modules = {name: modules[name] for name in wanted}

    outputs: dict[str, Any] = {}
    calls: dict[str, int] = {}

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            outputs[name if calls[name] == 1 else f"{name}#{calls[name]}"] = output

        return hook

    handles: list[RemovableHandle] = [
        module.register_forward_hook(hook_for(name)) for name, module in modules.items()
    ]
    try:
        model(*x) if isinstance(x, tuple) else model(x)
    finally:
        for handle in handles:
            handle.remove()
    return outputs
