"""One forward pass, watched: what each module call received, returned, held and ran.

:class:`MetaRun` runs a copy of a model, on meta inputs (a meta copy: nothing computed) or on real
ones (a real copy, :mod:`~brickwork.inspect.real_run`), with, for that one call:

- forward hooks that record each call's positional and keyword input shapes and its output shape
  as :class:`SummaryRow` rows, in call order;
- a dispatch mode that counts the multiply-accumulates of every op (:mod:`~brickwork.inspect.macs`),
  functional ones included, credits them to the innermost module running, lists the ops it has
  no formula for, follows which storages the input reaches and which are read under
  ``torch.no_grad()``, and names the op that raised;
- saved-tensor hooks that see every tensor autograd keeps for backward.

Both kinds of run record the same things the same way, so their rows, MACs and memory agree. The
summary and the doctor both read their run. The helpers here walk nested inputs and outputs.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from itertools import chain
from typing import Any, NamedTuple, Protocol

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.nn.parameter import UninitializedParameter
from torch.utils._python_dispatch import TorchDispatchMode

from brickwork.errors import first_line
from brickwork.inspect import fast_modules
from brickwork.inspect.fast_meta import FAST_META
from brickwork.inspect.macs import Formula, macs_formula, op_name
from brickwork.inspect.meta_copy import is_scripted, named_modules, type_name, unique_weights
from brickwork.inspect.rows import SummaryRow, call_text, fill_params
from brickwork.shapes import meta_like


def tensors_in(value: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor in ``value``: nested tuples, lists, dicts and dataclasses walked, and the
    attributes of other objects that hold tensors (a ``torch.distributions`` object, a result
    class), a few levels deep.

    Args:
        value: a tensor, or a structure that holds tensors.
        depth: how many objects deep this call already is (internal).
    """
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, tuple | list):
        for v in value:
            yield from tensors_in(v, depth)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from tensors_in(v, depth)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from tensors_in(getattr(value, f.name), depth)
    elif depth < _OBJECT_DEPTH and _plain_object(value):
        for v in vars(value).values():
            yield from tensors_in(v, depth + 1)


_OBJECT_DEPTH = 3
"""How many objects deep :func:`tensors_in` looks (an object's attributes may lead back to it)."""


def _plain_object(value: Any) -> bool:
    """An instance with attributes of its own: not a class, a Python module, a function or an
    ``nn.Module`` (whose tensors are the model's, not a result's)."""
    attributes = getattr(value, "__dict__", None)
    return (
        isinstance(attributes, dict)
        and bool(attributes)
        and not isinstance(value, type | types.ModuleType | types.FunctionType | nn.Module)
    )


