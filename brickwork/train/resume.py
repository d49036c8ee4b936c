"""The state of a run saved in its directory, loaded for ``--resume`` and checked against the
run's options."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import CheckpointError, ConfigError
from brickwork.train import distributed
from brickwork.train.checkpoint import has_checkpoint, load_training_state
from brickwork.train.config import TrainConfig, computed_options
from brickwork.train.schema import check_position, check_scheduler


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
    state = load_training_state(run, model, optimizer, verify, ema)
    where = run / "checkpoint.json"
    if computed_options(state.get("config")) != computed_options(asdict(config)):
        raise CheckpointError(
            f"{run}: its checkpoint was written by a run with other options than "
            f"{run / 'config.json'} says",
            hint="the run directory was edited or mixed with another one",
        )
    steps = expected.steps_per_epoch
    check_position(state, config.epochs, steps, where)
    taken = state["epoch"] * steps + state["step"]
    check_scheduler(state["scheduler"], expected.schedule, taken, where)
    if state["epoch"] >= config.epochs and is_finished(run):
        raise ConfigError(
            f"{run}: the run is complete ({config.epochs} epochs); nothing to resume",
            hint="start a new run in another --out to train longer",
        )
    return _with_weights(state, model, optimizer, ema)


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
