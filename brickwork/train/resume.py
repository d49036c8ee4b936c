"""The state of a run saved in its directory, loaded for ``--resume`` and checked against the
run's options."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import CheckpointError, ConfigError
from brickwork.train import distributed
from brickwork.train.checkpoint import load_training_state
from brickwork.train.config import TrainConfig, computed_options


def resume_state(
    run: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig
) -> dict[str, Any]:
    """Load the run's training state into ``model`` and ``optimizer``.

    Args:
        run: the run directory.
        model: the run's model (its weights are replaced).
        optimizer: the run's optimizer (its state is replaced).
        config: the run's options, as ``config.json`` holds them.

    Returns:
        The training metadata the checkpoint holds (epoch, step, running sums, history, best,
        scheduler, config); with the model's and optimizer's states (on the CPU) under
        ``"model"`` and ``"optimizer"`` for the other ranks when there are several.

    Raises:
        CheckpointError: a damaged checkpoint, or one written with other options than
            ``config.json``'s (the machine options aside).
        ConfigError: the run has done all its epochs.
    """
    state = load_training_state(run, model, optimizer)
    if computed_options(state.get("config")) != computed_options(asdict(config)):
        raise CheckpointError(
            f"{run}: its checkpoint was written by a run with other options than "
            f"{run / 'config.json'} says",
            hint="the run directory was edited or mixed with another one",
        )
    if state["epoch"] >= config.epochs:
        raise ConfigError(
            f"{run}: the run is complete ({config.epochs} epochs); nothing to resume",
            hint="start a new run in another --out to train longer",
        )
    if distributed.current().size > 1:
        state["model"] = _to_cpu(model.state_dict())
        state["optimizer"] = _to_cpu(optimizer.state_dict())
    return state


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value
