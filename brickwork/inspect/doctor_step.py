"""``doctor``'s training checks: a few real optimizer steps on a copy, and what they show.

Given a loss (and, optionally, an optimizer and a batch), :func:`training_checks`:

1. reads the user's objects: parts left in eval mode, parameters the optimizer misses
   (:mod:`~brickwork.inspect.optimizer_checks`);
2. copies the model, the loss and the optimizer to the CPU (:mod:`~brickwork.inspect.step_copy`)
   and makes one fixed batch of :data:`BATCH` (random inputs, and a random target that fits the
   loss: :mod:`~brickwork.inspect.loss_probe`), or takes the user's;
3. runs the first forward watched (:mod:`~brickwork.inspect.forward_watch`) and the loss once,
   recorded: how the output meets the loss and the target, the first loss, the running
   statistics of frozen norms (:mod:`~brickwork.inspect.loss_checks`,
   :mod:`~brickwork.inspect.target_checks`, :mod:`~brickwork.inspect.initial_loss`);
4. the first backward and step: the gradients from the first layer to the last, the biases a
   norm cancels, frozen parameters that move (:mod:`~brickwork.inspect.gradient_checks`);
5. the other steps, the second forward watched: dead and saturated activations at init and
   after a step (:mod:`~brickwork.inspect.activation_checks`), and the loss curve
   (:mod:`~brickwork.inspect.overfit`).

The user's model, loss, optimizer and random number generators are left as they were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, first_line
from brickwork.inspect.activation_checks import activation_findings
from brickwork.inspect.findings import Finding, FindingCode, Report
from brickwork.inspect.forward_watch import ForwardRecord, ForwardWatch
from brickwork.inspect.gradient_checks import bias_before_norm_findings, gradient_findings
from brickwork.inspect.initial_loss import initial_loss_findings
from brickwork.inspect.inputs import Inputs
from brickwork.inspect.loss_checks import output_findings, raised_finding
from brickwork.inspect.loss_probe import LossCall, call_loss, loss_code_error, random_target
from brickwork.inspect.meta_run import storage_key
from brickwork.inspect.optimizer_checks import (
    eval_mode_findings,
    frozen_in_groups,
    frozen_norms,
    frozen_step_findings,
    moving_stats_findings,
    optimizer_param_findings,
)
from brickwork.inspect.overfit import (
    CONFIRM_STEPS,
    DEFAULT_STEPS,
    NEAR_ZERO_STEPS,
    loss_floor,
    near_floor,
    overfit_findings,
    rises,
    unreached_finding,
)
from brickwork.inspect.step_copy import WorkingCopy, untouched, working_copy
from brickwork.inspect.target_checks import target_findings
from brickwork.inspect.training_setup import TrainingSetup, optimizer_text
from brickwork.inspect.user_code import user_line
from brickwork.inspect.watch import Watch

BATCH = 8
"""The random batch's size: a ReLU unit dead on all of it is rarely so by chance (1 in 256)."""
SEED = 0
"""Seeds the batch, the target and each forward's dropout (the same mask at every step)."""
AFTER_STEP: tuple[FindingCode, ...] = (
    "initial-loss",
    "vanishing-gradients",
    "exploding-gradients",
    "bias-before-norm",
    "frozen-but-updating",
    "cannot-overfit",
)
"""The checks that need a loss to step from, in the order they run."""
AFTER_BACKWARD = AFTER_STEP[1:-1]
"""The checks left undone when the first backward fails, or reaches no parameter (itself a
``cannot-overfit``)."""
TRAINING_CODES: tuple[FindingCode, ...] = (
    "probabilities-as-logits",
    "logits-as-probabilities",
    "loss-target-mismatch",
    "labels-out-of-range",
    *AFTER_STEP,
    "optimizer-misses-params",
    "eval-mode-training",
    "dead-units",
    "saturated-activations",
)
"""Every code the training checks give."""


