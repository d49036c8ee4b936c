"""Export a model to ONNX, a ``torch.export`` program (``.pt2``) or TorchScript, and check it.

Each exported file is read back and run on random batches of another size than the one it was
exported with (the batch dimension is dynamic in every format), and its outputs are compared with
PyTorch's. A file that does not agree is never renamed into place: the export is written under a
temporary name, checked, and only then renamed, so a failed export leaves nothing half-written.

The model's input shape and dtype come from its spec (a trained run's ``model.safetensors``, or
any model brickwork built); training metadata (class names, normalisation) travels with the file:
ONNX ``metadata_props``, or a ``brickwork.json`` extra file in ``.pt2`` and TorchScript archives.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork._version import __version__
from brickwork.errors import (
    BrickworkError,
    ConfigError,
    ExportError,
    ShapeError,
    SpecError,
    first_line,
    unknown_name_message,
)
from brickwork.files import atomic_write
from brickwork.inspect import device_of
from brickwork.shapes import dtype_name, parse_dtype
from brickwork.spec import to_spec
from brickwork.train.checkpoint import load, model_file, read_metadata

FORMATS = ("onnx", "pt2", "torchscript")
SUFFIXES: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "pt2": (".pt2",),
    "torchscript": (".ts", ".pt"),
}
"""The file names each format writes; the first is the default."""
EXPORT_BATCH = 2
CHECK_BATCHES = (3, 1)
"""Exported at batch size 2 (torch.export specialises sizes 0 and 1), checked at 3 and 1."""
TOLERANCE = 1e-4
"""Largest difference allowed between an exported file's outputs and PyTorch's: absolute for
outputs within ±1, relative to the largest output beyond (a deep random-weight ResNet's logits
run to 10⁴, where float32 rounding alone exceeds 1e-4)."""
METADATA_FILE = "brickwork.json"
"""Name of the extra file that holds the metadata in ``.pt2`` and TorchScript archives."""
TRAINING_KEYS = ("classes", "mean", "std")
"""What a trained model's file passes on to its exports, besides the input shape and dtype."""
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")


