"""The training checks on a target the user gave: can it fit the loss at all?

From one recorded call of the loss (:class:`~brickwork.inspect.loss_probe.LossCall`):

- ``labels-out-of-range``: class indices outside ``[0, K)`` (other than ``ignore_index``),
  binary targets outside ``[0, 1]``;
- ``loss-target-mismatch``: class indices that are floats or of the wrong shape, float class
  probabilities that are not distributions, a broadcast that compares every output with every
  target (the ``(B, 1)`` against ``(B,)`` bug), targets that a bounded output (a ReLU, a sigmoid,
  a tanh at the end) can never reach.

A random target is made to fit, so none of this applies to it.
"""

from __future__ import annotations

import math
import re

import torch

from brickwork.inspect.findings import Finding
from brickwork.inspect.forward_watch import Producer
from brickwork.inspect.loss_probe import BINARY_OPS, NLL_OPS, LossCall, Op
from brickwork.inspect.meta_run import storage_key

RANGES = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0)}
RANGES |= {"relu": (0.0, math.inf), "log_softmax": (-math.inf, 0.0)}
"""The values each bounded output can take."""
REGRESSION_OPS = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")
OUT_OF_REACH = 0.01
"""The share of targets out of a bounded output's reach that makes a finding."""
_SIZE_WARNING = re.compile(
    r"target size \(torch\.Size\((\[.*?\])\)\) that is different to the input size "
    r"\(torch\.Size\((\[.*?\])\)\)"
)


def target_findings(
    call: LossCall, target: object, loss_name: str, producers: dict[int, Producer]
) -> list[Finding]:
    """What makes the user's ``target`` unfit for the loss (see the module docstring).

    Args:
        call: the loss's first call.
        target: the target the user gave.
        loss_name: the loss's name for messages.
        producers: where the forward made its bounded outputs, by storage key.
    """
    nll = call.find(*NLL_OPS)
    if nll is not None:
        return _class_indices(nll, loss_name)
    binary = call.find(*BINARY_OPS)
    if binary is not None:
        return _binary(binary, loss_name)
    first = call.first
    if call.kind == "classes" and first is not None and isinstance(target, torch.Tensor):
        return _class_probabilities(target, first.args[0], int(first.args[1]), loss_name)
    found = _broadcast(call, loss_name)
    return found or _out_of_reach(call, loss_name, producers)


def _class_indices(op: Op, loss_name: str) -> list[Finding]:
    """Class indices for NLL: integers, one per sample and position, in ``[0, K)``."""
    scores, target = op.args[0], op.args[1]
    classes = scores.shape[1] if scores.dim() > 1 else scores.shape[0]
    expected = [s for i, s in enumerate(scores.shape) if i != 1] if scores.dim() > 1 else []
    if target.dtype not in (torch.long, torch.uint8):
        message = (
            f"{loss_name} takes class indices as integers, one per sample, but the target is "
            f"{_dtype(target)} {list(target.shape)}"
        )
        return [Finding("loss-target-mismatch", "error", "", message, "target.long()")]
    if list(target.shape) != expected:
        return [_index_shape(scores, target, expected, loss_name)]
    ignore = int(op.args[4]) if len(op.args) > 4 else -100
    labels = target[target != ignore]
    if not labels.numel():
        return []
    low, high = int(labels.min()), int(labels.max())
    if low >= 0 and high < classes:
        return []
    if high >= classes:
        what = f"go up to {high}, but the output has {classes} classes (0 to {classes - 1})"
        hint = (
            f"labels that start at 1: subtract 1; or the model needs n_classes={high + 1}"
            if low >= 1
            else f"the model needs n_classes={high + 1}, or the labels are not class indices"
        )
    else:
        what = f"hold {low}, below 0, and the loss ignores only {ignore}"
        hint = f"for padding or unlabelled positions pass ignore_index={low} to the loss"
    message = f"the class indices {what}"
    return [Finding("labels-out-of-range", "error", "", message, hint)]


def _index_shape(
    scores: torch.Tensor, target: torch.Tensor, expected: list[int], loss_name: str
) -> Finding:
    """A target of class indices whose shape does not fit the output's."""
    if list(target.shape) == list(scores.shape):
        hint = "it looks one-hot: target.argmax(1), or float probabilities for soft labels"
    elif [s for i, s in enumerate(target.shape) if i != 1 or s != 1] == expected:
        hint = "drop its size-1 dimension: target.squeeze(1)"
    else:
        hint = f"classes go along dimension 1 of the output: a target of shape {expected}"
    message = (
        f"{loss_name} on an output {list(scores.shape)} takes one class index per sample and "
        f"position, a target of shape {expected}, but the target is {list(target.shape)}"
    )
    return Finding("loss-target-mismatch", "error", "", message, hint)


