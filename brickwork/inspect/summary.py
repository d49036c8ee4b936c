"""A model summary that runs nothing for real: shapes, parameters, MACs and training memory.

The model is never run on real data. Its module tree is copied with every parameter and buffer
replaced by a ``meta`` stand-in (no memory), and the copy runs on ``meta`` inputs. On the way:

- forward hooks record each call's output shapes, in call order;
- a dispatch mode counts the multiply-accumulates of every matmul and convolution, functional
  ones included, and credits them to the innermost module running;
- saved-tensor hooks see every tensor autograd keeps for backward.

The user's model is left exactly as it was: it is only read, never run or hooked.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import json
import math
import os
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from brickwork.errors import (
    ArgumentError,
    ConfigError,
    first_line,
    positive_int,
    require_module,
    unknown_name_message,
)
from brickwork.registry import MODELS
from brickwork.shapes import meta_like, parse_dtype, parse_shape
from brickwork.spec import build, load_spec, to_spec

COLUMNS = ("input_shape", "output_shape", "params", "trainable", "macs")
ADAM_STATES = 2
"""Adam keeps two tensors (first and second moments) the size of each trainable parameter."""


@dataclass
class SummaryRow:
    """One call of one module.

    Attributes:
        path: module path as in ``named_modules()`` (``""`` for the model itself).
        type: class name.
        depth: how deep the call is nested: 0 for the model, 1 for the modules its forward
            calls, ... (a ``ModuleList``'s items count as called by the module that calls them).
        label: the path relative to the calling module's (``d.a.0`` when the model's forward
            calls an item of ``self.d["a"]``).
        call: 1 for the module's first call in the forward, 2 for its second...
        input_shape: shapes of the positional inputs.
        output_shape: the output's shape, or the structure of shapes of a tuple, list or dict
            output (every tensor shown), or the type name of a non-tensor.
        params: parameters of the module and its submodules, each counted once; 0 on a repeated
            call (they were counted on the first).
        trainable: how many of ``params`` require grad.
        own_params: parameters the module holds itself (not its submodules).
        macs: multiply-accumulates of this call, its submodules' included.
        own_macs: multiply-accumulates run directly in this module's forward (``F.conv2d``,
            ``x @ w``...), not in a submodule.
        is_leaf: the module has no submodules.
    """

    path: str
    type: str
    depth: int
    label: str = ""
    call: int = 1
    input_shape: Any = None
    output_shape: Any = None
    params: int = 0
    trainable: int = 0
    own_params: int = 0
    macs: int = 0
    own_macs: int = 0
    is_leaf: bool = True


@dataclass
class Summary:
    """What :func:`summary` found. ``str(summary)`` renders a table; ``to_dict()`` is JSON-ready.

    Byte counts are for the model's own dtypes at ``batch_size``. ``train_memory_bytes`` is what
    one training step with Adam keeps at its peak: parameters, their gradients and Adam's two
    states for each trainable parameter, buffers, and the tensors autograd saves for backward.
    """

    model: str
    rows: list[SummaryRow]
    batch_size: int
    input_shapes: Any
    depth: int
    columns: tuple[str, ...]
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    input_bytes: int = 0
    forward_activation_bytes: int = 0
    saved_activation_bytes: int = 0
    train_memory_bytes: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable data."""
        data = asdict(self)
        data.pop("extra")
        return json.loads(json.dumps(data))  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return render(self)

    def __rich__(self) -> Any:
        return _table(self), _totals(self)


# ----------------------------------------------------------------------------- running


