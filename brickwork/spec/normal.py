"""The normalised spec of a model: every inferred size written out, ready to rebuild it."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from brickwork.errors import BrickworkError, SpecError
from brickwork.files import check_replace
from brickwork.spec.builder import SPEC_ATTR, build
from brickwork.spec.io import load_spec, spec_text, write_spec


def to_spec(model: nn.Module | Mapping[str, Any]) -> dict[str, Any]:
    """The normalised spec of a model, with every inferred size written out.

    ``build(to_spec(m))`` has the same ``state_dict`` keys and shapes as ``m``. Works for models
    made by :func:`build` and for brickwork families built in Python (``CNNClassifier(...)``);
    a spec given as a dict is normalised.

    Args:
        model: a model, or a spec as a dict.

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


def save_spec(
    spec: Mapping[str, Any] | nn.Module, path: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Write a spec (or a built model's normalised spec) to ``path`` as YAML, or JSON for ``.json``.

    The file is written under a temporary name and renamed, so a failure never leaves half a file.

    Args:
        spec: a spec as a dict, or a model (see :func:`to_spec`).
        path: the file to write.
        overwrite: replace ``path`` even if it is not a spec brickwork wrote. Default ``False``:
            an existing file is replaced only if brickwork wrote it and it is unchanged
            (:func:`is_written_spec`).

    Raises:
        ConfigError: ``path`` exists and is not a brickwork spec (without ``overwrite``).
    """
    check_replace(Path(path), is_written_spec, "spec", overwrite)
    return write_spec(to_spec(spec) if isinstance(spec, nn.Module) else dict(spec), path)


def is_written_spec(path: Path) -> bool:
    """Whether ``path`` holds a spec brickwork wrote, unchanged since: its text is the one
    :func:`write_spec` writes for its content (a YAML file under its first line), so a spec
    written or edited by hand, its comments with it, is never replaced."""
    try:
        spec = load_spec(path)
        return path.read_text(encoding="utf-8") == spec_text(spec, path)
    except (BrickworkError, OSError, UnicodeDecodeError):
        return False
