"""The user's classes read as source: where a submodule is set, which methods use it, and the
``# brickwork: ignore[CODE]`` comments that silence a finding on a line.

Everything here reads files with :mod:`inspect` and :mod:`ast`; nothing is imported or run. A
class whose source cannot be read (built in C, defined in a notebook cell that is gone) answers
``None``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import re
import textwrap
from pathlib import Path

from torch import nn

from brickwork.inspect.user_code import LIBRARY_DIRS

_IGNORE = re.compile(r"#\s*brickwork:\s*ignore\[([\w\s,-]+)\]")


@functools.lru_cache(maxsize=256)
def _class_tree(cls: type) -> tuple[ast.ClassDef, str, int] | None:
    """The class's AST, its file and the line it starts on; ``None`` for library classes."""
    try:
        source_file = inspect.getsourcefile(cls)
        if source_file is None or str(Path(source_file).resolve()).startswith(LIBRARY_DIRS):
            return None
        lines, start = inspect.getsourcelines(cls)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    return (node, source_file, start) if isinstance(node, ast.ClassDef) else None


def _user_classes(cls: type) -> list[type]:
    """``cls`` and its bases that are the user's (not torch's, not brickwork's)."""
    return [c for c in cls.__mro__ if c not in (nn.Module, object) and _class_tree(c)]


def class_line(cls: type) -> str | None:
    """``file:line`` of the class statement, or ``None``.

    Args:
        cls: a module class.
    """
    found = _class_tree(cls)
    return f"{found[1]}:{found[2]}" if found else None


def assigned_at(model: nn.Module, path: str) -> str | None:
    """``file:line`` where the module or attribute at ``path`` is set (``self.decoder = ...``);
    the class statement for the model itself (``path == ""``).

    An item of a container (``layers.0``) is found where the container is set.

    Args:
        model: the model (or its copy: they share classes).
        path: a module or attribute path, as in ``named_modules()``.
    """
    parts = path.split(".") if path else []
    while parts and not parts[-1].isidentifier():
        parts.pop()
    if not parts:
        return class_line(type(model))
    try:
        owner = model.get_submodule(".".join(parts[:-1]))
    except AttributeError:
        return None
    for cls in _user_classes(type(owner)):
        found = _class_tree(cls)
        assert found is not None
        node, source_file, start = found
        for inner in ast.walk(node):
            if isinstance(inner, ast.Assign):
                targets = inner.targets
            elif isinstance(inner, ast.AnnAssign):
                targets = [inner.target]
            else:
                continue
            if any(_is_self_attribute(t, parts[-1]) for t in targets):
                return f"{source_file}:{start + inner.lineno - 1}"
    return None


def other_callers(model: nn.Module, path: str) -> str | None:
    """The public method other than ``forward`` that uses the submodule at ``path``
    (``generate``), looking from each module above it; ``None`` when none does.

    Args:
        model: the model (or its copy).
        path: a submodule's path.
    """
    parts = path.split(".")
    for i in range(len(parts)):
        try:
            owner = model.get_submodule(".".join(parts[:i]))
        except AttributeError:
            return None
        for cls in _user_classes(type(owner)):
            found = _class_tree(cls)
            assert found is not None
            for method in found[0].body:
                if (
                    isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
                    and method.name != "forward"
                    and not method.name.startswith("_")
                    and any(_is_self_attribute(n, parts[i]) for n in ast.walk(method))
                ):
                    return method.name
    return None


def ignored_on_line(line: str | None) -> set[str]:
    """The codes a ``# brickwork: ignore[CODE, ...]`` comment names on ``file:line``.

    Args:
        line: ``file:line``, or ``None``.
    """
    if not line:
        return set()
    filename, _, number = line.rpartition(":")
    if not number.isdigit():
        return set()
    match = _IGNORE.search(linecache.getline(filename, int(number)))
    return {code.strip() for code in match.group(1).split(",")} if match else set()


def _is_self_attribute(node: ast.AST, name: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == name
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )
