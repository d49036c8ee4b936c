"""One call of the loss, watched: which operations it applies to the output and the target.

Whatever the loss is (``nn.CrossEntropyLoss``, ``F.cross_entropy`` inside a function, a loss
written by hand), PyTorch runs it as aten operations. :func:`call_loss` runs it under a dispatch
mode that records each operation that takes a tensor of the output or of the target (one that
shares its storage, through views, or a dtype copy of it), and the Python warnings it raises.
The record says what kind of loss it is (:attr:`LossCall.kind`: ``_log_softmax`` then
``nll_loss_forward`` is cross-entropy, ``binary_cross_entropy_with_logits`` is BCE on logits)
and what it was given, even when the call raised. :func:`random_target` uses it to make a
target that fits a loss the user named without one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from brickwork.errors import ConfigError, UserCodeError, first_line
from brickwork.inspect.meta_run import storage_key, tensors_in
from brickwork.inspect.training_setup import LossFn
from brickwork.inspect.user_code import raised_at

Origin = Literal["output", "target"]
LossKind = Literal["classes", "log-probabilities", "binary-logits", "probabilities", "other"]

_COPIES = frozenset({"_to_copy", "clone", "contiguous", "_unsafe_view", "lift_fresh"})
"""Operations (besides views) whose result holds the same values as their input: the result
keeps its origin."""
_FIRST_OPS: dict[str, LossKind] = {
    "_log_softmax": "classes",
    "log_softmax": "classes",
    "_softmax": "classes",
    "softmax": "classes",
    "nll_loss_forward": "log-probabilities",
    "nll_loss2d_forward": "log-probabilities",
    "nll_loss_nd": "log-probabilities",
    "binary_cross_entropy_with_logits": "binary-logits",
    "binary_cross_entropy": "probabilities",
}
"""The first operation a loss applies to the output, and the kind of loss it makes."""
NLL_OPS = ("nll_loss_forward", "nll_loss2d_forward", "nll_loss_nd")
BINARY_OPS = ("binary_cross_entropy_with_logits", "binary_cross_entropy")


@dataclass(frozen=True)
class Op:
    """One recorded operation.

    Attributes:
        name: the aten name without overload (``nll_loss_forward``).
        args: its positional arguments (tensors as they were given).
        origins: for each positional argument, where it comes from (``None``: elsewhere).
        shape: the shape of its (first) result, or ``None``.
    """

    name: str
    args: tuple[Any, ...]
    origins: tuple[Origin | None, ...]
    shape: tuple[int, ...] | None

    def arg(self, origin: Origin) -> torch.Tensor | None:
        """The first argument that comes from ``origin``."""
        for value, came in zip(self.args, self.origins, strict=True):
            if came == origin:
                return value  # type: ignore[no-any-return]
        return None


@dataclass
class LossCall:
    """What one call of the loss did.

    Attributes:
        value: the loss, or ``None`` when the call raised.
        error: what it raised.
        ops: the operations that took the output or the target, in order.
        warned: the Python warnings it raised (their messages).
    """

    value: Any = None
    error: Exception | None = None
    ops: list[Op] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)

    @property
    def first(self) -> Op | None:
        """The first operation that computes with the output (views and copies aside)."""
        return next((op for op in self.ops if "output" in op.origins), None)

    @property
    def kind(self) -> LossKind:
        """What the loss takes: logits of classes (it applies log-softmax itself),
        log-probabilities (it goes straight to NLL), logits of binary targets, probabilities, or
        anything else (a regression)."""
        first = self.first
        return _FIRST_OPS.get(first.name, "other") if first is not None else "other"

    def find(self, *names: str) -> Op | None:
        """The first recorded operation of one of these names."""
        return next((op for op in self.ops if op.name in names), None)


class _Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records the operations that take a tensor of the output or the target; views and copies
    pass their origin on to their result instead of being recorded."""

    def __init__(self, output: Any, target: Any, call: LossCall) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.origin: dict[int, Origin] = {storage_key(t): "output" for t in tensors_in(output)}
        for t in tensors_in(target):
            self.origin.setdefault(storage_key(t), "target")
        self.call = call

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        name = func.overloadpacket.__name__
        origins = tuple(self._origin(a) for a in args)
        came = next((o for o in origins if o is not None), None)
        passes = getattr(func, "is_view", False) or name in _COPIES
        index = len(self.call.ops)
        if came is not None and not passes:
            self.call.ops.append(Op(name, tuple(args), origins, None))  # kept if it raises
        out = func(*args, **(kwargs or {}))
        if came is not None and passes:
            for t in tensors_in(out):
                self.origin.setdefault(storage_key(t), came)
        elif came is not None:
            shape = next((tuple(t.shape) for t in tensors_in(out)), None)
            self.call.ops[index] = replace(self.call.ops[index], shape=shape)
        return out

    def _origin(self, value: Any) -> Origin | None:
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            return None
        return self.origin.get(storage_key(value))


def call_loss(loss: LossFn, output: Any, target: Any) -> LossCall:
    """Call ``loss(output, target)`` once, recording what it does (see the module docstring).

    Args:
        loss: the loss.
        output: the model's output.
        target: the target.

    Returns:
        The record; ``error`` is set when the call raised (nothing is raised here).
    """
    call = LossCall()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _Recorder(output, target, call):
                call.value = loss(output, target)
        except Exception as err:  # the user's loss on the user's target: any error is a finding
            call.error = err
    call.warned = [str(w.message) for w in caught]
    return call


