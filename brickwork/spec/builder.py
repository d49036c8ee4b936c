"""``build``: a spec walked item by item with the per-sample shape in hand, every size inferred.

For each item the builder fills in the argument that takes the incoming size (``in_features``,
``in_channels``, ``in_f``...), builds the module on the requested device, and learns its output
shape by running it on ``meta`` tensors. Containers: a list is sequential; ``{residual: [...]}``
adds the input to the branch's output; ``{repeat: {times: N, body: [...]}}`` repeats a body;
``{sequential: [...]}`` groups items. Any item may carry ``name:``.

A list whose items read named values (``from:``) or run an earlier item's module again
(``use:``), or a spec with ``inputs:`` or ``outputs:``, is a graph: its references are checked
first (:mod:`~brickwork.spec.wiring`), then each item is built from the values it reads, kept by
name, and the list becomes a :class:`~brickwork.spec.graph.Graph`. Before anything is built, the
spec's size is checked (:mod:`~brickwork.spec.limits`).
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

import brickwork.models  # noqa: F401  (registers the families a spec may name)
from brickwork.blocks import Residual
from brickwork.errors import (
    BrickworkError,
    ShapeError,
    SpecError,
    SpecWarning,
    unknown_name_message,
)
from brickwork.registry import BRICKS, SizeRule, normalize_name
from brickwork.shapes import dtype_name, probe_outputs
from brickwork.spec.graph import Graph, Ref, Step, output_refs
from brickwork.spec.inputs import normal_inputs, output_shapes, spec_inputs, written_outputs
from brickwork.spec.io import load_spec
from brickwork.spec.items import (
    INPUT,
    Item,
    jsonable,
    lookup,
    parse_item,
    parse_items,
)
from brickwork.spec.limits import check_bricks, repeat_times
from brickwork.spec.merging import check_merge
from brickwork.spec.sizes import (
    Flow,
    Value,
    check_arguments,
    check_input,
    fill_sizes,
    projection,
)
from brickwork.spec.wiring import check_in_place, check_unique, wire

SPEC_KEYS = ("input", "input_dtype", "inputs", "model", "outputs", "output")
"""The keys a spec may have."""
SPEC_ATTR = "_brickwork_spec"
"""Attribute under which a built model keeps its normalised spec (read by :func:`to_spec`)."""

Built = tuple[nn.Module, Any, Value]
"""What building an item gives: the module, its normalised spec, and the outgoing value."""


def build(
    spec: Mapping[str, Any] | str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    device: torch.device | str | None = None,
) -> nn.Module:
    """Build a plain ``nn.Module`` from a spec, inferring every size from the input shape.

    Args:
        spec: a dict, YAML or JSON text, or the path of a ``.yaml``/``.yml``/``.json`` file.
        input_shape: per-sample input shape (no batch dimension); overrides the spec's ``input``
            (or its one entry of ``inputs``).
        device: where the parameters are created (``"cpu"``, ``"cuda"``, ``"meta"`` for a model
            that takes no memory). Default: PyTorch's default device. Parameters are initialised
            as PyTorch initialises those modules, ready for an optimizer; there are no lazy modules.

    Returns:
        The model: an ``nn.Sequential`` for a brick list, a :class:`~brickwork.spec.graph.Graph`
        for a list whose items use ``from:`` or ``use:`` (or a spec with ``inputs:`` or
        ``outputs:``), the family's class for a family. :func:`to_spec` gives back its
        normalised spec.

    Raises:
        SpecError: anything that does not fit, with the spec path (``model[3].conv_block.out``,
            ``model.up3.from``), the incoming shape and what would fit.
    """
    raw = load_spec(spec)
    unknown = [key for key in raw if key not in SPEC_KEYS]
    if unknown:
        raise SpecError(unknown_name_message("spec key", str(unknown[0]), SPEC_KEYS))
    if "model" not in raw:
        raise SpecError("spec has no 'model': give a list of bricks or {family: {arguments}}")
    inputs = spec_inputs(raw, input_shape)
    check_bricks(raw["model"])
    builder = _Builder(torch.device(device) if device is not None else None)
    flows = {i.name: Flow(i.shape, i.dtype) for i in inputs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)  # each spec's own, however often seen
        if "inputs" in raw or "outputs" in raw:
            items = parse_items(raw["model"], "model")
            model, normalised_model, out = builder.graph(items, flows, raw.get("outputs"))
        else:
            model, normalised_model, out = builder.model(raw["model"], flows[INPUT])
    for warning in caught:  # told where build was called, not deep inside the builder
        warnings.warn(warning.message, warning.category, stacklevel=2)
    output = output_shapes(model, out)
    if "output" in raw and jsonable(raw["output"]) != output:
        raise SpecError(
            f"output: the spec says {raw['output']} but the model gives {output}",
            hint="remove 'output' from the spec to accept the inferred shape",
        )
    normalised = normal_inputs(inputs, named="inputs" in raw) | {"model": normalised_model}
    if "outputs" in raw and isinstance(model, Graph):
        normalised["outputs"] = written_outputs(model.outputs)
    normalised["output"] = output
    setattr(model, SPEC_ATTR, normalised)
    return model


class _Builder:
    """Builds the modules of a spec, walking it with the incoming shape in hand.

    Sizes flow as values: every method takes the :class:`Flow` that reaches its item (the
    per-sample shape and dtype) and returns what it built (:data:`Built`): the module, the item's
    normalised spec (each inferred size written out) and the value that leaves it, which the
    caller hands to the next item. A brick's sizes come from its :class:`SizeRule` and the
    incoming flow (:func:`fill_sizes`); the flow that leaves it is learnt by running it on
    ``meta`` tensors (:meth:`_probe`). A chain threads the flow through its items; a graph keeps
    each named value and hands each item the ones it reads; a repeat builds each copy from the
    flow the previous copy gave. The builder holds nothing but the device, so building one spec
    never changes another's.

    Args:
        device: where modules are constructed; ``None`` for PyTorch's default device.
    """

    def __init__(self, device: torch.device | None) -> None:
        self.device = device

    def model(self, node: object, flow: Flow) -> Built:
        """The spec's ``model``: a list of bricks, a family name, or ``{family: {arguments}}``."""
        if isinstance(node, str):  # `model: cnn_classifier`: a family with its defaults
            node = {node: None}
        if isinstance(node, list):
            return self.sequence(node, "model", flow)
        if isinstance(node, Mapping):
            item = parse_item(node, "model", 0)
            if item.wired or item.key is None:
                raise SpecError("model: from: and use: belong to the items of a list of bricks")
            module, normalised, out = self.node(item.key, item.value, "model", flow)
            return module, _with_wiring(normalised, item), out
        raise SpecError(
            f"model: expected a list of bricks, a family name or {{family: {{arguments}}}}, "
            f"got {node!r}"
        )

    # -- lists: chains and graphs

    def sequence(self, nodes: object, path: str, flow: Flow) -> Built:
        """A list of items: an ``nn.Sequential`` when each reads the one before, else a
        :class:`Graph` whose input is called ``input``."""
        items = parse_items(nodes, path)
        if any(item.wired for item in items):
            return self.graph(items, {INPUT: flow}, None)
        check_unique(items, ())
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        normalised: list[Any] = []
        value: Value = flow
        for item in items:
            previous = items[item.index - 1].path if item.index else "the input"
            incoming = _single(value, item.path, previous)
            module, spec, value = self.node(item.key or "", item.value, item.path, incoming)
            modules[item.value_key] = module
            normalised.append(_with_wiring(spec, item))
        return nn.Sequential(modules), normalised, value

    def graph(self, items: list[Item], inputs: Mapping[str, Flow], outputs: object) -> Built:
        """Items that read named values (``from:``) or run an earlier item's module (``use:``).

        Args:
            items: the list's items.
            inputs: the values it starts from, by name, with their flows.
            outputs: the spec's ``outputs:``, or ``None`` for the last item's output.
        """
        wiring = wire(items, list(inputs), outputs)
        values: dict[str, Value] = dict(inputs)
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        steps: list[Step] = []
        normalised: list[Any] = []
        for item, refs, used in zip(items, wiring.sources, wiring.modules, strict=True):
            flows = [_read(values, ref, item.path) for ref in refs]
            if item.use is not None:
                module = modules[used]
                spec: dict[str, Any] = {"use": item.use}
                value = self._probe_all(module, f"{item.path}.use", flows)
            else:
                module, spec, value = self.wired_item(item, refs, flows)
                modules[item.value_key] = module
            values[item.value_key] = value
            steps.append(Step(item.value_key, used, refs))
            normalised.append(_with_wiring(spec, item))
        check_in_place(items, wiring, modules)
        graph = Graph(modules, list(inputs), steps, wiring.outputs)
        out = [
            _single(_read(values, ref, "outputs"), "outputs", str(ref))
            for ref in output_refs(wiring.outputs)
        ]
        return graph, normalised, out[0] if isinstance(wiring.outputs, Ref) else tuple(out)

    def wired_item(self, item: Item, refs: Sequence[Ref], flows: Sequence[Value]) -> Built:
        """An item of a graph: a merge of the values it reads, or a brick or container of one."""
        key = item.key or ""
        if key in BRICKS and BRICKS.size_rule(key).merge:
            singles = [_single(v, item.path, str(r)) for v, r in zip(flows, refs, strict=True)]
            return self.merge(key, item, refs, singles)
        if len(flows) != 1:
            raise SpecError(
                f"{item.path}.from: {key} takes one input, but from: names {len(flows)} "
                f"({', '.join(map(str, refs))})",
                hint="merge them first with concat, add or mul",
            )
        return self.node(key, item.value, item.path, _single(flows[0], item.path, str(refs[0])))

    # -- containers

    def node(self, key: str, value: object, path: str, flow: Flow) -> Built:
        """One brick or container, fed ``flow``: its module, normalised spec and output."""
        container = normalize_name(key)
        if container == "sequential":
            module, items, out = self.sequence(value, f"{path}.sequential", flow)
            return module, {"sequential": items}, out
        if container == "residual":
            return self.residual(value, path, flow)
        if container == "repeat":
            return self.repeat(value, path, flow)
        if key in BRICKS and BRICKS.size_rule(key).merge:
            raise SpecError(
                f"{path}.{BRICKS.canonical(key)}: merges two or more inputs; name them with "
                "from: [a, b]"
            )
        return self.brick(key, value, path, flow)

    def residual(self, value: object, path: str, flow: Flow) -> Built:
        """``{residual: [items]}``: the items' output plus the input (projected if need be)."""
        where = f"{path}.residual"
        if not flow.dtype.is_floating_point:
            raise SpecError(
                f"{where}: adds its input to its output, so it takes floating-point "
                f"values, but receives {dtype_name(flow.dtype, SpecError)} ids of shape "
                f"{flow.shape}",
                hint="put an embedding before it",
            )
        body, items, value_out = self.sequence(value, where, flow)
        out = _single(value_out, where, "its last item")
        with self._device():
            shortcut = projection(flow.shape, out.shape, where)
            module = Residual(body, shortcut)
        # The projection gives the body's shape by construction: only the dtype is left to learn.
        dtype = torch.promote_types(flow.dtype, out.dtype)
        return module, {"residual": items}, Flow(out.shape, dtype)

    def repeat(self, value: object, path: str, flow: Flow) -> Built:
        """``{repeat: {times: N, body: [items]}}``: N copies, each fed by the one before."""
        where = f"{path}.repeat"
        if not isinstance(value, Mapping) or set(value) != {"times", "body"}:
            raise SpecError(f"{where}: expected {{times: N, body: [bricks]}}, got {value!r}")
        times = repeat_times(value["times"], where)
        copies: OrderedDict[str, nn.Module] = OrderedDict()
        items: list[Any] = []
        for i in range(times):
            try:
                module, body_items, out = self.sequence(value["body"], f"{where}.body", flow)
                flow = _single(out, f"{where}.body", "its last item")
            except SpecError as err:
                raise SpecError(f"{err} (in copy {i + 1} of {times})", hint=err.hint) from err
            copies[str(i)] = module
            items.append({"sequential": body_items})
        return nn.Sequential(copies), {"sequential": items}, flow

    # -- bricks and families

    def brick(self, key: str, value: object, path: str, flow: Flow) -> Built:
        """A registered brick, family or activation, its sizes filled in from ``flow``."""
        registry, canonical = lookup(key, path)
        where = f"{path}.{canonical}"
        kwargs = _arguments(value, where)
        rule = registry.size_rule(canonical)
        check_input(rule, where, flow)
        fill_sizes(rule, kwargs, where, flow)
        module = self._construct(registry.get(canonical), rule, kwargs, where, str(flow.shape))
        out = self._probe(module, where, flow)
        first = [
            a for a in (rule.in_arg, rule.shape_arg, rule.dims_arg, rule.out_arg) if a in kwargs
        ]
        ordered = {a: kwargs[a] for a in first} | kwargs  # inferred and output sizes lead
        return module, {canonical: jsonable(ordered)}, out

    def merge(self, key: str, item: Item, refs: Sequence[Ref], flows: Sequence[Flow]) -> Built:
        """A merge (``concat``, ``add``, ``mul``) of the values ``from:`` names."""
        canonical = BRICKS.canonical(key)
        where = f"{item.path}.{canonical}"
        if len(flows) < 2:
            raise SpecError(f"{where}: merges two or more inputs; name them with from: [a, b]")
        kwargs = _arguments(item.value, where)
        shapes = [f.shape for f in flows]
        incoming = " and ".join(map(str, shapes))
        rule = BRICKS.size_rule(canonical)
        module = self._construct(BRICKS.get(canonical), rule, kwargs, where, incoming)
        check_merge(module, canonical, f"{item.path}.from", refs, shapes)
        return module, {canonical: jsonable(kwargs)}, self._probe_all(module, where, flows)

    def _construct(
        self,
        factory: Callable[..., Any],
        rule: SizeRule,
        kwargs: dict[str, Any],
        where: str,
        incoming: str,
    ) -> nn.Module:
        """``factory(**kwargs)`` on the builder's device, its errors as :class:`SpecError`."""
        check_arguments(factory, rule, kwargs, where)
        try:
            with self._device():
                module = factory(**kwargs)
        except BrickworkError as err:
            raise SpecError(f"{where}: {err} (incoming shape {incoming})", hint=err.hint) from err
        except Exception as err:  # a factory's own error, e.g. nn.Conv2d refusing its arguments
            raise SpecError(
                f"{where}: {type(err).__name__}: {err} (incoming shape {incoming})"
            ) from err
        if not isinstance(module, nn.Module):
            raise SpecError(f"{where}: built {type(module).__name__}, not an nn.Module")
        return module

    def _probe(self, module: nn.Module, where: str, flow: Flow) -> Value:
        """The value that leaves ``module`` fed ``flow``, learnt on ``meta`` tensors."""
        return self._probe_all(module, where, [flow])

    def _probe_all(self, module: nn.Module, where: str, flows: Sequence[Value]) -> Value:
        """The value that leaves ``module`` fed ``flows``: one flow, or one per tensor of an
        output of several (a split's)."""
        singles = [_single(f, where, "an input") for f in flows]
        try:
            out = probe_outputs(module, [(f.shape, f.dtype) for f in singles], where)
        except ShapeError as err:
            raise SpecError(str(err), hint="check the sizes against the incoming shape") from err
        for shape, _ in out if isinstance(out, list) else [out]:
            if any(size < 1 for size in shape):
                given = " and ".join(str(f.shape) for f in singles)
                raise SpecError(f"{where}: gives an empty output {shape} for input {given}")
        if isinstance(out, list):
            return tuple(Flow(shape, dtype) for shape, dtype in out)
        return Flow(*out)

    def _device(self) -> AbstractContextManager[Any]:
        """Where modules are constructed: the requested device, or PyTorch's default."""
        return self.device if self.device is not None else nullcontext()


