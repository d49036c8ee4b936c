"""``fit``: the training loop behind ``brickwork train``, with nothing lost.

Every step's randomness (shuffling, augmentation, dropout) is derived from ``(seed, epoch,
step)``, so a run resumed from any checkpoint continues exactly as the uninterrupted run would
have: on the CPU the final weights are bit-identical. A checkpoint is written after every epoch,
and at the current step on Ctrl-C or SIGTERM.

``fit`` reads as the run goes: :func:`~brickwork.train.setup.prepared` sets the :class:`Run` up,
then each epoch is :func:`train_epoch` (one
:func:`~brickwork.train.step.train_step` per batch) and
:func:`end_epoch` (validation, the best weights, the checkpoint), and :func:`finish` tests the
best weights.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from brickwork.errors import RunInterruptedError
from brickwork.train import distributed
from brickwork.train.config import TrainConfig
from brickwork.train.data import Data
from brickwork.train.evaluate import evaluate_batches
from brickwork.train.freeze import keep_frozen
from brickwork.train.memory import MemoryCheck
from brickwork.train.process import catch_signals, flush_denormals
from brickwork.train.progress import progress_bar
from brickwork.train.run import Hooks, Opening, Position, Run, save_checkpoint, write_metrics
from brickwork.train.setup import prepared
from brickwork.train.step import CHECK_EVERY, Tally, check_finite, start_tally, train_step
from brickwork.train.stopping import best_weights, score_column, stop_reason
from brickwork.train.tasks import seg_columns
from brickwork.train.tasks.samples import (
    LABELLED,
    SAMPLES,
    as_pixels,
    label_grid,
    predicted_samples,
    sample_grid,
    save_grid,
)
from brickwork.train.weights import load_weights, save


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
    memory: MemoryCheck | None = None,
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
        memory: whether to refuse, before a file is written, a run whose step needs more
            memory than the device has free (counted on meta tensors; default
            ``MemoryCheck()``: on, against what the device has free).

    Raises:
        ConfigError: bad options, a step that does not fit in memory (with the largest batch
            that does), or an ``out`` that is not brickwork's, holds a run (without ``resume``
            or ``force``), or is in use by another process.
        TrainingError: a non-finite loss (the last good checkpoint is kept).
        RunInterruptedError: Ctrl-C or SIGTERM (a checkpoint of the current step was saved).
        RankLostError: under torchrun, another process died or stopped answering.
    """
    hooks = Hooks(log, progress, on_step)
    opening = Opening(Path(out) if out is not None else None, resume, force, verify)
    config, memory = config or TrainConfig(), memory or MemoryCheck()
    with flush_denormals(), prepared(model, data, config, opening, hooks, memory) as run:
        with catch_signals() as caught, distributed.lost_ranks_reported():
            for epoch in range(run.start.epoch, run.config.epochs):
                reason = stop_reason(run.history, run.config.patience)
                if reason is not None:
                    run.hooks.log(reason)
                    break
                tally = train_epoch(run, epoch, caught)
                end_epoch(run, epoch, tally)
                if distributed.any_rank(bool(caught)):  # a signal during validation
                    _interrupt_epoch(run, epoch, caught)
        return finish(run)


