"""brickwork's exception types and the helpers that word their messages.

Every error a user can cause is one of these types. Each subclasses the built-in exception a
Python user would expect (``ValueError`` for bad values, ``TypeError`` for bad arguments), so
``except ValueError`` keeps working, while ``except BrickworkError`` catches all of brickwork's.
"""

from __future__ import annotations

import difflib
import inspect
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from torch import nn

EXIT_FAILED = 1
"""Exit status of a run that failed on good input: a doctor finding, a NaN loss, an export that
does not match PyTorch, a lost rank."""
EXIT_BAD_INPUT = 2
"""Exit status of bad input: an unknown name, a wrong size, a missing or damaged file."""


class BrickworkError(Exception):
    """Base class of every error brickwork raises on purpose.

    Attributes:
        hint: a fix, when one is known; the command line prints it on a line of its own.
        exit_status: the command line's exit status for it (default 2, bad input).
    """

    hint: str | None = None
    exit_status: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(BrickworkError, ValueError):
    """A bad argument value: an unknown name, an empty size list, a non-positive size."""


class ArgumentError(BrickworkError, TypeError):
    """A keyword argument that the callee does not take, or a value of the wrong type."""


class ShapeError(BrickworkError, ValueError):
    """A tensor or input shape that does not fit the model."""


class SpecError(BrickworkError, ValueError):
    """A model spec that cannot be built; the message starts with the spec path (``model[3]``)."""


class BrickworkWarning(UserWarning):
    """A warning of brickwork's own; the command line shows it as one ``warning:`` line."""


class SpecWarning(BrickworkWarning):
    """A spec that builds but holds something suspect: a branch whose output nothing reads."""


class CodeWarning(BrickworkWarning):
    """Code handed over to load a model is not the file the model was trained with."""


class DeviceError(BrickworkError, ValueError):
    """A model whose parameters and buffers are spread over several devices."""


class DataError(BrickworkError, ValueError):
    """A dataset that cannot be found, fetched or read."""


class CheckpointError(BrickworkError, ValueError):
    """A checkpoint that is missing, truncated, corrupted, not brickwork's, or of another model."""


