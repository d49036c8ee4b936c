"""``build``: a spec walked item by item with the per-sample shape in hand, every size inferred.

For each item the builder fills in the argument that takes the incoming size (``in_features``,
``in_channels``, ``in_f``...), builds the module on the requested device, and learns its output
shape by running it on ``meta`` tensors. Containers: a list is sequential; ``{residual: [...]}``
adds the input to the branch's output; ``{repeat: {times: N, body: [...]}}`` repeats a body;
``{sequential: [...]}`` groups items. Any item may carry ``name:``.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
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
    positive_int,
    unknown_name_message,
)
from brickwork.layers import ACTIVATIONS
from brickwork.registry import BRICKS, MODELS, Registry, closest_entry, normalize_name
from brickwork.shapes import DTYPES, dtype_name, parse_shape, probe_output
from brickwork.spec.io import load_spec
from brickwork.spec.sizes import Flow, check_arguments, check_input, fill_sizes

SPEC_KEYS = ("input", "input_dtype", "model", "output")
"""The keys a spec may have."""
CONTAINERS = ("residual", "repeat", "sequential")
"""The item names that hold other items rather than name a registered brick."""
SPEC_ATTR = "_brickwork_spec"
"""Attribute under which a built model keeps its normalised spec (read by :func:`to_spec`)."""

Built = tuple[nn.Module, Any, Flow]
"""What building an item gives: the module, its normalised spec, and the outgoing flow."""


def build(
    spec: Mapping[str, Any] | str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    device: torch.device | str | None = None,
) -> nn.Module:
    """Build a plain ``nn.Module`` from a spec, inferring every size from the input shape.

    Args:
        spec: a dict, YAML or JSON text, or the path of a ``.yaml``/``.yml``/``.json`` file.
        input_shape: per-sample input shape (no batch dimension); overrides the spec's ``input``.
        device: where the parameters are created (``"cpu"``, ``"cuda"``, ``"meta"`` for a model
            that takes no memory). Default: PyTorch's default device. Parameters are initialised
            as PyTorch initialises those modules, ready for an optimizer; there are no lazy modules.

    Returns:
        The model: an ``nn.Sequential`` for a brick list, the family's class for a family.
        :func:`to_spec` gives back its normalised spec.

    Raises:
        SpecError: anything that does not fit, with the spec path (``model[3].conv_block.out``),
            the incoming shape and what would fit.
    """
    raw = load_spec(spec)
    unknown = [key for key in raw if key not in SPEC_KEYS]
    if unknown:
        raise SpecError(unknown_name_message("spec key", str(unknown[0]), SPEC_KEYS))
    if "model" not in raw:
        raise SpecError("spec has no 'model': give a list of bricks or {family: {arguments}}")
    shape = _input_shape(raw.get("input") if input_shape is None else input_shape)
    dtype = dtype_name(raw.get("input_dtype", "float32"), SpecError)
    builder = _Builder(torch.device(device) if device is not None else None)
    model, normalised_model, out = builder.model(raw["model"], Flow(shape, DTYPES[dtype]))
    if "output" in raw and list(raw["output"] or []) != list(out.shape):
        raise SpecError(
            f"output: the spec says {raw['output']} but the model gives {list(out.shape)}",
            hint="remove 'output' from the spec to accept the inferred shape",
        )
    normalised: dict[str, Any] = {"input": list(shape)}
    if dtype != "float32":
        normalised["input_dtype"] = dtype
    normalised["model"] = normalised_model
    normalised["output"] = list(out.shape)
    setattr(model, SPEC_ATTR, normalised)
    return model


def _input_shape(value: object) -> tuple[int, ...]:
    """The spec's per-sample input shape; one is needed to infer the sizes."""
    if value is None:
        raise SpecError(
            "input: the spec has no input shape, and one is needed to infer the sizes",
            hint="add e.g. `input: [1, 28, 28]` (one sample, no batch) or pass input_shape",
        )
    return parse_shape(value, "input", SpecError)


