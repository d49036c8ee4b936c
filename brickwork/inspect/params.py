"""Parameter counts, the device a model lives on, and the module tree."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from brickwork.errors import ConfigError, DeviceError, require_module


def _numel(params: Iterable[nn.Parameter], where: str) -> int:
    total = 0
    for p in params:
        if isinstance(p, UninitializedParameter):
            raise ConfigError(
                f"{where} has lazy parameters that are not initialised yet; "
                "run one forward pass (or use brickwork.summary) before counting"
            )
        total += p.numel()
    return total


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model``; a parameter shared by several modules counts once.

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad``. Default ``False``.

    Raises:
        ConfigError: the model has uninitialised lazy parameters.
    """
    require_module(model, "count_params")
    params = model.parameters()  # yields each Parameter object once, however often it is shared
    if trainable_only:
        params = (p for p in params if p.requires_grad)
    return _numel(params, type(model).__name__)


def device_of(model: nn.Module) -> torch.device | None:
    """The one device that holds all of ``model``'s parameters and buffers.

    Returns ``None`` for a model with no parameters or buffers: it runs wherever its input is.
    (``next(model.parameters()).is_cuda``, as the guides write it, fails on such a model and
    says nothing about the rest of a model that is spread over devices.)

    Raises:
        DeviceError: tensors on more than one device; the message names, for each device, the
            largest modules whose tensors are all on it.
    """
    require_module(model, "device_of")
    devices: dict[str, set[torch.device]] = {}  # module path → devices of its subtree

    def collect(module: nn.Module, path: str) -> set[torch.device]:
        found = {t.device for t in (*module.parameters(False), *module.buffers(False))}
        for name, child in module.named_children():
            found |= collect(child, f"{path}.{name}" if path else name)
        devices[path] = found
        return found

    found = collect(model, "")
    if len(found) <= 1:
        return next(iter(found), None)
    where: dict[str, list[str]] = defaultdict(list)

    def name_owners(module: nn.Module, path: str) -> None:
        own = {t.device for t in (*module.parameters(False), *module.buffers(False))}
        for device in own:
            where[str(device)].append(f"{path or '(root)'} (own tensors)")
        for name, child in module.named_children():
            child_path = f"{path}.{name}" if path else name
            if len(devices[child_path]) == 1:
                where[str(next(iter(devices[child_path])))].append(child_path)
            elif devices[child_path]:
                name_owners(child, child_path)

    name_owners(model, "")
    listing = "; ".join(f"{device}: {', '.join(paths)}" for device, paths in sorted(where.items()))
    raise DeviceError(
        f"{type(model).__name__} has tensors on {len(found)} devices — {listing}",
        hint="move the whole model with model.to(device)",
    )


def tree(model: nn.Module) -> str:
    """The module tree (``named_children``, recursively) with own and total parameter counts.

    Each line is one module: its attribute name and type, the parameters it holds itself, and
    those of its whole subtree (shared parameters counted once). Lazy parameters show as ``?``.
    """
    require_module(model, "tree")
    rows: list[tuple[str, str, str]] = []

    def count(params: Iterable[nn.Parameter]) -> str:
        try:
            return f"{_numel(params, ''):,}"
        except ConfigError:
            return "?"

    def walk(module: nn.Module, label: str, prefix: str, child_prefix: str) -> None:
        rows.append(
            (prefix + label, count(module.parameters(recurse=False)), count(module.parameters()))
        )
        children = list(module.named_children())
        for i, (name, child) in enumerate(children):
            last = i == len(children) - 1
            walk(
                child,
                f"{name}: {type(child).__name__}",
                child_prefix + ("└─ " if last else "├─ "),
                child_prefix + ("   " if last else "│  "),
            )

    walk(model, type(model).__name__, "", "")
    header = ("module", "own", "total")
    widths = [max(len(r[i]) for r in (*rows, header)) for i in range(3)]
    lines = [
        f"{name:<{widths[0]}}  {own:>{widths[1]}}  {total:>{widths[2]}}"
        for name, own, total in (header, *rows)
    ]
    return "\n".join(lines)
