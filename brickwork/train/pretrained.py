"""``--init FILE``: a run's first weights read from a file, mapped onto its model by name.

The file is a brickwork model file (its metadata checked and its tensors' SHA-256 compared, as
:func:`~brickwork.train.weights.load` does) or a plain safetensors state dict. brickwork's ResNets
use torchvision's module names (``conv1``, ``bn1``, ``layer1.0.downsample.0``, ``fc``), which timm's
ResNets share, so such state dicts map key for key; the prefixes that wrappers add (``module.``
of DDP, ``_orig_mod.`` of ``torch.compile``, ``model.`` of a Lightning module) are dropped. A head
whose class count differs from the model's is left as the model has it, freshly initialised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from brickwork.errors import CheckpointError
from brickwork.train.schema import check_model_metadata
from brickwork.train.weights import METADATA_KEY, read_header, read_tensors

WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")
"""Prefixes a wrapper adds to every key of a state dict (DDP, torch.compile, Lightning)."""
SHOWN = 4
"""How many keys a line lists before it counts the rest."""


@dataclass(frozen=True)
class Matched:
    """A file's tensors matched to a model's state dict by name.

    Attributes:
        tensors: what is loaded, under the model's names.
        missing: the model's keys the file lacks (a replaced head's among them).
        unexpected: the file's keys the model lacks.
        replaced: ``(head, file's classes, model's classes)`` when the head was left out.
    """

    tensors: dict[str, torch.Tensor]
    missing: list[str]
    unexpected: list[str]
    replaced: tuple[str, int, int] | None


def init_from(
    model: nn.Module, path: str | Path, strict: bool, log: Callable[[str], None]
) -> Matched:
    """Load the weights of ``path`` into ``model``, by name.

    Args:
        model: the model a run trains, already built for the data (its head has the data's
            class count).
        path: a brickwork model file or a plain safetensors state dict.
        strict: a key missing from the file or the model is an error; with ``False`` it is logged.
        log: where the replaced head and the keys left out are told.

    Raises:
        CheckpointError: a missing or damaged file, keys that do not match (when ``strict``),
            no key that matches, or a tensor of another shape (naming the key and both shapes).
    """
    path = Path(path)
    matched = match_tensors(model, read_init_tensors(path), path)
    left = _left_out(matched)
    if not matched.tensors:
        raise CheckpointError(f"--init {path}: no key matches the model ({left})")
    if left and strict:
        raise CheckpointError(
            f"--init {path}: its keys do not match the model's ({left})",
            hint="--init-strict false loads the keys that match and leaves the others as built",
        )
    model.load_state_dict(matched.tensors, strict=False)
    if matched.replaced is not None:
        head, before, after = matched.replaced
        log(f"init: {head} {before} → {after} classes, replaced")
    if left:
        log(f"init: {left}")
    log(f"init: {len(matched.tensors)} tensors from {path}")
    return matched


def read_init_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``path``: a brickwork file's checked, a plain state dict's as they are."""
    try:
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
        try:
            with safe_open(str(path), framework="pt") as f:
                ours = METADATA_KEY in (f.metadata() or {})
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({err}); it may be truncated or "
                "another format (brickwork never reads pickle)"
            ) from err
        if not ours:
            return read_tensors(path, None)
        metadata = read_header(path)
        check_model_metadata(metadata, path)
        digest = metadata.get("sha256")
        return read_tensors(path, None if digest is None else str(digest))
    except CheckpointError as err:
        raise CheckpointError(f"--init {err}", hint=err.hint) from err


def match_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor], path: Path) -> Matched:
    """``tensors`` under the model's names; the head left out when its class count differs.

    Raises:
        CheckpointError: a tensor whose shape differs from the model's (not a replaced head).
    """
    state = model.state_dict()
    named = {_model_name(name, state): tensor for name, tensor in tensors.items()}
    replaced = _replaced_head(model, named)
    head_keys = {f"{replaced[0]}.weight", f"{replaced[0]}.bias"} if replaced else set()
    for name, tensor in named.items():
        if name in state and name not in head_keys and tensor.shape != state[name].shape:
            raise CheckpointError(
                f"--init {path}: {name} is {list(tensor.shape)} in the file, "
                f"{list(state[name].shape)} in the model"
            )
    kept = {k: v for k, v in named.items() if k in state and k not in head_keys}
    return Matched(
        tensors=kept,
        missing=[k for k in state if k not in kept and k not in head_keys],
        unexpected=[k for k in named if k not in state],
        replaced=replaced,
    )


def _model_name(name: str, state: Mapping[str, torch.Tensor]) -> str:
    """``name`` with the wrapper prefixes dropped, when the model does not have it as it is."""
    while name not in state and name.startswith(WRAPPER_PREFIXES):
        name = name.split(".", 1)[1]
    return name


def _replaced_head(
    model: nn.Module, named: Mapping[str, torch.Tensor]
) -> tuple[str, int, int] | None:
    """The model's head (its last ``Linear``), when the file's has another number of outputs."""
    heads = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not heads:
        return None
    head, module = heads[-1]
    weight = named.get(f"{head}.weight")
    if weight is None or weight.ndim != 2 or weight.shape[0] == module.out_features:
        return None
    return head, int(weight.shape[0]), module.out_features


def _left_out(matched: Matched) -> str:
    """``"missing 2 keys: a, b; unexpected 1 key: c"``; ``""`` when none is."""
    parts = []
    for what, keys in (("missing", matched.missing), ("unexpected", matched.unexpected)):
        if keys:
            more = f", ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
            shown = ", ".join(keys[:SHOWN])
            parts.append(f"{what} {len(keys)} key{'s' * (len(keys) > 1)}: {shown}{more}")
    return "; ".join(parts)
