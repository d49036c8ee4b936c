"""``fit``: the training loop behind ``brickwork train``, with nothing lost.

Every step's randomness (shuffling, augmentation, dropout) is derived from ``(seed, epoch,
step)``, so a run resumed from any checkpoint continues exactly as the uninterrupted run would
have: on the CPU the final weights are bit-identical. A checkpoint is written after every epoch,
and at the current step on Ctrl-C or SIGTERM.

``fit`` reads as the run goes: :func:`~brickwork.train.run.prepare` sets the :class:`Run` up,
then each epoch is :func:`train_epoch` (one :func:`train_step` per batch) and
:func:`end_epoch` (validation, the best weights, the checkpoint), and :func:`finish` tests the
best weights.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from brickwork.errors import RunInterruptedError, TrainingError
from brickwork.train import distributed
from brickwork.train.config import TrainConfig
from brickwork.train.data import Batch, Data, step_seed
from brickwork.train.evaluate import evaluate_batches, sum_dtype
from brickwork.train.process import catch_signals, flush_denormals
from brickwork.train.progress import progress_bar
from brickwork.train.run import (
    Hooks,
    Opening,
    Position,
    Run,
    prepared,
    save_checkpoint,
    write_metrics,
)
from brickwork.train.weights import load_weights, save

CHECK_EVERY = 50
"""Steps between looks at the loss for NaN or inf (each look waits for the device to catch up)."""


def fit(
    model: nn.Module,
    data: Data | str = "digits",
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = False,
    on_step: Callable[[nn.Module, int, int], None] | None = None,
    *,
    force: bool = False,
    verify: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``data``; returns the metrics, one dict per epoch and a last test one.

    Under ``torchrun`` (several processes), each rank trains on its share of every batch with
    ``DistributedDataParallel``; only rank 0 logs and writes ``out``.

    Args:
        model: any ``nn.Module`` taking one image batch ``(B, C, H, W)`` and returning
            ``(B, n_classes)`` scores. A brickwork model's spec goes into the run's files; any
            other's origin (its ``file.py:NAME`` call, or its class) does, and loading it then
            needs that code (``load(path, code=...)``).
        data: a :class:`Dataset` (tensors), an :class:`ImageDataset` (image files) or a
            dataset name (``"digits"``, ``"folder:PATH"``, ...).
        config: the options; default :class:`TrainConfig()`.
        out: the run directory (spec.yaml, config.json, metrics.jsonl, model.safetensors,
            curves.png, confusion.png, the checkpoint). ``None``: nothing is written. A new run
            needs a new or empty directory; while it trains, the directory is locked.
        resume: continue the run saved in ``out`` (or finish it, if it stopped after its last
            epoch).
        log: where one-line messages go.
        progress: show a rich progress bar per epoch.
        on_step: called as ``on_step(model, epoch, step)`` after each optimizer step (0-based
            epoch and step), before the loop looks for a stop signal.
        force: start over in ``out`` though it holds a run: brickwork's own files of that run
            are deleted, nothing else.
        verify: check the SHA-256 of the checkpoint read on ``resume``. Default ``True``.

    Raises:
        ConfigError: bad options, or an ``out`` that is not brickwork's, holds a run (without
            ``resume`` or ``force``), or is in use by another process.
        TrainingError: a non-finite loss (the last good checkpoint is kept).
        RunInterruptedError: Ctrl-C or SIGTERM (a checkpoint of the current step was saved).
        RankLostError: under torchrun, another process died or stopped answering.
    """
    hooks = Hooks(log, progress, on_step)
    opening = Opening(Path(out) if out is not None else None, resume, force, verify)
    with flush_denormals(), prepared(model, data, config or TrainConfig(), opening, hooks) as run:
        with catch_signals() as caught, distributed.lost_ranks_reported():
            for epoch in range(run.start.epoch, run.config.epochs):
                tally = train_epoch(run, epoch, caught)
                end_epoch(run, epoch, tally)
                if distributed.any_rank(bool(caught)):  # a signal during validation
                    _interrupt_epoch(run, epoch, caught)
        return finish(run)


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


def train_epoch(run: Run, epoch: int, caught: list[int]) -> Tally:
    """Train on the batches of ``epoch`` (from the resumed step on); its sums.

    Raises:
        RunInterruptedError: a signal was caught (a checkpoint of the current step is saved).
        TrainingError: a non-finite loss.
    """
    tally = start_tally(run, epoch)
    run.model.train()
    start = run.start.step if epoch == run.start.epoch else 0
    bar = progress_bar(run.hooks.progress, epoch, run.config.epochs, len(run.batches))
    with bar if bar is not None else nullcontext():
        for batch in run.batches.epoch(epoch, start):
            if batch.size < run.world.size:  # a last batch too small to share out
                if run.scheduler is not None:
                    run.scheduler.step()  # the learning rate stays where one process has it
                continue
            train_step(run, epoch, batch, tally)
            if run.scheduler is not None:
                run.scheduler.step()
            tally.seen += batch.size
            if bar is not None:
                bar.advance(tally.sums, tally.seen_here)
            if run.hooks.on_step is not None:
                run.hooks.on_step(run.model, epoch, batch.step)
            if (batch.step + 1) % CHECK_EVERY == 0:
                check_finite(tally.first_bad, epoch)
            if distributed.any_rank(bool(caught)):
                _interrupt_step(run, epoch, batch.step, tally, caught)
    return tally


