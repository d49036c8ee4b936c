"""The state of a run saved in its directory, loaded for ``--resume`` and checked against the
run's options."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import CheckpointError, ConfigError
from brickwork.train import distributed
from brickwork.train.checkpoint import has_checkpoint, load_training_state
from brickwork.train.config import TrainConfig, computed_options
from brickwork.train.optim import schedule_at
from brickwork.train.schema import check_param_groups, check_position, check_scheduler


@dataclass(frozen=True)
class Expected:
    """What a checkpoint of this run must agree with.

    Attributes:
        config: the run's options, as ``config.json`` holds them.
        schedule: the state of the run's scheduler before any step (``None`` without one).
        steps_per_epoch: how many steps (batches) an epoch has.
    """

    config: TrainConfig
    schedule: dict[str, Any] | None
    steps_per_epoch: int


def resume_state(
    run: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    expected: Expected,
    verify: bool = True,
    ema: nn.Module | None = None,
) -> dict[str, Any]:
    """Load the run's training state into ``model``, ``optimizer`` and ``ema``.

    A run stopped before its first checkpoint starts again from the beginning (its initial
    weights come from its seed); a run stopped after its last epoch but before its test line
    is finished.

    Args:
        run: the run directory.
        model: the run's model (its weights are replaced).
        optimizer: the run's optimizer (its state is replaced).
        expected: the run's options, schedule and epoch length, which the checkpoint must fit.
        verify: check the checkpoint files' SHA-256.
        ema: the moving average of the weights (``--ema``), replaced too.

    Returns:
        The training metadata the checkpoint holds (epoch, step, running sums, history, best,
        scheduler, gradient scaler, config); with the model's, optimizer's and moving
        average's states (on the CPU) under ``"model"``, ``"optimizer"`` and ``"ema"`` for the
        other ranks when there are several.

    Raises:
        CheckpointError: a damaged checkpoint, or one written with other options than
            ``config.json``'s (the machine options aside), at a position outside the run.
        ConfigError: the run is finished (its test line is written).
    """
    config = expected.config
    if not has_checkpoint(run):
        return _with_weights(_start_state(expected), model, optimizer, ema)
    fresh_groups = [dict(group) for group in optimizer.param_groups]
    state = load_training_state(run, model, optimizer, verify, ema)
    where = run / "checkpoint.json"
    epochs = saved_epochs(run, state, config)
    steps = expected.steps_per_epoch
    check_position(state, epochs, steps, where)
    taken = state["epoch"] * steps + state["step"]
    schedule = expected.schedule
    saved_config = replace(config, epochs=epochs)  # the checkpoint's schedule, if extended
    if epochs != config.epochs:
        schedule = schedule_at(saved_config, steps, len(fresh_groups), 0)[0]
        state["extended_from"] = epochs
    check_scheduler(state["scheduler"], schedule, taken, where)
    scheduled = schedule_at(saved_config, steps, len(fresh_groups), taken)[1]
    check_param_groups(optimizer.param_groups, fresh_groups, scheduled, where)
    if epochs == config.epochs and state["epoch"] >= config.epochs and is_finished(run):
        raise ConfigError(
            f"{run}: the run is complete ({config.epochs} epochs); nothing to resume",
            hint="resume with a larger --epochs to train longer",
        )
    return _with_weights(state, model, optimizer, ema)


def saved_epochs(run: Path, state: dict[str, Any], config: TrainConfig) -> int:
    """The epochs of the run that wrote the checkpoint: ``config.epochs``, or fewer when the
    run is being extended (its other computed options must be ``config``'s).

    Raises:
        ConfigError: ``config`` has fewer epochs than the checkpoint's run.
        CheckpointError: the checkpoint's other options are not ``config``'s.
    """
    written = state.get("config")
    written = written if isinstance(written, dict) else {"epochs": None}
    epochs = written.get("epochs", config.epochs)
    if isinstance(epochs, int) and epochs > config.epochs:
        raise ConfigError(
            f"--epochs {config.epochs} is fewer than the {epochs} of the run in {run}: "
            "a run can be extended, not shortened"
        )
    if not isinstance(epochs, int) or computed_options(
        {**written, "epochs": config.epochs}
    ) != computed_options(asdict(config)):
        raise CheckpointError(
            f"{run}: its checkpoint was written by a run with other options than "
            f"{run / 'config.json'} says",
            hint="the run directory was edited or mixed with another one",
        )
    return epochs


def _with_weights(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: nn.Module | None,
) -> dict[str, Any]:
    """``state``, with the model's, optimizer's and moving average's states (on the CPU) for
    the other ranks when there are several."""
    if distributed.current().size > 1:
        state["model"] = _to_cpu(model.state_dict())
        state["optimizer"] = _to_cpu(optimizer.state_dict())
        state["ema"] = _to_cpu(ema.state_dict()) if ema is not None else None
    return state


def _start_state(expected: Expected) -> dict[str, Any]:
    """The state of a run that stopped before its first checkpoint: nothing done yet (its
    initial weights come again from its seed)."""
    return {
        "epoch": 0,
        "step": 0,
        "running": [0.0, 0, 0],
        "history": [],
        "best": [-1.0, -math.inf],
        "scheduler": expected.schedule,
        "config": asdict(expected.config),
    }


def is_finished(run: Path) -> bool:
    """Whether the run wrote its test line: the last thing a finished run writes."""
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return bool(lines) and "test_acc" in json.loads(lines[-1])
    except (OSError, ValueError):
        return False


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value
