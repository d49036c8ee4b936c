"""Whether a run fits: its training memory, on meta tensors, for a batch size, precision and
optimizer, against the memory its device has free; and the largest batch that fits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from brickwork.errors import ConfigError
from brickwork.inspect.render import format_bytes
from brickwork.inspect.summary import summary
from brickwork.inspect.training_memory import activation_bytes, weight_bytes
from brickwork.train.config import TrainConfig
from brickwork.train.free_memory import available_memory

PROBE_BATCHES = (2, 4)
"""The two batches the model runs on (meta) to learn its bytes per sample (2: batch norm in
training mode needs more than one value per channel)."""


@dataclass(frozen=True)
class MemoryCheck:
    """Whether ``train`` checks that a run fits, and against what.

    Attributes:
        enabled: ``False`` (``--no-memory-check``): start without checking.
        limit: the bytes to fit in (``--memory-limit``); ``None``: what the device has free.
    """

    enabled: bool = True
    limit: int | None = None


@dataclass(frozen=True)
class Footprint:
    """A training step's peak memory: ``fixed + per_sample * batch`` bytes.

    Attributes:
        fixed: weights, gradients, optimizer states, buffers (and the EMA copy), whatever the
            batch.
        per_sample: the input and the activations autograd saves, for one sample.
        what: how it was counted (precision, optimizer), for messages.
    """

    fixed: int
    per_sample: int
    what: str

    def at(self, batch: int) -> int:
        """The bytes at a batch of ``batch`` samples."""
        return self.fixed + self.per_sample * batch

    def largest_batch(self, available: int) -> int:
        """The largest batch whose step fits in ``available`` bytes (0: not even one sample)."""
        if available < self.fixed + self.per_sample:
            return 0
        return (available - self.fixed) // max(self.per_sample, 1)


def footprint(
    model: nn.Module,
    input_shape: Sequence[int] | None,
    optimizer: str = "adamw",
    precision: str = "fp32",
    ema: bool = False,
) -> Footprint:
    """``model``'s training memory per step, counted on meta tensors (nothing is allocated).

    The summary's rule (:mod:`~brickwork.inspect.training_memory`) at two batches, split into
    what does not grow with the batch and what grows by a sample: ``train`` checks a run with it
    and ``summary --device-memory`` finds the largest batch with it.

    Args:
        model: any model (left as it is; a meta model is fastest).
        input_shape: one sample's shape, ``(C, H, W)``; ``None``: a spec's own ``input``.
        optimizer: ``adamw``, ``adam`` or ``sgd`` (their states per trainable parameter).
        precision: ``fp32``, or ``bf16``/``fp16`` (autocast: 16-bit activations, 16-bit copies
            of the weights).
        ema: a moving average of the weights is kept (one more copy of them).

    Raises:
        ConfigError: the model does not run on meta tensors for this input.
    """
    small, large = (
        summary(model, input_shape, batch_size=b, run="meta", depth=0) for b in PROBE_BATCHES
    )
    if small.error or large.error:
        raise ConfigError(f"cannot count the training memory on meta tensors: {small.error}")
    weights = (small.param_bytes, _trainable_bytes(model), small.buffer_bytes)
    held = [s.train_memory_bytes - weight_bytes(*weights) for s in (small, large)]  # fp32, Adam
    per_sample = (held[1] - held[0]) // (PROBE_BATCHES[1] - PROBE_BATCHES[0])
    constant = max(held[0] - per_sample * PROBE_BATCHES[0], 0)
    fixed = weight_bytes(*weights, optimizer, precision, ema) + activation_bytes(
        constant, precision
    )
    return Footprint(fixed, activation_bytes(per_sample, precision), f"{precision}, {optimizer}")


def _trainable_bytes(model: nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


def check_run(
    model: nn.Module,
    input_shape: Sequence[int],
    config: TrainConfig,
    device: torch.device,
    check: MemoryCheck,
    processes: int = 1,
) -> str | None:
    """Refuse a run whose step cannot fit on ``device`` (``model`` on meta: nothing allocated);
    a line that says what it needs and has, or ``None`` when there was nothing to check.

    A process holds one micro-batch at a time: its share of the batch (``processes``) cut into
    ``config.accumulate`` pieces.

    Raises:
        ConfigError: it does not fit (see :func:`check_fits`).
    """
    if not check.enabled:
        return None
    available = check.limit if check.limit is not None else available_memory(device)
    if available is None:
        return f"memory not checked: how much {device} has free is unknown"
    need = footprint(model, input_shape, config.optimizer, config.precision, config.ema > 0)
    micro = -(-config.batch // (processes * config.accumulate))
    room = (
        f"--memory-limit is {format_bytes(available)}"
        if check.limit is not None
        else f"{device} has {format_bytes(available)} free"
    )
    check_fits(need, micro, available, room)
    return (
        f"memory: a step of {micro} needs {format_bytes(need.at(micro))} ({need.what}) and "
        f"{room}; the largest batch that fits is {need.largest_batch(available)}"
    )


def check_fits(need: Footprint, batch: int, available: int, room: str) -> None:
    """Refuse a step of ``batch`` samples that needs more than ``available`` bytes (``room``
    says where they are: ``"cuda:0 has 11.20 GiB free"``).

    Raises:
        ConfigError: with the figure, the largest batch that fits, and what would fit instead.
    """
    if need.at(batch) <= available:
        return
    largest = need.largest_batch(available)
    figure = (
        f"a step of {batch} samples needs {format_bytes(need.at(batch))} to train "
        f"({need.what}) but {room}"
    )
    if largest:
        raise ConfigError(
            f"{figure}; the largest batch that fits is {largest}",
            hint=f"--batch-size {largest}, a smaller --image-size, or a model that pools to a "
            "fixed size (resnet18_small); --no-memory-check to start anyway",
        )
    raise ConfigError(
        f"{figure}; no batch fits: one sample needs {format_bytes(need.at(1))}, "
        f"{format_bytes(need.fixed)} of it for the weights, their gradients and the optimizer",
        hint="a smaller --image-size, a model that pools to a fixed size (resnet18_small), "
        "--optimizer sgd or --precision bf16; --no-memory-check to start anyway",
    )
