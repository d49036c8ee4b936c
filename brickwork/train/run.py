"""``Run``: the state of one training run, and how it is saved.

:func:`~brickwork.train.setup.prepared` makes a :class:`Run` from ``fit``'s arguments; the loop
(:mod:`brickwork.train.loop`) then works on it, saving through :func:`save_checkpoint` and
:func:`write_metrics`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.files import atomic_write
from brickwork.train import distributed
from brickwork.train.board import Board
from brickwork.train.checkpoint import save_training_state
from brickwork.train.config import TrainConfig
from brickwork.train.data import Batches, Data
from brickwork.train.ema import Ema
from brickwork.train.tasks import data_task, make_criterion


@dataclass
class Hooks:
    """Where a run reports to.

    Attributes:
        log: where one-line messages go.
        progress: show a progress bar per epoch.
        on_step: called as ``on_step(model, epoch, step)`` after each optimizer step.
    """

    log: Callable[[str], None] = print
    progress: bool = False
    on_step: Callable[[nn.Module, int, int], None] | None = None


@dataclass(frozen=True)
class Position:
    """Where a run is: the next epoch and step, and the epoch's sums so far (the whole job's).

    Attributes:
        epoch: the epoch to train next, 0-based.
        step: the step of ``epoch`` to train next, 0-based.
        running: loss sum, correct count and images seen in ``epoch`` before ``step``.
    """

    epoch: int = 0
    step: int = 0
    running: tuple[float, int, int] = (0.0, 0, 0)


@dataclass
class Run:
    """Everything one call of ``fit`` works with.

    Attributes:
        model: the model being trained (what is saved).
        forward: what a step calls: the model, wrapped in DDP and compiled as asked.
        config: the options.
        dataset: the data (its tensors on ``device``, or its image files).
        batches: where each epoch's training batches and the evaluation batches come from.
        device: where the model and data are.
        world: this process's place in the torchrun job.
        optimizer: the optimizer.
        scheduler: the learning-rate schedule, stepped once per step, or ``None``.
        autocast: what the forward pass runs under (``torch.autocast`` or nothing).
        out: the run directory, or ``None``: nothing is written.
        hooks: where the run reports to (silent on all but rank 0).
        history: one row of metrics per epoch done.
        best: ``[val_acc or val_miou, -val_loss]`` of the best epoch so far (of the saved
            weights, raw or the moving average).
        start: where training starts: ``(0, 0)``, or where the resumed run stopped.
        criterion: the training loss (:func:`~brickwork.train.tasks.make_criterion`:
            cross-entropy with ``config.label_smoothing``, taking class indices or, for mixed
            images, class probabilities; for segmentation ``config.loss`` over masks).
        ema: the moving average of the weights (``--ema``), or ``None``.
        scaler: the gradient scaler (on for ``--precision fp16``).
        board: the TensorBoard event files (rank 0), or ``None``.
        frozen_norms: the batch norms ``--freeze`` keeps in eval mode while training.
    """

    model: nn.Module
    forward: nn.Module
    config: TrainConfig
    dataset: Data
    batches: Batches
    device: torch.device
    world: distributed.World
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    autocast: AbstractContextManager[Any]
    out: Path | None
    hooks: Hooks
    history: list[dict[str, Any]] = field(default_factory=list)
    best: list[float] = field(default_factory=lambda: [-1.0, -math.inf])
    start: Position = Position()
    criterion: nn.Module = field(init=False)
    ema: Ema | None = None
    scaler: torch.amp.GradScaler = field(
        default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False)
    )
    board: Board | None = None
    frozen_norms: list[nn.Module] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.criterion = make_criterion(self.task, self.config.loss, self.config.label_smoothing)

    @property
    def task(self) -> str:
        """``classification`` or ``segmentation``: what the data is for."""
        return data_task(self.dataset)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (there is one, and this is rank 0)."""
        return self.out is not None and self.world.main

    @property
    def memory_format(self) -> torch.memory_format:
        """How the model's inputs are laid out in memory."""
        return torch.channels_last if self.config.channels_last else torch.contiguous_format

    @property
    def extra(self) -> dict[str, Any]:
        """What ``model.safetensors`` keeps beside the spec, for ``evaluate`` and ``predict``."""
        return {
            "classes": self.dataset.classes,
            "mean": self.dataset.mean,
            "std": self.dataset.std,
            "data": self.dataset.name,
            "data_dir": self.config.data_dir,
            "seed": self.config.seed,  # evaluate splits the data as this run did
            "input_shape": list(self.dataset.input_shape),
            **self.dataset.model_metadata(),  # image files: the evaluation crop
        }


@dataclass(frozen=True)
class Opening:
    """How ``fit`` opens its run directory.

    Attributes:
        out: the run directory, or ``None``: nothing is written.
        resume: continue the run saved in ``out``.
        force: start over in ``out`` though it holds a run (only brickwork's files go).
        verify: check the SHA-256 of the checkpoint read on ``resume``.
    """

    out: Path | None = None
    resume: bool = False
    force: bool = False
    verify: bool = True


def save_checkpoint(run: Run, position: Position) -> None:
    """Write the training state at ``position`` to the run directory (rank 0; else nothing)."""
    if not run.writes:
        return
    assert run.out is not None
    save_training_state(
        run.out,
        run.model,
        run.optimizer,
        {
            "epoch": position.epoch,
            "step": position.step,
            "running": list(position.running),
            "history": run.history,
            "best": run.best,
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "scaler": run.scaler.state_dict(),
            "config": asdict(run.config),
        },
        ema=run.ema.module if run.ema is not None else None,
    )


def write_metrics(run: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl``: one JSON object per line, per epoch, then the test one."""
    text = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write(run / "metrics.jsonl", lambda p: p.write_text(text))