def _binary(op: Op, loss_name: str) -> list[Finding]:
    """Binary targets: float, of the output's shape, in ``[0, 1]``."""
    target = op.args[1]
    if not target.is_floating_point():
        message = f"{loss_name} takes float targets (0. and 1.), but the target is {_dtype(target)}"
        return [Finding("loss-target-mismatch", "error", "", message, "target.float()")]
    if not target.numel():
        return []
    low, high = float(target.min()), float(target.max())
    if low < 0 or high > 1:
        message = (
            f"{loss_name} takes targets in [0, 1] (probabilities of the positive class), but "
            f"they range over [{low:g}, {high:g}]"
        )
        hint = "class indices? use CrossEntropyLoss on an output of one logit per class"
        return [Finding("labels-out-of-range", "error", "", message, hint)]
    return []


def _class_probabilities(
    target: torch.Tensor, scores: torch.Tensor, dim: int, loss_name: str
) -> list[Finding]:
    """A float target of the output's shape: class probabilities, so each row must sum to 1."""
    if not target.is_floating_point() or target.shape != scores.shape:
        return []
    sums = target.detach().float().sum(dim)
    if bool((target >= 0).all()) and bool(((sums - 1).abs() <= 1e-2).all()):
        return []
    low, high = float(sums.min()), float(sums.max())
    message = (
        f"{loss_name} reads a float target of the output's shape as class probabilities, but "
        f"its rows sum to {low:g}"
        + (f" to {high:g}" if high != low else "")
        + (" and hold negative values" if bool((target < 0).any()) else "")
    )
    hint = (
        "several labels per sample (multi-hot)? use BCEWithLogitsLoss; one class per sample? "
        "give the indices: target.argmax(1)"
    )
    return [Finding("loss-target-mismatch", "error", "", message, hint)]


def _broadcast(call: LossCall, loss_name: str) -> list[Finding]:
    """The output and target broadcast against each other into something larger than both."""
    for warned in call.warned:
        match = _SIZE_WARNING.search(warned)
        if match:
            target, output = (_listed(g) for g in match.groups())
            return [_broadcast_finding(output, target, loss_name)]
    for op in call.ops:
        mine, theirs = op.arg("output"), op.arg("target")
        if mine is None or theirs is None or op.shape is None:
            continue
        if math.prod(op.shape) > max(mine.numel(), theirs.numel()):
            return [_broadcast_finding(list(mine.shape), list(theirs.shape), loss_name)]
    return []


def _listed(text: str) -> list[int]:
    """``"[8, 1]"`` → ``[8, 1]``."""
    return [int(part) for part in text.strip("[]").split(",") if part.strip()]


def _broadcast_finding(output: list[int], target: list[int], loss_name: str) -> Finding:
    together = list(torch.broadcast_shapes(tuple(output), tuple(target)))  # type: ignore[no-untyped-call]
    message = (
        f"the output {output} and the target {target} broadcast to {together} in {loss_name}: "
        "each output is compared with every target of the batch, so the model learns their mean"
    )
    if output[:-1] == target and output[-1:] == [1]:
        hint = "give them one shape: target.unsqueeze(-1), or output.squeeze(-1)"
    else:
        hint = f"give the target the output's shape {output}"
    return Finding("loss-target-mismatch", "error", "", message, hint)


def _out_of_reach(call: LossCall, loss_name: str, producers: dict[int, Producer]) -> list[Finding]:
    """Targets that a bounded output (a final ReLU, sigmoid or tanh) can never reach."""
    op = call.find(*REGRESSION_OPS)
    if op is None or op.arg("output") is None or op.arg("target") is None:
        return []
    output, target = op.arg("output"), op.arg("target")
    assert output is not None
    assert target is not None
    producer = producers.get(storage_key(output))
    if producer is None or producer.site.op not in RANGES or not target.is_floating_point():
        return []
    low, high = RANGES[producer.site.op]
    values = target.detach().float()
    outside = float(((values < low) | (values > high)).float().mean())
    if outside < OUT_OF_REACH:
        return []
    floor = float((values - values.clamp(low, high)).pow(2).mean())
    bounds = f"[{low:g}, {high:g}]".replace("inf", "∞")
    message = (
        f"the output comes from {producer.site.where}, so it stays in {bounds}, but "
        f"{outside:.0%} of the targets lie outside (from {float(values.min()):.3g} to "
        f"{float(values.max()):.3g}): {loss_name} cannot reach them"
        + (f" (MSE stays above {floor:.3g})" if op.name == "mse_loss" else "")
    )
    hint = (
        "end a regression head in a plain Linear (no activation), or scale the targets into "
        f"{bounds}"
    )
    return [
        Finding(
            "loss-target-mismatch", "error", producer.site.path, message, hint, producer.site.line
        )
    ]


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")