def _single(value: Value, where: str, what: str) -> Flow:
    """The one flow of ``value``; an output of several must be picked from first."""
    if isinstance(value, Flow):
        return value
    picks = " or ".join(f"{what}.{i}" for i in range(len(value)))
    raise SpecError(
        f"{where}: {what} gives {len(value)} outputs ({', '.join(str(f.shape) for f in value)}); "
        f"pick one with from: {picks}",
        hint="name the item that gives them (name: parts) to pick from it (from: parts.0)",
    )


def _read(values: Mapping[str, Value], ref: Ref, where: str) -> Value:
    """The value a reference names, or the part of it ``name.0`` picks."""
    value = values[ref.name]
    if ref.part is None:
        return value
    count = 1 if isinstance(value, Flow) else len(value)
    if isinstance(value, Flow) or ref.part >= count:
        raise SpecError(
            f"{where}.from: {ref}: {ref.name} gives {count} output{'s' if count > 1 else ''}, "
            f"so its parts are {', '.join(f'{ref.name}.{i}' for i in range(count))}"
            if count > 1
            else f"{where}.from: {ref}: {ref.name} gives one output; write from: {ref.name}"
        )
    return value[ref.part]


def _with_wiring(normalised: dict[str, Any], item: Item) -> dict[str, Any]:
    """An item's normalised spec with its ``name:``, ``from:`` and ``use:`` as written."""
    if item.name is not None:
        normalised["name"] = item.name
    if item.sources is not None:
        written = [str(ref) for ref in item.sources]
        normalised["from"] = written[0] if len(written) == 1 else written
    return normalised


def _arguments(value: object, where: str) -> dict[str, Any]:
    """A brick's arguments as written (a copy: the spec is never changed)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: arguments must be a mapping such as {{out: 32}}, got {value!r}")
    return dict(value)
