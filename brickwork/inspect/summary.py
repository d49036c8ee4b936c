"""The model summary: shapes, parameters, MACs and training memory, meta first.

:func:`summary` runs a copy of the model once (:mod:`~brickwork.inspect.inspection`): on meta
inputs, with nothing computed, or for real when an op needs values; and gathers what the run
recorded (:mod:`~brickwork.inspect.meta_run`) into a :class:`Summary` of :class:`SummaryRow` rows
and totals; :mod:`~brickwork.inspect.render` turns it into text. The user's model is left exactly
as it was: never hooked, and what a real run writes is put back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from brickwork.errors import ArgumentError, ConfigError, positive_int, unknown_name_message
from brickwork.inspect.inputs import Inputs, make_inputs, needs_input
from brickwork.inspect.inspection import Inspection, RunMode
from brickwork.inspect.meta_copy import (
    numel,
    type_name,
    unique_buffers,
    unwrap_compiled,
)
from brickwork.inspect.meta_run import MetaRun, shapes_of
from brickwork.inspect.render import render, summary_table, summary_totals
from brickwork.inspect.rows import SummaryRow, fill_params
from brickwork.inspect.training_memory import activation_bytes, weight_bytes
from brickwork.registry import MODELS
from brickwork.shapes import parse_dtype, parse_shape
from brickwork.spec import Graph, build, example_inputs, spec_inputs, to_spec

__all__ = [
    "COLUMNS",
    "Summary",
    "SummaryRow",
    "resolve_model",
    "spec_input_data",
    "summary",
]

COLUMNS = ("input_shape", "output_shape", "params", "trainable", "macs")
"""The columns a summary table can show."""


@dataclass
class Summary:
    """What :func:`summary` found. ``str(summary)`` renders a table; ``to_dict()`` is JSON-ready.

    Byte counts are for the model's own dtypes at ``batch_size``. ``train_memory_bytes`` is what
    one fp32 training step with Adam keeps at its peak
    (:mod:`~brickwork.inspect.training_memory`): parameters, their gradients and Adam's two
    states for each trainable parameter, buffers, the tensors autograd saves for backward and
    the input batch.
    ``run`` is ``"meta"`` (nothing computed), ``"real"`` (on the model's weights) or ``"none"``
    (no input given: parameters only), and ``run_reason`` says why a real run was used, or why
    one could not be. ``uncounted_ops`` names
    each op that ran with no MAC formula (its calls), so that ``macs`` is never short silently.
    ``notes`` say what the summary chose for the user (a batch of 2 rather than 1...).
    """

    model: str
    rows: list[SummaryRow]
    batch_size: int
    input_shapes: Any
    depth: int
    columns: tuple[str, ...]
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    input_bytes: int = 0
    forward_activation_bytes: int = 0
    saved_activation_bytes: int = 0
    train_memory_bytes: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    run: str = "meta"
    run_reason: str | None = None
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable data."""
        data = asdict(self)
        data.pop("extra")
        return json.loads(json.dumps(data))  # type: ignore[no-any-return]

    def __str__(self) -> str:
        """The table and the totals as text (:func:`~brickwork.inspect.render.render`)."""
        return render(self)

    def __rich__(self) -> Any:
        """The table and the totals, for a rich console."""
        return summary_table(self), summary_totals(self)


def summary(
    model_or_spec: nn.Module | Mapping[str, Any] | str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    input_data: Any = None,
    batch_size: int | None = None,
    depth: int = 3,
    columns: Sequence[str] = ("output_shape", "params", "macs"),
    input_dtype: torch.dtype | str | None = None,
    run: RunMode = "auto",
) -> Summary:
    """Summarise a model, on meta tensors first.

    Args:
        model_or_spec: an ``nn.Module`` (left untouched), a spec (dict, YAML/JSON text or file)
            or the name of a registered family; specs and families are built on ``meta``.
            A ``torch.compile`` wrapper is summarised as the module it wraps; a TorchScript
            module runs for real.
        input_shape: shape of one sample, no batch dimension (``(1, 28, 28)``). A spec's own
            ``input`` is used when this is ``None``. Given neither this nor ``input_data``, a
            model whose forward takes nothing runs so, and any other is summarised without
            running: its module tree and parameters only (``run="none"``).
        input_data: instead of ``input_shape``: a tensor, a tuple of tensors (positional
            arguments) or a dict of them (keyword arguments, such as a tokenizer's
            ``input_ids`` and ``attention_mask``), with their batch dimension. Real tensors are
            used as they are by a real run; ``meta`` tensors stand for a shape and dtype.
        batch_size: batch size for ``input_shape``. Default 1, or 2 when batch 1 fails in
            training mode (batch norm over a single value per channel); a note says so.
        depth: deepest row to show; the model is depth 0. Default 3.
        columns: any of ``input_shape``, ``output_shape``, ``params``, ``trainable``, ``macs``.
        input_dtype: dtype of an ``input_shape`` input (``torch.long`` for token ids); default
            float32, or the spec's ``input_dtype``.
        run: ``"auto"`` (default): on meta, and again on real tensors when an op needs values
            (``.item()``, ``nonzero``...); ``"meta"``: meta only; ``"real"``: on the model's
            weights and device only. Either way the model is left as it was.

    Returns:
        A :class:`Summary`. When the forward fails, it holds the rows up to the failing module and
        ``error`` names that module and the shapes it received.
    """
    for column in columns:
        if column not in COLUMNS:
            raise ConfigError(unknown_name_message("summary column", column, COLUMNS))
    batch = 1 if batch_size is None else positive_int(batch_size, "batch_size")
    model, input_shape, dtype = resolve_model(model_or_spec, input_shape, input_dtype)
    given = input_data if input_shape is not None else spec_input_data(model, input_data, batch)
    if input_shape is None and given is None:
        if needs_input(model):
            return parameters_only(model, depth, columns)
        given = ()  # a forward that takes nothing
    inputs = make_inputs(input_shape, given, batch, dtype)
    with Inspection(model, inputs, run) as inspection:
        watched = inspection.forward()
    notes = []
    if batch_size is None and input_data is None and _one_is_too_few(watched):
        notes.append(
            "batch 2: batch 1 fails in training mode (batch norm needs more than one value per "
            "channel); pass batch_size to choose"
        )
        given = None if input_shape is not None else spec_input_data(model, None, 2)
        inputs = make_inputs(input_shape, given, 2, dtype)
        with Inspection(model, inputs, run) as inspection:
            watched = inspection.forward()
    result = _gather(inspection, watched, inputs)
    result.model, result.depth = type_name(inspection.model), depth
    result.columns = tuple(columns)
    result.rows = [row for row in watched.rows if row.depth <= depth]
    result.notes = notes
    return result


NO_INPUT_NOTE = (
    "no input given: parameters only (pass input_shape or input_data for shapes, MACs and memory)"
)


def parameters_only(model: nn.Module, depth: int, columns: Sequence[str]) -> Summary:
    """The summary of a model given no input: its module tree with parameter counts, no run
    (``run="none"``, no shapes, no MACs), as ``torchinfo.summary(model)`` without input shows.

    Args:
        model: the user's model (only read).
        depth: deepest row to show.
        columns: the table's columns.
    """
    model = unwrap_compiled(model)
    rows = []
    for path, module in model.named_modules():
        depth_of = path.count(".") + 1 if path else 0
        if depth_of > depth:
            continue
        row = SummaryRow(
            path=path,
            type=type_name(module),
            depth=depth_of,
            label=path.rpartition(".")[2],
            is_leaf=not module._modules,
        )
        row.module = module  # type: ignore[attr-defined]  # dropped by fill_params
        rows.append(row)
    fill_params(rows)
    params = list(model.parameters())
    n_params = sum(numel(p) for p in params)
    trainable = sum(numel(p) for p in params if p.requires_grad)
    return Summary(
        model=type_name(model),
        rows=rows,
        batch_size=0,
        input_shapes=None,
        depth=depth,
        columns=tuple(columns),
        total_params=n_params,
        trainable_params=trainable,
        non_trainable_params=n_params - trainable,
        param_bytes=sum(numel(p) * p.element_size() for p in params if numel(p)),
        buffer_bytes=sum(b.numel() * b.element_size() for b in unique_buffers(model)),
        run="none",
        notes=[NO_INPUT_NOTE],
    )


def _one_is_too_few(run: MetaRun) -> bool:
    """The run failed because batch norm in training mode got one value per channel."""
    return run.exception is not None and "more than 1 value per channel" in str(run.exception)


def _gather(inspection: Inspection, run: MetaRun, inputs: Inputs) -> Summary:
    """The totals of a run: parameters, MACs, bytes, the run used and the error."""
    params, buffers = run.weights  # the copy's, which the run ran
    n_params = trainable = param_bytes = trainable_bytes = 0
    for p in params:
        n = numel(p)
        size = n * p.element_size() if n else 0
        n_params, param_bytes = n_params + n, param_bytes + size
        if p.requires_grad:
            trainable, trainable_bytes = trainable + n, trainable_bytes + size
    buffer_bytes = sum(b.numel() * b.element_size() for b in buffers)
    args, kwargs = inspection.args, inspection.kwargs
    return Summary(
        model="",
        rows=[],
        batch_size=inputs.batch,
        input_shapes=shapes_of((*args, kwargs) if kwargs else args),
        depth=0,
        columns=(),
        total_params=n_params,
        trainable_params=trainable,
        non_trainable_params=n_params - trainable,
        macs=run.root_macs,
        param_bytes=param_bytes,
        buffer_bytes=buffer_bytes,
        input_bytes=inputs.nbytes,
        forward_activation_bytes=run.output_bytes,
        saved_activation_bytes=run.saved_bytes,
        train_memory_bytes=weight_bytes(param_bytes, trainable_bytes, buffer_bytes)
        + activation_bytes(run.held_bytes((args, kwargs))),
        error=run.error,
        run=inspection.kind,
        run_reason=inspection.reason,
        uncounted_ops=dict(run.uncounted),
    )


def spec_input_data(model: nn.Module, input_data: Any, batch_size: int) -> Any:
    """``input_data`` as given; else, for a model a graph spec built, a meta batch of each of
    its inputs, in order (other models need ``input_shape`` or ``input_data``)."""
    if input_data is not None or not isinstance(model, Graph):
        return input_data
    return example_inputs(to_spec(model), batch_size)


def resolve_model(
    model_or_spec: Any,
    input_shape: Sequence[int] | None,
    input_dtype: torch.dtype | str | None,
    device: str = "meta",
) -> tuple[nn.Module, tuple[int, ...] | None, torch.dtype]:
    """The model to inspect, the per-sample input shape and the input dtype.

    Specs and family names are built on ``device`` (``meta``: no memory, no values); modules are
    returned as they are.

    Args:
        model_or_spec: an ``nn.Module``, a spec (dict, YAML/JSON text or file) or the name of a
            registered family.
        input_shape: shape of one sample, no batch dimension; a spec's own ``input`` otherwise.
        input_dtype: dtype of an ``input_shape`` input; default float32, or the spec's
            ``input_dtype``.
        device: where a spec or family is built. Default ``"meta"``.

    Raises:
        ConfigError: a family name without ``input_shape``.
        ArgumentError: ``model_or_spec`` is none of the above.
    """
    dtype = parse_dtype(input_dtype) if input_dtype is not None else torch.float32
    if isinstance(model_or_spec, nn.Module):
        shape = None if input_shape is None else parse_shape(input_shape)
        return model_or_spec, shape, dtype
    if isinstance(model_or_spec, str) and model_or_spec in MODELS:
        if input_shape is None:
            raise ConfigError(
                f"summary of the family {model_or_spec!r} needs input_shape (one sample, no batch)"
            )
        model_or_spec = {"input": list(input_shape), "model": model_or_spec}
    if isinstance(model_or_spec, Mapping | str | os.PathLike):
        model = build(model_or_spec, input_shape=input_shape, device=device)
        inputs = spec_inputs(to_spec(model))
        if len(inputs) > 1:  # a graph of several inputs: see spec_input_data
            return model, None, dtype
        return model, inputs[0].shape, inputs[0].dtype if input_dtype is None else dtype
    raise ArgumentError(
        f"summary takes an nn.Module, a spec or a family name, got {type(model_or_spec).__name__}"
    )