class UserCodeError(BrickworkError, RuntimeError):
    """The user's own code raised while being imported or while building the model.

    Attributes:
        filename: the user's file, and ``lineno`` the line in it closest to the failure.
    """

    def __init__(self, message: str, *, filename: str, lineno: int | None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.filename = filename
        self.lineno = lineno


class ExportError(BrickworkError, RuntimeError):
    """The exporter failed on the model, or the exported file's outputs differ from PyTorch's.

    Not bad input: the command line exits with status 1 for it, as for a model the doctor finds
    faulty.
    """

    exit_status = EXIT_FAILED


class TrainingError(BrickworkError, RuntimeError):
    """The run cannot go on (a non-finite loss); the last good checkpoint is kept."""

    exit_status = EXIT_FAILED


class RunInterruptedError(BrickworkError):
    """Ctrl-C or SIGTERM: a checkpoint was saved at the current step (exit status 128 + signal)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_status = 128 + signum


class PeerError(BrickworkError):
    """Another rank failed first; its message was printed there."""


class RankLostError(BrickworkError, RuntimeError):
    """A peer process died or stopped answering."""

    exit_status = EXIT_FAILED


def first_line(err: BaseException, *, with_type: bool = False) -> str:
    """The first non-empty line of an exception's message, or its type name if it has none.

    With ``with_type``, the type name leads: ``"ValueError: bad size"``.
    """
    text = str(err).strip()
    if not text:
        return type(err).__name__
    line = text.splitlines()[0].strip()
    return f"{type(err).__name__}: {line}" if with_type else line


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (difflib ratio >= 0.6), else one it begins, else ``None``."""
    choices = list(choices)
    matches = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    prefixed = [c for c in choices if name and c.lower().startswith(name.lower())]
    return min(prefixed, key=len) if prefixed else None


def unknown_name_message(what: str, name: str, choices: Iterable[str]) -> str:
    """``"unknown activation 'rleu'; did you mean 'relu'? valid: elu, relu, ..."``."""
    choices = list(choices)
    match = closest(name, choices)
    suggestion = f"; did you mean {match!r}?" if match else ";"
    return f"unknown {what} {name!r}{suggestion} valid: {', '.join(choices) or '(none)'}"


F = TypeVar("F", bound=Callable[..., Any])
KWARGS_OF = "__brickwork_kwargs_of__"


def passes_kwargs_to(target: Callable[..., Any], *, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Declare that ``fn(**kwargs)`` hands its ``kwargs`` to ``target``, so they can be checked.

    ``skip`` names the target's arguments that ``fn`` sets itself (``in_channels``).
    """

    def mark(fn: F) -> F:
        setattr(fn, KWARGS_OF, (target, skip))
        return fn

    return mark


REQUIRED = inspect.Parameter.empty
"""The default of an argument that has none (see :func:`arguments_of`)."""


def arguments_of(fn: Callable[..., Any]) -> list[tuple[str, Any]] | None:
    """``(name, default)`` of each keyword argument ``fn`` accepts, or ``None`` if unknowable.

    Arguments without a default have :data:`REQUIRED`. A function that takes ``**kwargs`` is
    known only when marked with :func:`passes_kwargs_to`; then the target's arguments follow its
    own.
    """
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: cannot check
        return None
    own = [
        (p.name, p.default)
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        forwarded = getattr(fn, KWARGS_OF, None)
        if forwarded is None:
            return None
        target, skip = forwarded
        theirs = arguments_of(target)
        if theirs is None:
            return None
        names = {name for name, _ in own}
        return own + [(n, d) for n, d in theirs if n not in skip and n not in names]
    return own


def accepted_kwargs(fn: Callable[..., Any]) -> list[str] | None:
    """Names of the keyword arguments ``fn`` accepts, or ``None`` when that cannot be known."""
    arguments = arguments_of(fn)
    return None if arguments is None else [name for name, _ in arguments]


def check_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Raise :class:`ArgumentError` naming ``where`` if ``fn`` does not take one of ``kwargs``.

    Args:
        fn: the callable (a class is checked against its ``__init__``).
        kwargs: the keyword arguments about to be passed.
        where: what is being built, for the message (``"activation 'lrelu'"``).
    """
    valid = accepted_kwargs(fn)
    if valid is None:
        return
    for key in kwargs:
        if key not in valid:
            raise ArgumentError(f"{where}: {unknown_name_message('argument', key, valid)}")


def positive_int(
    value: object, what: str, error: type[BrickworkError] = ConfigError, *, context: str = ""
) -> int:
    """``value`` as an ``int`` if it is a positive integer, else ``error`` (:class:`ConfigError`).

    Floats (even ``32.0``) and booleans are refused: a size is a count. The message is
    ``"{what} must be a positive integer, got {value}"``, then ``context`` if given.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise error(f"{what} must be a positive integer, got {value!r}{context}")
    number = operator.index(value)  # exact: floats were refused above
    if number < 1:
        raise error(f"{what} must be a positive integer, got {number}{context}")
    return number


def size_list(values: object, what: str, min_len: int = 1) -> list[int]:
    """``values`` as a list of positive ints with at least ``min_len`` entries.

    Raises:
        ConfigError: not a sequence, too short, or an entry that is not a positive integer
            (the message names the entry: ``enc_sizes[2]``).
    """
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigError(f"{what} must be a list of positive integers, got {values!r}")
    sizes = [positive_int(v, f"{what}[{i}]") for i, v in enumerate(values)]
    if len(sizes) < min_len:
        raise ConfigError(
            f"{what} needs at least {min_len} size{'s' if min_len > 1 else ''}, got {sizes}"
        )
    return sizes


def require_module(model: object, where: str) -> nn.Module:
    """``model`` if it is an ``nn.Module``, else :class:`ArgumentError` naming ``where``."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"{where} takes an nn.Module, got {type(model).__name__}")
    return model