class _Builder:
    """Builds the modules of a spec, walking it with the incoming shape in hand.

    Sizes flow as values: every method takes the :class:`Flow` that reaches its item (the
    per-sample shape and dtype) and returns what it built (:data:`Built`): the module, the item's
    normalised spec (each inferred size written out) and the flow that leaves it, which the
    caller hands to the next item. A brick's sizes come from its :class:`SizeRule` and the
    incoming flow (:func:`fill_sizes`); the flow that leaves it is learnt by running it on
    ``meta`` tensors (:meth:`_probe`). Containers thread the flow through their items; a repeat
    builds each copy from the flow the previous copy gave. The builder holds nothing but the
    device, so building one spec never changes another's.

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
            return self.item(node, "model", flow)
        raise SpecError(
            f"model: expected a list of bricks, a family name or {{family: {{arguments}}}}, "
            f"got {node!r}"
        )

    # -- containers

    def sequence(self, nodes: object, path: str, flow: Flow) -> Built:
        """A list of items, each fed by the one before: an ``nn.Sequential``."""
        if not isinstance(nodes, list) or not nodes:
            raise SpecError(f"{path}: expected a non-empty list of bricks, got {nodes!r}")
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        normalised: list[Any] = []
        for i, node in enumerate(nodes):
            item_path = f"{path}[{i}]"
            module, item, flow = self.item(node, item_path, flow)
            name = str(item.get("name", i)) if isinstance(item, dict) else str(i)
            if name in modules:
                raise SpecError(f"{item_path}: name {name!r} is used twice in {path}")
            modules[name] = module
            normalised.append(item)
        return nn.Sequential(modules), normalised, flow

    def item(self, node: object, path: str, flow: Flow) -> Built:
        """One item: a brick name, or ``{brick: {arguments}}`` (optionally with ``name:``)."""
        key, value, name = _parse_item(node, path)
        container = normalize_name(key)
        module: nn.Module
        normalised: dict[str, Any]
        if container == "sequential":
            module, items, out = self.sequence(value, f"{path}.sequential", flow)
            normalised = {"sequential": items}
        elif container == "residual":
            module, normalised, out = self.residual(value, path, flow)
        elif container == "repeat":
            module, normalised, out = self.repeat(value, path, flow)
        else:
            module, normalised, out = self.brick(key, value, path, flow)
        if name is not None:
            normalised["name"] = name
        return module, normalised, out

    def residual(self, value: object, path: str, flow: Flow) -> Built:
        """``{residual: [items]}``: the items' output plus the input (projected if need be)."""
        if not flow.dtype.is_floating_point:
            raise SpecError(
                f"{path}.residual: adds its input to its output, so it takes floating-point "
                f"values, but receives {dtype_name(flow.dtype, SpecError)} ids of shape "
                f"{flow.shape}",
                hint="put an embedding before it",
            )
        body, items, out = self.sequence(value, f"{path}.residual", flow)
        with self._device():
            module = Residual(body, _projection(flow.shape, out.shape, f"{path}.residual"))
        self._probe(module, f"{path}.residual", flow)
        return module, {"residual": items}, out

    def repeat(self, value: object, path: str, flow: Flow) -> Built:
        """``{repeat: {times: N, body: [items]}}``: N copies, each fed by the one before."""
        where = f"{path}.repeat"
        if not isinstance(value, Mapping) or set(value) != {"times", "body"}:
            raise SpecError(f"{where}: expected {{times: N, body: [bricks]}}, got {value!r}")
        times = positive_int(value["times"], f"{where}.times:", SpecError)
        copies: OrderedDict[str, nn.Module] = OrderedDict()
        items: list[Any] = []
        for i in range(times):
            try:
                module, body_items, flow = self.sequence(value["body"], f"{where}.body", flow)
            except SpecError as err:
                raise SpecError(f"{err} (in copy {i + 1} of {times})", hint=err.hint) from err
            copies[str(i)] = module
            items.append({"sequential": body_items})
        return nn.Sequential(copies), {"sequential": items}, flow

    # -- bricks and families

    def brick(self, key: str, value: object, path: str, flow: Flow) -> Built:
        """A registered brick, family or activation, its sizes filled in from ``flow``."""
        registry, canonical = _lookup(key, path)
        where = f"{path}.{canonical}"
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise SpecError(
                f"{where}: arguments must be a mapping such as {{out: 32}}, got {value!r}"
            )
        kwargs = dict(value)
        factory = registry.get(canonical)
        rule = registry.size_rule(canonical)
        check_input(rule, where, flow)
        fill_sizes(rule, kwargs, where, flow)
        check_arguments(factory, rule, kwargs, where)
        try:
            with self._device():
                module = factory(**kwargs)
        except BrickworkError as err:
            raise SpecError(f"{where}: {err} (incoming shape {flow.shape})", hint=err.hint) from err
        except Exception as err:  # a factory's own error, e.g. nn.Conv2d refusing its arguments
            raise SpecError(
                f"{where}: {type(err).__name__}: {err} (incoming shape {flow.shape})"
            ) from err
        if not isinstance(module, nn.Module):
            raise SpecError(f"{where}: built {type(module).__name__}, not an nn.Module")
        out = self._probe(module, where, flow)
        first = [
            a for a in (rule.in_arg, rule.shape_arg, rule.dims_arg, rule.out_arg) if a in kwargs
        ]
        ordered = {a: kwargs[a] for a in first} | kwargs  # inferred and output sizes lead
        return module, {canonical: _jsonable(ordered)}, out

    def _probe(self, module: nn.Module, where: str, flow: Flow) -> Flow:
        """The flow that leaves ``module``, learnt on ``meta`` tensors."""
        try:
            shape, dtype = probe_output(module, flow.shape, where, flow.dtype)
        except ShapeError as err:
            raise SpecError(str(err), hint="check the sizes against the incoming shape") from err
        if any(size < 1 for size in shape):
            raise SpecError(f"{where}: gives an empty output {shape} for input {flow.shape}")
        return Flow(shape, dtype)

    def _device(self) -> AbstractContextManager[Any]:
        """Where modules are constructed: the requested device, or PyTorch's default."""
        return self.device if self.device is not None else nullcontext()


