"""Whole-module rules for a meta summary: convolutions, batch norms and ReLUs without their ops.

In a watched meta forward (:mod:`~brickwork.inspect.meta_run`) most of the time goes to PyTorch's
path for each op: the module's Python forward, the dispatcher, autograd's node, the call into the
dispatch mode and back. A convolution is one op on that path, a ReLU one or two, a batch norm in
training mode three. For these modules, of these exact classes, the run replaces the forward of its
copy, for that one run, by a rule that records what that path records, with the same shape rules
and MAC formulas:

- the output: same shape, dtype and memory format, on ``meta``, and, when an input requires grad,
  a non-leaf that requires grad (made by a ``clone`` outside the dispatch mode, so that an
  in-place op after it behaves as after the real op);
- the tensors autograd saves for backward, handed to the run's saved-tensor hook: a
  convolution's input and weight; a batch norm's input, running statistics, weight and its two
  new statistics tensors; a ReLU's result;
- the multiply-accumulates (a convolution's; the others count none, and none is uncounted);
- in-place updates bump the version counter, as the op would (an in-place ReLU, a batch norm's
  ``num_batches_tracked``).

Anything else falls back to the module's own forward: another class (a subclass, a lazy module),
several or keyword inputs, a tensor subclass, non-meta tensors, grad disabled, another
saved-tensor hook or a torch-function mode or functorch transform in effect, forward AD, eval
mode, unusual settings (``padding_mode``, string padding, ``momentum=None``), and every input
the shape rule leaves to PyTorch (mismatched shapes: PyTorch's kernel raises its usual error).
``tests/inspect/test_fast_modules.py`` compares whole summaries with and without these rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.autograd import forward_ad

from brickwork.inspect.fast_meta import fast_batch_norm, fast_convolution, fast_unary
from brickwork.inspect.macs import Formula, macs_formula

_CONV_MACS = cast(Formula, macs_formula(torch.ops.aten.convolution.default))
_PLAIN = frozenset({torch.Tensor, nn.Parameter})
try:  # PyTorch internals the rules need; without one of them, every module takes its own path
    _top_hooks = torch._C._autograd._top_saved_tensors_default_hooks
    _set_versions = torch._C._autograd._unsafe_set_version_counter
    _function_modes = torch._C._len_torch_function_stack
    _functorch_active = torch._C._are_functorch_transforms_active
    _no_dispatch = torch._C._DisableTorchDispatch
    forward_ad._current_level  # noqa: B018  (read by the rules)
except AttributeError:  # another PyTorch version (brickwork takes torch>=2.2)
    AVAILABLE = False
else:
    AVAILABLE = True


class Run(Protocol):
    """What a rule records into: the run's saved-tensor hook and its MAC counter."""

    pack: Callable[[torch.Tensor], torch.Tensor]

    def count(self, macs: int) -> None:
        """Credit ``macs`` to the modules running."""


Rule = Callable[[Any, torch.Tensor, Run], torch.Tensor | None]


def install(modules: Iterable[nn.Module], run: Run) -> Callable[[], None]:
    """Give each of ``modules`` with a rule a forward that applies it; returns what undoes it.

    Args:
        modules: the modules of a meta copy (only the copy's own are changed).
        run: the run that records.
    """
    installed: list[nn.Module] = []
    for module in modules if AVAILABLE else ():
        rule = RULES.get(type(module))
        if rule is not None and "forward" not in module.__dict__:
            module.__dict__["forward"] = _forward(module, rule, run)
            installed.append(module)

    def undo() -> None:
        for module in installed:
            module.__dict__.pop("forward", None)

    return undo


