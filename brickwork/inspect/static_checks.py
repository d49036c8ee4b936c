"""The doctor's checks that read a model without running it: forward, registration, devices."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator

import torch
from torch import nn

from brickwork.errors import DeviceError
from brickwork.inspect.findings import Finding
from brickwork.inspect.meta_copy import is_scripted, user_attributes
from brickwork.inspect.params import device_of

CONTAINERS = (nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
"""Modules that hold others and are not meant to be called."""


def static_findings(model: nn.Module) -> list[Finding]:
    """Checks that read the model without running it: forward, registration, devices.

    Args:
        model: the user's model (only read).

    Returns:
        ``missing-forward``, ``unregistered-module`` and ``mixed-devices`` findings.
    """
    findings: list[Finding] = []
    registered = {id(t) for t in (*model.modules(), *model.parameters(), *model.buffers())}
    for path, module in model.named_modules():
        if _lacks_forward(module):
            findings.append(missing_forward(type(module), path))
        findings += _unregistered(module, path, registered)
    try:
        device_of(model)
    except DeviceError as err:
        findings.append(Finding("mixed-devices", "error", "", str(err), err.hint))
    return findings


def _lacks_forward(module: nn.Module) -> bool:
    """The module's class defines no ``forward`` (containers, which are not called, and
    TorchScript modules, whose forward is compiled, aside)."""
    if isinstance(module, CONTAINERS) or is_scripted(module):
        return False
    return type(module).forward is nn.Module.forward


def missing_forward(cls: type, path: str = "") -> Finding:
    """The ``missing-forward`` finding for a module class, naming a nested ``def forward``.

    Args:
        cls: the module's class.
        path: the module's path in the model (``""`` for the model itself).
    """
    nested = _forward_inside_init(cls)
    if nested:
        message = (
            f"{cls.__name__} has no forward: `def forward` at {nested} is inside `__init__` "
            "(an indentation slip)"
        )
        hint = "dedent `def forward` to the class level, beside `__init__`"
    else:
        message = f"{cls.__name__} defines no forward, so calling it raises NotImplementedError"
        hint = "define `def forward(self, x):` on the class"
    return Finding("missing-forward", "error", path, message, hint, line=nested)


def _forward_inside_init(cls: type) -> str | None:
    """``file:line`` of a ``def forward`` nested in the class's ``__init__``, if there is one."""
    try:
        lines, start = inspect.getsourcelines(cls)
        source_file = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            for inner in ast.walk(node):
                if isinstance(inner, ast.FunctionDef) and inner.name == "forward":
                    return f"{source_file}:{start + inner.lineno - 1}"
    return None


def _trainable(value: object) -> bool:
    """A tensor an optimizer would train: one that requires grad and is a leaf. A tensor
    computed from parameters (a pruned ``weight``, a cache of activations) is not one."""
    return isinstance(value, torch.Tensor) and value.requires_grad and value.is_leaf


def _unregistered(module: nn.Module, path: str, registered: set[int]) -> Iterator[Finding]:
    """Modules and trainable tensors that only a plain attribute holds (an RNN's list of its own
    registered weights is fine: those are registered elsewhere)."""
    for attr, value in user_attributes(module):
        where = f"{path}.{attr}" if path else attr
        if _trainable(value) and id(value) not in registered:
            yield Finding(
                "unregistered-module",
                "error",
                where,
                f"`{attr}` is a tensor with requires_grad but not an nn.Parameter: "
                ".parameters(), .to() and state_dict do not see it",
                f"wrap it: self.{attr} = nn.Parameter(...)",
            )
            continue
        if not isinstance(value, list | tuple | set | dict):
            continue
        items = list(value.values()) if isinstance(value, dict) else list(value)
        items = [v for v in items if id(v) not in registered]
        modules = [  # a ReLU in a list holds nothing to train or move
            v for v in items if isinstance(v, nn.Module) and any(True for _ in v.state_dict())
        ]
        params = [v for v in items if _trainable(v)]
        if not modules and not params:
            continue
        frozen = bool(modules) and not any(p.requires_grad for m in modules for p in m.parameters())
        kind = type(value).__name__
        what = (
            f"{len(modules)} module(s) ({', '.join(sorted({type(m).__name__ for m in modules}))})"
            if modules
            else f"{len(params)} trainable tensor(s)"
        )
        fix = {
            (True, True): "nn.ModuleDict",
            (True, False): "nn.ModuleList",
            (False, True): "nn.ParameterDict",
            (False, False): "nn.ParameterList",
        }[(bool(modules), isinstance(value, dict))]
        if frozen:  # a frozen teacher kept out of the optimizer on purpose
            yield Finding(
                "unregistered-module",
                "warning",
                where,
                f"`{attr}` is a plain {kind} of {what}, all frozen: .to() and state_dict do not "
                "see them, so they stay on their device and out of checkpoints",
                f"if that is not intended, use {fix}(...) and keep them frozen",
            )
            continue
        yield Finding(
            "unregistered-module",
            "error",
            where,
            f"`{attr}` is a plain {kind} of {what}: .parameters(), .to() and state_dict do not "
            "see them, so the optimizer never trains them",
            f"use {fix}(...) instead of a {kind}",
        )
