"""How a :class:`Run` is set up: options checked, data and model placed, the run directory
claimed, started or resumed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from brickwork._version import __version__
from brickwork.errors import ConfigError
from brickwork.files import atomic_write
from brickwork.spec import save_spec
from brickwork.train import board, distributed
from brickwork.train.config import TrainConfig, resolve_device
from brickwork.train.data import (
    Data,
    LoaderOptions,
    Mixing,
    configure,
    default_workers,
    load_dataset,
    open_batches,
)
from brickwork.train.ema import Ema
from brickwork.train.freeze import freeze
from brickwork.train.memory import MemoryCheck, check_run
from brickwork.train.model_choice import check_outputs
from brickwork.train.optim import (
    autocast_context,
    grad_scaler,
    make_optimizer,
    make_scheduler,
    schedule_at,
)
from brickwork.train.origin import describe
from brickwork.train.owned import forget, own_files, record, stale_files
from brickwork.train.pretrained import init_from
from brickwork.train.resume import Expected, resume_state
from brickwork.train.run import Hooks, Opening, Position, Run
from brickwork.train.run_dir import (
    CONFIG,
    MARKER,
    MODEL_ORIGIN,
    RUN_FILES,
    RunLock,
    check_new_run,
    check_not_foreign,
    check_resume,
    is_run,
    is_unstarted,
    pair_names,
    read_pointer,
)
from brickwork.train.tasks import settle


@contextmanager
def prepared(
    model: nn.Module,
    data: Data | str,
    config: TrainConfig,
    opening: Opening,
    hooks: Hooks,
    memory: MemoryCheck | None = None,
) -> Iterator[Run]:
    """A run set up, with its directory held by this process for the ``with`` block.

    Args:
        model: the model to train.
        data: a :class:`Dataset`, an :class:`ImageDataset` or a dataset name.
        config: the options.
        opening: the run directory and how to open it.
        hooks: where the run reports to.
        memory: whether the step must fit the device's free memory (default: not checked).

    Raises:
        ConfigError: a bad option, a batch smaller than the number of processes, or a run
            directory that cannot be used (before anything is written).
        CheckpointError: ``resume`` and the saved run cannot be continued.
    """
    fresh = not opening.resume or opening.out is None or is_unstarted(opening.out)
    run = _setup(model, data, config, opening.out, hooks, fresh, memory)
    lock = RunLock(run.out) if run.writes and run.out is not None else None
    try:
        if run.out is not None:
            distributed.from_main(lambda: _claim(run, opening, lock))
            if opening.resume:
                _resume(run, opening.verify)
        run.forward = _forward(run.model, run.world, run.device, config.compile)
        if run.writes and run.out is not None and board.wanted(config.tensorboard):
            run.board = board.Board(run.out)
        yield run
    finally:
        if run.board is not None:
            run.board.close()
        if lock is not None:
            lock.release()


def _setup(
    model: nn.Module,
    data: Data | str,
    config: TrainConfig,
    out: Path | None,
    hooks: Hooks,
    fresh: bool = True,
    memory: MemoryCheck | None = None,
) -> Run:
    """Check the options, place the model and data, make the optimizer and schedule; a
    ``fresh`` run (not one resumed) starts from ``--init``'s weights."""
    config.check()
    board.wanted(config.tensorboard)  # --tensorboard without the package: refused here
    device = resolve_device(config.device)
    autocast = autocast_context(device, config.precision)  # fp16 on a CPU: refused before any write
    world = distributed.start(device)
    if not world.main:
        hooks = replace(hooks, log=lambda _: None, progress=False)
    dataset = _data(data, config).to(device)
    config = settle(config, dataset)
    _check_batch(config, world)
    check_outputs(model, dataset, type(model).__name__)  # before a file is written
    for note in dataset.notes:
        hooks.log(note)
    if config.init is not None and fresh:  # a resumed run's checkpoint has the weights
        init_from(model, config.init, config.init_strict, hooks.log)
    frozen_norms = freeze(model, config.freeze or ())
    if memory is not None:  # frozen parameters have no gradient or optimizer state
        fits = check_run(model, dataset.input_shape, config, device, memory, world.size)
        if fits is not None:
            hooks.log(fits)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    batches = open_batches(dataset, loader_options(config, device, hooks.log))
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, len(batches))
    # in Run's field order: the model, what a step calls (the model until it is wrapped), ...
    parts = (model, model, config, dataset, batches, device, world, optimizer, scheduler)
    run = Run(*parts, autocast, out, hooks, scaler=grad_scaler(device, config.precision))
    run.frozen_norms = frozen_norms
    if config.ema:
        run.ema = Ema(model, config.ema)  # after channels_last: the copy keeps the layout
    return run


