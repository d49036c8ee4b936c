"""The training checks on what the optimizer and the modes of the modules make of a step.

- ``optimizer-misses-params``: trainable parameters of the model (or of the loss) that are in
  no parameter group; parameters in a group that neither owns (a module replaced after the
  optimizer was made).
- ``eval-mode-training``: a part of the model left in eval mode (dropout off, batch norms on
  their running statistics) while parameters in it train. A frozen part in eval mode is the
  usual way to freeze, and is fine.
- ``frozen-but-updating``: ``requires_grad=False`` parameters that ``optimizer.step()`` changes
  (an optimizer that decays every parameter of its groups, or frozen parameters that still hold
  a gradient, which torch's optimizers step with weight decay and momentum), and batch norms in
  a frozen part whose running statistics move.

The first two read the user's objects; the last compares the copy before and after.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from brickwork.inspect.findings import Finding
from brickwork.inspect.render import names_text

MODE_SENSITIVE = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
"""Norms whose training mode matters (when they track running statistics)."""


def optimizer_param_findings(
    model: nn.Module, loss: object, optimizer: torch.optim.Optimizer
) -> list[Finding]:
    """``optimizer-misses-params`` for the user's optimizer (see the module docstring).

    Args:
        model: the user's model.
        loss: the loss (its parameters are owned too).
        optimizer: the user's optimizer.
    """
    owned = dict(model.named_parameters(remove_duplicate=False))
    if isinstance(loss, nn.Module):
        owned |= {f"(loss).{n}": p for n, p in loss.named_parameters(remove_duplicate=False)}
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [n for n, p in owned.items() if p.requires_grad and id(p) not in held]
    mine = {id(p) for p in owned.values()}
    foreign = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in mine]
    findings = []
    if missing:
        findings.append(_missing(missing, owned, foreign))
    if foreign and not missing:
        shapes = ", ".join(str(list(p.shape)) for p in foreign[:4])
        shapes += " ..." if len(foreign) > 4 else ""
        findings.append(
            Finding(
                "optimizer-misses-params",
                "warning",
                "",
                f"the optimizer holds {len(foreign)} parameter(s) that neither the model nor the "
                f"loss owns (shapes {shapes}): another model's, or a module's replaced since the "
                "optimizer was made",
                "if they belong to a module trained with this one, no fix is needed; otherwise "
                "make the optimizer from model.parameters() after the model is final",
            )
        )
    return findings


def _missing(
    missing: list[str], owned: dict[str, nn.Parameter], foreign: list[torch.Tensor]
) -> Finding:
    values = sum(owned[n].numel() for n in missing)
    message = (
        f"{len(missing)} trainable parameter(s) ({values:,} values) are in no parameter group "
        f"of the optimizer, so it never updates them: {names_text(missing)}"
    )
    stale = sorted(tuple(p.shape) for p in foreign) == sorted(
        tuple(owned[n].shape) for n in missing
    )
    if stale:
        message += (
            f"; it holds {len(foreign)} of the same shapes that the model no longer has: the "
            "modules were replaced after the optimizer was made"
        )
    path = missing[0].rsplit(".", 1)[0] if "." in missing[0] and "(loss)" not in missing[0] else ""
    return Finding(
        "optimizer-misses-params",
        "error",
        path,
        message,
        "make the optimizer after the model is final, from model.parameters(); or add them: "
        "optimizer.add_param_group({'params': [...]})",
    )


def eval_mode_findings(model: nn.Module) -> list[Finding]:
    """``eval-mode-training`` for each part of ``model`` left in eval mode with dropout or
    batch norms inside and parameters that train (see the module docstring).

    Args:
        model: the user's model (only read).
    """
    findings = []
    for path, part in _eval_roots(model):
        sensitive = [m for m in part.modules() if _mode_matters(m)]
        training = sum(p.numel() for p in part.parameters() if p.requires_grad)
        if not sensitive or not training:
            continue
        kinds = sorted({type(m).__name__ for m in sensitive})
        whole = part is model
        message = (
            f"{'the model' if whole else f'`{path}`'} is in eval mode while {training:,} of its "
            f"parameters train: its {len(sensitive)} {'/'.join(kinds)} behave as at test time "
            "(dropout off, batch norms on their running statistics)"
        )
        hint = (
            "call model.train() before training (model.eval() left from validation?)"
            if whole
            else f"call model.train() after `{path}`.eval(); if `{path}` is frozen on purpose, "
            f"freeze its parameters too: `{path}`.requires_grad_(False)"
        )
        findings.append(
            Finding("eval-mode-training", "error" if whole else "warning", path, message, hint)
        )
    return findings


def _eval_roots(model: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    """The modules in eval mode whose parent is in training mode (and the model, if in eval)."""
    if not model.training:
        yield "", model
        return
    for path, module in model.named_modules():
        if module.training:
            continue
        parent = model.get_submodule(path.rsplit(".", 1)[0]) if "." in path else model
        if parent.training:
            yield path, module


def _mode_matters(module: nn.Module) -> bool:
    """Whether ``module`` computes differently in training mode (dropout with p > 0, a norm
    with running statistics, attention or an RNN with dropout)."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, MODE_SENSITIVE):
        return bool(module.track_running_stats)
    if isinstance(module, nn.MultiheadAttention | nn.RNNBase):
        return float(module.dropout) > 0
    return False


