"""What a model file says a model is: its spec, or, for a model of the user's own code, where it
came from; and that code's model rebuilt, only from a file the caller hands over.

A spec-built model loads from its file alone. A code-built model's file holds ``code``: the
``file.py:NAME`` call that built it (literal arguments) and the SHA-256 of that file. Loading it
imports the file the caller passes (``load(path, code="my_models.py")``, ``--code``), never one
named by the model file: a file is data, and a path in it is never followed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import CheckpointError, CodeWarning, SpecError
from brickwork.inspect.target import build_target, file_sha256, origin_of, resolve_target
from brickwork.spec import to_spec


def describe(model: nn.Module) -> dict[str, Any]:
    """``{"spec": ...}`` for a model brickwork built, else ``{"code": ...}``: where it came from."""
    try:
        return {"spec": to_spec(model)}
    except SpecError:
        return {"code": origin_of(model).to_dict()}


def code_needed(origin: Mapping[str, Any], where: Path | str) -> CheckpointError:
    """The error for a code-built model's file loaded without its code."""
    target = f"{origin['file']}:{origin['name']}" if origin.get("file") else origin["name"]
    if not origin.get("file") or origin.get("args") is None:
        return CheckpointError(
            f"{where}: its model, {target}, was built in Python with arguments brickwork does not "
            "know; build it yourself, then brickwork.train.load_weights(model, path)"
        )
    return CheckpointError(
        f"{where}: its model was built by code, {target}, not from a spec; pass that file: "
        f"load(path, code={origin['file']!r}), or --code {origin['file']}",
        hint="brickwork never imports code on its own",
    )


def build_from_code(
    origin: Mapping[str, Any],
    code: str | os.PathLike[str] | None,
    where: Path | str,
    device: torch.device | str | None = None,
) -> nn.Module:
    """The model ``origin`` describes, built by the file ``code`` (with ``device`` as the default
    device: ``"meta"`` allocates nothing).

    Raises:
        CheckpointError: no ``code`` given, or arguments that are unknown.
        ConfigError, UserCodeError: the file or its ``NAME`` cannot be found, or raised.
    """
    if code is None or origin.get("args") is None:
        raise code_needed(origin, where)
    target = f"{code}:{origin['name']}"
    obj = resolve_target(target)
    with torch.device(device) if device is not None else nullcontext():
        return build_target(target, obj, origin["args"], origin["kwargs"])


def check_code_file(
    origin: Mapping[str, Any], code: str | os.PathLike[str], where: Path | str
) -> None:
    """Warn when ``code`` is not the file the model was trained with (its SHA-256 differs)."""
    if origin.get("sha256") and file_sha256(code) != origin["sha256"]:
        warnings.warn(
            f"{code} differs from the {origin['file']} that {where} was trained with (another "
            "SHA-256): its weights fit, but the code may compute something else",
            CodeWarning,
            stacklevel=3,
        )
