"""Models from specs: a list of bricks, or a registered family, with every size inferred.

A spec is data (a dict, or YAML/JSON text or file)::

    input: [1, 28, 28]            # per-sample shape, no batch dimension
    model:
      - conv_block: {out: 32, kernel_size: 3, padding: 1, activation: lrelu}
      - flatten
      - dec_block: {out: 512}
      - linear: {out: 10}

or ``model: {cnn_classifier: {enc_sizes: [32, 64], dec_sizes: [1024, 512], n_classes: 10}}``.

The builder walks the spec with the current per-sample shape in hand. For each item it fills in
the argument that takes the incoming size (``in_features``, ``in_channels``, ``in_f``...), builds
the module on the requested device, and learns its output shape by running it on ``meta``
tensors. Containers: a list is sequential; ``{residual: [...]}`` adds the input to the branch's
output; ``{repeat: {times: N, body: [...]}}`` repeats a body; ``{sequential: [...]}`` groups
items. Any item may carry ``name:``.

Specs name only registered things: reading a spec never imports or runs code.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from brickwork.blocks import Residual
from brickwork.errors import (
    REQUIRED,
    BrickworkError,
    ShapeError,
    SpecError,
    arguments_of,
    positive_int,
    unknown_name_message,
)
from brickwork.files import atomic_write
from brickwork.layers import ACTIVATIONS
from brickwork.registry import (
    BRICKS,
    MODELS,
    Registry,
    SizeRule,
    closest_entry,
    normalize_name,
)
from brickwork.shapes import INPUT_DTYPES, dtype_name, parse_shape, probe_output

SPEC_KEYS = ("input", "input_dtype", "model", "output")
CONTAINERS = ("residual", "repeat", "sequential")
SPEC_ATTR = "_brickwork_spec"
"""Attribute under which a built model keeps its normalised spec (read by :func:`to_spec`)."""

RANK_NAMES = {1: "(F,)", 2: "(C, L)", 3: "(C, H, W)", 4: "(C, D, H, W)"}


@dataclass(frozen=True)
class _Flow:
    """What flows between items: the per-sample shape and dtype."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32


# ----------------------------------------------------------------------------- reading specs


