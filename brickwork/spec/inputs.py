"""A spec's inputs and outputs: ``input``/``input_dtype`` for one input, ``inputs:`` for named ones.

``input: [3, 32, 32]`` (and ``input_dtype: long`` for ids) is one input, named ``input``.
``inputs:`` names several, in the order a model takes them, each a shape or
``{shape: [...], dtype: ...}``::

    inputs:
      image: [3, 64, 64]
      tokens: {shape: [16], dtype: long}

Every shape goes through the one shape parser (:func:`brickwork.shapes.parse_shape`), which
refuses sizes too big for a tensor. The helpers here read a spec (given or normalised) for the
code that feeds a model: export, summary, training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from brickwork.errors import SpecError
from brickwork.shapes import DTYPES, check_numel, dtype_name, parse_shape
from brickwork.spec.graph import Graph, Outputs, Ref
from brickwork.spec.items import INPUT, check_name
from brickwork.spec.sizes import Flow, Value


@dataclass(frozen=True)
class SpecInput:
    """One input of a spec's model.

    Attributes:
        name: its name (``input`` for a spec's one ``input:``).
        shape: one sample's shape, no batch dimension.
        dtype: its dtype (``float32``; ``int64`` for token ids).
    """

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32


def spec_inputs(
    spec: Mapping[str, Any], input_shape: Sequence[int] | None = None
) -> list[SpecInput]:
    """The inputs a spec's model takes, in order.

    Args:
        spec: a spec (as loaded) or a normalised one.
        input_shape: overrides the shape of a spec's only input.

    Raises:
        SpecError: no input shape, both ``input`` and ``inputs``, a bad name, shape or dtype, or
            ``input_shape`` for a model of several inputs.
    """
    if "inputs" not in spec:
        value = spec.get("input") if input_shape is None else input_shape
        if value is None:
            raise SpecError(
                "input: the spec has no input shape, and one is needed to infer the sizes",
                hint="add e.g. `input: [1, 28, 28]` (one sample, no batch) or pass input_shape",
            )
        dtype = DTYPES[dtype_name(spec.get("input_dtype", "float32"), SpecError)]
        return [SpecInput(INPUT, parse_shape(value, "input", SpecError), dtype)]
    if "input" in spec or "input_dtype" in spec:
        raise SpecError(
            "inputs: the spec has both input and inputs; give one input as `input:` or name "
            "each in `inputs:`"
        )
    given = spec["inputs"]
    if not isinstance(given, Mapping) or not given:
        raise SpecError(
            f"inputs: expected a mapping of names to shapes, such as {{image: [3, 32, 32]}}, "
            f"got {given!r}"
        )
    inputs = [_named_input(name, value) for name, value in given.items()]
    if input_shape is not None:
        if len(inputs) != 1:
            raise SpecError(
                f"input_shape: one shape was given, but the model takes {len(inputs)} inputs "
                f"({', '.join(i.name for i in inputs)}), each with its shape in the spec's inputs"
            )
        shape = parse_shape(input_shape, "input_shape", SpecError)
        inputs = [SpecInput(inputs[0].name, shape, inputs[0].dtype)]
    return inputs


def _named_input(name: object, value: object) -> SpecInput:
    where = f"inputs.{name}"
    name = check_name(name, where)
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("shape", "dtype")]
        if unknown or "shape" not in value:
            raise SpecError(
                f"{where}: expected a shape or {{shape: [...], dtype: ...}}, got {dict(value)!r}"
            )
        dtype = DTYPES[dtype_name(value.get("dtype", "float32"), SpecError)]
        return SpecInput(name, parse_shape(value["shape"], f"{where}.shape", SpecError), dtype)
    return SpecInput(name, parse_shape(value, where, SpecError))


def normal_inputs(inputs: Sequence[SpecInput], named: bool) -> dict[str, Any]:
    """The inputs as a normalised spec writes them: ``input`` (and ``input_dtype`` when not
    float32), or ``inputs`` when the spec named them."""
    if not named:
        (one,) = inputs
        dtype = dtype_name(one.dtype)
        return {"input": list(one.shape)} | ({"input_dtype": dtype} if dtype != "float32" else {})
    return {
        "inputs": {
            i.name: list(i.shape)
            if i.dtype == torch.float32
            else {"shape": list(i.shape), "dtype": dtype_name(i.dtype)}
            for i in inputs
        }
    }


def with_input_shape(spec: Mapping[str, Any], shape: Sequence[int]) -> dict[str, Any]:
    """A copy of ``spec`` whose only input has ``shape`` (a dataset's images, say).

    Raises:
        SpecError: the spec's model takes several inputs.
    """
    if "inputs" not in spec:
        return {**spec, "input": list(shape)}
    (one,) = spec_inputs(spec, shape)  # refuses a model of several inputs
    given = spec["inputs"][one.name]
    entry = {**given, "shape": list(shape)} if isinstance(given, Mapping) else list(shape)
    return {**spec, "inputs": {one.name: entry}}


def example_inputs(
    spec: Mapping[str, Any], batch_size: int, device: torch.device | str = "meta"
) -> tuple[torch.Tensor, ...]:
    """Empty tensors of each input's batched shape and dtype, in order (``meta``: no memory).

    Raises:
        SpecError: a batch too big for a tensor.
    """
    inputs = spec_inputs(spec)
    for i in inputs:
        check_numel((batch_size, *i.shape), f"inputs.{i.name}: a batch of {batch_size}", SpecError)
    return tuple(torch.empty((batch_size, *i.shape), dtype=i.dtype, device=device) for i in inputs)


def describe_io(spec: Mapping[str, Any]) -> str:
    """``"input (3, 32, 32) -> output (10,)"``, or for a graph of several,
    ``"inputs image (3, 64, 64), features (8,) -> outputs logits (10,), box (4,)"``."""
    inputs = spec_inputs(spec)
    if len(inputs) == 1 and "inputs" not in spec:
        left = f"input {inputs[0].shape}"
    else:
        left = "inputs " + ", ".join(f"{i.name} {i.shape}" for i in inputs)
    output = spec["output"]
    if isinstance(output, dict):
        right = "outputs " + ", ".join(f"{k} {tuple(v)}" for k, v in output.items())
    elif output and isinstance(output[0], list):
        right = "outputs " + ", ".join(str(tuple(v)) for v in output)
    else:
        right = f"output {tuple(output)}"
    return f"{left} -> {right}"


def output_shapes(model: nn.Module, out: Value) -> Any:
    """The output's per-sample shape as a normalised spec writes it: ``[10]``; ``[[10], [4]]``
    for a tuple; ``{logits: [10], box: [4]}`` for a dict."""
    if isinstance(out, Flow):
        return list(out.shape)
    if isinstance(model, Graph) and isinstance(model.outputs, dict):
        return {key: list(f.shape) for key, f in zip(model.outputs, out, strict=True)}
    return [list(f.shape) for f in out]


def written_outputs(outputs: Outputs) -> Any:
    if isinstance(outputs, Ref):
        return str(outputs)
    if isinstance(outputs, tuple):
        return [str(ref) for ref in outputs]
    return {key: str(ref) for key, ref in outputs.items()}
