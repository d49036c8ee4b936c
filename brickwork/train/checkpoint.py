"""Training checkpoints: a pair of safetensors files and a pointer, nothing lost by a kill.

A checkpoint is ``checkpoint-<n>.safetensors`` (the weights, a model file whose metadata holds
the training state) and ``checkpoint-<n>-state.safetensors`` (optimizer tensors and RNG states),
and the pointer ``checkpoint.json`` names the current pair. Each file is written under a
temporary name and renamed; the pointer is renamed last, so a kill at any moment leaves a whole
pair. A pointer names only a pair of its own directory (see :mod:`brickwork.train.run_dir`), and
both files carry a SHA-256 of their tensors, checked when they are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import CheckpointError
from brickwork.files import atomic_write
from brickwork.train.owned import forget, next_pair, record
from brickwork.train.run_dir import POINTER, pair_names, pointer_content, read_pointer
from brickwork.train.schema import check_training_state
from brickwork.train.weights import (
    load_weights,
    read_header,
    read_metadata,
    read_tensors,
    save,
    state_tensors,
    write_tensors,
)

EMA = "ema."
"""The prefix of the moving average's tensors in a checkpoint's state file."""


def save_training_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    metadata: dict[str, Any],
    ema: nn.Module | None = None,
) -> None:
    """Write the next checkpoint pair (its names recorded first) and point ``checkpoint.json``
    at it; then drop the pair before it.

    Args:
        folder: the run directory (held by this process's lock).
        model: the model; its weights and spec go into the weights file.
        optimizer: its state goes into the state file, with the RNG states.
        metadata: the training state (epoch, step, running sums, history, best, scheduler,
            gradient scaler, config), kept in the weights file's metadata under ``training``.
        ema: the moving average of the weights (``--ema``), kept in the state file.
    """
    previous = read_pointer(folder)
    n = next_pair(folder, previous)
    weights, state = pair_names(n)
    record(folder, (weights, state))
    tensors, plain = _optimizer_tensors(optimizer)
    if ema is not None:
        tensors.update({EMA + name: t for name, t in state_tensors(ema).items()})
    write_tensors(folder / state, tensors, {"optimizer": plain})
    save(model, folder / weights, extra={"training": metadata})
    atomic_write(folder / POINTER, lambda tmp: tmp.write_text(json.dumps(pointer_content(n))))
    if previous is not None:
        for name in pair_names(previous):
            (folder / name).unlink(missing_ok=True)
        forget(folder, pair_names(previous))


def _optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's and RNG's tensors, and the plain (JSON) rest of the optimizer's state."""
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    plain_state: dict[str, dict[str, Any]] = {}
    for index, values in opt["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain_state.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": opt["param_groups"], "plain_state": plain_state}


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder``'s pointer names a checkpoint pair (raises if the pointer is damaged)."""
    return read_pointer(folder) is not None


def load_training_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    verify: bool = True,
    ema: nn.Module | None = None,
) -> dict[str, Any]:
    """Restore weights, optimizer and RNG states from ``folder``'s checkpoint pair.

    Args:
        folder: the run directory.
        model: its weights are replaced by the checkpoint's.
        optimizer: its state is replaced by the checkpoint's.
        verify: check both files' SHA-256. Default ``True``.
        ema: the moving average of the weights, replaced by the checkpoint's.

    Returns:
        The training state, its fields checked (types only: the position is checked against
        the run by the caller).

    Raises:
        CheckpointError: no pointer, a pointer outside the directory, damaged files or fields.
    """
    n = read_pointer(folder)
    if n is None:
        raise CheckpointError(f"{folder}: no checkpoint to resume from ({POINTER} is missing)")
    weights, state = (folder / name for name in pair_names(n))
    training = read_metadata(weights).get("training")
    if not isinstance(training, dict):
        raise CheckpointError(f"{weights}: a model file without a training state")
    check_training_state(training, weights)
    load_weights(model, weights, verify)
    _load_state(state, optimizer, verify, ema)
    return training


def _load_state(
    path: Path, optimizer: torch.optim.Optimizer, verify: bool, ema: nn.Module | None
) -> None:
    """Load the state file's optimizer, RNG states and moving average."""
    content = read_header(path)
    tensors = read_tensors(path, content.get("sha256") if verify else None)
    if ema is not None:
        _load_ema(path, ema, {k[len(EMA) :]: v for k, v in tensors.items() if k.startswith(EMA)})
    try:
        meta = content["optimizer"]
        param_groups, plain_state = meta["param_groups"], meta["plain_state"]
        opt_state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                opt_state.setdefault(int(index), {})[name] = value
        for index, values in plain_state.items():
            opt_state.setdefault(int(index), {}).update(values)
        optimizer.load_state_dict({"state": opt_state, "param_groups": param_groups})
        rng = tensors["rng.torch"]
        torch.set_rng_state(rng)
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: the optimizer or random-number state is damaged or not this run's ({err})"
        ) from err
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def _load_ema(path: Path, ema: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load the moving average's tensors (a tied weight comes back through its tie)."""
    if not tensors:
        raise CheckpointError(f"{path}: no moving average of the weights (--ema) in it")
    try:
        missing, unexpected = ema.load_state_dict(tensors, strict=False)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: its moving average is not this model's ({err})") from err
    kept = set(state_tensors(ema))
    absent = [name for name in missing if name in kept]
    if absent or unexpected:
        raise CheckpointError(
            f"{path}: its moving average is not this model's "
            f"(missing {absent[:3]}, unexpected {unexpected[:3]})"
        )
