"""What ``export`` is asked for: the format, the model's file, where to write, the input."""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork._version import __version__
from brickwork.errors import ConfigError, SpecError, unknown_name_message
from brickwork.shapes import check_numel, dtype_name, parse_dtype, parse_shape
from brickwork.spec import SpecInput, spec_inputs, to_spec
from brickwork.train.free_memory import check_fits
from brickwork.train.weights import model_file, read_metadata

FORMATS = ("onnx", "pt2", "torchscript")
SUFFIXES: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "pt2": (".pt2",),
    "torchscript": (".ts", ".pt"),
}
"""The file names each format writes; the first is the default."""
TRAINING_KEYS = ("classes", "mean", "std")
"""What a trained model's file passes on to its exports, besides the input shape and dtype."""
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")


def check_format(name: str) -> str:
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


def model_source(
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
    return source, stored, stored.get("spec")  # a code-built model's file has none


def output_path(out: str | os.PathLike[str] | None, fmt: str, source: Path | None) -> Path:
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


def inputs_of(
    what: str,
    spec: Mapping[str, Any] | None,
    input_shape: Sequence[int] | None,
    input_dtype: torch.dtype | str | None,
) -> list[SpecInput]:
    """The model's inputs (name, per-sample shape, dtype): as given, else from the spec."""
    if spec is None:
        if input_shape is None:
            raise ConfigError(
                f"input_shape: {what} has no brickwork spec to give its input shape; pass "
                "input_shape (one sample, no batch dimension), e.g. (1, 28, 28)"
            )
        dtype = parse_dtype(input_dtype) if input_dtype is not None else torch.float32
        return _checked([SpecInput("input", parse_shape(input_shape), dtype)])
    inputs = spec_inputs(spec, None if input_shape is None else parse_shape(input_shape))
    if input_dtype is not None:
        if len(inputs) != 1:
            raise ConfigError(
                f"input_dtype: {what} has {len(inputs)} inputs, each with its dtype in the spec"
            )
        inputs = [SpecInput(inputs[0].name, inputs[0].shape, parse_dtype(input_dtype))]
    return _checked(inputs)


LARGEST_BATCH = 3
"""The largest batch an export is checked at (2, then 3 and 1)."""


def _checked(inputs: list[SpecInput]) -> list[SpecInput]:
    """``inputs``, refused when a batch of them cannot be made in the memory free."""
    for item in inputs:
        shape = (LARGEST_BATCH, *item.shape)
        where = f"input_shape: {item.name} at batch {LARGEST_BATCH}"
        check_numel(shape, where)
        size = math.prod(shape) * item.dtype.itemsize
        check_fits(size, where, ConfigError, hint=SHAPE_HINT)
    return inputs


SHAPE_HINT = "check input_shape: one sample's shape, without the batch dimension"


def file_metadata(
    stored: Mapping[str, Any], metadata: Mapping[str, Any] | None, inputs: Sequence[SpecInput]
) -> dict[str, Any]:
    """What goes with the file: training metadata, the caller's entries, the input shape and
    dtype (``inputs``, by name, for a model of several)."""
    described: dict[str, Any]
    if len(inputs) == 1:
        described = {
            "input_shape": list(inputs[0].shape),
            "input_dtype": dtype_name(inputs[0].dtype),
        }
    else:
        described = {
            "inputs": {
                i.name: {"shape": list(i.shape), "dtype": dtype_name(i.dtype)} for i in inputs
            }
        }
    info: dict[str, Any] = {
        **{key: stored[key] for key in TRAINING_KEYS if key in stored},
        **dict(metadata or {}),
        "brickwork_version": __version__,
        **described,
    }
    try:
        json.dumps(info)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"metadata: must be JSON-serialisable ({err})") from err
    return info
