"""One optimizer step and the epoch's running sums (:class:`Tally`), kept on the device.

A step's randomness (dropout) comes from ``(seed, epoch, step)``; a non-finite loss is recorded
on the device and looked at every :data:`CHECK_EVERY` steps and at the end of an epoch.
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from brickwork.errors import TrainingError
from brickwork.train import distributed
from brickwork.train.data import Batch, step_seed
from brickwork.train.evaluate import sum_dtype
from brickwork.train.run import Run
from brickwork.train.tasks.scores import batch_sums

CHECK_EVERY = 50
"""Steps between looks at the loss for NaN or inf (each look waits for the device to catch up)."""


@dataclass
class Tally:
    """One epoch's running sums on this process, kept on the device: reading them would wait for
    every step.

    Attributes:
        sums: loss sum and correct count, ``(2,)``.
        first_bad: step and loss of the first non-finite loss, ``(2,)``; ``inf`` while none.
        seen: the images of the whole job counted in the epoch so far.
        seen_here: this process's share of ``seen`` (the progress bar's denominator).
        began: when the epoch began (``time.perf_counter()``).
    """

    sums: torch.Tensor
    first_bad: torch.Tensor
    seen: int
    seen_here: int = 0
    began: float = field(default_factory=time.perf_counter)


def start_tally(run: Run, epoch: int) -> Tally:
    """The sums at the start of ``epoch``: the saved ones when the run resumes inside it."""
    loss0, correct0, seen = run.start.running if epoch == run.start.epoch else (0.0, 0, 0)
    if not run.world.main:  # the saved sums are the whole job's: rank 0 carries them on
        loss0, correct0 = 0.0, 0
    exact = sum_dtype(run.device)
    return Tally(
        sums=torch.tensor([loss0, correct0], device=run.device, dtype=exact),
        first_bad=torch.full((2,), math.inf, device=run.device, dtype=exact),
        seen=seen,
    )


def train_step(run: Run, epoch: int, batch: Batch, tally: Tally) -> None:
    """One optimizer step on this process's share of the batch, in ``config.accumulate``
    micro-batches whose gradients add up to the whole share's (under DDP, the ranks' gradients
    are averaged on the last one only); then the moving average of the weights, if any.

    Adds to ``tally.sums`` (loss sum, correct count) and records the first non-finite loss in
    ``tally.first_bad`` (step, loss), all without waiting for the device.
    """
    torch.manual_seed(step_seed(run.config.seed, epoch, batch.step))  # dropout
    run.optimizer.zero_grad(set_to_none=True)
    parts = max(1, min(run.config.accumulate, len(batch.y)))
    pieces = zip(*(t.tensor_split(parts) for t in (batch.x, batch.y, batch.target)), strict=True)
    for i, (x, y, target) in enumerate(pieces):
        with nullcontext() if i == parts - 1 else _no_sync(run.forward):
            _micro_step(run, batch, (x, y, target), tally)
    run.scaler.step(run.optimizer)  # without fp16: the optimizer's step
    run.scaler.update()
    if run.ema is not None:
        run.ema.update(run.model)


def _micro_step(
    run: Run, batch: Batch, part: tuple[torch.Tensor, torch.Tensor, torch.Tensor], tally: Tally
) -> None:
    """Forward and backward on ``part`` (images, labels, targets) of ``batch``; its sums."""
    x, y, target = part
    with run.autocast:
        logits = run.forward(x.contiguous(memory_format=run.memory_format))
        loss = run.criterion(logits.float(), target)
    # DDP averages the ranks' gradients; weighting each part's mean by its share of the batch
    # makes that average the gradient of the whole batch's mean, even when the shares differ
    # (an image skipped as unreadable counts as a zero loss: the batch keeps its planned size,
    # so one process and several compute the same gradient)
    weight = len(y) * run.world.size / batch.size
    run.scaler.scale(loss if weight == 1 else loss * weight).backward()
    with torch.no_grad():
        detached = logits.detach().float()
        # the reported loss is plain cross-entropy, comparable with validation's
        plain, correct = batch_sums(detached, y)
        sums, first_bad = tally.sums, tally.first_bad
        sums += torch.stack([plain.to(sums.dtype), correct.to(sums.dtype)])
        bad = ~torch.isfinite(loss) & ~torch.isfinite(first_bad[0])
        found = torch.stack([first_bad.new_tensor(batch.step), loss.detach().to(first_bad.dtype)])
        first_bad.copy_(torch.where(bad, found, first_bad))
    tally.seen_here += len(y)


def _no_sync(forward: nn.Module) -> AbstractContextManager[Any]:
    """DDP's ``no_sync`` (gradients kept on each rank, not averaged) when ``forward`` is DDP,
    compiled or not; otherwise nothing."""
    from torch.nn.parallel import DistributedDataParallel

    module = getattr(forward, "_orig_mod", forward)
    return module.no_sync() if isinstance(module, DistributedDataParallel) else nullcontext()


def check_finite(first_bad: torch.Tensor, epoch: int) -> None:
    """Raise if any rank saw a non-finite loss (this waits for the device).

    Raises:
        TrainingError: names the epoch and step of the first one.
    """
    step = distributed.all_reduce_min(first_bad[:1].clone()).item()
    if math.isfinite(step):
        value = first_bad[1].item() if math.isfinite(first_bad[0].item()) else math.nan
        raise TrainingError(
            f"the loss is {value} at epoch {epoch + 1}, step {int(step) + 1}: "
            "training stopped; the last good checkpoint is kept",
            hint="lower --lr, or check the data for NaN or huge values",
        )
