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

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import ExportError
from brickwork.exporting.arguments import (
    FORMATS,
    SUFFIXES,
    check_format,
    file_metadata,
    inputs_of,
    model_source,
    output_path,
)
from brickwork.exporting.check import (
    CHECK_BATCHES,
    EXPORT_BATCH,
    Check,
    cpu_eval,
    expected_outputs,
    random_inputs,
)
from brickwork.exporting.formats import EXPORTERS, METADATA_FILE, Names
from brickwork.exporting.written import is_written_export
from brickwork.files import atomic_write, check_replace
from brickwork.spec import output_names
from brickwork.train.weights import load, model_file

__all__ = [
    "CHECK_BATCHES",
    "EXPORT_BATCH",
    "FORMATS",
    "METADATA_FILE",
    "SUFFIXES",
    "ExportError",
    "export",
]


def export(
    model: nn.Module | str | os.PathLike[str],
    format: str,
    out: str | os.PathLike[str] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    input_dtype: torch.dtype | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    verify: bool = True,
    code: str | os.PathLike[str] | None = None,
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
        overwrite: replace an existing file at the target even if brickwork did not write it.
            Default ``False``: only an earlier export of brickwork's is replaced.
        verify: check the SHA-256 of the model file read. Default ``True``.
        code: for a file of a model trained from ``file.py:NAME``, that Python file (imported
            to build the model; see :func:`brickwork.load`).

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
    fmt = check_format(format)
    source, stored, spec = model_source(model)
    target = output_path(out, fmt, source)
    check_replace(target, is_written_export, f"{fmt} export", overwrite)
    name = type(model).__name__ if source is None else str(source)
    if spec is None and input_shape is None and "input_shape" in stored:
        input_shape = stored["input_shape"]  # a code-built model's file: the shape it trained on
    inputs = inputs_of(name, spec, input_shape, input_dtype)
    info = file_metadata(stored, metadata, inputs)
    module = (
        model
        if isinstance(model, nn.Module)
        else load(model_file(Path(model)), verify=verify, code=code)
    )
    names = Names(tuple(i.name for i in inputs), output_names(module))
    with cpu_eval(module) as ready:
        batches = random_inputs(ready, inputs)
        check = Check(fmt, target, batches, expected_outputs(ready, batches))
        exporter = EXPORTERS[fmt](ready, batches[EXPORT_BATCH], names, info)
        atomic_write(target, lambda tmp: check.write(exporter, tmp))
    return target
