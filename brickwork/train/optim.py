"""How a run steps: its optimizer (fused where possible), learning-rate schedule and precision."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError
from brickwork.train.config import TrainConfig


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
    kwargs: dict[str, Any]
    if config.optimizer == "sgd":
        cls: type[torch.optim.Optimizer] = torch.optim.SGD
        kwargs = {"momentum": 0.9, "nesterov": True}
    else:
        cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        kwargs = {}
    kwargs.update(lr=config.lr, weight_decay=config.weight_decay)
    try:
        return cls(params, fused=True, **kwargs)  # type: ignore[call-arg]
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or version
        return cls(params, foreach=True, **kwargs)  # type: ignore[call-arg]


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The schedule ``config.schedule`` names over the whole run (stepped once per step), or
    ``None`` for ``none``.

    Args:
        optimizer: the run's optimizer.
        config: its ``schedule``, ``lr`` and ``epochs`` are used.
        steps_per_epoch: batches per epoch.
    """
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return None


def autocast_context(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """What the forward pass runs under: nothing for ``fp32``, else ``torch.autocast``.

    Raises:
        ConfigError: ``fp16`` off CUDA (the CPU has bf16).
    """
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; on the CPU use bf16")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