def export(
    model: nn.Module | str | os.PathLike[str],
    format: str,
    out: str | os.PathLike[str] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    input_dtype: torch.dtype | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export ``model`` to ``format`` and check the file against PyTorch; return its path.

    The batch dimension is dynamic: the file is exported at batch size 2, then read back and run
    at batch sizes 3 and 1 (and 2), and every output must be within ``TOLERANCE`` (1e-4) of the
    PyTorch model's. The model is exported in eval mode from the CPU; a model object given is
    left as it was (its ``training`` flag is restored, one on another device is copied).

    Args:
        model: an ``nn.Module``, a brickwork ``.safetensors`` file, or a run directory (its
            ``model.safetensors``).
        format: ``"onnx"`` (needs ``pip install 'brickwork[export]'``; checked with
            onnxruntime), ``"pt2"`` (``torch.export.save``) or ``"torchscript"``
            (``torch.jit.trace``).
        out: the file to write (``.onnx``; ``.pt2``; ``.ts`` or ``.pt``), or an existing folder
            to write ``model.<suffix>`` into. Default for a file: beside it, with the format's
            suffix (``RUN_DIR/model.onnx``); a model object needs ``out``.
        input_shape: per-sample input shape, no batch dimension. Default: the spec's ``input``.
        input_dtype: ``float32`` or ``int64`` (token ids). Default: the spec's ``input_dtype``.
        metadata: JSON-serialisable entries to store with the file, beside the input shape and
            dtype (and, from a trained run's file, ``classes``, ``mean`` and ``std``).

    Returns:
        The path written.

    Raises:
        ConfigError: an unknown format, an ``out`` whose folder does not exist or whose suffix
            is another format's, no input shape, or the ONNX packages missing.
        CheckpointError: a missing, damaged or foreign ``.safetensors`` file, or a run
            directory without ``model.safetensors``.
        ShapeError: the model fails on a random input of the input shape.
        ExportError: the exporter failed, or the exported file's outputs differ from PyTorch's
            (the message gives the difference; nothing is written).
    """
    fmt = _format(format)
    source, stored, spec = _source(model)
    target = _out(out, fmt, source)
    name = type(model).__name__ if source is None else str(source)
    shape, dtype = _input(name, spec, input_shape, input_dtype)
    info = _info(stored, metadata, shape, dtype)
    module = model if isinstance(model, nn.Module) else load(model_file(Path(model)))
    with _cpu_eval(module) as ready:
        inputs = _inputs(ready, shape, dtype)
        check = _Check(fmt, target, inputs, _expected(ready, inputs))
        exporter = _EXPORTERS[fmt](ready, inputs[EXPORT_BATCH], info)
        atomic_write(target, lambda tmp: check.write(exporter, tmp))
    return target


# ----------------------------------------------------------------------------- arguments


def _format(name: str) -> str:
    """``name`` if it is a format whose packages are installed, else :class:`ConfigError`."""
    if name not in FORMATS:
        raise ConfigError(unknown_name_message("export format", str(name), FORMATS))
    for module in ONNX_MODULES if name == "onnx" else ():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(
                f"ONNX export needs the {module} package, which is not installed",
                hint="pip install 'brickwork[export]'",
            ) from err
    return name


def _source(
    model: nn.Module | str | os.PathLike[str],
) -> tuple[Path | None, dict[str, Any], dict[str, Any] | None]:
    """The model's file (``None`` for a model object), that file's metadata, and the spec."""
    if isinstance(model, nn.Module):
        try:
            return None, {}, to_spec(model)
        except SpecError:  # a model of the user's own: input_shape must be given
            return None, {}, None
    source = model_file(Path(model))
    stored = read_metadata(source)
    return source, stored, stored["spec"]


def _out(out: str | os.PathLike[str] | None, fmt: str, source: Path | None) -> Path:
    """The file to write: ``out``, ``out/model.<suffix>`` for a folder, or beside ``source``."""
    suffixes = SUFFIXES[fmt]
    if out is None:
        if source is None:
            raise ConfigError(
                "out: a model object has no run directory to export beside; give the file to "
                f"write (a {' or '.join(suffixes)} file)"
            )
        return source.with_suffix(suffixes[0])
    path = Path(out)
    if path.is_dir():
        return path / f"{source.stem if source else 'model'}{suffixes[0]}"
    if not path.parent.is_dir():
        raise ConfigError(
            f"{path}: no such directory {path.parent}",
            hint="create it first, or write the export elsewhere",
        )
    if path.suffix.lower() not in suffixes:
        other = [f for f, s in SUFFIXES.items() if path.suffix.lower() in s]
        found = (
            f", not {path.suffix}" + (f" ({other[0]}'s suffix)" if other else "")
            if path.suffix
            else "; this name has no suffix"
        )
        raise ConfigError(
            f"{path}: the {fmt} format writes {' or '.join(suffixes)} files{found}",
            hint=f"name it {path.with_suffix(suffixes[0]).name}"
            + (f", or export to the {other[0]} format" if other else ""),
        )
    return path


def _input(
    what: str,
    spec: Mapping[str, Any] | None,
    input_shape: Sequence[int] | None,
    input_dtype: torch.dtype | str | None,
) -> tuple[tuple[int, ...], torch.dtype]:
    """The per-sample input shape and dtype: as given, else from the spec."""
    if input_shape is None:
        if spec is None:
            raise ConfigError(
                f"input_shape: {what} has no brickwork spec to give its input shape; pass "
                "input_shape (one sample, no batch dimension), e.g. (1, 28, 28)"
            )
        input_shape = spec["input"]
    shape = tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ConfigError(
            f"input_shape: expected positive sizes such as (1, 28, 28), got {input_shape!r}"
        )
    if input_dtype is None:
        input_dtype = (spec or {}).get("input_dtype", "float32")
    return shape, parse_dtype(input_dtype)


def _info(
    stored: Mapping[str, Any],
    metadata: Mapping[str, Any] | None,
    shape: tuple[int, ...],
    dtype: torch.dtype,
) -> dict[str, Any]:
    """What goes with the file: training metadata, the caller's entries, the input."""
    info: dict[str, Any] = {
        **{key: stored[key] for key in TRAINING_KEYS if key in stored},
        **dict(metadata or {}),
        "brickwork_version": __version__,
        "input_shape": list(shape),
        "input_dtype": dtype_name(dtype),
    }
    try:
        json.dumps(info)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"metadata: must be JSON-serialisable ({err})") from err
    return info


# ----------------------------------------------------------------------------- running


@contextmanager
def _cpu_eval(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode on the CPU; the caller's model is left as it was."""
    device = device_of(model)  # raises DeviceError for a model spread over devices
    if device is not None and device.type == "meta":
        raise ConfigError("the model is on the meta device: it has no weights to export")
    ready = model if device is None or device.type == "cpu" else copy.deepcopy(model).cpu()
    modes = [(m, m.training) for m in ready.modules()]
    ready.eval()
    try:
        yield ready
    finally:
        for module, mode in modes:
            module.training = mode


def _inputs(
    model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype
) -> dict[int, torch.Tensor]:
    """Random batches, the same on every call: export batch first, then the check batches."""
    generator = torch.Generator().manual_seed(0)
    vocabulary = min(  # token ids that every embedding takes
        (m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)), default=2
    )

    def batch(size: int) -> torch.Tensor:
        if dtype.is_floating_point:
            return torch.randn((size, *shape), generator=generator, dtype=dtype)
        return torch.randint(0, vocabulary, (size, *shape), generator=generator, dtype=dtype)

    return {b: batch(b) for b in (EXPORT_BATCH, *CHECK_BATCHES)}


def _expected(model: nn.Module, inputs: dict[int, torch.Tensor]) -> dict[int, Any]:
    """PyTorch's outputs for each batch: what the exported file must give."""
    expected = {}
    for batch, x in inputs.items():
        try:
            with torch.no_grad():
                expected[batch] = model(x)
        except BrickworkError:  # brickwork's models say what they take
            raise
        except Exception as err:
            raise ShapeError(
                f"{type(model).__name__} fails on a random {str(x.dtype).removeprefix('torch.')} "
                f"input of shape {tuple(x.shape)} ({first_line(err, with_type=True)})",
                hint="check input_shape: one sample's shape, without the batch dimension",
            ) from err
        _leaves(expected[batch])  # tensors only
    return expected


def _leaves(output: Any) -> list[torch.Tensor]:
    """The tensors of an output: a tensor, or tuples, lists and dicts of them, in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, list | tuple):
        return [t for item in output for t in _leaves(item)]
    raise ExportError(f"the model returns {type(output).__name__}; exports need tensors")


Writer = Callable[[Path], None]  # writes the exported file
Call = Callable[[torch.Tensor], list[torch.Tensor]]  # runs it on a batch: the output's tensors
Runner = Callable[[Path], Call]  # reads it back, ready to run
Exporter = Callable[[nn.Module, torch.Tensor, dict[str, Any]], tuple[Writer, Runner]]


@dataclass(frozen=True)
class _Check:
    """What an exported file must give: PyTorch's outputs for each random batch.

    Attributes:
        fmt: the format, for messages.
        target: the file being exported, for messages.
        inputs: a random batch for each batch size, the export batch first.
        expected: PyTorch's outputs for each of them.
    """

    fmt: str
    target: Path
    inputs: dict[int, torch.Tensor]
    expected: dict[int, Any]

    def write(self, exporter: tuple[Writer, Runner], tmp: Path) -> None:
        """Write the file to ``tmp``, read it back, and compare its outputs with PyTorch's."""
        write, run = exporter
        try:
            write(tmp)
        except OSError:  # disk full, permissions: the CLI reports them as they are
            raise
        except Exception as err:  # e.g. protobuf's 2 GiB limit on an ONNX file
            raise ExportError(
                f"{self.target}: cannot write the {self.fmt} file "
                f"({first_line(err, with_type=True)})"
            ) from err
        try:
            call = run(tmp)
        except Exception as err:
            raise ExportError(
                f"{self.target}: the exported {self.fmt} file cannot be read back "
                f"({first_line(err, with_type=True)}); it was not written"
            ) from err
        for batch, x in self.inputs.items():
            self.compare(call, batch, x)

    def compare(self, call: Call, batch: int, x: torch.Tensor) -> None:
        """Run the exported file on ``x``; its outputs must match PyTorch's."""
        fmt, target = self.fmt, self.target
        want = _leaves(self.expected[batch])
        try:
            got = call(x)
        except Exception as err:  # the runtime refuses the file or this batch size
            raise ExportError(
                f"{target}: the exported {fmt} file fails at batch size {batch} "
                f"({first_line(err, with_type=True)}); it was not written"
            ) from err
        shapes = [tuple(t.shape) for t in got]
        if shapes != [tuple(t.shape) for t in want]:
            raise ExportError(
                f"{target}: the exported {fmt} file gives outputs of shape {shapes} at batch "
                f"size {batch}, PyTorch {[tuple(t.shape) for t in want]}; it was not written"
            )
        pairs = [(g.double(), w.double()) for g, w in zip(got, want, strict=True) if w.numel()]
        diffs = [float((g - w).abs().max()) for g, w in pairs]
        diff = math.nan if any(map(math.isnan, diffs)) else max(diffs, default=0.0)
        scale = max([1.0, *(float(w.nan_to_num(0.0).abs().max()) for _, w in pairs)])
        if not diff <= TOLERANCE * scale:  # `not <=` also catches NaN
            allowed = f"{TOLERANCE:g}" + (
                f" × {scale:.3g}, the outputs' largest magnitude" if scale > 1 else ""
            )
            raise ExportError(
                f"{target}: the exported {fmt} file's outputs differ from PyTorch's by up to "
                f"{diff:.3g} at batch size {batch} (allowed: {allowed}); it was not written"
            )


@contextmanager
def _quiet() -> Iterator[None]:
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


# ----------------------------------------------------------------------------- formats


@contextmanager
def _exporting(what: str) -> Iterator[None]:
    """Quiet exporter; its failure becomes an :class:`ExportError`: ``"{what} (<first line>)"``."""
    try:
        with _quiet():
            yield
    except Exception as err:
        raise ExportError(f"{what} ({first_line(err, with_type=True)})") from err


def _module_runner(read: Callable[[Path], Any]) -> Runner:
    """A :data:`Runner` for a file that ``read`` loads as a callable module."""

    def run(tmp: Path) -> Call:
        with _quiet():
            loaded = read(tmp)

        def call(x: torch.Tensor) -> list[torch.Tensor]:
            with torch.no_grad(), _quiet():
                return _leaves(loaded(x))

        return call

    return run


def _pt2(model: nn.Module, x: torch.Tensor, info: dict[str, Any]) -> tuple[Writer, Runner]:
    batch = torch.export.Dim("batch")
    with _exporting(
        f"torch.export cannot export {type(model).__name__} with a dynamic batch dimension"
    ):
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # torch.export.save wants a buffer or a name ending in .pt2
        with _quiet():
            torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(info)})
        tmp.write_bytes(buffer.getvalue())

    def read(tmp: Path) -> Any:
        return torch.export.load(io.BytesIO(tmp.read_bytes())).module()

    return write, _module_runner(read)


