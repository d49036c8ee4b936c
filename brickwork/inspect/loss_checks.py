"""The training checks on the output meeting the loss: normalised twice or not at all.

They read one recorded call of the loss (:class:`~brickwork.inspect.loss_probe.LossCall`) and
where the forward made the output (:class:`~brickwork.inspect.forward_watch.Producer`):

- ``probabilities-as-logits``: the loss applies log-softmax (or a sigmoid) to an output that is
  already a softmax, log-softmax or sigmoid;
- ``logits-as-probabilities``: the loss takes log-probabilities (``NLLLoss``) or probabilities
  (``BCELoss``) and the output is raw scores;
- ``loss-target-mismatch`` for an output of one class under cross-entropy, or a loss that raises.

The checks of a target the user gave are in :mod:`~brickwork.inspect.target_checks`.
"""

from __future__ import annotations

import math

import torch

from brickwork.errors import first_line
from brickwork.inspect.findings import Finding, FindingCode, Severity
from brickwork.inspect.forward_watch import Producer
from brickwork.inspect.loss_probe import LossCall, described
from brickwork.inspect.meta_run import storage_key

TOLERANCE = 1e-3
"""How close a row's sum must be to 1 (softmax), or its log-sum-exp to 0 (log-softmax)."""
_SOFTMAX_HINT = (
    "return the logits from forward and apply softmax only to predict; or end forward in "
    "log_softmax and use NLLLoss"
)


def output_findings(
    call: LossCall, loss_name: str, producers: dict[int, Producer]
) -> list[Finding]:
    """``probabilities-as-logits``, ``logits-as-probabilities`` and a one-class output.

    Args:
        call: the loss's first call on the output.
        loss_name: the loss's name for messages (``CrossEntropyLoss``).
        producers: where the forward made its bounded outputs, by storage key.
    """
    first = call.first
    if first is None:
        return []
    source = first.args[0] if first.args and isinstance(first.args[0], torch.Tensor) else None
    if source is None:
        return []
    producer = producers.get(storage_key(source))
    if call.kind == "classes":
        return _classes(source, int(first.args[1]), loss_name, producer)
    if call.kind == "binary-logits" and producer is not None and producer.site.op == "sigmoid":
        return [_finding("probabilities-as-logits", "error", producer, *_sigmoid_twice(loss_name))]
    if call.kind == "log-probabilities":
        return _not_log_probabilities(source, loss_name, producer)
    if (
        call.kind == "probabilities"
        and call.error is not None
        and "between 0 and 1" in str(call.error)
    ):
        low, high = float(source.min()), float(source.max())
        message = (
            f"{loss_name} takes probabilities in [0, 1], but the output ranges over "
            f"[{low:.3g}, {high:.3g}]: it is raw scores (logits)"
        )
        hint = "use BCEWithLogitsLoss on the logits (it applies the sigmoid, more stably)"
        return [_finding("logits-as-probabilities", "error", producer, message, hint)]
    return []


def _classes(
    source: torch.Tensor, dim: int, loss_name: str, producer: Producer | None
) -> list[Finding]:
    """The findings for a loss that applies log-softmax over ``dim`` of ``source``."""
    classes = source.shape[dim]
    if classes < 2:
        message = (
            f"the output has 1 class along dimension {dim % source.dim()} "
            f"({list(source.shape)}): {loss_name} over one class is always 0, so nothing learns"
        )
        hint = "for a yes/no target use BCEWithLogitsLoss on this output; or output 2 logits"
        return [_finding("loss-target-mismatch", "error", producer, message, hint)]
    values = source.detach().float()
    if bool((values >= 0).all()) and _close(values.sum(dim), 1.0):
        bound = math.log1p((classes - 1) / math.e)  # best case: 1 on the target, 0 elsewhere
        message = (
            f"the output is already a softmax (each row sums to 1) and {loss_name} applies "
            f"log-softmax again: the gradients shrink, and the loss cannot go below {bound:.2f} "
            f"on {classes} classes"
        )
        return [_finding("probabilities-as-logits", "error", producer, message, _SOFTMAX_HINT)]
    if bool((values <= TOLERANCE).all()) and _close(values.logsumexp(dim), 0.0):
        message = (
            f"the output is already a log-softmax and {loss_name} applies its own: harmless for "
            "the loss (log-softmax of log-probabilities changes nothing) but redundant, and the "
            "model's outputs are not logits"
        )
        hint = "use NLLLoss on the log-softmax, or return the logits to this loss"
        return [_finding("probabilities-as-logits", "warning", producer, message, hint)]
    if producer is not None and producer.site.op == "sigmoid":
        message = (
            f"the output is a sigmoid, in (0, 1), and {loss_name} applies log-softmax to it: "
            f"the logits cannot spread more than 1 apart, so the loss cannot go below "
            f"{math.log1p((classes - 1) / math.e):.2f} on {classes} classes"
        )
        return [_finding("probabilities-as-logits", "error", producer, message, _SOFTMAX_HINT)]
    return []


