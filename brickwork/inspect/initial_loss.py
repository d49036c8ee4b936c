"""``initial-loss``: the first loss, against what a model that knows nothing gives.

A classifier that knows nothing predicts every class alike: cross-entropy ``log K`` over ``K``
classes (label smoothing and class weights change nothing to that), binary cross-entropy on
logits ``log 2``. The check reads the scores the loss normalises (from its recorded call) and
takes the loss they would average over labels drawn at random: ``logsumexp(z) - mean(z)``, free
of the batch's own labels. Far above ``log K`` (by :data:`EXCESS` nats), the predictions start
confident and wrong, and the first steps go into undoing that; the finding names the likely
cause: the last layer's init, its bias, or inputs that are not normalised. A first loss that is
not finite is an error.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.functional import softplus

from brickwork.inspect.findings import Finding
from brickwork.inspect.forward_watch import layer_weight
from brickwork.inspect.loss_probe import LossCall
from brickwork.inspect.meta_run import tensors_in

EXCESS = 1.0
"""Nats above ``log K`` (or ``log 2``) that make a finding. Logits of spread σ add about σ²/2;
brickwork's families at init add at most 0.5 (ResNet-101 and -152, whose logits spread by 0.9)."""
INIT_RATIO = 3.0
"""A last layer whose weights spread this many times PyTorch's default init (or more) is named
as the cause."""
RAW_INPUT = 10.0
"""Inputs whose mean or standard deviation passes this are not normalised (pixels in 0–255)."""


def initial_loss_findings(
    call: LossCall, model: nn.Module, last_layer: str | None, inputs: Any, given: bool
) -> list[Finding]:
    """``initial-loss`` for the first loss (see the module docstring).

    Args:
        call: the loss's first call, which returned a value.
        model: the training checks' copy (only read).
        last_layer: the path of the last layer with a weight that ran, if any.
        inputs: the batch's inputs.
        given: whether the inputs are the user's (their scale then tells something).
    """
    value = call.value.detach().float() if isinstance(call.value, torch.Tensor) else None
    if value is None or value.numel() == 0:
        return []
    if not bool(torch.isfinite(value).all()):
        return [_not_finite(call, float(value.flatten()[0]), inputs)]
    expected = _expected(call)
    if expected is None:
        return []
    average, baseline, what = expected
    if average - baseline <= EXCESS:
        return []
    cause, hint, path = _cause(call, model, last_layer, inputs if given else None)
    message = (
        f"the first loss is {float(value.mean()):.3g}, far from the {baseline:.3g} ({what}) of a "
        f"model that knows nothing (on labels drawn at random it would average {average:.3g}): "
        f"{cause}"
    )
    return [Finding("initial-loss", "warning", path, message, hint)]


def _expected(call: LossCall) -> tuple[float, float, str] | None:
    """The loss the scores would average on random labels, what knowing nothing gives, and how
    to say it; ``None`` for a loss without such a baseline (a regression)."""
    first = call.first
    if first is None or not isinstance(first.args[0], torch.Tensor):
        return None
    scores = first.args[0].detach().float()
    if call.kind == "classes" and first.name in ("_log_softmax", "log_softmax"):
        dim = int(first.args[1])
        classes = scores.shape[dim]
        if classes < 2:
            return None
        average = float((scores.logsumexp(dim) - scores.mean(dim)).mean())
        return average, math.log(classes), f"log {classes}"
    if call.kind == "binary-logits":
        average = float(((softplus(scores) + softplus(-scores)) / 2).mean())
        return average, math.log(2), "log 2"
    return None


def _cause(
    call: LossCall, model: nn.Module, last_layer: str | None, inputs: Any
) -> tuple[str, str, str]:
    """The likely cause of confident first predictions, its fix, and the path to name."""
    first = call.first
    assert first is not None
    scores = first.args[0].detach().float()
    dim = int(first.args[1]) if call.kind == "classes" else -1
    spread = float(scores.std(dim).mean()) if scores.shape[dim] > 1 else float(scores.std())
    said = f"the scores spread by {spread:.3g} across the classes (well under 1 at a good init)"
    raw = _raw_inputs(inputs)
    if raw is not None:
        return (
            f"{said}; the inputs are not normalised ({raw})",
            "normalise the inputs (pixels: x / 255, then subtract the mean and divide by the std)",
            "",
        )
    module = model.get_submodule(last_layer) if last_layer else None
    weight = layer_weight(module) if module is not None else None
    if module is not None and weight is not None:
        found = _last_layer(module, weight, last_layer or "")
        if found is not None:
            return f"{said}; {found[0]}", found[1], last_layer or ""
    return (
        f"{said}, grown through the layers before the last one",
        "check the init of the layers (PyTorch's defaults, or kaiming_normal_ for ReLU "
        "networks), and add normalisation",
        "",
    )


def _last_layer(module: nn.Module, weight: torch.Tensor, path: str) -> tuple[str, str] | None:
    """Blame the last layer's weights or bias when they are far above PyTorch's default."""
    fan_in = weight[0].numel()
    default = 1 / math.sqrt(3 * fan_in)  # kaiming_uniform_(a=sqrt(5)): nn.Linear's and Conv's
    std = float(weight.detach().float().std())
    bias = getattr(module, "bias", None)
    if std >= INIT_RATIO * default:
        return (
            f"`{path}`'s weights have std {std:.3g}, {std / default:.0f}× PyTorch's default "
            f"({default:.3g} for its {fan_in} inputs)",
            f"initialise `{path}` smaller (leave PyTorch's default, or normal_(std=0.01)) and "
            "its bias to 0",
        )
    if isinstance(bias, torch.Tensor) and bias.numel() > 1 and float(bias.std()) > EXCESS:
        return (
            f"`{path}`'s bias spreads the classes by {float(bias.std()):.3g}",
            f"initialise `{path}.bias` to 0 (or to the log of the class frequencies)",
        )
    return None


def _raw_inputs(inputs: Any) -> str | None:
    """``"mean 117, std 72"`` for float inputs far from normalised; ``None`` otherwise."""
    for tensor in tensors_in(inputs):
        if tensor.is_floating_point() and tensor.numel() > 1:
            mean, std = float(tensor.float().mean()), float(tensor.float().std())
            if abs(mean) > RAW_INPUT or std > RAW_INPUT:
                return f"mean {mean:.3g}, std {std:.3g}"
    return None


def _not_finite(call: LossCall, value: float, inputs: Any) -> Finding:
    """An ``initial-loss`` error for a first loss that is NaN or infinite."""
    first = call.first
    scores = first.args[0] if first is not None and first.args else None
    if isinstance(scores, torch.Tensor) and not bool(torch.isfinite(scores).all()):
        cause = "the output itself is not finite"
        floats = [t for t in tensors_in(inputs) if t.is_floating_point()]
        if any(not bool(torch.isfinite(t).all()) for t in floats):
            cause += ", nor are the inputs"
    else:
        cause = "the output is finite, so the loss makes it (a log of 0, a division by 0?)"
    message = f"the first loss is {value}: {cause}"
    hint = (
        "look for a log of 0, a division by 0 or an overflow in forward and the loss; check "
        "torch.isfinite(x).all() after each layer"
    )
    return Finding("initial-loss", "error", "", message, hint)