def _torchscript(model: nn.Module, x: torch.Tensor, info: dict[str, Any]) -> tuple[Writer, Runner]:
    with torch.no_grad(), _exporting(f"torch.jit.trace cannot trace {type(model).__name__}"):
        traced = torch.jit.trace(model, (x,), check_trace=False)  # type: ignore[no-untyped-call]

    def write(tmp: Path) -> None:
        with _quiet():
            torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(info)})

    def read(tmp: Path) -> Any:
        return torch.jit.load(str(tmp), map_location="cpu")  # type: ignore[no-untyped-call]

    return write, _module_runner(read)


def _onnx(model: nn.Module, x: torch.Tensor, info: dict[str, Any]) -> tuple[Writer, Runner]:
    import onnxruntime

    with torch.no_grad():
        single = isinstance(model(x), torch.Tensor)
    with _exporting(f"torch.onnx.export cannot export {type(model).__name__}"):
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
        with _quiet():
            program.save(tmp, external_data=False)

    def run(tmp: Path) -> Call:
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def call(x: torch.Tensor) -> list[torch.Tensor]:
            return [torch.from_numpy(out) for out in session.run(None, {name: x.numpy()})]

        return call

    return write, run


_EXPORTERS: dict[str, Exporter] = {"onnx": _onnx, "pt2": _pt2, "torchscript": _torchscript}
