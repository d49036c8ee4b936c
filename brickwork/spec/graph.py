"""``Graph``: the module a graph spec builds, a plain ``nn.Module`` that walks a fixed plan.

Its submodules are the spec's items, registered under their names in the spec's order, so module
paths and ``state_dict`` keys are the names (``enc2.0.weight``). The plan says, for each item,
which values it reads (the inputs', earlier items', or one part of an item that gives several)
and which module runs; ``forward`` walks it. No ``torch.fx``: the plan is a tuple of small
frozen records, so ``torch.compile``, ``torch.export`` and ``torch.jit.trace`` see plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from brickwork.errors import ArgumentError


@dataclass(frozen=True)
class Ref:
    """A value a step reads: an input's or an item's output, or one part of an output of several.

    Attributes:
        name: the input's or item's name.
        part: which tensor of an output of several (a ``split``'s), or ``None`` for all of it.
    """

    name: str
    part: int | None = None

    def __str__(self) -> str:
        return self.name if self.part is None else f"{self.name}.{self.part}"


@dataclass(frozen=True)
class Step:
    """One item of the plan: ``values[key] = modules[module](*values read from sources)``.

    Attributes:
        key: the name of the value it makes (the item's name, or its position when unnamed).
        module: the submodule it runs: its own (``module == key``) or an earlier item's (``use:``).
        sources: the values it reads, in order.
    """

    key: str
    module: str
    sources: tuple[Ref, ...]


Outputs = Ref | tuple[Ref, ...] | dict[str, Ref]
"""What a graph returns: one value, a tuple of them, or a dict of them by name."""


class Graph(nn.Module):
    """A model whose items read named values instead of only the previous item's output.

    Built by :func:`brickwork.build` from a spec that uses ``from:``, ``use:``, ``inputs:`` or
    ``outputs:``; write one by hand only through a spec.

    Args:
        modules: the items' modules by name, in the spec's order.
        inputs: the names of the inputs, in the order ``forward`` takes them positionally.
        steps: the plan, in order.
        outputs: what ``forward`` returns.

    Shape:
        ``forward(x)`` for one input; ``forward(a, b)`` or ``forward(image=a, features=b)`` for
        several, in ``inputs`` order. Returns a tensor, a tuple or a dict of tensors, as
        ``outputs`` says.
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        inputs: Sequence[str],
        steps: Sequence[Step],
        outputs: Outputs,
    ) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)
        self._input_names = tuple(inputs)
        self._steps = tuple(steps)
        self._outputs = outputs
        self._release = _last_uses(self._steps, outputs)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The inputs' names, in the order ``forward`` takes them."""
        return self._input_names

    @property
    def steps(self) -> tuple[Step, ...]:
        """The plan ``forward`` walks."""
        return self._steps

    @property
    def outputs(self) -> Outputs:
        """What ``forward`` returns."""
        return self._outputs

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        values: dict[str, Any] = self._bind(args, kwargs)
        for step, release in zip(self._steps, self._release, strict=True):
            module = self._modules[step.module]
            assert module is not None  # every step's module is registered
            values[step.key] = module(*[_read(values, ref) for ref in step.sources])
            for name in release:  # nothing later reads it: let its memory go
                del values[name]
        if isinstance(self._outputs, Ref):
            return _read(values, self._outputs)
        if isinstance(self._outputs, tuple):
            return tuple(_read(values, ref) for ref in self._outputs)
        return {key: _read(values, ref) for key, ref in self._outputs.items()}

    def _bind(
        self, args: tuple[torch.Tensor, ...], kwargs: dict[str, torch.Tensor]
    ) -> dict[str, Any]:
        """The inputs by name, from positional arguments (in order) and keyword arguments."""
        names = self._input_names
        if len(args) > len(names) or any(k not in names for k in kwargs):
            raise ArgumentError(
                f"Graph takes {len(names)} input(s), {', '.join(names)}; got {len(args)} "
                f"positional and {', '.join(kwargs) or 'no'} keyword argument(s)"
            )
        values: dict[str, Any] = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in values:
                raise ArgumentError(f"Graph got input {key!r} twice, by position and by name")
            values[key] = value
        if len(values) != len(names):
            missing = [n for n in names if n not in values]
            raise ArgumentError(f"Graph is missing input(s) {', '.join(missing)}")
        return values

    def __repr__(self) -> str:
        """The plan as the spec reads: each item with its module (``use`` for a module run
        again), what it reads when that is not the item before (``(box) <- joined: Linear``),
        and the outputs."""
        lines = []
        if len(self._input_names) > 1 or self._input_names != ("input",):
            lines.append(f"inputs: {', '.join(self._input_names)}")
        previous = self._input_names[0] if len(self._input_names) == 1 else None
        for step in self._steps:
            reads = [str(ref) for ref in step.sources]
            wiring = "" if reads == [previous] else f" <- {', '.join(reads)}"
            if step.module == step.key:
                body = _indent(repr(self._modules[step.module]))
            else:
                body = f"use {step.module}"
            lines.append(f"({step.key}){wiring}: {body}")
            previous = step.key
        if self._steps and self._outputs != Ref(self._steps[-1].key):
            lines.append(f"outputs: {_describe(self._outputs)}")
        return "Graph(\n  " + "\n  ".join(lines) + "\n)"


def output_names(model: object) -> tuple[str, ...] | None:
    """Names for the output tensors of a graph of several outputs (a dict's keys, or the names
    of a tuple's values), in order; ``None`` for any other model, or when names repeat."""
    if not isinstance(model, Graph) or isinstance(model.outputs, Ref):
        return None
    names = (
        tuple(model.outputs) if isinstance(model.outputs, dict) else tuple(map(str, model.outputs))
    )
    return names if len(set(names)) == len(names) else None


def _read(values: dict[str, Any], ref: Ref) -> Any:
    value = values[ref.name]
    return value if ref.part is None else value[ref.part]


def _last_uses(steps: Sequence[Step], outputs: Outputs) -> tuple[tuple[str, ...], ...]:
    """For each step, the values (inputs included) read for the last time there, outputs aside."""
    kept = {ref.name for ref in output_refs(outputs)}
    last: dict[str, int] = {}
    for i, step in enumerate(steps):
        for ref in step.sources:
            last[ref.name] = i
    release: list[list[str]] = [[] for _ in steps]
    for name, i in last.items():
        if name not in kept:
            release[i].append(name)
    return tuple(tuple(names) for names in release)


def output_refs(outputs: Outputs) -> list[Ref]:
    """The values ``outputs`` names, in order."""
    if isinstance(outputs, Ref):
        return [outputs]
    return list(outputs) if isinstance(outputs, tuple) else list(outputs.values())


def _describe(outputs: Outputs) -> str:
    if isinstance(outputs, Ref):
        return str(outputs)
    if isinstance(outputs, tuple):
        return "(" + ", ".join(map(str, outputs)) + ("," if len(outputs) == 1 else "") + ")"
    return "{" + ", ".join(f"{k}: {v}" for k, v in outputs.items()) + "}"


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")