def load_spec(source: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A spec as a dict, from a dict, YAML or JSON text, or a ``.yaml``/``.yml``/``.json`` file.

    YAML is read with the safe loader: tags that would build Python objects are refused.

    Raises:
        SpecError: a missing file, malformed YAML/JSON (with line and column), or a spec that is
            not a mapping.
    """
    if isinstance(source, Mapping):
        spec: object = copy.deepcopy(dict(source))
        where = "spec"
    elif isinstance(source, os.PathLike) or _looks_like_path(source):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        where = str(path)
        spec = _parse(path.read_text(encoding="utf-8"), where, is_json=path.suffix == ".json")
    elif isinstance(source, str):
        where = "spec text"
        spec = _parse(source, where, is_json=False)
    else:
        raise SpecError(
            f"spec must be a mapping, YAML/JSON text or a file path, got {type(source).__name__}"
        )
    if not isinstance(spec, dict):
        got = (
            f"the string {spec!r} (no file of that name exists)"
            if isinstance(spec, str)
            else type(spec).__name__
        )
        raise SpecError(
            f"{where}: a spec must be a mapping with 'model' (and 'input'), got {got}",
            hint="e.g. {'input': [1, 28, 28], 'model': [{'linear': {'out': 10}}]}",
        )
    return spec


def _looks_like_path(source: object) -> bool:
    if not isinstance(source, str) or "\n" in source:
        return False
    if source.endswith((".yaml", ".yml", ".json")):
        return True
    try:
        return Path(source).is_file()
    except OSError:  # e.g. a one-line JSON spec longer than a file name may be
        return False


def _parse(text: str, where: str, *, is_json: bool) -> object:
    if is_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{where}: line {err.lineno}, column {err.colno}: {err.msg}") from err
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = ""
        if err.context and err.context_mark is not None and err.problem:
            cm = err.context_mark
            context = f" ({err.context} that starts at line {cm.line + 1}, column {cm.column + 1})"
        raise SpecError(f"{where}: {at}{err.problem or err.context}{context}") from err
    except yaml.YAMLError as err:
        raise SpecError(f"{where}: {err}") from err


def save_spec(spec: Mapping[str, Any] | nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write a spec (or a built model's normalised spec) to ``path`` as YAML, or JSON for ``.json``.

    The file is written under a temporary name and renamed, so a failure never leaves half a file.
    """
    data = to_spec(spec) if isinstance(spec, nn.Module) else dict(spec)
    path = Path(path)
    if path.suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


# ----------------------------------------------------------------------------- building


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
    flow = _Flow(shape, INPUT_DTYPES[dtype])
    node = raw["model"]
    if isinstance(node, str):  # `model: cnn_classifier`: a family with its defaults
        node = {node: None}
    model: nn.Module
    normalised_model: Any
    if isinstance(node, list):
        model, normalised_model, out = builder.sequence(node, "model", flow)
    elif isinstance(node, Mapping):
        model, normalised_model, out = builder.item(node, "model", flow)
    else:
        raise SpecError(
            f"model: expected a list of bricks, a family name or {{family: {{arguments}}}}, "
            f"got {node!r}"
        )
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


def to_spec(model: nn.Module | Mapping[str, Any]) -> dict[str, Any]:
    """The normalised spec of a model, with every inferred size written out.

    ``build(to_spec(m))`` has the same ``state_dict`` keys and shapes as ``m``. Works for models
    made by :func:`build` and for brickwork families built in Python (``CNNClassifier(...)``);
    a spec given as a dict is normalised.

    Raises:
        SpecError: the model was not made by brickwork, so it has no spec.
    """
    if isinstance(model, Mapping):
        return to_spec(build(model, device="meta"))
    spec = getattr(model, SPEC_ATTR, None)
    if spec is not None:
        return dict(copy.deepcopy(spec))
    family_spec = getattr(model, "brickwork_spec", None)
    if callable(family_spec):
        return to_spec(build(family_spec(), device="meta"))
    raise SpecError(
        f"{type(model).__name__} was not built by brickwork, so it has no spec",
        hint="build it with brickwork.build(spec), or use brickwork.tree(model) to inspect it",
    )


def _input_shape(value: object) -> tuple[int, ...]:
    if value is None:
        raise SpecError(
            "input: the spec has no input shape, and one is needed to infer the sizes",
            hint="add e.g. `input: [1, 28, 28]` (one sample, no batch) or pass input_shape",
        )
    return parse_shape(value, "input", SpecError)


def describe_ranks(ranks: tuple[int, ...]) -> str:
    """``(3,)`` → ``"(C, H, W)"``: the per-sample shapes of those ranks, for messages."""
    return " or ".join(RANK_NAMES.get(r, f"rank {r}") for r in ranks)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class _Builder:
    def __init__(self, device: torch.device | None) -> None:
        self.device = device

    # -- containers

    def sequence(
        self, nodes: object, path: str, flow: _Flow
    ) -> tuple[nn.Sequential, list[Any], _Flow]:
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

    def item(self, node: object, path: str, flow: _Flow) -> tuple[nn.Module, Any, _Flow]:
        """Build one item; returns the module, its normalised spec and the outgoing flow."""
        name: str | None = None
        if isinstance(node, str):
            key, value = node, None
        elif isinstance(node, Mapping):
            rest = dict(node)
            if "name" in rest:
                name = _item_name(rest.pop("name"), path)
            if len(rest) != 1:
                raise SpecError(
                    f"{path}: an item is one brick (optionally with name:), got keys {list(node)}",
                    hint="write each brick as its own list item: - conv_block: {out: 32}",
                )
            ((key, value),) = rest.items()
            if not isinstance(key, str):
                raise SpecError(f"{path}: brick names are strings, got {key!r}")
        else:
            raise SpecError(
                f"{path}: expected a brick name or {{brick: {{arguments}}}}, got {node!r}"
            )

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

    def residual(
        self, value: object, path: str, flow: _Flow
    ) -> tuple[nn.Module, dict[str, Any], _Flow]:
        if not flow.dtype.is_floating_point:
            raise SpecError(
                f"{path}.residual: adds its input to its output, so it takes floating-point "
                f"values, but receives {_dtype_name(flow.dtype)} ids of shape {flow.shape}",
                hint="put an embedding before it",
            )
        body, items, out = self.sequence(value, f"{path}.residual", flow)
        with self._device():
            module = Residual(body, _projection(flow.shape, out.shape, f"{path}.residual"))
        self._probe(module, f"{path}.residual", flow)
        return module, {"residual": items}, out

    def repeat(
        self, value: object, path: str, flow: _Flow
    ) -> tuple[nn.Module, dict[str, Any], _Flow]:
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

    def brick(
        self, key: str, value: object, path: str, flow: _Flow
    ) -> tuple[nn.Module, dict[str, Any], _Flow]:
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
        self._check_input(rule, where, flow)
        _fill_sizes(rule, kwargs, where, flow)
        _check_arguments(factory, rule, kwargs, where)
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

    def _check_input(self, rule: SizeRule, where: str, flow: _Flow) -> None:
        if rule.int_input and flow.dtype.is_floating_point:
            raise SpecError(
                f"{where}: takes integer token ids but receives {_dtype_name(flow.dtype)} "
                f"values of shape {flow.shape}",
                hint="put it first and set `input_dtype: long` in the spec",
            )
        if not (rule.int_input or rule.any_dtype or flow.dtype.is_floating_point):
            raise SpecError(
                f"{where}: takes floating-point values but receives {_dtype_name(flow.dtype)} "
                f"ids of shape {flow.shape}",
                hint="turn ids into vectors first with an embedding",
            )
        if rule.ranks is not None and len(flow.shape) not in rule.ranks:
            flat = len(flow.shape) == 1
            raise SpecError(
                f"{where}: needs input of shape {describe_ranks(rule.ranks)} "
                f"but receives {flow.shape}"
                + (
                    " (it comes after a flatten or a linear layer)"
                    if flat and min(rule.ranks) > 1
                    else ""
                ),
                hint="move it before the flatten, or use a brick for this input such as linear"
                if flat
                else None,
            )
        if rule.in_arg is not None and not flow.shape:
            raise SpecError(
                f"{where}: needs at least one input dimension, receives a scalar per sample"
            )

    def _probe(self, module: nn.Module, where: str, flow: _Flow) -> _Flow:
        try:
            shape, dtype = probe_output(module, flow.shape, where, flow.dtype)
        except ShapeError as err:
            raise SpecError(str(err), hint="check the sizes against the incoming shape") from err
        if any(size < 1 for size in shape):
            raise SpecError(f"{where}: gives an empty output {shape} for input {flow.shape}")
        return _Flow(shape, dtype)

    def _device(self) -> AbstractContextManager[Any]:
        """Where modules are constructed: the requested device, or PyTorch's default."""
        return self.device if self.device is not None else nullcontext()


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


def _fill_sizes(rule: SizeRule, kwargs: dict[str, Any], where: str, flow: _Flow) -> None:
    """Set the arguments inferred from the incoming shape, and map ``out`` to its argument."""
    if "out" in kwargs:
        if rule.out_arg is None:
            raise SpecError(f"{where}.out: this brick has no output size to set")
        if rule.out_arg in kwargs:
            raise SpecError(f"{where}: give either out or {rule.out_arg}, not both")
        kwargs[rule.out_arg] = kwargs.pop("out")
    if rule.out_arg is not None and rule.out_arg in kwargs:
        context = f" (incoming shape {flow.shape})"
        positive_int(kwargs[rule.out_arg], f"{where}.out:", SpecError, context=context)
    inferred: dict[str, Any] = {}
    if rule.in_arg is not None:
        inferred[rule.in_arg] = math.prod(flow.shape) if rule.flat else flow.shape[rule.in_dim]
    if rule.shape_arg is not None:
        inferred[rule.shape_arg] = list(flow.shape[1:])
    if rule.dims_arg is not None:
        inferred[rule.dims_arg] = max(1, len(flow.shape) - 1)  # (F,) and (C, L) are both 1-d
    for arg, value in inferred.items():
        if arg in kwargs:
            given = kwargs[arg]
            given = list(given) if isinstance(given, tuple | list) else given
            if arg == "normalized_shape" and isinstance(given, list) and len(given) == 1:
                given = given[0]
            if given != value:
                raise SpecError(
                    f"{where}.{arg}: {kwargs[arg]!r} disagrees with the incoming shape "
                    f"{flow.shape}, which gives {value!r}",
                    hint=f"leave {arg} out: brickwork infers it",
                )
        kwargs[arg] = value


def _check_arguments(factory: Any, rule: SizeRule, kwargs: dict[str, Any], where: str) -> None:
    arguments = arguments_of(factory)
    if arguments is None:
        return
    filled = (rule.in_arg, rule.shape_arg, rule.dims_arg)
    for key in kwargs:
        if key not in dict(arguments):
            shown = [("out" if n == rule.out_arg else n) for n, _ in arguments if n not in filled]
            raise SpecError(
                f"{where}: {unknown_name_message('argument', str(key), shown)}",
                hint="name an item beside its brick, not among its arguments: "
                "`- {conv_block: {out: 32}, name: conv1}`"
                if key == "name"
                else None,
            )
    for name, default in arguments:
        if default is REQUIRED and name not in kwargs:
            raise SpecError(
                f"{where}: missing argument {'out' if name == rule.out_arg else name!r}"
            )


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