def random_target(loss: LossFn, output: torch.Tensor, generator: torch.Generator) -> Any:
    """A random target that fits ``loss`` on ``output``, as a batch of real labels would.

    A first call with class probabilities of the output's shape tells the kind of loss: class
    indices for one that applies log-softmax or NLL (the classes along the dimension it
    normalises, or the last), zeros and ones for BCE, and for any other (a regression) values
    from a normal distribution, or the probabilities themselves when those do not fit. A loss
    of a known kind that fails on every target gets the first one: the output is at fault
    (logits given to ``BCELoss``), and the checks of the output say so.

    Args:
        loss: the loss (called a few times).
        output: the model's output on the batch.
        generator: where the random values come from.

    A model that returns several tensors (a tuple, a dict) gets a target for the first of them
    for which the loss takes one.

    Raises:
        ConfigError: no target tried fits the loss.
    """
    errors = []
    for scores in tensors_in(output):
        if scores.is_floating_point() and scores.dim() > 0:
            found = _target_for(loss, output, scores, generator)
            if isinstance(found, torch.Tensor):
                return found
            errors.append(found)
    failed = errors[0] if errors else ValueError("the output holds no float tensor")
    broken = loss_code_error(failed, _name(loss), output, None)
    if broken is not None:
        raise broken from failed
    shapes = [list(t.shape) for t in tensors_in(output)]
    raise ConfigError(
        f"cannot make a random target that fits the loss on an output of shape "
        f"{shapes[0] if len(shapes) == 1 else shapes}: {first_line(failed, with_type=True)}",
        hint="pass the batch's target: doctor(..., input_data=x, target=y), or a training "
        "script's dict with 'batch'",
    )


def loss_code_error(
    err: BaseException, loss_name: str, output: Any, target: Any
) -> UserCodeError | None:
    """A :class:`UserCodeError` naming the line of the user's loss that raised ``err``, or
    ``None`` when torch raised it (a target that does not fit: the checks say why).

    Args:
        err: what the loss raised.
        loss_name: the loss's name for the message.
        output: the model's output it was called on.
        target: the target it was called on (``None`` for the random targets tried).
    """
    where = raised_at(err)
    if where is None:
        return None
    filename, line = where
    given = f"the output {described(output)}" + (
        f" and the target {described(target)}" if target is not None else ""
    )
    return UserCodeError(
        f"the loss {loss_name} raised at {filename}:{line} on {given}: "
        f"{first_line(err, with_type=True)}",
        filename=filename,
        lineno=line,
        hint="the doctor calls it as a training loop does: loss(output, target)",
    )


def described(value: object) -> str:
    """``[8, 5] (float32)`` for a tensor; the type's name for anything else."""
    if isinstance(value, torch.Tensor):
        return f"{list(value.shape)} ({str(value.dtype).removeprefix('torch.')})"
    return type(value).__name__


def _name(loss: Any) -> str:
    return getattr(loss, "__name__", type(loss).__name__)


def _target_for(
    loss: LossFn, output: Any, scores: torch.Tensor, generator: torch.Generator
) -> torch.Tensor | Exception:
    """A target shaped for ``scores`` (one tensor of the output) that the loss takes, or why
    none does."""
    probe = torch.rand(scores.shape, generator=generator).softmax(min(1, scores.dim() - 1))
    first = call_loss(loss, output, probe)
    kind = first.kind
    if kind in ("classes", "log-probabilities"):
        candidates = _class_targets(first, scores, generator)
    elif kind in ("binary-logits", "probabilities"):
        candidates = [torch.randint(0, 2, scores.shape, generator=generator).to(scores.dtype)]
    else:
        candidates = [torch.randn(scores.shape, generator=generator).to(scores.dtype), probe]
    runs: list[tuple[bool, int, torch.Tensor]] = []  # what the loss takes, finite losses first
    for candidate in candidates:
        call = call_loss(loss, output, candidate)
        if call.error is None and isinstance(call.value, torch.Tensor):
            runs.append((not bool(torch.isfinite(call.value.detach()).all()), len(runs), candidate))
    if runs:
        return min(runs, key=lambda run: run[:2])[2]
    if kind != "other":  # the loss is known, and fails on the output: the checks say why
        return candidates[0]
    return first.error or call.error or ValueError("it returned no tensor")


def _class_targets(
    call: LossCall, output: torch.Tensor, generator: torch.Generator
) -> list[torch.Tensor]:
    """Class-index targets for a classification loss: classes along the dimension it
    normalises when that is the output's own, else along dimension 1, else the last."""
    dims: list[int] = []
    first = call.first
    if first is not None and first.name in ("_log_softmax", "log_softmax", "_softmax", "softmax"):
        source = first.args[0]
        if tuple(source.shape) == tuple(output.shape):
            dims.append(int(first.args[1]) % output.dim())
    dims += [d for d in (1, output.dim() - 1) if d not in dims and output.dim() > 1]
    if output.dim() == 1:
        dims = [0]
    targets = []
    for dim in dims:
        shape = [s for i, s in enumerate(output.shape) if i != dim] or [1]
        targets.append(torch.randint(0, output.shape[dim], shape, generator=generator))
    return targets
