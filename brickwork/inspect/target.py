"""Models named on the command line: ``path/to/file.py:NAME`` with literal arguments.

The user's file is imported as a module, with its folder on ``sys.path``: that runs the user's
own code, as importing it in Python would. The arguments are read as Python literals only
(numbers, strings, lists, tuples, dicts, ``True``/``False``/``None``): no expression is evaluated.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import sys
import traceback
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from brickwork.errors import ConfigError, UserCodeError, unknown_name_message
from brickwork.registry import MODELS
from brickwork.spec import parse_mapping


@dataclass(frozen=True)
class CodeOrigin:
    """Where a model without a spec came from: the call that builds it again.

    Attributes:
        file: the Python file's name (no folder: the code is handed over again when loading).
        name: the class, function or module variable in it.
        args: the positional arguments as literal text (``"1, [32, 64]"``); ``None`` when
            unknown (a module built in Python and handed over).
        kwargs: the keyword arguments as literal text (``"activation='lrelu'"``), or ``None``.
        sha256: the SHA-256 of the file's bytes, or ``None`` when there is no file.
    """

    file: str | None
    name: str
    args: str | None = ""
    kwargs: str | None = ""
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The origin as JSON-ready data, for a model file's metadata."""
        return asdict(self)

    @property
    def target(self) -> str:
        """``file.py:NAME``, or the name alone when there is no file."""
        return f"{self.file}:{self.name}" if self.file else self.name


_ORIGINS: weakref.WeakKeyDictionary[nn.Module, CodeOrigin] = weakref.WeakKeyDictionary()
"""The origin of each module :func:`build_target` built, while the module lives."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hexadecimal digits."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def origin_of(model: nn.Module) -> CodeOrigin:
    """Where ``model`` came from: the ``file.py:NAME`` call that built it, or, for a module
    built in Python, its class and the file that defines it (arguments unknown)."""
    known = _ORIGINS.get(model)
    if known is not None:
        return known
    cls = type(model)
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:  # a class of no file (built-in, or defined at the prompt)
        source = None
    if source is None or not Path(source).is_file():
        return CodeOrigin(None, cls.__qualname__, None, None, None)
    return CodeOrigin(Path(source).name, cls.__qualname__, None, None, file_sha256(source))


def model_argument(
    text: str,
    args: str | None = None,
    kwargs: str | None = None,
    model_args: str | None = None,
) -> str | dict[str, Any]:
    """What MODEL names on the command line, for ``summary``, ``doctor`` and ``train`` alike.

    Returns ``text`` for a ``path/to/file.py:NAME`` target (build it with :func:`load_target`)
    or a spec file; for a registered family given arguments (``--model-args '{n_classes: 5}'``
    or ``--kwargs "n_classes=5"``), the spec ``{"model": {name: arguments}}``.

    Raises:
        ConfigError: a ``.py`` file without ``:NAME``, or arguments that cannot apply.
    """
    if is_target(text):
        if model_args is not None:
            raise ConfigError("--model-args goes with a family name; file.py:NAME takes --kwargs")
        return text
    if text.endswith(".py"):
        raise ConfigError(
            f"{text} is a Python file: name the model in it, path/to/file.py:NAME",
            hint=f"e.g. {text}:MyModel",
        )
    if text in MODELS:
        positional, keywords = parse_call_arguments(args, kwargs)
        if positional:
            raise ConfigError(f"--args: the family {text!r} takes keyword arguments only")
        given = parse_mapping(model_args, "--model-args") if model_args is not None else {}
        if not given and not keywords:
            return text
        return {"model": {text: {**given, **keywords}}}
    if args or kwargs or model_args is not None:
        raise ConfigError(
            "--args and --kwargs go with a path/to/file.py:NAME target, --model-args with a "
            "family name; a spec file holds its own arguments"
        )
    return text


def is_target(text: str) -> bool:
    """``True`` for ``something.py:NAME``."""
    path, sep, name = text.rpartition(":")
    return bool(sep) and path.endswith(".py") and name.isidentifier()


def parse_call_arguments(args: str | None, kwargs: str | None) -> tuple[list[Any], dict[str, Any]]:
    """Read ``"1, [32, 64]"`` and ``"activation='lrelu'"`` as a call's literal arguments.

    Raises:
        ConfigError: the text is not valid call syntax, or a value is not a literal.
    """
    text = ", ".join(part for part in (args, kwargs) if part and part.strip())
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError as err:
        raise ConfigError(
            f"--args/--kwargs: {text!r} is not what goes between a call's parentheses ({err.msg})",
            hint="e.g. --args '1, [32, 64], [1024, 512], 10' --kwargs \"activation='lrelu'\"",
        ) from err
    assert isinstance(call, ast.Call)  # f(...) always parses to a call
    try:
        positional = [ast.literal_eval(node) for node in call.args]
        keywords = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except ValueError as err:
        raise ConfigError(
            f"--args/--kwargs: only Python literals are allowed (numbers, strings, lists, tuples, "
            f"dicts, True/False/None), got {text!r}"
        ) from err
    if any(kw.arg is None for kw in call.keywords) or any(
        isinstance(node, ast.Starred) for node in call.args
    ):
        raise ConfigError("--args/--kwargs: * and ** unpacking are not allowed")
    return positional, keywords


def import_file(path: str | Path) -> ModuleType:
    """Import a Python file as a module, with its folder on ``sys.path``.

    Raises:
        ConfigError: the file does not exist or is not a ``.py`` file.
        UserCodeError: importing it raised; the message has the file's line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such Python file: {path}")
    if path.suffix != ".py":
        raise ConfigError(f"{path} is not a .py file")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"brickwork_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    argv, sys.argv = sys.argv, [str(path)]  # a file that parses sys.argv on import sees its own
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:
        del sys.modules[name]
        raise user_code_error(f"importing {path}", err, path) from err
    finally:
        sys.argv = argv
    return module