def shapes_of(value: Any) -> Any:
    """Tensors → shape lists, in the same structure; anything else → its type name.

    Args:
        value: a tensor, or a tuple, list, dict or dataclass of them (nested), or ``None``.

    Returns:
        ``[2, 3]`` for a tensor; lists for tuples and lists, dicts (string keys) for dicts and
        dataclasses; ``None`` for ``None``; the type name of anything else.
    """
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, tuple | list):
        return [list(v.shape) if type(v) is torch.Tensor else shapes_of(v) for v in value]
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): shapes_of(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: shapes_of(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return type(value).__name__


def storage_key(t: torch.Tensor) -> int:
    """A key for the storage under ``t``: views of one tensor share it.

    Args:
        t: any tensor (meta ones included).
    """
    return int(t.untyped_storage()._cdata)


class Undo(Protocol):
    """What a real run calls around each op to leave the model's tensors as they were
    (:class:`~brickwork.inspect.real_run.UndoLog`)."""

    def before(self, func: Any, args: Any, kwargs: Any) -> None:
        """Called before ``func`` runs on ``args`` and ``kwargs``."""

    def after(self, args: Any, kwargs: Any, out: Any) -> None:
        """Called after it returned ``out``."""


class MetaRun(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """One watched forward pass: rows, MACs per module, saved and output bytes.

    Shared by the summary and the doctor. After :meth:`forward`, ``output`` holds what the model
    returned, or ``exception`` what it raised, ``failed`` the row of the module that raised and
    ``failed_op`` the op, if an op raised.
    """

    def __init__(
        self,
        model: nn.Module,
        track: Sequence[torch.Tensor] | None = None,
        undo: Undo | None = None,
    ) -> None:
        """A run of ``model``, not started yet: see :meth:`forward`.

        Args:
            model: a meta copy (:func:`~brickwork.inspect.meta_copy.meta_copy`), or a real copy
                (:func:`~brickwork.inspect.real_run.real_copy`) with ``undo``.
            track: tensors whose influence to follow: every storage computed from them is kept
                in ``tainted``, and the storages ops read in ``read`` and ``read_without_grad``.
                ``None`` (the default) records neither (the summary needs neither).
            undo: for a real run, what keeps the model's tensors as they were; ``None`` (the
                default) runs on meta: direct shape rules, and factories land on meta.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self.model = model
        self.undo = undo
        # storages computed from the tracked tensors; the tensors are kept so ids are not reused
        self.tainted = {storage_key(t) for t in track or ()}
        self.read: set[int] = set()  # storages some op took as input: parameters in use
        self.read_without_grad: set[int] = set()  # ... under torch.no_grad()
        self._reads = track is not None
        self._keep: list[Any] = list(track or ())
        self._modules: dict[int, tuple[str, str, bool]] = {}  # id → path, type name, scripted
        self.rows: list[SummaryRow] = []
        self.stack: list[SummaryRow] = []
        self.calls: dict[int, int] = {}
        self.root_macs = 0
        self.uncounted: dict[str, int] = {}  # op name → calls, of ops with no MAC formula
        self.saved: dict[int, int] = {}  # storage → bytes, of tensors saved for backward
        self.outputs: dict[int, int] = {}  # storage → bytes, of module outputs
        self.output: Any = None
        self.exception: Exception | None = None
        self.failed: SummaryRow | None = None
        self.failed_op: Any = None
        self.error: str | None = None  # what forward returned
        # the saved-tensor hook, as one object: fast_modules checks that it is the one in effect
        self.pack: Callable[[torch.Tensor], torch.Tensor] = self._pack

    def forward(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """Run ``model(*args, **kwargs)`` once, with grad enabled, watching every op.

        For this call only, global module hooks, saved-tensor hooks and this dispatch mode are in
        place (on meta, the mode puts what factories make, ``torch.zeros(...)`` or
        ``torch.tensor([...])`` inside the forward, on meta too); all are removed afterwards,
        also when the forward raises. The run
        records: ``rows`` (one :class:`SummaryRow` per call of one of the model's modules, in call
        order, with shapes, MACs and parameter counts), ``root_macs``, ``uncounted``, the storages
        of module outputs and of tensors saved for backward (``output_bytes``, ``saved_bytes``),
        the storages ops read (``read``, ``read_without_grad``) and those the tracked tensors
        reach (``tainted``). Then ``output`` holds what the model returned, or ``exception`` what
        it raised and ``failed`` the row of the innermost module running when it raised (``None``
        outside every module).

        Args:
            args: the positional arguments.
            kwargs: the keyword arguments.

        Returns:
            ``None`` when the forward ran through; otherwise one line that names the failing
            module, the shapes it received and the error.
        """
        # Global module hooks (on every module, for this call only) cost less than a pair of
        # hooks per module; they ignore modules that are not the model's.
        modules = named_modules(self.model)
        self._modules = {id(m): (path, type_name(m), is_scripted(m)) for path, m in modules}
        with ExitStack() as stack:
            pre = register_module_forward_pre_hook(self._pre_hook)
            stack.callback(pre.remove)
            stack.callback(_with_kwargs([m for _, m in modules], pre.id))
            stack.callback(register_module_forward_hook(self._hook).remove)
            if self.undo is None and not self._reads:  # a meta summary: whole-module rules
                stack.callback(fast_modules.install([m for _, m in modules], self))
            stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self.pack, _unpack))
            stack.enter_context(torch.enable_grad())
            stack.enter_context(self)
            try:
                self.output = self.model(*args, **kwargs)
            except Exception as err:
                self.exception = err
                self.failed = self.stack[-1] if self.stack else None
                self.error = self._failure(err)
                return self.error
        self._fill_params()
        return None

    def release(self) -> None:
        """Drop the tensors the run holds (its output, the tensors it tracked), once what the
        checks need from them has been read: on a real run they are the forward's activations."""
        self.output = None
        self._keep.clear()

    def _pre_hook(self, module: nn.Module, args: Any, kwargs: Any = None) -> None:
        # Runs on every module call: kept to the few lookups a row needs.
        known = self._modules.get(id(module))
        if known is None:
            return
        path, kind, scripted = known
        call = self.calls[id(module)] = self.calls.get(id(module), 0) + 1
        stack = self.stack
        caller = stack[-1].path if stack else ""
        row = SummaryRow(
            path,
            kind,
            len(stack),
            path.removeprefix(caller + ".") if caller else path,
            call,
            shapes_of(args),
            input_kwargs=shapes_of(kwargs) if kwargs else {},
            is_leaf=scripted or not module._modules,  # TorchScript calls its own
        )
        row.module = module  # type: ignore[attr-defined]  # dropped in _fill_params
        self.rows.append(row)
        stack.append(row)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if id(module) not in self._modules:
            return
        row = self.stack.pop()
        row.output_shape = shapes_of(output)
        for t in (output,) if type(output) is torch.Tensor else tensors_in(output):
            storage = t.untyped_storage()
            self.outputs[storage._cdata] = storage.nbytes()  # storage_key(t), inline
            # A key is the storage's address: held until release(), a freed output's address
            # cannot come back as another output's and hide its bytes.
            self._keep.append(t)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.saved[storage._cdata] = storage.nbytes()  # storage_key(tensor), inline
        self._keep.append(tensor)  # as for outputs: its address stays its own
        return tensor

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # PyTorch wraps a mode's __torch_dispatch__ in "disable dynamo", which imports
        # torch._dynamo (1 s, 70 MB) on the first op and costs a frame on every op. A summary
        # never runs under torch.compile, so that wrapper buys nothing here.
        return False

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        # Runs on every op: one table lookup by id (an op's own hash is a Python function).
        plan = _PLANS.get(id(func)) or _plan(func)
        kwargs = kwargs or {}
        try:
            out = self._run(plan, args, kwargs)
        except Exception:
            if self.failed_op is None:
                self.failed_op = func
            raise
        if self._reads:
            self._follow(args, kwargs, out)
        formula = plan.macs
        if formula is False:  # none by convention (macs.op_macs's rule)
            return out
        if formula is None or formula is True:
            name = op_name(func)
            self.uncounted[name] = self.uncounted.get(name, 0) + 1
            return out
        macs = formula(*args, out=out, **kwargs)
        if macs:
            self.count(macs)
        return out

    def count(self, macs: int) -> None:
        """Credit ``macs`` to the run and to every module running, the innermost as its own."""
        self.root_macs += macs
        for row in self.stack:
            row.macs += macs
        if self.stack:
            self.stack[-1].own_macs += macs

    def _follow(self, args: Any, kwargs: Any, out: Any) -> None:
        """Record the storages an op read, and taint its outputs when it read a tainted one."""
        keys = _storages(args, kwargs)
        self.read.update(keys)
        if not torch.is_grad_enabled():
            self.read_without_grad.update(keys)
        if self.tainted and not self.tainted.isdisjoint(keys):
            for t in tensors_in(out):
                self.tainted.add(storage_key(t))
                self._keep.append(t)

    def _run(self, plan: _Plan, args: Any, kwargs: Any) -> Any:
        """The op's output: a direct shape rule on meta when there is one, else the op itself
        (on a real run, with the model's tensors kept as they were)."""
        func = plan.func
        if self.undo is not None:
            self.undo.before(func, args, kwargs)
            out = func(*args, **kwargs)
            self.undo.after(args, kwargs, out)
            return out
        if plan.fast is not None:
            out = plan.fast(*args, **kwargs)
            if out is not None:
                return out
        if plan.factory:
            kwargs = {**kwargs, "device": _META}  # torch.zeros(...) in a forward lands on meta
        out = func(*args, **kwargs)
        if func is _LIFT_FRESH and out.device.type != "meta":  # torch.tensor([...]): its values
            out = meta_like(out)  # are the user's constants, not the run's
        return out

    def _failure(self, err: Exception) -> str:
        self._fill_params()
        reason = first_line(err, with_type=True)
        if not self.stack:
            return f"the forward failed: {reason}"
        row = self.stack[-1]
        where = row.path or "(the model itself)"
        return f"{where} ({row.type}) failed on {call_text(row)}: {reason}"

    def _fill_params(self) -> None:
        fill_params(self.rows)

    @functools.cached_property
    def weights(self) -> tuple[list[nn.Parameter], list[torch.Tensor]]:
        """The model's parameters and buffers, each once (read after the run: lazy ones exist
        by then)."""
        return unique_weights(m for _, m in named_modules(self.model))

    @functools.cached_property
    def _weights(self) -> set[int]:
        """Storages of parameters and buffers."""
        params, buffers = self.weights
        return {
            storage_key(t)
            for t in chain(params, buffers)  # isinstance on a parameter is a slow check
            if type(t) in _PLAIN_WEIGHTS or not isinstance(t, UninitializedParameter)
        }

    @property
    def saved_bytes(self) -> int:
        """Bytes autograd keeps for backward, parameters and buffers not included."""
        return sum(n for key, n in self.saved.items() if key not in self._weights)

    def held_bytes(self, inputs: Any) -> int:
        """Bytes a training step holds for backward: the saved tensors, and the tensors in
        ``inputs`` that no op saved (the batch stays alive all the same), each storage once."""
        unsaved = {
            storage_key(t): t.untyped_storage().nbytes()
            for t in tensors_in(inputs)
            if storage_key(t) not in self.saved and storage_key(t) not in self._weights
        }
        return self.saved_bytes + sum(unsaved.values())

    @property
    def output_bytes(self) -> int:
        """Bytes of every module output, each storage once."""
        return sum(n for key, n in self.outputs.items() if key not in self._weights)


_META = torch.device("meta")
_LIFT_FRESH = torch.ops.aten.lift_fresh.default
_PLAIN_WEIGHTS = frozenset({torch.Tensor, nn.Parameter})


class _Plan(NamedTuple):
    """What the dispatch mode does with one op, decided on its first call."""

    func: Any
    fast: Callable[..., Any] | None  # its direct shape rule on meta (fast_meta), if any
    factory: bool  # it makes a tensor from sizes alone, on a given device
    macs: Formula | bool | None  # macs.macs_formula: a formula, False (none), None (uncounted)


_PLANS: dict[int, _Plan] = {}  # id of an op → its plan (each plan holds its op: ids stay its own)


def _plan(func: Any) -> _Plan:
    plan = _Plan(func, FAST_META.get(func), _is_factory(func), macs_formula(func))
    _PLANS[id(func)] = plan
    return plan


def _is_factory(func: Any) -> bool:
    """Whether ``func`` takes a ``device`` and no tensor (``zeros``, ``arange``, ``randn``...)."""
    arguments = getattr(getattr(func, "_schema", None), "arguments", ())
    return any(a.name == "device" for a in arguments) and not any(
        "Tensor" in str(a.type) for a in arguments
    )


def _storages(args: Any, kwargs: Any) -> list[int]:
    """The storages of an op's tensor arguments (an op's arguments are tensors, lists of
    tensors or plain values: one level deep)."""
    keys = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            keys.append(value.untyped_storage()._cdata)
        elif isinstance(value, list | tuple):
            keys += [v.untyped_storage()._cdata for v in value if isinstance(v, torch.Tensor)]
    return keys


def _with_kwargs(modules: Any, hook_id: int) -> Any:
    """Make the global pre-hook ``hook_id`` receive keyword arguments on ``modules``; returns
    what undoes it (a module may be the user's own, as a TorchScript module is on a real run)."""
    tables = [m._forward_pre_hooks_with_kwargs for m in modules]
    for table in tables:
        table[hook_id] = True

    def undo() -> None:
        for table in tables:
            table.pop(hook_id, None)

    return undo


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor
