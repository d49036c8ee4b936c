"""The training checks' own copy of a training setup, on the CPU, and the user's left as it was.

The checks take real optimizer steps, so they need weights of their own: :func:`working_copy`
copies the model and the loss together (one structural copy, so a tensor they share stays
shared), each tensor cloned to the CPU with the gradient it holds (a frozen parameter that
still holds one is stepped by the optimizer as a trainable one is), and deep-copies the optimizer
with its parameters mapped onto the copy's, its state cloned and moved to the CPU. Nothing of
the user's is written: :func:`untouched` also puts back the random number generators (CPU, CUDA,
Python's) and the parameters' ``requires_grad`` flags.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from brickwork.errors import ConfigError, first_line
from brickwork.inspect.meta_copy import structural_copy, unwrap_compiled
from brickwork.inspect.real_run import kept
from brickwork.inspect.training_setup import LossFn

PEAK_LR_KEYS = ("lr", "initial_lr", "max_lr")
"""A parameter group's learning rates: its current one, and the ones a schedule starts from or
climbs to (``LinearLR`` warms up from ``lr``, near 0, towards ``initial_lr``; ``OneCycleLR``
towards ``max_lr``). The copy steps at the largest, so a warm-up does not pass for a model that
cannot learn."""


@dataclass
class WorkingCopy:
    """The model, loss and optimizer the training checks step, all on the CPU.

    Attributes:
        model: the model's copy.
        loss: the loss's copy (a function is shared: it holds no tensors of the model).
        optimizer: the optimizer's copy, over the copy's parameters.
        names: id of each of the copy's parameters → its name in the model.
    """

    model: nn.Module
    loss: LossFn
    optimizer: torch.optim.Optimizer
    names: dict[int, str]


def working_copy(model: nn.Module, loss: LossFn, optimizer: torch.optim.Optimizer) -> WorkingCopy:
    """Copies of ``model``, ``loss`` and ``optimizer`` on the CPU (see the module's docstring).

    Args:
        model: the user's model, with real weights (only read).
        loss: the loss (an ``nn.Module`` is copied with the model).
        optimizer: an optimizer over the model's (and the loss's) parameters (only read).

    Raises:
        ConfigError: the optimizer cannot be copied (it holds something deepcopy refuses).
    """
    mapped: dict[int, torch.Tensor] = {}

    def clone(tensor: torch.Tensor) -> torch.Tensor:
        if isinstance(tensor, UninitializedParameter | UninitializedBuffer):
            return tensor  # lazy: deep-copied, and materialised on the CPU by the first call
        data = tensor.detach().to("cpu", copy=True)
        new = nn.Parameter(data, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else data
        if isinstance(new, nn.Parameter) and tensor.grad is not None:
            new.grad = tensor.grad.detach().to("cpu", copy=True)  # a step reads which have one
        mapped[id(tensor)] = new
        return new

    pair = nn.Module()
    pair.add_module("model", unwrap_compiled(model))
    if isinstance(loss, nn.Module):
        pair.add_module("loss", loss)
    copied = structural_copy(pair, clone)
    model_copy = copied.get_submodule("model")
    loss_copy: LossFn = copied.get_submodule("loss") if isinstance(loss, nn.Module) else loss
    names = {id(p): name for name, p in model_copy.named_parameters(remove_duplicate=False)}
    return WorkingCopy(model_copy, loss_copy, _optimizer_copy(optimizer, mapped), names)


def _optimizer_copy(
    optimizer: torch.optim.Optimizer, mapped: dict[int, torch.Tensor]
) -> torch.optim.Optimizer:
    """A deep copy whose groups hold the copy's parameters, on the CPU, at the peak lr."""
    memo: dict[int, Any] = dict(mapped)
    try:
        new = copy.deepcopy(optimizer, memo)
    except Exception as err:  # a lock, a file, a C handle held by a custom optimizer
        raise ConfigError(
            f"optimizer: cannot copy {type(optimizer).__name__} to step it without changing "
            f"yours: {first_line(err, with_type=True)}",
            hint="pass a plain torch.optim optimizer, or none (the doctor steps with Adam)",
        ) from err
    for key, value in vars(optimizer).items():  # what Optimizer.__getstate__ leaves out
        if key not in vars(new):  # (LBFGS's _params), mapped onto the copy's parameters
            setattr(new, key, copy.deepcopy(value, memo))
    for state in new.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device.type != "cpu":
                state[key] = value.to("cpu")
    for group in new.param_groups:
        if group.get("capturable"):
            group["capturable"] = False  # CUDA graphs' flag: the copy steps on the CPU
        rates = [group[k] for k in PEAK_LR_KEYS if isinstance(group.get(k), Real)]
        if rates and not isinstance(group["lr"], torch.Tensor):
            group["lr"] = max(float(r) for r in rates)
    return new


@contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Put back, on leaving, the random number generators (CPU, CUDA and Python's) and the
    model's ``requires_grad`` flags and tensors (see :func:`~brickwork.inspect.real_run.kept`).

    Args:
        model: the user's model.
    """
    python_state = random.getstate()
    try:
        with kept(model):
            yield
    finally:
        random.setstate(python_state)
