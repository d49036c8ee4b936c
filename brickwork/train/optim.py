"""How a run steps: its optimizer (fused where possible), learning-rate schedule and precision."""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from brickwork.train.config import TrainConfig

WARMUP_START = 1e-3
"""The share of the schedule's first learning rate that warmup starts from."""


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, over ``model``'s trainable parameters.

    It is fused (one kernel for all parameters) where this PyTorch has it for the device, else
    foreach (one kernel per operation over a list of tensors). SGD has Nesterov momentum 0.9.

    Args:
        model: the model, already on ``device``.
        config: its ``optimizer``, ``lr`` and ``weight_decay`` are used.
        device: where the parameters are.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    cls, kwargs = _optimizer_kind(config)
    try:
        return cls(params, fused=True, **kwargs)  # type: ignore[call-arg]
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or version
        return cls(params, foreach=True, **kwargs)  # type: ignore[call-arg]


def _optimizer_kind(config: TrainConfig) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The optimizer's class and its options (but ``fused``/``foreach``)."""
    kwargs: dict[str, Any]
    if config.optimizer == "sgd":
        cls: type[torch.optim.Optimizer] = torch.optim.SGD
        kwargs = {"momentum": 0.9, "nesterov": True}
    else:
        cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        kwargs = {}
    kwargs.update(lr=config.lr, weight_decay=config.weight_decay)
    return cls, kwargs


def schedule_at(
    config: TrainConfig, steps_per_epoch: int, groups: int, taken: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The state of ``config``'s schedule after ``taken`` steps, and what it has set in each
    parameter group by then (learning rate, momentum or betas...).

    Computed on a stand-in optimizer (one parameter per group, never stepped): the scheduler's
    arithmetic reads only its own state and the groups' values, so these are bit for bit the
    values a run with ``config`` has after ``taken`` steps.
    """
    cls, kwargs = _optimizer_kind(config)
    stand_in = cls(
        [{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(groups)], **kwargs
    )
    scheduler = make_scheduler(stand_in, config, steps_per_epoch)
    if scheduler is None:
        return None, [_hyper(g) for g in stand_in.param_groups]
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": meant
        warnings.simplefilter("ignore")
        for _ in range(taken):
            scheduler.step()
    return scheduler.state_dict(), [_hyper(g) for g in stand_in.param_groups]


SCHEDULED = (
    "lr",
    "initial_lr",
    "max_lr",
    "min_lr",
    "momentum",
    "betas",
    "base_momentum",
    "max_momentum",
)
"""What a schedule sets in a parameter group."""


def _hyper(group: dict[str, Any]) -> dict[str, Any]:
    """What the schedule has set in a parameter group."""
    return {k: group[k] for k in SCHEDULED if k in group}


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The schedule ``config.schedule`` names over the whole run (stepped once per step), after
    ``config.warmup_epochs`` of linear warmup; ``None`` for ``none`` without warmup.

    The warmup rises linearly from nearly 0 to the rate the schedule starts at, and the schedule
    then runs over the epochs left.

    Args:
        optimizer: the run's optimizer.
        config: its ``schedule``, ``lr``, ``epochs`` and ``warmup_epochs`` are used.
        steps_per_epoch: batches per epoch.
    """
    lr_scheduler = torch.optim.lr_scheduler
    warmup_steps = config.warmup_epochs * steps_per_epoch
    warmup = (
        lr_scheduler.LinearLR(optimizer, start_factor=WARMUP_START, total_iters=warmup_steps)
        if warmup_steps
        else None
    )
    total = config.epochs * steps_per_epoch - warmup_steps
    main: lr_scheduler.LRScheduler | None = None
    if config.schedule == "onecycle":
        main = lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    elif config.schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if warmup is None or main is None:
        return warmup or main
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])


def autocast_context(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """What the forward pass runs under: nothing for ``fp32``, else ``torch.autocast`` (fp16
    on the CPU too, as PyTorch 2.13 has it there)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The gradient scaler of a run: on for ``fp16`` (whose small gradients would underflow
    to 0), otherwise off (its ``scale``, ``step`` and ``update`` then do nothing more than
    backward and the optimizer's step)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
