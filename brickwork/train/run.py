"""``Run``: the state of one training run, and how it is set up, started or resumed, and saved.

:func:`prepare` makes a :class:`Run` from ``fit``'s arguments: the device, the data, the model
placed there with its optimizer and schedule, and, with a run directory, a fresh start (its
``spec.yaml`` and ``config.json``) or the position and history of the saved run. The loop
(:mod:`brickwork.train.loop`) then works on it, saving through :func:`save_checkpoint` and
:func:`write_metrics`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork._version import __version__
from brickwork.errors import ConfigError
from brickwork.files import atomic_write
from brickwork.spec import save_spec
from brickwork.train import distributed
from brickwork.train.checkpoint import save_training_state
from brickwork.train.config import TrainConfig, resolve_device
from brickwork.train.data import (
    Batches,
    Data,
    LoaderOptions,
    Mixing,
    configure,
    default_workers,
    load_dataset,
    open_batches,
)
from brickwork.train.model_choice import check_outputs
from brickwork.train.optim import autocast_context, make_optimizer, make_scheduler
from brickwork.train.origin import describe
from brickwork.train.resume import Expected, resume_state
from brickwork.train.run_dir import (
    CONFIG,
    MARKER,
    MODEL_ORIGIN,
    RunLock,
    check_new_run,
    check_not_foreign,
    check_resume,
    is_run,
    is_unstarted,
    own_files,
    read_pointer,
    stale_files,
)


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
        best: ``[val_acc, -val_loss]`` of the best epoch so far (of the saved weights).
        start: where training starts: ``(0, 0)``, or where the resumed run stopped.
        criterion: the training loss (cross-entropy with ``config.label_smoothing``; it takes
            class indices or, for mixed images, class probabilities).
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

    def __post_init__(self) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.config.label_smoothing)

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


@contextmanager
def prepared(
    model: nn.Module, data: Data | str, config: TrainConfig, opening: Opening, hooks: Hooks
) -> Iterator[Run]:
    """A run set up, with its directory held by this process for the ``with`` block.

    Args:
        model: the model to train.
        data: a :class:`Dataset`, an :class:`ImageDataset` or a dataset name.
        config: the options.
        opening: the run directory and how to open it.
        hooks: where the run reports to.

    Raises:
        ConfigError: a bad option, a batch smaller than the number of processes, or a run
            directory that cannot be used (before anything is written).
        CheckpointError: ``resume`` and the saved run cannot be continued.
    """
    run = _setup(model, data, config, opening.out, hooks)
    lock = RunLock(run.out) if run.writes and run.out is not None else None
    try:
        if run.out is not None:
            distributed.from_main(lambda: _claim(run, opening, lock))
            if opening.resume:
                _resume(run, opening.verify)
        run.forward = _forward(run.model, run.world, run.device, config.compile)
        yield run
    finally:
        if lock is not None:
            lock.release()


def _setup(
    model: nn.Module,
    data: Data | str,
    config: TrainConfig,
    out: Path | None,
    hooks: Hooks,
) -> Run:
    """Check the options, place the model and data, make the optimizer and schedule."""
    config.check()
    device = resolve_device(config.device)
    autocast = autocast_context(device, config.precision)  # fp16 on a CPU: refused before any write
    world = distributed.start(device)
    if config.batch_size < world.size:
        raise ConfigError(
            f"--batch-size {config.batch_size} is the whole step's batch, shared out among "
            f"{world.size} processes: it must be at least {world.size}"
        )
    if not world.main:
        hooks = replace(hooks, log=lambda _: None, progress=False)
    dataset = _data(data, config).to(device)
    check_outputs(model, dataset, type(model).__name__)  # before a file is written
    for note in dataset.notes:
        hooks.log(note)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    batches = open_batches(dataset, loader_options(config, device, hooks.log))
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, len(batches))
    # in Run's field order: the model, what a step calls (the model until it is wrapped), ...
    parts = (model, model, config, dataset, batches, device, world, optimizer, scheduler)
    return Run(*parts, autocast, out, hooks)


def _claim(run: Run, opening: Opening, lock: RunLock | None) -> None:
    """Take the run directory (rank 0): refuse what is not ours, lock it, start it or tidy it.

    A new run writes ``config.json`` (brickwork's marker) before anything else; a resumed run
    deletes what a killed writer left half-done, found by name.
    """
    out = run.out
    assert out is not None
    assert lock is not None
    if opening.resume and not is_unstarted(out):
        check_resume(out)
        lock.acquire()
        for path in stale_files(out, read_pointer(out), lock.previous):
            path.unlink(missing_ok=True)
        return
    check_not_foreign(out)
    lock.acquire()
    if opening.resume:
        run.hooks.log(f"{out} holds no run yet (it stopped before its first files): starting it")
    else:
        check_new_run(out, force=opening.force)
    if is_run(out):  # --force, or a run that stopped before it began: only brickwork's files go
        for path in own_files(out, lock.previous):
            path.unlink(missing_ok=True)
    start_run_dir(out, run.model, run.config)


def _data(data: Data | str, config: TrainConfig) -> Data:
    """The data to train on, cropped as ``config`` says when it is image files."""
    if isinstance(data, str):
        return load_dataset(
            data,
            config.data_dir,
            config.seed,
            image_size=config.image_size,
            crop_scale=config.crop_scale,
        )
    if config.image_size is not None or config.crop_scale is not None:
        return configure(data, config.image_size, config.crop_scale)
    return data


def loader_options(
    config: TrainConfig, device: torch.device, log: Callable[[str], None]
) -> LoaderOptions:
    """How ``config``'s batches are made, on ``device``."""
    return LoaderOptions(
        batch_size=config.batch_size,
        seed=config.seed,
        augment=config.augment,
        device=device,
        workers=default_workers() if config.workers is None else config.workers,
        mixing=Mixing(config.mixup, config.cutmix),
        log=log,
    )


def start_run_dir(run: Path, model: nn.Module, config: TrainConfig) -> None:
    """Write ``config.json`` (with brickwork's marker, first), then ``spec.yaml``, or for a model
    of the user's own code ``model.json`` (where it came from), into ``run``."""
    described = describe(model)  # before anything is written
    config_text = json.dumps({MARKER: __version__, **asdict(config)}, indent=2)
    atomic_write(run / CONFIG, lambda p: p.write_text(config_text))
    if "spec" in described:
        save_spec(described["spec"], run / "spec.yaml")
    else:
        origin = json.dumps(described["code"], indent=2)
        atomic_write(run / MODEL_ORIGIN, lambda p: p.write_text(origin))


def _resume(run: Run, verify: bool) -> None:
    """Load the saved run in ``run.out`` (on rank 0, sent to the others) into ``run``."""
    assert run.out is not None
    out = run.out
    fresh = run.scheduler.state_dict() if run.scheduler is not None else None
    expected = Expected(run.config, fresh, len(run.batches))
    state = distributed.from_main(
        lambda: resume_state(out, run.model, run.optimizer, expected, verify)
    )
    if run.world.size > 1:
        run.model.load_state_dict(state.pop("model"))
        run.optimizer.load_state_dict(state.pop("optimizer"))
    scheduler_state = state.get("scheduler")
    if run.scheduler is not None and scheduler_state is not None:
        run.scheduler.load_state_dict(scheduler_state)
    loss0, correct0, seen0 = state["running"]
    run.start = Position(state["epoch"], state["step"], (float(loss0), int(correct0), int(seen0)))
    run.history, run.best = state["history"], state["best"]
    if run.start.epoch >= run.config.epochs:
        run.hooks.log(f"finishing {out}: its {run.config.epochs} epochs are done")
    else:
        run.hooks.log(f"resuming {out} at epoch {run.start.epoch + 1}, step {run.start.step}")


def _forward(
    model: nn.Module, world: distributed.World, device: torch.device, compile: bool
) -> nn.Module:
    """``model`` as a step calls it: in DDP when there are several processes (rank 0's weights
    copied to every rank first), compiled when asked."""
    forward: nn.Module = model
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        distributed.broadcast_module(model)
        forward = DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    if compile:
        forward = torch.compile(forward)  # type: ignore[assignment]
    return forward


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
            "config": asdict(run.config),
        },
    )


def write_metrics(run: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl``: one JSON object per line, per epoch, then the test one."""
    text = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write(run / "metrics.jsonl", lambda p: p.write_text(text))