def _parse_item(node: object, path: str) -> tuple[str, object, str | None]:
    """An item's brick name, its arguments (``None`` if not given) and its ``name:``."""
    if isinstance(node, str):
        return node, None, None
    if not isinstance(node, Mapping):
        raise SpecError(f"{path}: expected a brick name or {{brick: {{arguments}}}}, got {node!r}")
    rest = dict(node)
    name = _item_name(rest.pop("name"), path) if "name" in rest else None
    if len(rest) != 1:
        raise SpecError(
            f"{path}: an item is one brick (optionally with name:), got keys {list(node)}",
            hint="write each brick as its own list item: - conv_block: {out: 32}",
        )
    ((key, value),) = rest.items()
    if not isinstance(key, str):
        raise SpecError(f"{path}: brick names are strings, got {key!r}")
    return key, value, name


def _item_name(name: object, path: str) -> str:
    if not isinstance(name, str) or not name or "." in name:
        raise SpecError(f"{path}.name: must be a non-empty string without '.', got {name!r}")
    return name


def _lookup(key: str, path: str) -> tuple[Registry[Any], str]:
    """The registry and canonical name of a brick, family or activation (bricks win)."""
    for registry in (BRICKS, MODELS, ACTIVATIONS):
        if key in registry:
            return registry, registry.canonical(key)
    names = sorted({*BRICKS.names(), *MODELS.names(), *ACTIVATIONS.names(), *CONTAINERS})
    match = closest_entry(key, {normalize_name(n): n for n in names})
    suggestion = f"; did you mean {match!r}?" if match else ";"
    raise SpecError(
        f"{path}: unknown brick {key!r}{suggestion} valid: {', '.join(names)}",
        hint="`brickwork bricks` lists them with their arguments",
    )


def _jsonable(value: Any) -> Any:
    """``value`` with tuples turned into lists, as JSON and YAML write them."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _projection(
    in_shape: tuple[int, ...], out_shape: tuple[int, ...], where: str
) -> nn.Module | None:
    """The shortcut that maps a residual's input shape to its branch's output shape.

    ``None`` (identity) when the shapes agree; a ``Linear`` for features; otherwise a 1×1
    convolution with the stride that gives the branch's spatial size.
    """
    if in_shape == out_shape:
        return None
    fail = SpecError(
        f"{where}: the branch maps {in_shape} to {out_shape}, which no 1×1 projection of the input "
        "can match",
        hint="keep the rank, and shrink H and W only by an integer stride",
    )
    if len(in_shape) != len(out_shape):
        raise fail
    if len(in_shape) == 1:
        return nn.Linear(in_shape[0], out_shape[0], bias=False)
    conv = {2: nn.Conv1d, 3: nn.Conv2d, 4: nn.Conv3d}.get(len(in_shape))
    if conv is None:
        raise fail
    strides: list[int] = []
    for size_in, size_out in zip(in_shape[1:], out_shape[1:], strict=True):
        stride = math.ceil(size_in / size_out)
        if (size_in - 1) // stride + 1 != size_out:
            raise fail
        strides.append(stride)
    per_dim: Any = tuple(strides)  # one stride per spatial dimension
    shortcut: nn.Module = conv(in_shape[0], out_shape[0], kernel_size=1, stride=per_dim, bias=False)
    return shortcut
