"""Whether a file is an export brickwork wrote, read from the file's own metadata: the one
kind of file ``export --out`` replaces without ``--overwrite``.

An export carries brickwork's description of the model (``brickwork_version``, and the input's
``input_shape`` or ``inputs``): ONNX in its ``metadata_props`` (each value JSON), ``.pt2`` and
TorchScript in ``<archive>/extra/brickwork.json``. A file that merely holds those bytes, or a zip
with a ``brickwork.json`` elsewhere, is someone else's.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from brickwork.exporting.formats import METADATA_FILE


def is_written_export(path: Path) -> bool:
    """Whether ``path`` is an ONNX, ``.pt2`` or TorchScript file that brickwork exported."""
    try:
        if zipfile.is_zipfile(path):
            return _is_described(_archive_description(path))
        return _is_described(_onnx_description(path))
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError):
        return False  # empty, unreadable or damaged


def _is_described(info: Any) -> bool:
    """Whether ``info`` is brickwork's description of an exported model."""
    if not isinstance(info, dict) or not isinstance(info.get("brickwork_version"), str):
        return False
    shape, inputs = info.get("input_shape"), info.get("inputs")
    return (isinstance(shape, list) and all(type(s) is int for s in shape)) or (
        isinstance(inputs, dict) and bool(inputs)
    )


def _archive_description(path: Path) -> Any:
    """The JSON of the archive's ``<archive>/extra/brickwork.json`` (``None`` without one)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) != 1:
            return None
        member = f"{tops.pop()}/extra/{METADATA_FILE}"
        if member not in names:
            return None
        return json.loads(archive.read(member).decode("utf-8"))


def _onnx_description(path: Path) -> Any:
    """The ONNX model's metadata properties, each value read as JSON (``None`` when the file
    is not an ONNX model, or the ``onnx`` package is missing)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not an ONNX model: protobuf's DecodeError, or onnx's own errors
        return None
    return {prop.key: json.loads(prop.value) for prop in model.metadata_props}