def summary(
    model_or_spec: nn.Module | Mapping[str, Any] | str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    input_data: Any = None,
    batch_size: int = 1,
    depth: int = 3,
    columns: Sequence[str] = ("output_shape", "params", "macs"),
    input_dtype: torch.dtype | str | None = None,
) -> Summary:
    """Summarise a model without running it for real.

    Args:
        model_or_spec: an ``nn.Module`` (left untouched), a spec (dict, YAML/JSON text or file)
            or the name of a registered family; specs and families are built on ``meta``.
        input_shape: shape of one sample, no batch dimension (``(1, 28, 28)``). A spec's own
            ``input`` is used when this is ``None``.
        input_data: instead of ``input_shape``: a tensor, a tuple of tensors (positional
            arguments) or a dict of them (keyword arguments), with their batch dimension.
            Only their shapes and dtypes are used.
        batch_size: batch size for ``input_shape``. Default 1.
        depth: deepest row to show; the model is depth 0. Default 3.
        columns: any of ``input_shape``, ``output_shape``, ``params``, ``trainable``, ``macs``.
        input_dtype: dtype of an ``input_shape`` input (``torch.long`` for token ids); default
            float32, or the spec's ``input_dtype``.

    Returns:
        A :class:`Summary`. When the forward fails, it holds the rows up to the failing module and
        ``error`` names that module and the shapes it received.
    """
    for column in columns:
        if column not in COLUMNS:
            raise ConfigError(unknown_name_message("summary column", column, COLUMNS))
    positive_int(batch_size, "batch_size")
    model, input_shape, dtype = resolve_model(model_or_spec, input_shape, input_dtype)
    shadow = meta_copy(model)
    args, kwargs = meta_inputs(input_shape, input_data, batch_size, dtype)
    run = MetaRun(shadow)
    error = run.forward(args, kwargs)
    rows = [row for row in run.rows if row.depth <= depth]
    params = list(shadow.parameters())
    n_params = sum(_numel(p) for p in params)
    trainable = sum(_numel(p) for p in params if p.requires_grad)
    param_bytes = sum(_numel(p) * p.element_size() for p in params)
    trainable_bytes = sum(_numel(p) * p.element_size() for p in params if p.requires_grad)
    buffer_bytes = sum(b.numel() * b.element_size() for b in _buffers(shadow))
    return Summary(
        model=type(model).__name__,
        rows=rows,
        batch_size=batch_of(args, kwargs),
        input_shapes=_shapes((*args, kwargs) if kwargs else args),
        depth=depth,
        columns=tuple(columns),
        total_params=n_params,
        trainable_params=trainable,
        non_trainable_params=n_params - trainable,
        macs=run.root_macs,
        param_bytes=param_bytes,
        buffer_bytes=buffer_bytes,
        input_bytes=sum(_nbytes(t) for t in tensors_in((args, kwargs))),
        forward_activation_bytes=run.output_bytes,
        saved_activation_bytes=run.saved_bytes,
        train_memory_bytes=param_bytes
        + trainable_bytes * (1 + ADAM_STATES)  # gradients and Adam's moments
        + buffer_bytes
        + run.saved_bytes,
        error=error,
    )


