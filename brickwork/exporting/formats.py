"""The three export formats: how each writes its file and how the file is read back and run."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import ExportError, first_line
from brickwork.exporting.check import Batch, Call, Runner, Writer, leaves

METADATA_FILE = "brickwork.json"
"""Name of the extra file that holds the metadata in ``.pt2`` and TorchScript archives."""


@dataclass(frozen=True)
class Names:
    """The names an exported file gives its inputs and outputs (ONNX shows them).

    Attributes:
        inputs: one per input, in order.
        outputs: one per output tensor, in order; ``None`` lets the exporter choose.
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...] | None


Exporter = Callable[[nn.Module, Batch, Names, dict[str, Any]], tuple[Writer, Runner]]
"""Exports a model at one batch of each input: how to write the file, how to read it back."""


def batch_dims(model: nn.Module, xs: Batch) -> Any:
    """``dynamic_shapes`` that make dimension 0 of every input one dynamic batch size, whatever
    the forward's signature (``forward(x)``, or a graph's ``forward(*inputs)``)."""
    batch = torch.export.Dim("batch")
    shapes = torch.export.ShapesCollection()  # type: ignore[no-untyped-call]
    for x in xs:
        shapes[x] = {0: batch}
    return shapes.dynamic_shapes(model, xs)  # type: ignore[no-untyped-call]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' chatter (the file is checked instead): deprecation notices of
    torch.jit, tracer warnings, the ONNX exporter's log lines about missing torchvision."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch|onnx")
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        # every input's dimension 0 is the one batch, by design: not worth a warning
        warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@contextmanager
def exporting(what: str) -> Iterator[None]:
    """Quiet exporter; its failure becomes an :class:`ExportError`: ``"{what} (<first line>)"``."""
    try:
        with quiet():
            yield
    except Exception as err:
        raise ExportError(f"{what} ({first_line(err, with_type=True)})") from err


def module_runner(read: Callable[[Path], Any]) -> Runner:
    """A :data:`Runner` for a file that ``read`` loads as a callable module."""

    def run(tmp: Path) -> Call:
        with quiet():
            loaded = read(tmp)

        def call(*xs: torch.Tensor) -> list[torch.Tensor]:
            with torch.no_grad(), quiet():
                return leaves(loaded(*xs))

        return call

    return run


def pt2(model: nn.Module, xs: Batch, names: Names, info: dict[str, Any]) -> tuple[Writer, Runner]:
    del names  # a .pt2 program takes its inputs by position
    with exporting(
        f"torch.export cannot export {type(model).__name__} with a dynamic batch dimension"
    ):
        program = torch.export.export(model, xs, dynamic_shapes=batch_dims(model, xs))

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # torch.export.save wants a buffer or a name ending in .pt2
        with quiet():
            torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(info)})
        tmp.write_bytes(buffer.getvalue())

    def read(tmp: Path) -> Any:
        return torch.export.load(io.BytesIO(tmp.read_bytes())).module()

    return write, module_runner(read)


def torchscript(
    model: nn.Module, xs: Batch, names: Names, info: dict[str, Any]
) -> tuple[Writer, Runner]:
    del names  # TorchScript takes its inputs by position
    with torch.no_grad(), exporting(f"torch.jit.trace cannot trace {type(model).__name__}"):
        # strict=False: a graph may return a dict of tensors, which tracing keeps as it is
        traced = torch.jit.trace(model, xs, check_trace=False, strict=False)  # type: ignore[no-untyped-call]

    def write(tmp: Path) -> None:
        with quiet():
            torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(info)})

    def read(tmp: Path) -> Any:
        return torch.jit.load(str(tmp), map_location="cpu")  # type: ignore[no-untyped-call]

    return write, module_runner(read)


def onnx(model: nn.Module, xs: Batch, names: Names, info: dict[str, Any]) -> tuple[Writer, Runner]:
    import onnxruntime

    with torch.no_grad():
        single = isinstance(model(*xs), torch.Tensor)
    with exporting(f"torch.onnx.export cannot export {type(model).__name__}"):
        program = torch.onnx.export(
            model,
            xs,
            dynamo=True,
            dynamic_shapes=batch_dims(model, xs),
            input_names=list(names.inputs),
            output_names=["output"] if single else names.outputs and list(names.outputs),
            verbose=False,
        )
    if program is None:  # only for the legacy exporter; keeps the type checker content
        raise ExportError("torch.onnx.export returned no program")
    for key, value in info.items():
        program.model.metadata_props[key] = json.dumps(value)

    def write(tmp: Path) -> None:
        with quiet():
            program.save(tmp, external_data=False)

    def run(tmp: Path) -> Call:
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]

        def call(*xs: torch.Tensor) -> list[torch.Tensor]:
            feed = {name: x.numpy() for name, x in zip(inputs, xs, strict=True)}
            return [torch.from_numpy(out) for out in session.run(None, feed)]

        return call

    return write, run


EXPORTERS: dict[str, Exporter] = {"onnx": onnx, "pt2": pt2, "torchscript": torchscript}
