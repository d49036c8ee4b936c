"""One training forward seen from inside: the activations, the layers' order, what feeds a norm.

:class:`ForwardWatch` puts hooks on every module of the training checks' copy, and a dispatch
mode around the forward that sees every ReLU, sigmoid, tanh and softmax, from a module
(``nn.ReLU``) or a call in a forward (``F.relu``, ``x.sigmoid()``). It records:

- for each activation, the share of units that output 0 for the whole batch (ReLU) or of values
  in the flat tails (sigmoid, tanh), with the module that applied it and, for a call, its line;
- which module and line made each softmax, log-softmax, sigmoid, tanh and ReLU output (the
  output's range, for the loss: a probability it may normalise again, a bound a target may
  pass); each such output is kept until the watch's record is dropped, so that its storage
  cannot be reused by another tensor meanwhile;
- the layers with a weight matrix in the order they first run;
- the layers whose output goes, as it is, into a norm that normalises it in this mode (their
  weights' scale then does not matter), and for those with a bias, the norm.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from brickwork.inspect.meta_copy import is_scripted
from brickwork.inspect.meta_run import storage_key
from brickwork.inspect.user_code import user_frame

ACTIVATION_MODULES = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax)
"""Modules that are an activation the watch measures, named by their own path."""
NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm)
"""Norms that subtract a mean per channel (per group for ``GroupNorm``)."""
RUNNING = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
"""Norms that, in eval mode with running statistics, only scale and shift."""
SATURATION = 0.01
"""A sigmoid output within this of 0 or 1, or a tanh output within twice this of -1 or 1, is
in a flat tail: its gradient is under 1% of its largest."""
_MEASURED = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
_MEASURED |= {"tanh": "tanh", "tanh_": "tanh"}
_PRODUCING = _MEASURED | {"_softmax": "softmax", "softmax": "softmax"}
_PRODUCING |= {"_log_softmax": "log_softmax", "log_softmax": "log_softmax"}


@dataclass(frozen=True)
class Site:
    """Where an activation ran: an activation module, or a call in a module's forward.

    Attributes:
        path: the activation module's path, or the module whose forward made the call.
        op: ``relu``, ``sigmoid``, ``tanh``, ``softmax`` or ``log_softmax``.
        line: ``file:line`` of a call in the user's forward, when known.
        module: the activation module's class name (``ReLU``), or ``None`` for a call.
    """

    path: str
    op: str
    line: str | None
    module: str | None

    @property
    def where(self) -> str:
        """```head.1` (Softmax)`` or ``relu in `block`'s forward at net.py:12``."""
        if self.module is not None:
            return f"`{self.path}` ({self.module})"
        owner = f"`{self.path}`'s" if self.path else "the model's"
        return f"{self.op} in {owner} forward" + (f" at {self.line}" if self.line else "")


@dataclass
class Activation:
    """One activation's worst call in a forward.

    Attributes:
        site: where it ran.
        units: how many units (channels, features) it has.
        dead: share of units that output 0 for every sample and position (ReLU).
        saturated: share of values in the flat tails (sigmoid, tanh).
        input_std: the standard deviation of its input.
    """

    site: Site
    units: int
    dead: float = 0.0
    saturated: float = 0.0
    input_std: float = 0.0


@dataclass
class Producer:
    """Where a bounded output was made, and the output (kept, so that its storage key stays
    its own while the record lives)."""

    site: Site
    tensor: torch.Tensor


@dataclass
class ForwardRecord:
    """What a watched forward did (see the module docstring)."""

    activations: dict[Site, Activation] = field(default_factory=dict)
    producers: dict[int, Producer] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)
    normalised: set[str] = field(default_factory=set)
    feeds: list[tuple[str, str]] = field(default_factory=list)


def _normalises(module: nn.Module) -> bool:
    """Whether ``module`` normalises its input as it runs now (a norm on batch or per-sample
    statistics, or layer norm)."""
    if isinstance(module, RUNNING):
        return bool(module.training or not module.track_running_stats)
    return isinstance(module, (*NORMS, nn.LayerNorm))


def layer_weight(module: nn.Module) -> nn.Parameter | None:
    """The weight matrix of a layer (a convolution, a linear layer), also under a
    parametrization (``spectral_norm``) or old-style ``weight_norm``; ``None`` for others.

    Args:
        module: any module.
    """
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return None  # a lookup: only the rows of the batch's ids get a gradient
    parametrized = getattr(module, "parametrizations", None)
    candidates = [module._parameters.get(n) for n in ("weight", "weight_orig", "weight_v")]
    if isinstance(parametrized, nn.ModuleDict) and "weight" in parametrized:
        candidates.insert(0, getattr(parametrized["weight"], "original", None))
    return next((p for p in candidates if isinstance(p, nn.Parameter) and p.dim() >= 2), None)


