"""What the doctor's training checks train with: a loss and an optimizer, named or given.

A loss is a name from :data:`LOSSES` (``cross_entropy``, ``mse``, ``bce``...), an ``nn.Module``
or any callable ``loss(output, target)``, called the way a training loop calls it. An optimizer
is a name from :data:`OPTIMIZERS` (PyTorch's defaults), a ``torch.optim.Optimizer`` over the
model's parameters, or a function that takes the model and returns one. A training script's
objects come as a dict (``model``, ``optimizer``, ``loss``, optionally ``batch``):
:func:`setup_arguments` turns it into the doctor's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, positive_int, unknown_name_message
from brickwork.registry import Registry

LossFn = Callable[[Any, Any], Any]
"""``loss(output, target)``, returning a scalar tensor."""

LOSSES: Registry[Callable[..., Any]] = Registry("loss")
"""Losses by name, each PyTorch's module with its defaults."""
LOSSES.register("cross_entropy", nn.CrossEntropyLoss, aliases=("ce", "CrossEntropyLoss"))
LOSSES.register("nll", nn.NLLLoss, aliases=("NLLLoss",))
LOSSES.register("mse", nn.MSELoss, aliases=("l2", "MSELoss"))
LOSSES.register("l1", nn.L1Loss, aliases=("L1Loss",))
LOSSES.register("smooth_l1", nn.SmoothL1Loss, aliases=("SmoothL1Loss",))
LOSSES.register("huber", nn.HuberLoss, aliases=("HuberLoss",))
LOSSES.register("bce", nn.BCELoss, aliases=("BCELoss",))
LOSSES.register("bce_with_logits", nn.BCEWithLogitsLoss, aliases=("BCEWithLogitsLoss",))

OPTIMIZERS: Registry[Callable[..., Any]] = Registry("optimizer")
"""Optimizers by name, each PyTorch's class with its defaults (``lr=1e-3``)."""
OPTIMIZERS.register("adamw", torch.optim.AdamW)
OPTIMIZERS.register("adam", torch.optim.Adam)
OPTIMIZERS.register("sgd", torch.optim.SGD)

DEFAULT_OPTIMIZER = "adam"
"""What the training checks step with when no optimizer is given: ``Adam(lr=1e-3)``."""

SETUP_KEYS = ("model", "optimizer", "loss", "batch")
"""The keys of a training script's dict (:func:`setup_arguments`)."""


@dataclass
class TrainingSetup:
    """A loss, an optimizer and a target, as the training checks use them.

    Attributes:
        loss: ``loss(output, target)``.
        loss_name: how the loss is named in messages (``CrossEntropyLoss``).
        optimizer: the optimizer over the model's parameters (the user's, or built here).
        given: whether the user gave the optimizer (named or built ones miss no parameter).
        target: the target of the batch, or ``None`` for a random one that fits the loss.
        steps: optimizer steps; ``None`` for the default budget.
    """

    loss: LossFn
    loss_name: str
    optimizer: torch.optim.Optimizer
    given: bool
    target: Any = None
    steps: int | None = None


def training_setup(
    model: nn.Module, loss: Any, optimizer: Any, target: Any, steps: int | None
) -> TrainingSetup:
    """The loss, optimizer and target the training checks use.

    Args:
        model: the model to train (a named optimizer is built over its parameters).
        loss: a name from :data:`LOSSES`, an ``nn.Module`` or a callable ``loss(output, target)``.
        optimizer: ``None`` (``Adam(lr=1e-3)``), a name from :data:`OPTIMIZERS`, a
            ``torch.optim.Optimizer``, or a function that takes the model and returns one.
        target: the batch's target, or ``None``.
        steps: optimizer steps, or ``None`` for the default budget.

    Raises:
        ConfigError: an unknown name (with the closest one), a loss or optimizer of another
            type, a function that does not return an optimizer, or steps that are not positive.
    """
    if steps is not None:
        positive_int(steps, "steps")
    function, name = resolve_loss(loss)
    built, given = resolve_optimizer(optimizer, model)
    return TrainingSetup(function, name, built, given, target, steps)


def check_training_arguments(
    loss: Any, optimizer: Any, steps: int | None, target: Any, input_data: Any
) -> None:
    """Refuse a bad loss, optimizer name or step count, or a target without its inputs, before
    anything runs.

    Args:
        loss: as for :func:`training_setup`.
        optimizer: as for :func:`training_setup`.
        steps: as for :func:`training_setup`.
        target: the batch's target, or ``None``.
        input_data: the batch's inputs, or ``None``.

    Raises:
        ConfigError: as :func:`training_setup` would, for everything it can tell without the
            model; or a target without ``input_data``.
    """
    if target is not None and input_data is None:
        raise ConfigError(
            "target= goes with input_data=: a target is the labels of a batch of inputs",
            hint="pass both, doctor(model, input_data=x, target=y, loss=...), or neither for "
            "random ones",
        )
    if steps is not None:
        positive_int(steps, "steps")
    resolve_loss(loss)
    if isinstance(optimizer, str):
        try:
            OPTIMIZERS.canonical(optimizer)
        except ConfigError as err:
            raise ConfigError(f"optimizer: {err}") from None
    elif optimizer is not None and not callable(optimizer):
        resolve_optimizer(optimizer, nn.Module())


