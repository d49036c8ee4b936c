"""Reading and writing spec files: YAML (with the safe loader) or JSON.

Parse errors say where they are (``bad.yaml: line 3, column 5: ...``); YAML tags that would build
Python objects are refused, so reading a spec never imports or runs code. A document too long, too
deeply nested or too big once its aliases are expanded is refused before it costs time or memory
(:mod:`~brickwork.spec.limits`).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from brickwork.errors import SpecError
from brickwork.files import atomic_write
from brickwork.spec.limits import MAX_DEPTH, check_length, check_values, depth_error

EXACT_MESSAGES_UP_TO = 32_000
"""A YAML document up to this length that fails to parse is parsed again by PyYAML's Python
loader, for its more precise message (a second parse of a longer one would cost seconds)."""

WRITTEN = "# Written by brickwork; once edited, brickwork replaces it only with --overwrite.\n"
"""The first line of a YAML spec brickwork writes (JSON has no comments)."""


def load_spec(source: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A spec as a dict, from a dict, YAML or JSON text, or a ``.yaml``/``.yml``/``.json`` file.

    YAML is read with the safe loader: tags that would build Python objects are refused.

    Args:
        source: a mapping (copied, never changed), spec text, or the path of a spec file.

    Raises:
        SpecError: a missing file, malformed YAML/JSON (with line and column), a spec that is
            not a mapping, or one beyond the limits of :mod:`~brickwork.spec.limits`.
    """
    if isinstance(source, Mapping):
        where = "spec"
        check_values(source, where)
        spec: object = copy.deepcopy(dict(source))
    elif isinstance(source, os.PathLike) or _looks_like_path(source):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        where = str(path)
        check_length(path.stat().st_size, where)
        spec = _parse(path.read_text(encoding="utf-8"), where, is_json=path.suffix == ".json")
    elif isinstance(source, str):
        where = "spec text"
        check_length(len(source), where)
        spec = _parse(source, where, is_json=False)
    else:
        raise SpecError(
            f"spec must be a mapping, YAML/JSON text or a file path, got {type(source).__name__}"
        )
    if not isinstance(spec, dict):
        got = (
            f"the string {spec!r} (no file of that name exists)"
            if isinstance(spec, str)
            else type(spec).__name__
        )
        raise SpecError(
            f"{where}: a spec must be a mapping with 'model' (and 'input'), got {got}",
            hint="e.g. {'input': [1, 28, 28], 'model': [{'linear': {'out': 10}}]}",
        )
    if not isinstance(source, Mapping):
        check_values(spec, where)
    return spec


def parse_mapping(text: str, where: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping written on the command line, read as a spec is: safe loader,
    limits.

    Args:
        text: the text, e.g. ``"{n_classes: 5}"``.
        where: what it is, for messages (``"--model-args"``).

    Raises:
        SpecError: malformed text, or text that is not a mapping.
    """
    check_length(len(text), where)
    data = _parse(text, where, is_json=False)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(
            f"{where}: expected a mapping of arguments, got {text!r}", hint="e.g. '{n_classes: 5}'"
        )
    check_values(data, where)
    return data


def write_spec(data: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write spec data to ``path`` as YAML, or JSON for ``.json``; return the path.

    The file is written under a temporary name and renamed, so a failure never leaves half a
    file. (:func:`brickwork.spec.save_spec` also takes a built model.)

    Args:
        data: the spec, as plain lists, dicts, strings and numbers.
        path: the file to write.
    """
    path = Path(path)
    text = spec_text(data, path)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def spec_text(data: Mapping[str, Any], path: Path) -> str:
    """The text :func:`write_spec` writes for ``data`` at ``path``: YAML under :data:`WRITTEN`,
    or JSON for ``.json``."""
    if path.suffix == ".json":
        return json.dumps(dict(data), indent=2) + "\n"
    return WRITTEN + yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=None)


def _looks_like_path(source: object) -> bool:
    """Whether a string names a spec file rather than holding spec text."""
    if not isinstance(source, str) or "\n" in source:
        return False
    if source.endswith((".yaml", ".yml", ".json")):
        return True
    try:
        return Path(source).is_file()
    except OSError:  # e.g. a one-line JSON spec longer than a file name may be
        return False


def _parse(text: str, where: str, *, is_json: bool) -> object:
    """The data of spec text; a :class:`SpecError` that starts with ``where`` if malformed."""
    if is_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{where}: line {err.lineno}, column {err.colno}: {err.msg}") from err
        except RecursionError as err:  # the decoder nests a call per level
            raise depth_error(where) from err
    fast = getattr(yaml, "CSafeLoader", None)  # libyaml: several times faster than PyYAML's
    if fast is None:
        return _parse_exactly(text, where)
    try:
        return yaml.load(text, Loader=fast)  # CSafeLoader: the safe loader, in C
    except yaml.YAMLError as err:
        if len(text) <= EXACT_MESSAGES_UP_TO:
            _parse_exactly(text, where)  # raises with PyYAML's own words
        if isinstance(err, yaml.MarkedYAMLError) and "nesting depth" in str(err.problem):
            raise depth_error(where) from err
        raise _yaml_error(err, where) from err


def _parse_exactly(text: str, where: str) -> object:
    """Parse with PyYAML's own (Python) loader, whose messages say more than libyaml's (the
    alias that is undefined, the token found): the parser of small documents that fail."""
    loader = _SpecLoader(text, where)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise _yaml_error(err, where) from err
    finally:
        loader.dispose()


def _yaml_error(err: yaml.YAMLError, where: str) -> SpecError:
    if isinstance(err, yaml.MarkedYAMLError):
        return SpecError(f"{where}: {_yaml_problem(err)}")
    return SpecError(f"{where}: {err}")


class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a document nested deeper than :data:`MAX_DEPTH` while it is
    composed (PyYAML composes nodes recursively: 10,000 levels would end in ``RecursionError``).

    Args:
        text: the document.
        where: the file or ``"spec text"``, for messages.
    """

    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self.where = where
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise depth_error(self.where)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _yaml_problem(err: yaml.MarkedYAMLError) -> str:
    """``"line 2, column 4: <problem> (<context> that starts at line 1, column 7)"``."""
    mark = err.problem_mark or err.context_mark
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    context = ""
    if err.context and err.context_mark is not None and err.problem:
        cm = err.context_mark
        context = f" ({err.context} that starts at line {cm.line + 1}, column {cm.column + 1})"
    return f"{at}{err.problem or err.context}{context}"