def _sigmoid_twice(loss_name: str) -> tuple[str, str]:
    message = (
        f"the output is already a sigmoid and {loss_name} applies its own: the gradients "
        "shrink, and the loss cannot go below 0.31 on a positive target (0.69 on a negative one)"
    )
    return message, "drop the sigmoid (the loss applies it, more stably), or use BCELoss"


def _not_log_probabilities(
    source: torch.Tensor, loss_name: str, producer: Producer | None
) -> list[Finding]:
    """``logits-as-probabilities`` when NLL's input rows are not log-probabilities."""
    values = source.detach().float()
    if values.dim() < 2 or _close(values.logsumexp(1), 0.0, 1e-2):
        return []
    if bool((values >= 0).all()) and _close(values.sum(1), 1.0):
        what = "probabilities (a softmax), not their log: the loss is then -p and barely moves"
        hint = "use log_softmax instead of softmax in forward"
    else:
        what = "raw scores (logits): the loss is -score, which falls without bound"
        hint = "use CrossEntropyLoss on the logits, or end forward in log_softmax"
    message = f"{loss_name} takes log-probabilities, but the output is {what}"
    return [_finding("logits-as-probabilities", "error", producer, message, hint)]


def raised_finding(call: LossCall, output: object, target: object, loss_name: str) -> Finding:
    """A ``loss-target-mismatch`` for a loss that raises, with the fix its message suggests.

    Args:
        call: a call that raised.
        output: the model's output.
        target: the target.
        loss_name: the loss's name for messages.
    """
    assert call.error is not None
    text = first_line(call.error, with_type=True)
    message = (
        f"{loss_name} raises on the output {described(output)} and the target "
        f"{described(target)}: {text}"
    )
    lowered = text.lower()
    hint = next((fix for words, fix in _FIXES if all(w in lowered for w in words)), None)
    return Finding("loss-target-mismatch", "error", "", message, hint)


_SAME_SHAPE = "give the target the output's shape: target.view_as(output)"
_FIXES = (
    (("same as input size",), _SAME_SHAPE),
    (("different to the input size",), _SAME_SHAPE),  # BCELoss's words
    (
        ("class probabilities", "got long"),
        "a target of the output's shape is read as class probabilities: one-hot labels? give "
        "the indices, target.argmax(1); soft labels? target.float()",
    ),
    (("long",), "class indices are integers: target.long()"),
    (("cast",), "this loss takes float targets: target.float()"),
    (("multi-target",), "one class index per sample: target.squeeze(1), or target.argmax(1)"),
    (("expected target size",), "classes go along dimension 1: output (B, K, ...), target (B,...)"),
)
"""Words in a loss's error, and the fix they point to."""


def _close(values: torch.Tensor, expected: float, tolerance: float = TOLERANCE) -> bool:
    return bool(((values - expected).abs() <= tolerance).all())


def _finding(
    code: FindingCode, severity: Severity, producer: Producer | None, message: str, hint: str
) -> Finding:
    """A finding at the module that made the output (the model itself when unknown)."""
    if producer is None:
        return Finding(code, severity, "", message, hint)
    site = producer.site
    message = f"{message}; the {site.op} is {site.where}"
    return Finding(code, severity, site.path, message, hint, line=site.line)
