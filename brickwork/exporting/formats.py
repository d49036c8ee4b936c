"""The three export formats: how each writes its file and how the file is read back and run."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import ExportError, first_line
from brickwork.exporting.check import Call, Runner, Writer, leaves

METADATA_FILE = "brickwork.json"
"""Name of the extra file that holds the metadata in ``.pt2`` and TorchScript archives."""
Exporter = Callable[[nn.Module, torch.Tensor, dict[str, Any]], tuple[Writer, Runner]]
"""Exports a model at one batch: how to write the file, and how to read it back."""


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

        def call(x: torch.Tensor) -> list[torch.Tensor]:
            with torch.no_grad(), quiet():
                return leaves(loaded(x))

        return call

    return run


def pt2(model: nn.Module, x: torch.Tensor, info: dict[str, Any]) -> tuple[Writer, Runner]:
    batch = torch.export.Dim("batch")
    with exporting(
        f"torch.export cannot export {type(model).__name__} with a dynamic batch dimension"
    ):
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # torch.export.save wants a buffer or a name ending in .pt2
        with quiet():
            torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(info)})
        tmp.write_bytes(buffer.getvalue())

    def read(tmp: Path) -> Any:
        return torch.export.load(io.BytesIO(tmp.read_bytes())).module()

    return write, module_runner(read)


def torchscript(model: nn.Module, x: torch.Tensor, info: dict[str, Any]) -> tuple[Writer, Runner]:
    with torch.no_grad(), exporting(f"torch.jit.trace cannot trace {type(model).__name__}"):
        traced = torch.jit.trace(model, (x,), check_trace=False)  # type: ignore[no-untyped-call]

    def write(tmp: Path) -> None:
        with quiet():
            torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(info)})

    def read(tmp: Path) -> Any:
        return torch.jit.load(str(tmp), map_location="cpu")  # type: ignore[no-untyped-call]

    return write, module_runner(read)


def onnx(model: nn.Module, x: torch.Tensor, info: dict[str, Any]) -> tuple[Writer, Runner]:
    import onnxruntime

    with torch.no_grad():
        single = isinstance(model(x), torch.Tensor)
    with exporting(f"torch.onnx.export cannot export {type(model).__name__}"):
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            input_names=["input"],
            output_names=["output"] if single else None,
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
        name = session.get_inputs()[0].name

        def call(x: torch.Tensor) -> list[torch.Tensor]:
            return [torch.from_numpy(out) for out in session.run(None, {name: x.numpy()})]

        return call

    return write, run


EXPORTERS: dict[str, Exporter] = {"onnx": onnx, "pt2": pt2, "torchscript": torchscript}
