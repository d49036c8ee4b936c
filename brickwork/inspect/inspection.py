"""Meta first, real when needed: the run that the summary and the doctor read.

An :class:`Inspection` runs a copy of the model on meta tensors. When an op needs real values
(``.item()``, ``nonzero``, a ``.cpu()``, a CPU-only argument) or the model holds a TorchScript
module, and the run mode is ``"auto"``, it runs again for real: on the model's own weights and
device, at the same batch, with :mod:`~brickwork.inspect.real_run` keeping the model as it was.
It says which run it used and why.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from itertools import chain
from typing import Any, Literal

import torch
from torch import nn

from brickwork.errors import ConfigError, unknown_name_message
from brickwork.inspect.inputs import Inputs
from brickwork.inspect.macs import op_name
from brickwork.inspect.meta_copy import ScriptedModuleError, meta_copy, unwrap_compiled
from brickwork.inspect.meta_run import MetaRun, tensors_in
from brickwork.inspect.real_run import UndoLog, kept, real_copy
from brickwork.inspect.user_code import user_line

RunMode = Literal["auto", "meta", "real"]
"""``auto``: meta, and real when an op needs values; ``meta``: meta only; ``real``: real only."""
RUN_MODES: tuple[RunMode, ...] = ("auto", "meta", "real")

_META_LIMIT = re.compile(
    r"meta|data-dependent|item\(\) cannot|Cannot copy out of|no fake impl|"
    r"should be a 1D CPU|CPU tensor|without output_size|to numpy",
    re.IGNORECASE,
)
_DATA_TAGS = {torch.Tag.data_dependent_output, torch.Tag.dynamic_output_shape}


class Inspection:
    """A model run once (or twice, for the doctor) on meta, or for real when it must be.

    Use it as a context manager: leaving it puts back whatever a real run wrote to the model's
    tensors, the RNG states and ``requires_grad`` flags. After :meth:`forward`: ``kind`` is
    ``"meta"`` or ``"real"``, ``reason`` says why a real run was used (or why it could not be),
    ``copy`` is the copy that ran, ``args``/``kwargs`` its inputs, and ``watched`` the context
    the last attempt ran in.
    """

    def __init__(self, model: nn.Module, inputs: Inputs, mode: RunMode = "auto") -> None:
        """An inspection of ``model`` on ``inputs``; nothing runs until :meth:`forward`.

        Args:
            model: the user's model (only read; a real run undoes what it writes).
            inputs: the forward's arguments.
            mode: ``"auto"`` (default), ``"meta"`` or ``"real"``.

        Raises:
            ConfigError: an unknown mode, or ``"real"`` for a model whose weights are on meta.
        """
        if mode not in RUN_MODES:
            raise ConfigError(unknown_name_message("run", str(mode), RUN_MODES))
        self.model = unwrap_compiled(model)
        self.inputs = inputs
        self.mode = mode
        self.kind = "meta"
        self.reason: str | None = None
        self.copy: nn.Module = self.model
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.watched: Any = None
        self.undo: UndoLog | None = None
        self._stack = ExitStack()
        self._track = False
        self._before: Callable[[nn.Module], None] | None = None
        self._watch: Callable[[], AbstractContextManager[Any]] | None = None
        if mode == "real" and not self.can_run_real:
            raise ConfigError(
                "run='real' needs the model's weights, but they are on meta",
                hint="build the model on a real device (a small one), or use run='meta'",
            )

    def __enter__(self) -> Inspection:
        """Start the inspection."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Put back what a real run wrote: tensors, RNG states, ``requires_grad`` flags."""
        if self.undo is not None:
            self.undo.restore()
        self._stack.close()

    @property
    def can_run_real(self) -> bool:
        """The model's weights hold values (none of them is on meta)."""
        tensors = chain(self.model.parameters(), self.model.buffers())
        return all(t.device.type != "meta" for t in tensors)

    def forward(
        self,
        *,
        track: bool = False,
        before: Callable[[nn.Module], None] | None = None,
        watch: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> MetaRun:
        """Run the model once: on meta first, then for real when an op needs values.

        Args:
            track: follow which storages the inputs reach (``run.tainted``) and which ones
                ops read (``run.read``).
            before: called with each copy before it runs (the doctor reads its state).
            watch: makes a context to run each attempt in (the doctor's print and warning
                catcher); the last one is kept in ``watched``.

        Returns:
            The run that was used: the meta one, or the real one that followed it.
        """
        self._track, self._before, self._watch = track, before, watch
        with _collector_paused():
            return self._forward()

    def _forward(self) -> MetaRun:
        if self.mode == "real":
            self.reason = "run='real' was asked for"
            return self._real()
        try:
            self.copy = meta_copy(self.model)
        except ScriptedModuleError as err:
            if self.mode == "meta" or not self.can_run_real:
                raise ConfigError(f"{err}, and run={self.mode!r} cannot run it") from err
            self.reason = f"{err}: it ran for real"
            return self._real()
        self.args, self.kwargs = self.inputs.meta()
        run = self._attempt(None)
        if run.exception is None or not needs_real_values(run):
            return run
        self.reason = limit_text(run)
        if self.mode == "meta":
            return run
        if not self.can_run_real:
            self.reason += (
                "; the model's weights are on meta, so it cannot run for real: build it on a "
                "real device and pass run='real' with a small batch"
            )
            return run
        self.reason += ": it ran for real"
        return self._real()

    def again(self) -> MetaRun:
        """Run the same copy on the same inputs once more (what a second call accumulates)."""
        run = MetaRun(self.copy, undo=self.undo)
        run.forward(self.args, self.kwargs)
        return run

    def _real(self) -> MetaRun:
        self.kind = "real"
        self._stack.enter_context(kept(self.model))
        self.undo = UndoLog()
        self.copy = real_copy(self.model)
        self.args, self.kwargs = self.inputs.real(self.model, _device(self.model))
        return self._attempt(self.undo)

    def _attempt(self, undo: UndoLog | None) -> MetaRun:
        """One run of ``copy`` on ``args``/``kwargs``, as :meth:`forward` was asked to run."""
        if self._before is not None:
            self._before(self.copy)
        tracked = list(tensors_in((self.args, self.kwargs))) if self._track else None
        run = MetaRun(self.copy, track=tracked, undo=undo)
        self.watched = self._watch() if self._watch is not None else None
        with self.watched if self.watched is not None else ExitStack():
            run.forward(self.args, self.kwargs)
        return run


def needs_real_values(run: MetaRun) -> bool:
    """Whether a meta run failed for want of values rather than because the model is wrong.

    Args:
        run: a meta run whose forward raised.
    """
    err = run.exception
    if err is None:
        return False
    tags = set(getattr(run.failed_op, "tags", ()))
    return bool(_META_LIMIT.search(str(err)) or tags & _DATA_TAGS)


def limit_text(run: MetaRun) -> str:
    """``"`roi_heads` (RoIHeads) calls aten.nonzero at model.py:41, which needs real values"``.

    Args:
        run: a meta run that failed for want of values.
    """
    row = run.failed
    where = f"`{row.path}` ({row.type})" if row is not None and row.path else "the model"
    op = op_name(run.failed_op) if run.failed_op is not None else "an operation"
    at = user_line(run.exception) if run.exception is not None else None
    return f"{where} calls {op}{f' at {at}' if at else ''}, which needs real values"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (when it was running) for one inspection.

    The copy and the run make thousands of short-lived objects, freed by reference counting
    when the inspection ends. Left running, the collector ran about seven times per summary of
    a ResNet-50 (a few percent of its time), and every twenty-five or so summaries a full
    collection walked the half a million objects ``import torch`` leaves alive, which took
    longer than the summary itself.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _device(model: nn.Module) -> torch.device:
    """Where the model's weights are (the first one's device; the CPU for a model without)."""
    first = next(chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")