def resolve_loss(loss: Any) -> tuple[LossFn, str]:
    """The loss function and its name for messages.

    Args:
        loss: a name from :data:`LOSSES`, an ``nn.Module``, a loss class (built with no
            arguments) or a callable ``loss(output, target)``.

    Raises:
        ConfigError: an unknown name, or something that is not callable.
    """
    if isinstance(loss, str):
        try:
            built = LOSSES.build(loss)
        except ConfigError as err:
            raise ConfigError(f"loss: {err}") from None
        return built, type(built).__name__
    if isinstance(loss, type) and issubclass(loss, nn.Module):
        return loss(), loss.__name__
    if isinstance(loss, nn.Module):
        return loss, type(loss).__name__
    if callable(loss):
        return loss, getattr(loss, "__name__", type(loss).__name__)
    raise ConfigError(
        f"loss must be a name ({', '.join(LOSSES.names())}), an nn.Module or a function "
        f"loss(output, target), got {type(loss).__name__}"
    )


def resolve_optimizer(optimizer: Any, model: nn.Module) -> tuple[torch.optim.Optimizer, bool]:
    """The optimizer, and whether the user gave it (rather than a name, or nothing).

    Args:
        optimizer: see :func:`training_setup`.
        model: the model whose parameters a named optimizer takes (only read).

    Raises:
        ConfigError: an unknown name, or a function that does not return an optimizer.
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer, True
    if optimizer is None or isinstance(optimizer, str):
        name = DEFAULT_OPTIMIZER if optimizer is None else optimizer
        try:
            factory = OPTIMIZERS.get(name)
        except ConfigError as err:
            raise ConfigError(f"optimizer: {err}") from None
        return factory(model.parameters()), False
    if callable(optimizer):
        built = optimizer(model)
        if not isinstance(built, torch.optim.Optimizer):
            raise ConfigError(
                f"optimizer: {_name(optimizer)}(model) returned {type(built).__name__}, not a "
                "torch.optim.Optimizer",
                hint="def make_optimizer(model): return AdamW(model.parameters())",
            )
        return built, True
    raise ConfigError(
        f"optimizer must be a name ({', '.join(OPTIMIZERS.names())}), a torch.optim.Optimizer "
        f"or a function of the model that returns one, got {type(optimizer).__name__}"
    )


def optimizer_text(optimizer: torch.optim.Optimizer) -> str:
    """``SGD(lr=0.1, momentum=0.9, weight_decay=0.0005)``: the class and the first group's
    hyperparameters that shape a step, each when not at its usual default (momentum and weight
    decay when not 0, ``nesterov`` when on, betas other than ``(0.9, 0.999)``).

    Args:
        optimizer: any optimizer.
    """
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    shown = [f"lr={group['lr']:g}"] if _number(group.get("lr")) else []
    for key in ("momentum", "weight_decay"):
        if _number(group.get(key)) and group[key]:
            shown.append(f"{key}={group[key]:g}")
    if group.get("nesterov") is True:
        shown.append("nesterov=True")
    betas = group.get("betas")
    if isinstance(betas, tuple) and all(map(_number, betas)) and tuple(betas) != (0.9, 0.999):
        shown.append(f"betas=({', '.join(f'{b:g}' for b in betas)})")
    return f"{type(optimizer).__name__}({', '.join(shown)})"


def setup_arguments(setup: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A training script's dict as :func:`~brickwork.inspect.doctor.doctor`'s arguments.

    Args:
        setup: ``model`` (required), ``optimizer``, ``loss`` and ``batch`` (``(input,
            target)``; the input a tensor, a tuple or a dict of them).
        where: what returned it, for messages (``train.py:setup()``).

    Returns:
        ``model_or_spec``, ``optimizer``, ``loss`` and, with a batch, ``input_data`` and
        ``target``.

    Raises:
        ConfigError: an unknown key (with the closest one), no ``model``, or a batch that is
            not a pair.
    """
    for key in setup:
        if key not in SETUP_KEYS:
            raise ConfigError(f"{where}: {unknown_name_message('key', str(key), SETUP_KEYS)}")
    if not isinstance(setup.get("model"), nn.Module):
        raise ConfigError(
            f"{where}: the dict needs 'model', an nn.Module",
            hint="return {'model': model, 'optimizer': optimizer, 'loss': loss, 'batch': (x, y)}",
        )
    arguments = {k: setup.get(k) for k in ("optimizer", "loss")}
    arguments["model_or_spec"] = setup["model"]
    batch = setup.get("batch")
    if batch is not None:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise ConfigError(
                f"{where}: 'batch' must be a pair (input, target), got {type(batch).__name__}"
                + (f" of {len(batch)}" if isinstance(batch, tuple | list) else "")
            )
        arguments["input_data"], arguments["target"] = batch
    return arguments


def _name(function: Any) -> str:
    return getattr(function, "__name__", type(function).__name__)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