def train_step(run: Run, epoch: int, batch: Batch, tally: Tally) -> None:
    """One optimizer step on this process's share of the batch.

    Adds to ``tally.sums`` (loss sum, correct count) and records the first non-finite loss in
    ``tally.first_bad`` (step, loss), all without waiting for the device.
    """
    torch.manual_seed(step_seed(run.config.seed, epoch, batch.step))  # dropout
    x = batch.x.contiguous(memory_format=run.memory_format)
    y = batch.y
    with run.autocast:
        logits = run.forward(x)
        loss = run.criterion(logits.float(), batch.target)
    # DDP averages the ranks' gradients; weighting each rank's mean by its share of the batch
    # makes that average the gradient of the whole batch's mean, even when the shares differ
    # (an image skipped as unreadable counts as a zero loss: the batch keeps its planned size,
    # so one process and several compute the same gradient)
    world = run.world.size
    scaled = loss * (len(y) * world / batch.size) if world > 1 or len(y) != batch.size else loss
    run.optimizer.zero_grad(set_to_none=True)
    scaled.backward()
    run.optimizer.step()
    with torch.no_grad():
        detached = logits.detach().float()
        # the reported loss is plain cross-entropy, comparable with validation's
        plain = nn.functional.cross_entropy(detached, y, reduction="sum")
        correct = (detached.argmax(1) == y).sum()
        sums, first_bad = tally.sums, tally.first_bad
        sums += torch.stack([plain.to(sums.dtype), correct.to(sums.dtype)])
        bad = ~torch.isfinite(loss) & ~torch.isfinite(first_bad[0])
        found = torch.stack([first_bad.new_tensor(batch.step), loss.detach().to(first_bad.dtype)])
        first_bad.copy_(torch.where(bad, found, first_bad))
    tally.seen_here += len(y)


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


def _interrupt_step(run: Run, epoch: int, step: int, tally: Tally, caught: list[int]) -> NoReturn:
    """Save the position after ``step`` and stop."""
    check_finite(tally.first_bad, epoch)
    loss_sum, correct = distributed.all_reduce_sum(tally.sums.clone()).tolist()
    save_checkpoint(run, Position(epoch, step + 1, (loss_sum, int(correct), tally.seen)))
    where = f" in {run.out}" if run.out is not None else " (no --out: nothing kept)"
    _interrupted(
        f"at epoch {epoch + 1}, step {step + 1}: checkpoint saved{where}; continue with --resume",
        caught,
    )


def _interrupt_epoch(run: Run, epoch: int, caught: list[int]) -> NoReturn:
    """Stop after ``epoch``, which is complete and saved."""
    where = f" in {run.out}; continue with --resume" if run.out is not None else ""
    _interrupted(f"after epoch {epoch + 1}: checkpoint saved{where}", caught)


def _interrupted(when: str, caught: list[int]) -> NoReturn:
    """Raise :class:`RunInterruptedError` for the first signal caught here (SIGTERM when
    another rank caught it)."""
    raise RunInterruptedError(f"interrupted {when}", caught[0] if caught else signal.SIGTERM)


def end_epoch(run: Run, epoch: int, tally: Tally) -> None:
    """Validate, log the epoch's row, keep the best weights, write the checkpoint and metrics."""
    check_finite(tally.first_bad, epoch)
    loss_sum, correct = distributed.all_reduce_sum(tally.sums).tolist()
    val_loss, val_acc, _ = evaluate_batches(
        run.model, run.batches.split("val"), run.dataset.n_classes, run.device
    )
    row = {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(tally.seen, 1),
        "train_acc": correct / max(tally.seen, 1),
        "val_loss": val_loss,
        "val_acc": val_acc,
        "lr": run.optimizer.param_groups[0]["lr"],
        "seconds": round(time.perf_counter() - tally.began, 3),
    }
    run.history.append(row)
    run.hooks.log(
        f"epoch {epoch + 1}/{run.config.epochs}  loss {row['train_loss']:.4f}  "
        f"acc {row['train_acc']:.4f}  val_loss {val_loss:.4f}  val_acc {val_acc:.4f}"
    )
    # best = highest validation accuracy, ties going to the lower validation loss: a small
    # validation set reaches its top accuracy early, long before the model is done
    score = [val_acc, -val_loss]
    if score > run.best:
        run.best = score
        if run.writes:
            assert run.out is not None
            save(run.model, run.out / "model.safetensors", extra={**run.extra, "val_acc": val_acc})
    save_checkpoint(run, Position(epoch + 1, 0, (0.0, 0, 0)))
    if run.writes:
        assert run.out is not None
        write_metrics(run.out, run.history)


def reload_best(run: Run) -> None:
    """Put the best validation weights (``model.safetensors``) back into the model, on every
    rank; without a run directory, the last weights stay."""
    if run.out is None:
        return
    if run.writes:
        load_weights(run.model, run.out / "model.safetensors")
    distributed.broadcast_module(run.model)


def test_scores(run: Run) -> tuple[float, float, torch.Tensor]:
    """Loss, accuracy and confusion matrix of the model on the test split."""
    return evaluate_batches(run.model, run.batches.split("test"), run.dataset.n_classes, run.device)


def finish(run: Run) -> list[dict[str, Any]]:
    """Test the best validation weights; draw the pictures, then write the metrics with the test
    line, the last thing a finished run writes (a run stopped before it is finished on
    ``--resume``); the whole history."""
    dataset = run.dataset
    with distributed.lost_ranks_reported():
        reload_best(run)
        test_loss, test_acc, confusion = test_scores(run)
    history = [*run.history, {"test_loss": test_loss, "test_acc": test_acc}]
    run.hooks.log(
        f"test accuracy {test_acc:.4f} ({dataset.split_size('test')} images)"
        + (f"; run in {run.out}" if run.out else "")
    )
    if run.writes:
        assert run.out is not None
        from brickwork.train.plots import plot_confusion, plot_curves

        plot_curves(history, run.out / "curves.png")
        plot_confusion(confusion, dataset.classes, run.out / "confusion.png")
        write_metrics(run.out, history)
    return history