def _forward(module: nn.Module, rule: Rule, run: Run) -> Callable[..., Any]:
    slow = module.forward  # the class's own, bound

    def forward(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and _watched(args[0], run):
            with _no_dispatch():  # the rule's own tensors are made outside the dispatch mode
                out = rule(module, args[0], run)
            if out is not None:
                return out
        return slow(*args, **kwargs)

    return forward


def _watched(x: Any, run: Run) -> bool:
    """``x`` is a plain meta tensor and the op would run as the run watches it: grad on, the
    run's saved-tensor hook on top, no torch-function mode, functorch transform or forward AD."""
    if type(x) is not torch.Tensor or not x.is_meta or not torch.is_grad_enabled():
        return False
    hooks = _top_hooks(False)
    return (
        hooks is not None
        and hooks[0] is run.pack
        and not _function_modes()
        and not _functorch_active()
        and forward_ad._current_level < 0
    )


def _plain(*tensors: torch.Tensor | None) -> bool:
    """Each is ``None`` or a plain meta tensor or parameter."""
    return all(t is None or (type(t) in _PLAIN and t.is_meta) for t in tensors)


def _tensors(module: nn.Module, names: tuple[str, ...]) -> list[Any] | None:
    """``module``'s parameters or buffers ``names``, read from its tables (``module.weight``
    goes through ``nn.Module.__getattr__``, five times slower); ``None`` when one is held
    elsewhere (an attribute that a hook sets, as old-style weight norm does)."""
    state = module.__dict__
    params, buffers = state["_parameters"], state["_buffers"]
    found = []
    for name in names:
        if name in state:
            return None
        if name in params:
            found.append(params[name])
        elif name in buffers:
            found.append(buffers[name])
        else:
            return None
    return found


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return any(t is not None and t.requires_grad for t in tensors)


def _grad_output(out: torch.Tensor) -> torch.Tensor:
    """``out`` as an op's output that requires grad: not a leaf, a storage of its own."""
    return out.requires_grad_().clone()


def _bump(tensor: torch.Tensor) -> None:
    """Count one in-place write to ``tensor``, as the op would."""
    _set_versions((tensor,), (tensor._version + 1,))


def _convolution(module: Any, x: torch.Tensor, run: Run) -> torch.Tensor | None:
    n = x.dim() - 2
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        return None
    if n != len(module.kernel_size):  # an unbatched input: F.conv2d adds the batch dimension
        return None
    tensors = _tensors(module, ("weight", "bias"))
    if tensors is None:
        return None
    weight, bias = tensors
    if weight is None or not _plain(weight, bias) or weight.dtype != x.dtype:
        return None
    args = (x, weight, bias, module.stride, module.padding, module.dilation, False, [0] * n)
    try:
        out = fast_convolution(*args, module.groups)
    except RuntimeError:  # PyTorch's kernel raises it, with the op named
        return None
    if out is None:
        return None
    run.count(_CONV_MACS(*args, module.groups, out=out))
    if not _needs_grad(x, weight, bias):
        return out
    run.pack(x)
    run.pack(weight)
    return _grad_output(out)


def _batch_norm(module: Any, x: torch.Tensor, run: Run) -> torch.Tensor | None:
    if not (module.training and module.track_running_stats) or module.momentum is None:
        return None
    if x.dim() not in _NORM_DIMS[type(module)] or not module.eps > 0 or x.shape[1] < 1:
        return None
    if x.numel() // x.shape[1] <= 1:  # F.batch_norm raises: one value per channel
        return None
    tensors = _tensors(module, _NORM_TENSORS)
    if tensors is None:
        return None
    weight, bias, mean, var, count = tensors
    if mean is None or var is None or count is None or not _plain(weight, bias, mean, var, count):
        return None
    result = fast_batch_norm(x, weight, bias, mean, var, True, module.momentum, module.eps)
    if result is None:
        return None
    out, save_mean, save_invstd = result
    _bump(count)  # num_batches_tracked.add_(1)
    if not _needs_grad(x, weight, bias):
        return out
    for saved in (x, mean, var, weight, save_mean, save_invstd):
        if saved is not None:
            run.pack(saved)
    return _grad_output(out)


def _relu(module: Any, x: torch.Tensor, run: Run) -> torch.Tensor | None:
    if not module.inplace:
        out = fast_unary(x)
        if out is None or not x.requires_grad:
            return out
        out = _grad_output(out)
        run.pack(out)
        return out
    if x.requires_grad:
        if x.is_leaf or x._is_view():  # autograd raises, or rewrites the view's history
            return None
        run.pack(x)
    _bump(x)
    return x


_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_NORM_DIMS: dict[type, tuple[int, ...]] = {
    nn.BatchNorm1d: (2, 3),
    nn.BatchNorm2d: (4,),
    nn.BatchNorm3d: (5,),
}

RULES: dict[type, Rule] = {
    nn.Conv1d: _convolution,
    nn.Conv2d: _convolution,
    nn.Conv3d: _convolution,
    **dict.fromkeys(_NORM_DIMS, _batch_norm),
    nn.ReLU: _relu,
}
"""Module class (exactly) → its rule: the output, or ``None`` to run the module's own forward."""