def frozen_in_groups(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The ``requires_grad=False`` parameters in the optimizer's groups.

    Args:
        optimizer: the copy's optimizer.
    """
    return [p for g in optimizer.param_groups for p in g["params"] if not p.requires_grad]


def frozen_step_findings(
    before: list[torch.Tensor], frozen: list[torch.Tensor], names: dict[int, str], what: str
) -> list[Finding]:
    """``frozen-but-updating`` for frozen parameters that a step changed.

    Args:
        before: their values before ``optimizer.step()``.
        frozen: the parameters, after it.
        names: id of each of the copy's parameters → its name.
        what: the optimizer, for the message (``AdamW(lr=0.001, weight_decay=0.01)``).
    """
    moved = [p for old, p in zip(before, frozen, strict=True) if not torch.equal(old, p.detach())]
    if not moved:
        return []
    changed = [names.get(id(p), f"[{list(p.shape)}]") for p in moved]
    if any(p.grad is not None for p in moved):
        why = (
            "they still hold a gradient (zeros left by zero_grad(set_to_none=False), or one "
            "from before they were frozen), and the optimizer steps every parameter that holds "
            "one, with its weight decay and momentum"
        )
        instead = "or drop their gradients when you freeze them: p.grad = None"
    else:
        why = (
            "the optimizer updates every parameter of their group (weight decay or momentum "
            "applied without a gradient)"
        )
        instead = "or weight_decay=0 in their group"
    message = (
        f"{len(changed)} parameter(s) with requires_grad=False change in {what}.step(): "
        f"{names_text(changed)}; {why}, so the frozen part drifts"
    )
    path = changed[0].rsplit(".", 1)[0] if "." in changed[0] else ""
    hint = (
        "leave frozen parameters out of the optimizer: "
        f"AdamW(p for p in model.parameters() if p.requires_grad); {instead}"
    )
    return [Finding("frozen-but-updating", "error", path, message, hint)]


def frozen_norms(model: nn.Module) -> dict[str, list[tuple[str, torch.Tensor]]]:
    """The norms with running statistics in each frozen part, with a copy of their running mean.

    A frozen part is the largest module whose parameters (it has some) are all frozen; a norm
    without parameters of its own belongs to one when a module above it is.

    Args:
        model: the copy, before its first forward.
    """
    parts: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for path, module in model.named_modules():
        mean = getattr(module, "running_mean", None)
        if not isinstance(module, MODE_SENSITIVE) or not isinstance(mean, torch.Tensor):
            continue
        part = _frozen_part(model, path)
        if part is not None:
            parts.setdefault(part, []).append((path, mean.detach().clone()))
    return parts


def _frozen_part(model: nn.Module, path: str) -> str | None:
    """The path of the largest frozen module holding ``path``, or ``None``."""
    parts = path.split(".") if path else []
    for depth in range(len(parts) + 1):
        prefix = ".".join(parts[:depth])
        params = list(model.get_submodule(prefix).parameters())
        if params and not any(p.requires_grad for p in params):
            return prefix
    return None


def moving_stats_findings(
    before: dict[str, list[tuple[str, torch.Tensor]]], model: nn.Module
) -> list[Finding]:
    """``frozen-but-updating`` for each frozen part whose norms' running statistics moved.

    Args:
        before: :func:`frozen_norms` before the forward.
        model: the copy, after it.
    """
    findings = []
    for part, norms in before.items():
        moved = [
            path
            for path, old in norms
            if not torch.equal(old, model.get_submodule(path).running_mean)  # type: ignore[arg-type]
        ]
        if not moved:
            continue
        where = f"`{part}`" if part else "the model"
        message = (
            f"{len(moved)} norm(s) in {where}, whose parameters are all frozen, are in training "
            f"mode: each forward moves their running statistics towards the new data, so the "
            f"frozen part changes anyway: {names_text(moved)}"
        )
        hint = (
            f"put the frozen part in eval mode after each model.train(): model.{part}.eval()"
            if part
            else "model.eval() for a model that does not train"
        )
        findings.append(Finding("frozen-but-updating", "warning", part, message, hint))
    return findings