def resolve_model(
    model_or_spec: Any, input_shape: Sequence[int] | None, input_dtype: torch.dtype | str | None
) -> tuple[nn.Module, tuple[int, ...] | None, torch.dtype]:
    """The model to inspect, the per-sample input shape and the input dtype.

    Specs and family names are built on ``meta``; modules are returned as they are.
    """
    dtype = parse_dtype(input_dtype) if input_dtype is not None else torch.float32
    if isinstance(model_or_spec, nn.Module):
        shape = None if input_shape is None else parse_shape(input_shape)
        return model_or_spec, shape, dtype
    if isinstance(model_or_spec, str) and model_or_spec in MODELS:
        if input_shape is None:
            raise ConfigError(
                f"summary of the family {model_or_spec!r} needs input_shape (one sample, no batch)"
            )
        model_or_spec = {"input": list(input_shape), "model": model_or_spec}
    if isinstance(model_or_spec, Mapping | str | os.PathLike):
        spec = load_spec(model_or_spec)
        model = build(spec, input_shape=input_shape, device="meta")
        if input_dtype is None:
            dtype = parse_dtype(spec.get("input_dtype", "float32"))
        return model, tuple(to_spec(model)["input"]), dtype
    raise ArgumentError(
        f"summary takes an nn.Module, a spec or a family name, got {type(model_or_spec).__name__}"
    )


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are ``meta`` tensors (no memory).

    Tied parameters stay tied, lazy parameters stay lazy (and materialise on ``meta``), and
    ``requires_grad`` and dtypes are kept. The model itself is not touched: each module is copied
    with its own attribute dicts, lists and hook tables, so a forward that records something on
    ``self`` records it on the copy. Models with lazy modules are deep-copied, because their
    initialisation hooks are bound to the module they came with.
    """
    require_module(model, "summary")
    memo: dict[int, Any] = {}
    for tensor in chain(model.parameters(), _buffers(model)):
        memo[id(tensor)] = _meta_like(tensor)
    if not any(isinstance(m, LazyModuleMixin) for m in model.modules()):
        return _copy_modules(model, memo, {})
    try:
        return copy.deepcopy(model, memo)
    except Exception as err:  # an attribute that cannot be copied: a lock, a file, a C handle
        raise ArgumentError(
            f"summary cannot copy {type(model).__name__} to inspect it: "
            f"{type(err).__name__}: {err}",
            hint="keep handles (files, locks, sockets) out of the module's attributes",
        ) from err


MODULE_INTERNALS = frozenset(vars(nn.Module()))
"""Attributes every module has (parameter, buffer, submodule and hook tables, ``training``)."""


def _copy_modules(module: nn.Module, memo: dict[int, Any], done: dict[int, Any]) -> nn.Module:
    """A structural copy: new module objects and containers, meta tensors, other values shared."""
    if id(module) in done:  # a module registered in two places stays one module
        return done[id(module)]  # type: ignore[no-any-return]
    new = module.__class__.__new__(module.__class__)
    done[id(module)] = new
    state: dict[str, Any] = {}
    for key, value in module.__dict__.items():
        if key in ("_parameters", "_buffers", "_modules"):
            state[key] = {k: _metaize(v, memo, done) for k, v in value.items()}
        elif key in _USER_HOOK_TABLES:
            state[key] = _torch_hooks_only(value)
        elif key in MODULE_INTERNALS:
            state[key] = value.copy() if isinstance(value, dict | set) else value  # hook tables
        else:  # the user's own attributes: plain lists of layers, cached tensors...
            state[key] = _metaize(value, memo, done)
    new.__dict__ = state
    return new


_PLAIN = frozenset({type(None), str, int, float, bool, torch.dtype, torch.device})


_USER_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks")


def _torch_hooks_only(hooks: dict[int, Any]) -> dict[int, Any]:
    """The copy keeps PyTorch's own hooks (old-style weight_norm, lazy initialisation) and drops
    the user's: they would run on meta tensors and record them wherever they record things."""
    kept = hooks.copy()
    for key, hook in hooks.items():
        owner = getattr(hook, "__module__", None) or type(hook).__module__
        if not str(owner).startswith("torch."):
            del kept[key]
    return kept


