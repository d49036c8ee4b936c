"""Models and training state in safetensors files: no pickle, nothing executed on load.

- ``save(model, path)`` writes the weights with the model's spec, the brickwork version and any
  extra metadata (normalisation, class names) in the file's JSON header. ``load(path)`` rebuilds
  the model from that spec and loads the weights.
- A training checkpoint is two files, ``checkpoint-<n>.safetensors`` (weights and training
  metadata) and ``checkpoint-<n>-state.safetensors`` (optimizer tensors and RNG states), and a
  pointer ``checkpoint.json`` that names the current pair. Each file is written under a temporary
  name and renamed; the pointer is renamed last, so a kill at any moment leaves a whole pair.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from brickwork._version import __version__
from brickwork.errors import CheckpointError
from brickwork.files import atomic_write
from brickwork.spec import build, to_spec

POINTER = "checkpoint.json"


def model_file(path: str | Path) -> Path:
    """``RUN_DIR`` → its ``model.safetensors``; a file as it is."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
        if not path.is_file():
            raise CheckpointError(
                f"{path.parent}: no model.safetensors (has the run finished an epoch?)"
            )
    return path


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict, each storage once (safetensors refuses shared tensors), on the CPU."""
    seen: dict[tuple[int, int], str] = {}
    out = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen and tensor.numel():
            continue  # a tied weight: load_state_dict(strict=False) and the tie restore it
        seen[key] = name
        out[name] = tensor.detach().to("cpu").contiguous()
    return out


def save(
    model: nn.Module, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s weights and spec to a ``.safetensors`` file (atomically).

    Args:
        model: a model built by brickwork (``build``, a family, ``create_model``).
        path: the file to write.
        extra: JSON-serialisable metadata to keep beside the spec (normalisation, classes).
    """
    # One metadata key: safetensors writes its metadata map in no fixed order, and a single
    # entry keeps the file's bytes reproducible (a resumed run's file equals a straight run's).
    content = {
        "format": "brickwork",
        "brickwork_version": __version__,
        "spec": to_spec(model),
        **(extra or {}),
    }
    metadata = {"brickwork": json.dumps(content, sort_keys=True)}
    tensors = _tensors(model)
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a brickwork ``.safetensors`` file (values decoded).

    Raises:
        CheckpointError: a missing, truncated or corrupted file, or one brickwork did not write.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({err}); it may be truncated, corrupted, "
            "or another format (brickwork never reads pickle)"
        ) from err
    try:
        content = json.loads(raw["brickwork"])
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path}: a safetensors file without brickwork's metadata (the spec it was built from)"
        ) from err
    if (
        not isinstance(content, dict)
        or content.get("format") != "brickwork"
        or "spec" not in content
    ):
        raise CheckpointError(f"{path}: a safetensors file without brickwork's spec metadata")
    return content


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: cannot read its tensors ({err}); the file is damaged"
        ) from err


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a file's weights into ``model``, which must have the same spec.

    Raises:
        CheckpointError: damaged file, or weights of another model (names the first mismatch).
    """
    path = Path(path)
    metadata = read_metadata(path)
    if metadata["spec"] != to_spec(model):
        raise CheckpointError(
            f"{path}: it holds weights for another model (its spec differs from this run's)",
            hint="start a new run in another --out directory, or use the spec it was trained with",
        )
    tensors = _read_tensors(path)
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # shapes that do not fit the spec the file claims
        first = str(err).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: its weights do not fit its own spec ({first})") from err
    missing = [k for k in result.missing_keys if k not in _tied_names(model)]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: weights do not match the model (missing {missing[:3]}, unexpected "
            f"{result.unexpected_keys[:3]})"
        )


def _tied_names(model: nn.Module) -> set[str]:
    kept = set(_tensors(model))
    return {name for name in model.state_dict() if name not in kept}


def load(path: str | os.PathLike[str], device: torch.device | str | None = None) -> nn.Module:
    """Rebuild the model a ``.safetensors`` file was saved from, with its weights.

    Nothing in the file is executed: the spec names only registered bricks, and the weights are
    plain tensors.
    """
    metadata = read_metadata(path)
    model = build(metadata["spec"], device=device)
    load_weights(model, path)
    return model


# ----------------------------------------------------------------------------- training state


def save_training_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    metadata: dict[str, Any],
) -> None:
    """Write a checkpoint pair and point ``checkpoint.json`` at it; then drop the previous pair."""
    previous = _pointer(folder)
    n = (previous["n"] + 1) if previous else 1
    weights, state = f"checkpoint-{n}.safetensors", f"checkpoint-{n}-state.safetensors"
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
    atomic_write(
        folder / state,
        lambda tmp: save_file(
            tensors,
            str(tmp),
            metadata={
                "optimizer": json.dumps(
                    {"param_groups": opt["param_groups"], "plain_state": plain_state}
                )
            },
        ),
    )
    save(model, folder / weights, extra={"training": metadata})
    atomic_write(
        folder / POINTER,
        lambda tmp: tmp.write_text(json.dumps({"n": n, "weights": weights, "state": state})),
    )
    if previous:
        for name in (previous["weights"], previous["state"]):
            (folder / name).unlink(missing_ok=True)


def _pointer(folder: Path) -> dict[str, Any] | None:
    pointer = folder / POINTER
    if not pointer.is_file():
        return None
    try:
        data = json.loads(pointer.read_text())
        if not isinstance(data, dict) or not {"n", "weights", "state"} <= set(data):
            raise ValueError("missing keys")
    except (ValueError, OSError) as err:
        raise CheckpointError(f"{pointer}: damaged ({err})") from err
    return data


def has_checkpoint(folder: Path) -> bool:
    return _pointer(folder) is not None


def load_training_state(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore weights, optimizer and RNG states from ``folder``; return the training metadata."""
    pointer = _pointer(folder)
    if pointer is None:
        raise CheckpointError(f"{folder}: no checkpoint to resume from ({POINTER} is missing)")
    weights, state = folder / pointer["weights"], folder / pointer["state"]
    for stale in [*folder.glob(".*.tmp"), *folder.glob("checkpoint-*.safetensors")]:
        if stale.name not in (weights.name, state.name):  # left by a run killed mid-write
            stale.unlink(missing_ok=True)
    load_weights(model, weights)
    training: dict[str, Any] = read_metadata(weights)["training"]
    tensors = _read_tensors(state)
    try:
        with safe_open(str(state), framework="pt") as f:
            raw = f.metadata() or {}
        optimizer_meta = json.loads(raw["optimizer"])
        param_groups, plain_state = optimizer_meta["param_groups"], optimizer_meta["plain_state"]
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{state}: damaged optimizer state ({err})") from err
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    for index, values in plain_state.items():
        opt_state.setdefault(int(index), {}).update(values)
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": param_groups})
    except (ValueError, KeyError) as err:
        raise CheckpointError(
            f"{state}: the optimizer state does not fit this run ({err})"
        ) from err
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return training