def train_epoch(run: Run, epoch: int, caught: list[int]) -> Tally:
    """Train on the batches of ``epoch`` (from the resumed step on); its sums.

    Raises:
        RunInterruptedError: a signal was caught (a checkpoint of the current step is saved).
        TrainingError: a non-finite loss.
    """
    tally = start_tally(run, epoch)
    run.model.train()
    keep_frozen(run.frozen_norms)
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
    """Validate (the moving average too), log the epoch's row, keep the best weights, write the
    checkpoint, the metrics and the curves."""
    check_finite(tally.first_bad, epoch)
    loss_sum, correct = distributed.all_reduce_sum(tally.sums).tolist()
    seconds = time.perf_counter() - tally.began
    row = {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(tally.seen, 1),
        "train_acc": correct / max(tally.seen, 1),
        **_validate(run, run.model, ""),
        **(_validate(run, run.ema.module, "ema_") if run.ema is not None else {}),
        "lr": run.optimizer.param_groups[0]["lr"],
        "seconds": round(seconds, 3),
    }
    run.history.append(row)
    run.hooks.log(_epoch_line(run, row))
    score, weights = best_weights(row)
    if score > run.best:
        run.best = score
        if run.writes:
            assert run.out is not None
            model = run.ema.module if weights == "ema" and run.ema is not None else run.model
            extra = {**run.extra, score_column(row): score[0], "weights": weights}
            save(model, run.out / "model.safetensors", extra=extra)
    save_checkpoint(run, Position(epoch + 1, 0, (0.0, 0, 0)))
    if run.writes:
        assert run.out is not None
        write_metrics(run.out, run.history)
        from brickwork.train.plots import plot_curves

        plot_curves(run.history, run.out / "curves.png")
    if run.board is not None:
        run.board.epoch(row, tally.seen / max(seconds, 1e-9))
        run.board.image("samples", samples_picture(run), row["epoch"])


def _epoch_line(run: Run, row: dict[str, Any]) -> str:
    """An epoch's line of the log: losses and accuracies, and mean IoU for segmentation."""
    scores = ["val_acc", "val_miou"] if run.task == "segmentation" else ["val_acc"]
    if run.ema is not None:
        scores.append(f"ema_{scores[-1]}")
    return (
        f"epoch {row['epoch']}/{run.config.epochs}  loss {row['train_loss']:.4f}  "
        f"acc {row['train_acc']:.4f}  val_loss {row['val_loss']:.4f}  "
        + "  ".join(f"{name} {row[name]:.4f}" for name in scores)
    )


def _validate(run: Run, model: nn.Module, prefix: str) -> dict[str, Any]:
    """``model``'s validation loss and accuracy (segmentation: pixel accuracy, mean IoU, mean
    Dice and the IoU of each class too), named with ``prefix``."""
    loss, acc, confusion = evaluate_batches(
        model, run.batches.split("val"), run.dataset.n_classes, run.device
    )
    scores: dict[str, Any] = {f"{prefix}val_loss": loss, f"{prefix}val_acc": acc}
    if run.task == "segmentation":
        scores.update(seg_columns(confusion, run.dataset.classes, f"{prefix}val_"))
    return scores


def samples_picture(run: Run) -> np.ndarray:
    """The grid of the first validation images with their labels or masks and the model's."""
    segments = run.task == "segmentation"
    x, y = next(iter(run.batches.split("val")))
    x, y, predicted = predicted_samples(run.model, x, y, SAMPLES if segments else LABELLED)
    images = as_pixels(x, run.dataset.mean, run.dataset.std)
    grid = sample_grid if segments else label_grid
    return grid(images, y.cpu().numpy(), predicted.cpu().numpy(), run.dataset.classes)


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
        grid = samples_picture(run) if run.task == "segmentation" and run.writes else None
    test: dict[str, Any] = {"test_loss": test_loss, "test_acc": test_acc}
    what = f"test accuracy {test_acc:.4f}"
    if run.task == "segmentation":
        test.update(seg_columns(confusion, dataset.classes, "test_"))
        what = f"test mIoU {test['test_miou']:.4f}, pixel accuracy {test_acc:.4f}"
    history = [*run.history, test]
    run.hooks.log(
        f"{what} ({dataset.split_size('test')} images)" + (f"; run in {run.out}" if run.out else "")
    )
    if run.writes:
        assert run.out is not None
        from brickwork.train.plots import plot_confusion, plot_curves

        plot_curves(history, run.out / "curves.png")
        plot_confusion(confusion, dataset.classes, run.out / "confusion.png")
        if grid is not None:
            save_grid(grid, run.out / "samples.png")
        write_metrics(run.out, history)
    return history