class ForwardWatch:
    """Hooks and a dispatch mode on a model for the forwards run inside ``with``.

    Args:
        model: the training checks' copy (hooks are put on it and taken off again).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.record = ForwardRecord()
        self._stack: list[nn.Module] = []
        self._paths: dict[int, str] = {id(m): p for p, m in model.named_modules()}
        self._outputs: dict[int, tuple[torch.Tensor, str, bool]] = {}  # layers' outputs, biased?
        self._handles: list[Any] = []
        self._mode = _Mode(self)
        self.stop: FrameType | None = None

    def __enter__(self) -> ForwardRecord:
        """Put the hooks on and start the dispatch mode."""
        self.stop = sys._getframe(1)  # the caller: a user's line is found inside its call
        for module in self.model.modules():
            if is_scripted(module):
                continue  # TorchScript takes no Python hooks
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))
        self._mode.__enter__()  # type: ignore[no-untyped-call]
        return self.record

    def __exit__(self, *exc: Any) -> None:
        """Stop the mode and take the hooks off."""
        self._mode.__exit__(*exc)  # type: ignore[no-untyped-call]
        for handle in self._handles:
            handle.remove()
        self._outputs.clear()
        self._stack.clear()

    def path_of(self, module: nn.Module) -> str:
        """The module's path in the model."""
        return self._paths.get(id(module), "")

    @property
    def current(self) -> nn.Module | None:
        """The innermost module running."""
        return self._stack[-1] if self._stack else None

    def line(self) -> str | None:
        """The user's line of the operation being dispatched, within the watched forward."""
        return user_frame(sys._getframe(2), self.stop)

    def _pre(self, module: nn.Module, args: Any) -> None:
        self._stack.append(module)
        path = self.path_of(module)
        weight = layer_weight(module)
        if weight is not None and weight.requires_grad and path not in self.record.layers:
            self.record.layers.append(path)
        if _normalises(module) and args and isinstance(args[0], torch.Tensor):
            found = self._outputs.get(id(args[0]))
            if found is not None and found[0] is args[0]:
                self.record.normalised.add(found[1])
                if found[2] and not isinstance(module, nn.LayerNorm):
                    self.record.feeds.append((found[1], path))

    def _post(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
        if isinstance(module, nn.modules.conv._ConvNd | nn.Linear) and isinstance(
            output, torch.Tensor
        ):
            biased = isinstance(getattr(module, "bias", None), nn.Parameter)
            self._outputs[id(output)] = (output, self.path_of(module), biased)


class _Mode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Measures each activation as it runs (see :class:`ForwardWatch`)."""

    def __init__(self, watch: ForwardWatch) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.watch = watch

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        name = func.overloadpacket.__name__
        tails = _MEASURED.get(name) in ("sigmoid", "tanh")
        std = _std(args[0]) if tails and args else 0.0  # before an in-place op writes it
        out = func(*args, **(kwargs or {}))
        if name in _PRODUCING and isinstance(out, torch.Tensor):
            self._seen(name, out.detach(), std)
        return out

    def _seen(self, name: str, out: torch.Tensor, std: float) -> None:
        module = self.watch.current
        own = isinstance(module, ACTIVATION_MODULES)
        site = Site(
            self.watch.path_of(module) if module is not None else "",
            _PRODUCING[name],
            None if own else self.watch.line(),
            type(module).__name__ if own else None,
        )
        self.watch.record.producers[storage_key(out)] = Producer(site, out)
        if name not in _MEASURED or out.dim() < 2 or not out.is_floating_point():
            return
        found = _measure(site, out, std)
        old = self.watch.record.activations.get(site)
        if old is None or (found.dead, found.saturated) > (old.dead, old.saturated):
            self.watch.record.activations[site] = found


def _measure(site: Site, out: torch.Tensor, std: float) -> Activation:
    """An activation's dead or saturated share on this call (units along dimension 1, or the
    last one when that counts fewer dead: ``(B, C, L)`` and ``(B, T, F)`` look alike)."""
    units = out.shape[1]
    if site.op == "relu":
        zero = out == 0
        shares = []
        for dim in {1, out.dim() - 1}:
            others = [d for d in range(out.dim()) if d != dim]
            shares.append(float(zero.all(dim=others).float().mean()))
        return Activation(site, units, dead=min(shares), input_std=std)
    low, high = (0.0, 1.0) if site.op == "sigmoid" else (-1.0, 1.0)
    margin = SATURATION * (high - low)
    tails = (out < low + margin) | (out > high - margin)
    return Activation(site, units, saturated=float(tails.float().mean()), input_std=std)


def _std(value: Any) -> float:
    if not isinstance(value, torch.Tensor) or value.numel() < 2 or not value.is_floating_point():
        return 0.0
    return float(value.detach().float().std())