def _metaize(value: Any, memo: dict[int, Any], done: dict[int, Any]) -> Any:
    """``value`` with every tensor replaced by a meta one and every module by its copy."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        if id(value) not in memo:
            meta = _meta_like(value)
            if value.requires_grad and not isinstance(meta, nn.Parameter):
                meta.requires_grad_()
            memo[id(value)] = meta
        return memo[id(value)]
    if isinstance(value, nn.Module):
        return _copy_modules(value, memo, done)
    if id(value) in done:
        return done[id(value)]
    if isinstance(value, list):
        copied: list[Any] = []
        done[id(value)] = copied
        copied.extend(_metaize(v, memo, done) for v in value)
        return copied
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        items = tuple(_metaize(v, memo, done) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        copied_dict = copy.copy(value)  # keeps OrderedDict, defaultdict...
        done[id(value)] = copied_dict
        for k, v in value.items():
            copied_dict[k] = _metaize(v, memo, done)
        return copied_dict
    if isinstance(value, set):
        return {_metaize(v, memo, done) for v in value}
    if isinstance(value, types.MethodType) and isinstance(value.__self__, nn.Module):
        return types.MethodType(value.__func__, _copy_modules(value.__self__, memo, done))
    if isinstance(value, functools.partial):
        args = [_metaize(a, memo, done) for a in value.args]
        keywords = {k: _metaize(v, memo, done) for k, v in value.keywords.items()}
        return functools.partial(value.func, *args, **keywords)
    if _holds_tensors(value):  # a helper object that keeps a module or a tensor
        helper = copy.copy(value)
        done[id(value)] = helper
        helper.__dict__.update({k: _metaize(v, memo, done) for k, v in vars(value).items()})
        return helper
    return value


def _holds_tensors(value: Any) -> bool:
    attributes = getattr(value, "__dict__", None)
    if not isinstance(attributes, dict) or isinstance(value, type | types.ModuleType):
        return False
    return any(isinstance(v, torch.Tensor | nn.Module) for v in attributes.values())


def _meta_like(tensor: torch.Tensor) -> torch.Tensor:
    # torch's stubs miss these constructors' device and dtype arguments
    if isinstance(tensor, UninitializedParameter):
        return UninitializedParameter(tensor.requires_grad, device="meta", dtype=tensor.dtype)  # type: ignore[call-arg, arg-type]
    if isinstance(tensor, UninitializedBuffer):
        return UninitializedBuffer(tensor.requires_grad, device="meta", dtype=tensor.dtype)  # type: ignore[call-arg, arg-type]
    meta = meta_like(tensor)
    if isinstance(tensor, nn.Parameter):
        return nn.Parameter(meta, requires_grad=tensor.requires_grad)
    return meta


def _buffers(model: nn.Module) -> Iterator[torch.Tensor]:
    seen: set[int] = set()
    for buffer in model.buffers():
        if id(buffer) not in seen:
            seen.add(id(buffer))
            yield buffer


def _numel(p: torch.Tensor) -> int:
    return 0 if isinstance(p, UninitializedParameter) else p.numel()


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def meta_inputs(
    input_shape: tuple[int, ...] | None, input_data: Any, batch_size: int, dtype: torch.dtype
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if input_data is not None:
        if isinstance(input_data, Mapping):
            return (), {k: _to_meta(v) for k, v in input_data.items()}
        if isinstance(input_data, tuple | list):
            return tuple(_to_meta(v) for v in input_data), {}
        return (_to_meta(input_data),), {}
    if input_shape is None:
        raise ConfigError(
            "summary needs input_shape (one sample, no batch dimension, e.g. (1, 28, 28)) "
            "or input_data"
        )
    return (torch.empty((batch_size, *input_shape), dtype=dtype, device="meta"),), {}


def _to_meta(value: Any) -> Any:
    return meta_like(value) if isinstance(value, torch.Tensor) else value


def batch_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    first = next(tensors_in((args, kwargs)), None)
    return int(first.shape[0]) if first is not None and first.dim() else 1


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in ``value``: nested tuples, lists, dicts and dataclasses walked."""
    if isinstance(value, torch.Tensor):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from tensors_in(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from tensors_in(v)
    elif isinstance(value, tuple | list):
        for v in value:
            yield from tensors_in(v)


def _shapes(value: Any) -> Any:
    """Tensors → shape lists, in the same structure; anything else → its type name."""
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _shapes(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _shapes(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_shapes(v) for v in value]
    if value is None:
        return None
    return type(value).__name__


def storage_key(t: torch.Tensor) -> int:
    return int(t.untyped_storage()._cdata)


class MetaRun(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """One meta forward pass with hooks: rows, MACs per module, saved and output bytes.

    Shared by the summary and the doctor. After :meth:`forward`, ``output`` holds what the model
    returned, or ``exception`` what it raised and ``failed`` the row of the module that raised.
    """

    def __init__(self, model: nn.Module, track: Sequence[torch.Tensor] = ()) -> None:
        """Args: model: a meta copy. track: tensors whose influence to follow (``tainted``)."""
        super().__init__()  # type: ignore[no-untyped-call]
        self.model = model
        # storages computed from the tracked tensors; the tensors are kept so ids are not reused
        self.tainted = {storage_key(t) for t in track}
        self.read: set[int] = set()  # storages some op took as input: parameters in use
        self._keep: list[Any] = list(track)
        self.rows: list[SummaryRow] = []
        self.stack: list[SummaryRow] = []
        self.calls: dict[int, int] = {}
        self.root_macs = 0
        self.saved: dict[int, int] = {}  # storage → bytes, of tensors saved for backward
        self.outputs: dict[int, int] = {}  # storage → bytes, of module outputs
        self.output: Any = None
        self.exception: Exception | None = None
        self.failed: SummaryRow | None = None

    def forward(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        # Global module hooks (on every module, for this call only) cost less than a pair of
        # hooks per module; they ignore modules that are not the model's.
        self.paths = {id(module): path for path, module in self.model.named_modules()}
        with ExitStack() as stack:
            stack.callback(register_module_forward_pre_hook(self._pre_hook).remove)
            stack.callback(register_module_forward_hook(self._hook).remove)
            stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack))
            stack.enter_context(torch.enable_grad())
            stack.enter_context(torch.device("meta"))  # torch.zeros(...) in a forward lands on meta
            stack.enter_context(self)
            try:
                self.output = self.model(*args, **kwargs)
            except Exception as err:
                self.exception = err
                self.failed = self.stack[-1] if self.stack else None
                return self._failure(err)
        self._fill_params()
        return None

    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        path = self.paths.get(id(module))
        if path is None:
            return
        self.calls[id(module)] = self.calls.get(id(module), 0) + 1
        caller = self.stack[-1].path if self.stack else ""
        row = SummaryRow(
            path=path,
            type=type(module).__name__,
            depth=len(self.stack),
            label=path.removeprefix(caller + ".") if caller else path,
            call=self.calls[id(module)],
            input_shape=_shapes(list(args)),
            is_leaf=not module._modules,
        )
        row.module = module  # type: ignore[attr-defined]  # dropped in _fill_params
        self.rows.append(row)
        self.stack.append(row)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if id(module) not in self.paths:
            return
        row = self.stack.pop()
        row.output_shape = _shapes(output)
        for t in tensors_in(output):
            self.outputs[storage_key(t)] = t.untyped_storage().nbytes()

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self.saved[storage_key(tensor)] = tensor.untyped_storage().nbytes()
        return tensor

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # PyTorch wraps a mode's __torch_dispatch__ in "disable dynamo", which imports
        # torch._dynamo (1 s, 70 MB) on the first op and costs a frame on every op. A summary
        # never runs under torch.compile, so that wrapper buys nothing here.
        return False

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        fast = _FAST_META.get(func)
        out = fast(*args, **kwargs) if fast is not None else None
        if out is None:
            out = func(*args, **kwargs)
        inputs = list(tensors_in((args, kwargs)))
        for t in inputs:
            self.read.add(storage_key(t))
        if self.tainted and any(storage_key(t) in self.tainted for t in inputs):
            for t in tensors_in(out):
                self.tainted.add(storage_key(t))
                self._keep.append(t)
        macs = _macs(func, args, kwargs, out)
        if macs:
            self.root_macs += macs
            for row in self.stack:
                row.macs += macs
            if self.stack:
                self.stack[-1].own_macs += macs
        return out

    def _failure(self, err: Exception) -> str:
        self._fill_params()
        reason = first_line(err, with_type=True)
        if not self.stack:
            return f"the forward failed: {reason}"
        row = self.stack[-1]
        where = row.path or "(the model itself)"
        return (
            f"{where} ({row.type}) failed on input of shape {_format_inputs(row.input_shape)}: "
            f"{reason}"
        )

    def _fill_params(self) -> None:
        subtree: dict[int, dict[int, nn.Parameter]] = {}  # module → its subtree's parameters

        def collect(module: nn.Module) -> dict[int, nn.Parameter]:
            if id(module) not in subtree:
                found = {id(p): p for p in module._parameters.values() if p is not None}
                for child in module._modules.values():
                    if child is not None:
                        found.update(collect(child))
                subtree[id(module)] = found
            return subtree[id(module)]

        for row in self.rows:
            module: nn.Module = row.__dict__.pop("module")
            if row.call > 1:
                continue  # counted on the first call
            params = collect(module).values()
            row.params = sum(_numel(p) for p in params)
            row.trainable = sum(_numel(p) for p in params if p.requires_grad)
            row.own_params = sum(_numel(p) for p in module._parameters.values() if p is not None)

    @functools.cached_property
    def _weights(self) -> set[int]:
        """Storages of parameters and buffers (read after the run: lazy ones exist by then)."""
        tensors = chain(self.model.parameters(), self.model.buffers())
        return {storage_key(t) for t in tensors if not isinstance(t, UninitializedParameter)}

    @property
    def saved_bytes(self) -> int:
        """Bytes autograd keeps for backward, parameters and buffers not included."""
        return sum(n for key, n in self.saved.items() if key not in self._weights)

    @property
    def output_bytes(self) -> int:
        """Bytes of every module output, each storage once."""
        return sum(n for key, n in self.outputs.items() if key not in self._weights)


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _macs(func: Any, args: Any, kwargs: Any, out: Any) -> int:
    """Multiply-accumulates of one op: direct for convolutions and matmuls, else PyTorch's count."""
    if func is _aten.convolution.default:
        x, weight, transposed = args[0], args[1], args[6]
        per_position = math.prod(weight.shape)  # (C_out, C_in/groups, *kernel) or transposed
        positions = (x.numel() // x.shape[1]) if transposed else (out.numel() // out.shape[1])
        return int(per_position * positions)
    if func is _aten.mm.default or func is _aten.addmm.default:
        a, b = args[-2:] if func is _aten.mm.default else args[1:3]
        return int(a.shape[0] * a.shape[1] * b.shape[1])
    count = flop_registry.get(func.overloadpacket)
    if count is None:
        return 0
    return int(count(*args, **kwargs, out_val=out)) // 2  # the registry counts 2 per MAC


# Output shapes of the heaviest ops, computed directly. PyTorch's own meta kernels for these are
# Python functions that cost milliseconds a call (and import torch._dynamo on first use); these
# rules give the same shapes in microseconds. Each returns None to hand anything unusual (a size
# that does not fit, a channel mismatch) to PyTorch's kernel, which raises its usual error.


def _window(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:  # the last window must start inside the input
        out -= 1
    return out


def _per_dim(value: Sequence[int] | int, n: int) -> list[int]:
    values = [value] if isinstance(value, int) else list(value)
    return values * n if len(values) == 1 else values


def _like(x: torch.Tensor, shape: Sequence[int], dtype: torch.dtype | None = None) -> torch.Tensor:
    channels_last = (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    return torch.empty(
        tuple(shape),
        dtype=dtype or x.dtype,
        device="meta",
        memory_format=torch.channels_last
        if channels_last and len(shape) == 4
        else torch.contiguous_format,
    )


def _fast_convolution(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
) -> torch.Tensor | None:
    n = x.dim() - 2
    if n < 1 or weight.dim() != x.dim():
        return None
    kernel = weight.shape[2:]
    s, p, d = _per_dim(stride, n), _per_dim(padding, n), _per_dim(dilation, n)
    # PyTorch's meta kernel lets these two through; the real kernels raise, and so do we.
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != out_channels):
        raise RuntimeError(
            f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias.shape)} instead"
        )
    if groups < 1 or weight.shape[0] % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {list(weight.shape)} instead"
        )
    if x.shape[1] % groups:
        return None
    if transposed:
        if x.shape[1] != weight.shape[0]:
            return None
        op = _per_dim(output_padding, n)
        out_c = weight.shape[1] * groups
        sizes = [
            (x.shape[2 + i] - 1) * s[i] - 2 * p[i] + d[i] * (kernel[i] - 1) + op[i] + 1
            for i in range(n)
        ]
    else:
        if x.shape[1] != weight.shape[1] * groups:
            return None
        out_c = weight.shape[0]
        sizes = [_window(x.shape[2 + i], kernel[i], s[i], p[i], d[i], False) for i in range(n)]
    if any(size < 1 for size in sizes):
        return None
    return _like(x, (x.shape[0], out_c, *sizes))


def _fast_batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    channels = x.shape[1] if x.dim() > 1 else 0
    for t in (weight, bias, running_mean, running_var):
        if t is not None and t.shape != (channels,):
            return None
    stats = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    kept = channels if training else 0  # the CPU kernel keeps no batch statistics in eval mode
    return (
        _like(x, x.shape),
        torch.empty(kept, dtype=stats, device="meta"),
        torch.empty(kept, dtype=stats, device="meta"),
    )


def _fast_max_pool2d(
    x: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int] = (),
    padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    ceil_mode: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if x.dim() not in (3, 4):
        return None
    k = _per_dim(kernel_size, 2)
    s = _per_dim(stride, 2) if stride else k
    p, d = _per_dim(padding, 2), _per_dim(dilation, 2)
    if any(p[i] > k[i] // 2 for i in range(2)):
        return None
    sizes = [_window(x.shape[-2 + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2)]
    if any(size < 1 for size in sizes):
        return None
    shape = (*x.shape[:-2], *sizes)
    return _like(x, shape), _like(x, shape, torch.int64)


def _fast_unary(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    return _like(x, x.shape) if isinstance(x, torch.Tensor) else None


def _fast_inplace(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    return x if isinstance(x, torch.Tensor) else None  # an in-place op returns its input


def _fast_add_(x: torch.Tensor, other: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    fits = not isinstance(other, torch.Tensor) or other.dim() == 0 or other.shape == x.shape
    return x if isinstance(x, torch.Tensor) and fits else None  # else PyTorch checks broadcasting


def _fast_binary(a: Any, b: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    if (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and a.dtype == b.dtype
    ):
        return _like(a, a.shape)
    return None  # broadcasting and type promotion: PyTorch's kernel decides


def _fast_mean(
    x: torch.Tensor,
    dim: Sequence[int] | None = None,
    keepdim: bool = False,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor | None:
    if not x.dtype.is_floating_point or x.dim() == 0:
        return None
    dims = {d % x.dim() for d in dim} if dim else set(range(x.dim()))
    if keepdim:
        shape = [1 if i in dims else size for i, size in enumerate(x.shape)]
    else:
        shape = [size for i, size in enumerate(x.shape) if i not in dims]
    return torch.empty(shape, dtype=dtype or x.dtype, device="meta")


def _fast_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        return None
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")


def _fast_addmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta: Any = 1, alpha: Any = 1
) -> torch.Tensor | None:
    out = _fast_mm(a, b)
    if out is None or bias.dtype != a.dtype or bias.dim() > 2:
        return None
    trailing = out.shape[2 - bias.dim() :]  # bias must broadcast to the output
    if any(b not in (1, o) for b, o in zip(bias.shape, trailing, strict=True)):
        return None
    return out


_aten = torch.ops.aten
_FAST_META: dict[Any, Any] = {
    **dict.fromkeys((_aten.relu.default, _aten.sigmoid.default, _aten.tanh.default), _fast_unary),
    _aten.relu_.default: _fast_inplace,
    _aten.add_.Tensor: _fast_add_,
    **dict.fromkeys((_aten.add.Tensor, _aten.mul.Tensor, _aten.sub.Tensor), _fast_binary),
    _aten.mean.dim: _fast_mean,  # global average pooling
    _aten.mm.default: _fast_mm,
    _aten.addmm.default: _fast_addmm,  # nn.Linear
    torch.ops.aten.convolution.default: _fast_convolution,
    torch.ops.aten.native_batch_norm.default: _fast_batch_norm,
    torch.ops.aten.max_pool2d_with_indices.default: _fast_max_pool2d,
}


# ----------------------------------------------------------------------------- rendering


def _format_inputs(shapes: Any) -> str:
    """Positional input shapes; a single input without the surrounding list."""
    if isinstance(shapes, list) and len(shapes) == 1:
        return _format_shape(shapes[0])
    return _format_shape(shapes)


def _format_shape(shape: Any) -> str:
    if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
        return "[" + ", ".join(map(str, shape)) + "]"
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_format_shape(v)}" for k, v in shape.items()) + "}"
    return "--" if shape is None else str(shape)


def format_count(n: int) -> str:
    """``51930186`` → ``"51.93M"``; small numbers as they are."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def format_bytes(n: int) -> str:
    """``51930186 * 4`` → ``"198.10 MiB"``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _table(s: Summary) -> Any:
    from rich.table import Table

    table = Table(title=f"{s.model} · batch {s.batch_size}", title_justify="left")
    table.add_column("module (type)", no_wrap=True)
    headers = {
        "input_shape": "input shape",
        "output_shape": "output shape",
        "params": "params",
        "trainable": "trainable",
        "macs": "MACs",
    }
    for column in s.columns:
        table.add_column(headers[column], justify="left" if "shape" in column else "right")
    for row in s.rows:
        expanded = not row.is_leaf and row.depth < s.depth  # its children have rows of their own
        label = "  " * row.depth + (f"{row.label} ({row.type})" if row.path else row.type)
        if row.call > 1:
            label += f" #{row.call}"
        cells = {
            "input_shape": _format_inputs(row.input_shape),
            "output_shape": _format_shape(row.output_shape),
            "params": "(shared)"
            if row.call > 1
            else _cell(row.own_params if expanded else row.params),
            "trainable": "(shared)"
            if row.call > 1
            else _cell(row.trainable if not expanded else row.own_params),
            "macs": _cell(row.own_macs if expanded else row.macs),
        }
        table.add_row(label, *(cells[c] for c in s.columns))
    return table


def _cell(n: int) -> str:
    return "--" if n == 0 else f"{n:,}"


def _totals(s: Summary) -> str:
    lines = [
        f"total params: {s.total_params:,}  (trainable {s.trainable_params:,}, "
        f"non-trainable {s.non_trainable_params:,}; shared ones counted once)",
        f"MACs per forward pass: {format_count(s.macs)} ({s.macs:,})",
        f"input: {format_bytes(s.input_bytes)} · forward activations: "
        f"{format_bytes(s.forward_activation_bytes)} · params: {format_bytes(s.param_bytes)}"
        f" · buffers: {format_bytes(s.buffer_bytes)}",
        f"training memory with Adam: {format_bytes(s.train_memory_bytes)} (params, grads, 2 Adam "
        f"states, buffers, and {format_bytes(s.saved_activation_bytes)} saved for backward)",
    ]
    if s.error:
        lines.append(f"error: {s.error}")
    return "\n".join(lines)


def render(s: Summary, width: int = 120) -> str:
    """The summary as text: a table of rows, then the totals."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    console.print(_table(s))
    console.print(_totals(s), soft_wrap=True)
    return buffer.getvalue().rstrip() + "\n"