def user_code_error(doing: str, err: BaseException, path: str | Path) -> UserCodeError:
    """A :class:`UserCodeError` naming the deepest line of ``path`` in ``err``'s traceback."""
    resolved = str(Path(path).resolve())
    lineno = None
    if (
        isinstance(err, SyntaxError)
        and err.filename
        and str(Path(err.filename).resolve()) == resolved
    ):
        lineno = err.lineno
    for frame in traceback.extract_tb(err.__traceback__):
        if str(Path(frame.filename).resolve()) == resolved:
            lineno = frame.lineno
    where = f"{path}:{lineno}" if lineno else str(path)
    return UserCodeError(
        f"{doing} failed at {where}: {type(err).__name__}: {err}", filename=str(path), lineno=lineno
    )


def load_target(target: str, args: str | None = None, kwargs: str | None = None) -> nn.Module:
    """The module that ``path/to/file.py:NAME`` names, built with the given literal arguments.

    ``NAME`` may be an ``nn.Module`` class (called with the arguments), a function that returns
    a module (likewise), or a module instance (no arguments allowed).

    Raises:
        ConfigError: bad target syntax, missing file or name (with the closest name), or
            arguments for an instance.
        UserCodeError: the user's code raised while importing or building.
    """
    return build_target(target, resolve_target(target), args, kwargs)


def resolve_target(target: str) -> Any:
    """The object ``path/to/file.py:NAME`` names (importing the file), not yet called."""
    if not is_target(target):
        raise ConfigError(f"expected path/to/file.py:NAME, got {target!r}")
    path, _, name = target.rpartition(":")
    module = import_file(path)
    if not hasattr(module, name):
        public = [n for n in vars(module) if not n.startswith("_")]
        raise ConfigError(f"{path}: {unknown_name_message('name', name, public)}")
    return getattr(module, name)


def build_target(target: str, obj: Any, args: str | None, kwargs: str | None) -> nn.Module:
    """The module from :func:`resolve_target`'s object: called with the literal arguments."""
    built = call_target(target, obj, args, kwargs)
    path, _, name = target.rpartition(":")
    if not isinstance(built, nn.Module):
        raise ConfigError(f"{path}:{name}(...) returned {type(built).__name__}, not an nn.Module")
    module: nn.Module = built
    if module is not obj:  # an instance's origin is recorded by call_target
        origin = CodeOrigin(Path(path).name, name, args or "", kwargs or "", file_sha256(path))
        _ORIGINS[module] = origin
    return module


def call_target(target: str, obj: Any, args: str | None, kwargs: str | None) -> Any:
    """What :func:`resolve_target`'s object gives: a module instance as it is, anything callable
    called with the literal arguments (a module, or a training script's dict of them).

    Raises:
        ConfigError: arguments for an instance, or an object that is not callable.
        UserCodeError: the call raised; the message has the file's line.
    """
    path, _, name = target.rpartition(":")
    positional, keywords = parse_call_arguments(args, kwargs)
    if isinstance(obj, nn.Module):
        if positional or keywords:
            raise ConfigError(f"{path}:{name} is a module instance; it takes no --args/--kwargs")
        _ORIGINS[obj] = CodeOrigin(Path(path).name, name, "", "", file_sha256(path))
        return obj
    if not callable(obj):
        raise ConfigError(
            f"{path}:{name} is a {type(obj).__name__}, not an nn.Module class, a function "
            "returning a module, or a module"
        )
    try:
        return obj(*positional, **keywords)
    except Exception as err:
        raise user_code_error(f"building {name}{_signature(obj)}", err, path) from err


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
