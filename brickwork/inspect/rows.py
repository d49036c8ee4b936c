"""A summary's rows: :class:`SummaryRow`, one per call of one module, the parameter counts each
row gets from its module (:func:`fill_params`), and how messages name what a call received
(:func:`call_text`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from brickwork.inspect.meta_copy import is_scripted, numel
from brickwork.inspect.render import inputs_text


@dataclass
class SummaryRow:
    """One call of one module.

    Attributes:
        path: module path as in ``named_modules()`` (``""`` for the model itself).
        type: class name.
        depth: how deep the call is nested: 0 for the model, 1 for the modules its forward
            calls, ... (a ``ModuleList``'s items count as called by the module that calls them).
        label: the path relative to the calling module's (``d.a.0`` when the model's forward
            calls an item of ``self.d["a"]``).
        call: 1 for the module's first call in the forward, 2 for its second...
        input_shape: shapes of the positional inputs.
        input_kwargs: shapes of the inputs given by name, by name (``{}`` for none).
        output_shape: the output's shape, or the structure of shapes of a tuple, list or dict
            output (every tensor shown), or the type name of a non-tensor.
        params: parameters of the module and its submodules, each counted once; 0 on a repeated
            call (they were counted on the first).
        trainable: how many of ``params`` require grad.
        own_params: parameters the module holds itself (not its submodules).
        macs: multiply-accumulates of this call, its submodules' included.
        own_macs: multiply-accumulates run directly in this module's forward (``F.conv2d``,
            ``x @ w``...), not in a submodule.
        is_leaf: the module has no submodules.
        own_trainable: how many of ``own_params`` require grad.
    """

    path: str
    type: str
    depth: int
    label: str = ""
    call: int = 1
    input_shape: Any = None
    output_shape: Any = None
    params: int = 0
    trainable: int = 0
    own_params: int = 0
    macs: int = 0
    own_macs: int = 0
    is_leaf: bool = True
    own_trainable: int = 0
    input_kwargs: dict[str, Any] = field(default_factory=dict)


def fill_params(rows: list[SummaryRow]) -> None:
    """Set each row's parameter counts from the module it was made for (``row.module``, which is
    dropped): its subtree's and its own, each parameter counted once; 0 on a repeated call.

    Args:
        rows: rows that each hold their module as ``row.module``.
    """
    subtree: dict[int, dict[int, nn.Parameter]] = {}  # module → its subtree's parameters

    def collect(module: nn.Module) -> dict[int, nn.Parameter]:
        if id(module) not in subtree and is_scripted(module):  # its tables live in C++
            subtree[id(module)] = {id(p): p for p in module.parameters()}
        if id(module) not in subtree:
            found = {id(p): p for p in module._parameters.values() if p is not None}
            for child in module._modules.values():
                if child is not None:
                    found.update(collect(child))
            subtree[id(module)] = found
        return subtree[id(module)]

    sums = _tree_sums(rows[0].__dict__["module"]) if rows else None
    for row in rows:
        module: nn.Module = row.__dict__.pop("module")
        if row.call > 1:
            continue  # counted on the first call
        counts = sums.get(id(module)) if sums is not None else None
        if counts is not None:
            row.params, row.trainable, row.own_params, row.own_trainable = counts
            continue
        row.params, row.trainable = _counts(collect(module).values())
        row.own_params, row.own_trainable = _counts(_own_parameters(module))


def _tree_sums(root: nn.Module) -> dict[int, tuple[int, int, int, int]] | None:
    """Each module's subtree and own counts (parameters, trainable ones), summed up the tree in
    one walk; ``None`` when a module or a parameter is registered twice (a sum would count it
    twice: :func:`fill_params` then collects each subtree's parameters) or a TorchScript module
    holds its tables in C++."""
    sums: dict[int, tuple[int, int, int, int]] = {}
    seen: set[int] = set()

    def visit(module: nn.Module) -> tuple[int, int, int, int] | None:
        if id(module) in sums or is_scripted(module):
            return None
        own = trainable = 0
        for p in module._parameters.values():
            if p is not None:
                if id(p) in seen:
                    return None
                seen.add(id(p))
                n = numel(p)
                own += n
                trainable += n if p.requires_grad else 0
        total, total_trainable = own, trainable
        for child in module._modules.values():
            counts = visit(child) if child is not None else (0, 0, 0, 0)
            if counts is None:
                return None
            total, total_trainable = total + counts[0], total_trainable + counts[1]
        sums[id(module)] = counts = (total, total_trainable, own, trainable)
        return counts

    return sums if visit(root) is not None else None


def _counts(params: Iterable[nn.Parameter | None]) -> tuple[int, int]:
    """How many values ``params`` hold, and how many of them require grad (one pass)."""
    total = trainable = 0
    for p in params:
        if p is not None:
            n = numel(p)
            total += n
            if p.requires_grad:
                trainable += n
    return total, trainable


def _own_parameters(module: nn.Module) -> Iterable[nn.Parameter | None]:
    """A module's own parameters: its table, read directly (``parameters(recurse=False)`` walks
    a generator stack per module); a TorchScript module's through its C++ tables."""
    if is_scripted(module):
        return list(module.parameters(recurse=False))
    return module._parameters.values()


def call_text(row: SummaryRow) -> str:
    """What a call received, for messages: ``input of shape [1, 20]``, or its inputs one by one
    when there are several or any came by name (``inputs [1, 128], mask=[1, 128]``).

    Args:
        row: the call's row.
    """
    if not row.input_kwargs:
        return f"input of shape {inputs_text(row.input_shape)}"
    return f"inputs {inputs_text(row.input_shape, row.input_kwargs)}"