def training_checks(
    report: Report, model: nn.Module, inputs: Inputs, setup: TrainingSetup, given: bool
) -> None:
    """Run the training checks on ``model`` and add what they find to ``report``.

    Args:
        report: the report so far (its forward ran through).
        model: the user's model, with real weights and a trainable parameter (left as it
            was).
        inputs: the batch's inputs (meta stand-ins become random values).
        setup: the loss, optimizer, target and budget.
        given: whether the inputs are the user's own tensors.
    """
    report.findings += eval_mode_findings(model)
    if setup.given:
        report.findings += optimizer_param_findings(model, setup.loss, setup.optimizer)
    with untouched(model), torch.inference_mode(False), torch.enable_grad(), Watch():
        torch.manual_seed(SEED)
        steps = _Steps(working_copy(model, setup.loss, setup.optimizer), inputs, setup, given)
        steps.run()
    report.findings += steps.findings
    report.losses = steps.losses
    report.training = steps.describe()
    if steps.not_run:
        report.not_run += steps.not_run
        report.not_run_reason = steps.reason or report.not_run_reason


class _Steps:
    """The state of one run of the training checks (see the module docstring)."""

    def __init__(self, work: WorkingCopy, inputs: Inputs, setup: TrainingSetup, given: bool):
        self.work = work
        self.setup = setup
        self.given = given
        self.args, self.kwargs = inputs.real(work.model, torch.device("cpu"))
        self.target = setup.target
        self.budget = setup.steps or DEFAULT_STEPS
        self.optimizer = optimizer_text(work.optimizer)
        self.findings: list[Finding] = []
        self.losses: list[float] = []
        self.not_run: list[FindingCode] = []
        self.halted: str | None = None
        self.reason: str | None = None  # the halt, said shortly for the checks not run
        self.floor = 0.0

    def run(self) -> None:
        """The first step, checked closely, then the others."""
        record = self._first_step()
        after: dict[Any, Any] = {}
        if record is not None and not self.halted:
            after = self._more_steps()
        if record is not None:
            self.findings += activation_findings(
                record.activations, after, self.work.optimizer, self.optimizer
            )
        what = f"{self.batch} samples, {self.optimizer}"
        if not self.halted:
            self.findings += overfit_findings(self.losses, self.floor, self.budget, what)

    @property
    def batch(self) -> int:
        """The batch's size."""
        tensors = [t for t in (*self.args, *self.kwargs.values()) if isinstance(t, torch.Tensor)]
        return int(tensors[0].shape[0]) if tensors and tensors[0].dim() else 1

    def forward(self) -> Any:
        """The copy's forward on the batch, with the same dropout mask each time."""
        torch.manual_seed(SEED)
        return self.work.model(*self.args, **self.kwargs)

    def halt(self, why: str, codes: tuple[FindingCode, ...], reason: str | None = None) -> None:
        """Stop the steps, with the checks left undone (``reason``: ``why`` said shortly)."""
        self.halted, self.reason = why, reason or why
        self.not_run += [c for c in codes if c not in self.not_run]

    def _first_step(self) -> ForwardRecord | None:
        frozen = frozen_norms(self.work.model)
        try:
            with ForwardWatch(self.work.model) as record:
                output = self.forward()
        except Exception as err:  # the user's forward, for real, in training mode
            self._forward_failed(err)
            return None
        if self.target is None and not self._random_target(output):
            return record
        call = call_loss(self.work.loss, output, self.target)
        self._loss_checks(call, output, record)
        self.findings += moving_stats_findings(frozen, self.work.model)
        if self.halted:
            return record
        value = _scalar(call.value)
        self.losses.append(float(value))
        if not math.isfinite(self.losses[0]):
            self.halt("the first loss is not finite", AFTER_STEP[1:])
            return record
        if self.budget >= NEAR_ZERO_STEPS:  # only a long run is asked to get near the floor
            made = record.producers.get(storage_key(output)) if torch.is_tensor(output) else None
            last_op = made.site.op if made is not None else None
            self.floor = loss_floor(self.work.loss, output, self.target, last_op)
        if self._backward(value):
            self._first_gradients(value, record)
        return record

    def _first_gradients(self, value: torch.Tensor, record: ForwardRecord) -> None:
        """What the first backward reached, then the first step."""
        params = [p for p in self.work.model.parameters() if p.requires_grad]
        unreached = unreached_finding(value, params)
        if unreached is not None:
            self.findings.append(unreached)
            self.halt("backward reached no parameter", AFTER_BACKWARD)
            return
        found = gradient_findings(self.work.model, record)
        self.findings += found + bias_before_norm_findings(self.work.model, record.feeds)
        if any(f.severity == "error" for f in found):  # gradients that are not finite
            self.halt("the gradients are not finite", ("frozen-but-updating", "cannot-overfit"))
        else:
            self._step(check_frozen=True)

    def _random_target(self, output: Any) -> bool:
        """Make a random target that fits the loss; ``False``, the checks skipped, when the
        output is not a tensor (a tuple, a dict) that the loss can take."""
        try:
            generator = torch.Generator().manual_seed(SEED)
            self.target = random_target(self.work.loss, output, generator)
        except ConfigError:
            if isinstance(output, torch.Tensor):
                raise
            self._skip(output)
            return False
        return True

    def _skip(self, output: Any) -> None:
        """Skip the checks after the forward: the loss cannot take the model's output."""
        kind, name = type(output).__name__, self.setup.loss_name
        part = (
            f"out[{next(iter(output))!r}]" if isinstance(output, Mapping) and output else "out[0]"
        )
        reason = f"{name} does not take the model's output, a {kind}"
        why = f"{reason}; give a loss that picks its part: lambda out, y: {name}()({part}, y)"
        self.halt(why, TRAINING_CODES[:4] + AFTER_STEP, reason)

    def _loss_checks(self, call: LossCall, output: Any, record: ForwardRecord) -> None:
        name = self.setup.loss_name
        if call.error is not None:
            broken = loss_code_error(call.error, name, output, self.target)
            if broken is not None:
                raise broken from call.error
            if not isinstance(output, torch.Tensor):
                self._skip(output)
                return
        found = output_findings(call, name, record.producers)
        if self.setup.target is not None:
            found += target_findings(call, self.target, name, record.producers)
        if call.error is not None and not any(f.severity == "error" for f in found):
            found.append(raised_finding(call, output, self.target, name))
        self.findings += found
        if call.error is not None:
            self.halt("the loss raised", AFTER_STEP)
        elif not isinstance(call.value, torch.Tensor) or not call.value.is_floating_point():
            self.findings.append(_no_tensor(call.value, name))
            self.halt("the loss is not a tensor", AFTER_STEP)
        else:
            last = record.layers[-1] if record.layers else None
            batch = (self.args, self.kwargs)
            self.findings += initial_loss_findings(call, self.work.model, last, batch, self.given)

    def _backward(self, value: torch.Tensor) -> bool:
        """Backward from ``value``; a finding and ``False`` when it cannot. Gradients are zeroed
        where they exist, not dropped: a frozen parameter that holds one (left by
        ``zero_grad(set_to_none=False)``) is stepped, as in the user's loop."""
        self.work.optimizer.zero_grad(set_to_none=False)
        try:
            value.backward()  # type: ignore[no-untyped-call]
        except RuntimeError as err:
            message = f"backward from the loss raises: {first_line(err)}"
            hint = (
                "the loss carries no gradient: the output is detached or made under "
                "torch.no_grad(), or the loss calls .item() or .detach()"
                if "does not require grad" in str(err)
                else None
            )
            self.findings.append(Finding("cannot-overfit", "error", "", message, hint))
            self.halt("backward raised", AFTER_BACKWARD)
            return False
        return True

    def _step(self, check_frozen: bool = False) -> bool:
        """One ``optimizer.step()`` (with a closure for those that need one, as LBFGS);
        ``False``, the steps halted, when it raises."""
        optimizer = self.work.optimizer
        frozen = frozen_in_groups(optimizer) if check_frozen else []
        before = [p.detach().clone() for p in frozen]
        step = type(optimizer).step  # the class's: a scheduler's wrapper is the user's
        try:
            try:
                step(optimizer)
            except TypeError as err:
                if "closure" not in str(err):
                    raise
                step(optimizer, self._closure)
        except Exception as err:  # the user's optimizer: a note, the other checks stand
            why = f"{self.optimizer}.step() raised {first_line(err, with_type=True)}"
            self.halt(why, ("frozen-but-updating", "cannot-overfit"))
            return False
        if check_frozen:
            names = self.work.names
            self.findings += frozen_step_findings(before, frozen, names, self.optimizer)
        return True

    def _closure(self) -> float:
        """The loss of the batch, with its gradients: what ``step(closure)`` re-evaluates."""
        self.work.optimizer.zero_grad(set_to_none=False)
        value = _scalar(self.work.loss(self.forward(), self.target))
        value.backward()  # type: ignore[no-untyped-call]
        return float(value)

    def _more_steps(self) -> dict[Any, Any]:
        """Steps 2 to the budget (see :meth:`_enough`), stopping early near the floor; the second
        forward watched."""
        after: dict[Any, Any] = {}
        for step in range(1, max(self.budget, CONFIRM_STEPS) + 1):
            try:
                if step == 1:
                    with ForwardWatch(self.work.model) as record:
                        output = self.forward()
                    after = record.activations
                else:
                    output = self.forward()
                value = _scalar(self.work.loss(output, self.target))
            except Exception as err:  # a forward or loss that fails only later: say so, stop
                raised = first_line(err, with_type=True)
                self.halt(
                    f"the forward or loss after {step} step(s) raised {raised}", ("cannot-overfit",)
                )
                break
            self.losses.append(float(value))
            if not math.isfinite(self.losses[-1]) or near_floor(self.losses, self.floor):
                break
            if self._enough(step) or not self._backward(value) or not self._step():
                break
        return after

    def _enough(self, step: int) -> bool:
        """Whether ``step`` steps are enough: the budget, or up to :data:`CONFIRM_STEPS` while
        the loss rises (a spike may settle)."""
        return step >= self.budget and (step >= CONFIRM_STEPS or not rises(self.losses))

    def _forward_failed(self, err: Exception) -> None:
        message = (
            f"the training checks' forward raises on a real batch of {self.batch} in training "
            f"mode: {first_line(err, with_type=True)}"
        )
        self.findings.append(Finding("forward-error", "error", "", message, line=user_line(err)))
        self.halt("the forward raised", TRAINING_CODES)

    def describe(self) -> str:
        """What ran: steps, optimizer, batch, loss, and the curve."""
        inputs = "your inputs" if self.given else f"a random batch of {self.batch}"
        target = "your target" if self.setup.target is not None else "a random target"
        steps = max(len(self.losses) - 1, 0)
        text = (
            f"{steps} step(s) of {self.optimizer} on {inputs} against {target}, "
            f"{self.setup.loss_name}"
        )
        if self.losses:
            text += f"; loss {' → '.join(f'{loss:.4g}' for loss in self.losses)}"
        return text + (f" (stopped: {self.halted})" if self.halted else "")


def _scalar(value: Any) -> torch.Tensor:
    """The loss as a scalar: a loss with ``reduction='none'`` is averaged, as a loop would."""
    assert isinstance(value, torch.Tensor)
    return value.mean() if value.dim() else value


def _no_tensor(value: Any, name: str) -> Finding:
    message = (
        f"{name} returns {type(value).__name__}, not a float tensor: backward cannot reach the "
        "model"
    )
    return Finding("cannot-overfit", "error", "", message, "return the loss tensor, not .item()")