def _check_batch(config: TrainConfig, world: distributed.World) -> None:
    """Refuse a step's batch too small to share out among the processes and micro-batches."""
    if config.batch < world.size * config.accumulate:
        micro = f" in {config.accumulate} micro-batches each" if config.accumulate > 1 else ""
        raise ConfigError(
            f"--batch-size {config.batch} is the whole step's batch, shared out among "
            f"{world.size} processes{micro}: it must be at least {world.size * config.accumulate}"
        )


def _claim(run: Run, opening: Opening, lock: RunLock | None) -> None:
    """Take the run directory (rank 0): refuse what is not ours, lock it, start it or tidy it.

    A new run writes ``config.json`` (brickwork's marker) before anything else; a resumed run
    deletes what a killed writer left half-done, of the names its record holds
    (:mod:`~brickwork.train.owned`).
    """
    out = run.out
    assert out is not None
    assert lock is not None
    if opening.resume and not is_unstarted(out):
        check_resume(out)
        lock.acquire()
        n = read_pointer(out)  # refuses a pointer that leads out of the directory
        stale = stale_files(out, n, lock.previous)
        for path in stale:
            path.unlink(missing_ok=True)
        forget(out, [p.name for p in stale])
        record(out, [*RUN_FILES, *(pair_names(n) if n is not None else ())])
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
        batch_size=config.batch,
        seed=config.seed,
        augment=config.augment,
        device=device,
        workers=default_workers() if config.workers is None else config.workers,
        mixing=Mixing(config.mixup, config.cutmix),
        log=log,
    )


def start_run_dir(run: Path, model: nn.Module, config: TrainConfig) -> None:
    """Write ``config.json`` (with brickwork's marker, first), the record of the run's names,
    then ``spec.yaml``, or for a model of the user's own code ``model.json`` (where it came
    from), into ``run``."""
    described = describe(model)  # before anything is written
    config_text = json.dumps({MARKER: __version__, **asdict(config)}, indent=2)
    atomic_write(run / CONFIG, lambda p: p.write_text(config_text))
    record(run, RUN_FILES)
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
    ema = run.ema.module if run.ema is not None else None
    state = distributed.from_main(
        lambda: resume_state(out, run.model, run.optimizer, expected, verify, ema)
    )
    if run.world.size > 1:
        run.model.load_state_dict(state.pop("model"))
        run.optimizer.load_state_dict(state.pop("optimizer"))
        ema_state = state.pop("ema")
        if run.ema is not None:
            run.ema.load_state_dict(ema_state)
    scheduler_state = state.get("scheduler")
    if "extended_from" in state:
        _extend(run, state["epoch"] * len(run.batches) + state["step"])
    elif run.scheduler is not None and scheduler_state is not None:
        run.scheduler.load_state_dict(scheduler_state)
    if run.scaler.is_enabled() and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    loss0, correct0, seen0 = state["running"]
    run.start = Position(state["epoch"], state["step"], (float(loss0), int(correct0), int(seen0)))
    run.history, run.best = state["history"], state["best"]
    if "extended_from" in state:
        was, now = state["extended_from"], run.config.epochs
        run.hooks.log(f"extending {out} from {was} to {now} epochs")
    elif run.start.epoch >= run.config.epochs:
        run.hooks.log(f"finishing {out}: its {run.config.epochs} epochs are done")
    else:
        run.hooks.log(f"resuming {out} at epoch {run.start.epoch + 1}, step {run.start.step}")


def _extend(run: Run, taken: int) -> None:
    """Continue the run over ``run.config.epochs`` instead of the checkpoint's: the schedule is
    the longer run's, at the step reached (its learning rate and momentum set in the optimizer),
    and ``config.json`` says the new epochs (rank 0)."""
    groups = len(run.optimizer.param_groups)
    state, values = schedule_at(run.config, len(run.batches), groups, taken)
    if run.scheduler is not None and state is not None:
        run.scheduler.load_state_dict(state)
    for group, value in zip(run.optimizer.param_groups, values, strict=True):
        group.update(value)
    if run.writes:
        assert run.out is not None
        path = run.out / CONFIG
        saved_config = json.loads(path.read_text())
        text = json.dumps({**saved_config, "epochs": run.config.epochs}, indent=2)
        atomic_write(path, lambda p: p.write_text(text))


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
