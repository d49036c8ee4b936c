"""``cannot-overfit``: Karpathy's first test of a training setup, on one fixed batch.

A setup that can learn drives the loss of one fixed batch down. The check reads the loss before
each step and after the last (dropout draws the same mask each step, so a setup where nothing
changes gives the same loss to the last bit). A few steps cannot tell a slow learning rate from
a setup that cannot learn, so a short run only judges what is plain in any budget:

- an error when the loss does not move at all, or is not finite;
- an error when it rises: it ends above where it started, has not come back half way from its
  peak, and either never fell below its start or more than doubled (the learning rate is far too
  high). A spike that settles, as SGD with momentum makes at a high rate, is no finding: a
  shorter run that rises goes on to :data:`CONFIRM_STEPS` steps before it is judged;
- with a budget of :data:`NEAR_ZERO_STEPS` steps or more (``steps=``, ``--steps``), a warning
  when the loss stalls far from its floor: it does not get within :data:`NEAR` of the way to it,
  and its last quarter of steps closes the remaining gap less than :data:`STALL` times as fast
  as its first quarter did. A loss that keeps falling at its pace, however slowly, is left alone.

The floor is what the loss reaches when the output itself is optimised (:func:`loss_floor`):
0 for plain cross-entropy or MSE, the labels' own entropy under label smoothing. It is measured
for a long run only; a short one stops early once the loss is within :data:`NEAR` of 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from brickwork.inspect.findings import Finding, Severity
from brickwork.inspect.training_setup import LossFn

DEFAULT_STEPS = 5
"""Optimizer steps without ``steps=``: enough to see whether the loss moves, few enough for a
ResNet-18 at 64×64 in seconds; the steps stop early once the loss is near its floor."""
NEAR_ZERO_STEPS = 50
"""The budget from which a loss that stalls far from its floor is a warning. In 20 steps of Adam
at 1e-3 the small families take their loss 20% to 65% of the way, at 1e-4 2% to 50%, and the
guide's classifier under SGD at 0.01 pauses for 15 steps before it falls on: only a long run
tells a stall from a slow start."""
CONFIRM_STEPS = 10
"""A run shorter than this whose loss rises goes on to this many steps before it is judged: SGD
at 0.1 with momentum can throw a ResNet's loss to 5 times its start in 5 steps, and back below
it by the tenth."""
STALL = 0.15
"""A stall: the last quarter's pace, relative to the gap left, under this share of the first
quarter's. After 100 steps of Adam at 0.03 a width-1 bottleneck is at 0.09; after 50 steps the
families, the guide's classifier and the setups of the tests under Adam, AdamW and SGD with
momentum at common rates are at 0.22 or more, but for a head on frozen random features that
cannot tell the samples apart (0.01 to 0.07)."""
NEAR = 0.1
"""Near the floor: within this fraction of the way from the first loss down to the floor."""
FLOOR_VALUES = 1 << 20
"""Outputs up to this many values get their floor measured; larger ones count it as 0."""
FLOOR_STEPS = 200


def loss_floor(loss: LossFn, output: Any, target: Any, last_op: str | None = None) -> float:
    """The lowest the loss gets when the output itself is optimised, free of any model.

    An output the forward ends in a bounded op (``last_op``: a log-softmax, a softmax, a
    sigmoid, a tanh) is optimised through that op, so that the floor stays one the model can
    reach: the raw output under ``NLLLoss`` falls without bound, its log-softmax stops at 0.

    Args:
        loss: the loss (its own parameters are left without gradients).
        output: the model's output (a tensor; anything else gives 0).
        target: the target.
        last_op: the op that made the output (:class:`~brickwork.inspect.forward_watch.Site`'s
            ``op``), or ``None``.
    """
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        return 0.0
    if output.numel() > FLOOR_VALUES:
        return 0.0
    start, through = _reparametrised(output.detach().float(), last_op)
    free = start.clone().requires_grad_()
    optimizer = torch.optim.Adam([free], lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, FLOOR_STEPS)
    best = math.inf
    for _ in range(FLOOR_STEPS):
        try:
            value = loss(through(free).to(output.dtype), target)
        except Exception:  # the output left the loss's domain (BCELoss past 0 or 1)
            break
        value = value.mean() if value.dim() else value
        if not bool(torch.isfinite(value)):
            break
        best = min(best, float(value.detach()))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        schedule.step()
    if isinstance(loss, torch.nn.Module):
        loss.zero_grad(set_to_none=True)
    return 0.0 if math.isinf(best) else best


def _reparametrised(
    output: torch.Tensor, last_op: str | None
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Free values to optimise, and the op that turns them into an output of ``last_op``'s."""
    if last_op in ("softmax", "log_softmax") and output.dim() > 1:
        dim = _normalised_dim(output, last_op)
        if last_op == "softmax":
            return output.clamp_min(1e-12).log(), lambda z: z.softmax(dim)
        return output, lambda z: z.log_softmax(dim)
    if last_op == "sigmoid":
        return output.clamp(1e-6, 1 - 1e-6).logit(), torch.sigmoid
    if last_op == "tanh":
        return output.clamp(-1 + 1e-6, 1 - 1e-6).atanh(), torch.tanh
    return output, lambda z: z


def _normalised_dim(output: torch.Tensor, op: str) -> int:
    """The dimension a softmax or log-softmax normalised (1 when none looks it)."""
    for dim in (1, *range(output.dim())):
        total = output.sum(dim) if op == "softmax" else output.logsumexp(dim)
        if bool(((total - (1.0 if op == "softmax" else 0.0)).abs() <= 1e-3).all()):
            return int(dim)
    return 1


def near_floor(losses: list[float], floor: float) -> bool:
    """Whether the last loss is near the floor (see :data:`NEAR`).

    Args:
        losses: the curve so far, the first loss first.
        floor: :func:`loss_floor`.
    """
    return len(losses) > 1 and losses[-1] - floor <= NEAR * (losses[0] - floor)


def overfit_findings(losses: list[float], floor: float, steps: int, what: str) -> list[Finding]:
    """``cannot-overfit`` from the curve (see the module docstring).

    Args:
        losses: the loss before each step and after the last (fewer when it stopped early).
        floor: :func:`loss_floor`.
        steps: the budget.
        what: ``"8 samples, Adam(lr=0.001)"``, for the message.
    """
    if len(losses) < 2 or losses[0] - floor <= 1e-6 * max(1.0, abs(losses[0])):
        return []  # no curve, or already at its floor: there is nothing to fit
    curve, ran = curve_text(losses), len(losses) - 1
    broken = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if broken is not None:
        message = f"becomes {losses[broken]} at step {broken}: {curve}"
        hint = "lower the learning rate; look for a log of 0, a division by 0 or an overflow"
    elif max(abs(loss - losses[0]) for loss in losses) <= 1e-6 * max(abs(losses[0]), 1e-12):
        message = f"does not move in {ran} step(s): {curve}"
        hint = (
            "nothing the optimizer changes reaches the loss: check that the optimizer holds "
            "the model's parameters, that its learning rate is not 0, and that forward does not "
            "detach the output"
        )
    elif rises(losses):
        message = f"rises in {ran} step(s): {curve}"
        hint = "the learning rate is too high: lower it, or warm it up"
    elif steps >= NEAR_ZERO_STEPS and _stalls(losses, floor):
        share = (min(losses) - floor) / (losses[0] - floor)
        message = (
            f"stalls {share:.0%} of the way from its floor {floor:.3g} to where it started, "
            f"after {ran} steps: {curve}"
        )
        hint = (
            "a setup that learns fits one batch: check the model's capacity (a narrow layer), "
            "that the loss compares the output with its own target, and the learning rate"
        )
        return [_finding("warning", what, message, hint)]
    else:
        return []
    return [_finding("error", what, message, hint)]


def _finding(severity: Severity, what: str, message: str, hint: str) -> Finding:
    text = f"the loss of one fixed batch ({what}) {message}"
    return Finding("cannot-overfit", severity, "", text, hint)


def rises(losses: list[float]) -> bool:
    """The loss ends above its start, has not come back half way from its peak, and either
    never fell below its start or more than doubled."""
    first, last, peak = losses[0], losses[-1], max(losses)
    if last <= first or last - first < (peak - first) / 2:
        return False
    return min(losses[1:]) >= first or last - first > abs(first)


def _stalls(losses: list[float], floor: float) -> bool:
    """The loss stays far from its floor and its last quarter closes the gap left at under
    :data:`STALL` of the pace of its first quarter (see the module docstring)."""
    if near_floor([losses[0], min(losses)], floor):
        return False
    ran = len(losses) - 1
    quarter = max(1, ran // 4)
    early = (losses[0] - losses[quarter]) / (losses[0] - floor)
    gap = losses[ran - quarter] - floor
    late = (losses[ran - quarter] - losses[ran]) / gap if gap > 0 else 0.0
    return late < STALL * max(early, 0.0) or late <= 0


def curve_text(losses: list[float], most: int = 12) -> str:
    """``2.303 → 1.52 → 0.4102``, at most ``most`` points (the first ones and the last).

    Args:
        losses: the curve.
        most: how many points to show.
    """
    if len(losses) <= most:
        parts = [f"{loss:.4g}" for loss in losses]
    else:
        parts = [*(f"{loss:.4g}" for loss in losses[: most - 2]), "…", f"{losses[-1]:.4g}"]
    return " → ".join(parts)


def unreached_finding(value: torch.Tensor, params: Sequence[torch.Tensor]) -> Finding | None:
    """``cannot-overfit`` when the first backward reaches none of the model's parameters.

    Args:
        value: the first loss, after its backward.
        params: the model's trainable parameters.
    """
    if not params or any(p.grad is not None and bool(p.grad.any()) for p in params):
        return None
    if value.grad_fn is None:
        what = (
            "the loss is a tensor made from numbers, with no grad_fn (torch.tensor(loss.item()), "
            "or a loss detached and set to require grad): backward reaches none of the model's "
            "parameters, so nothing learns"
        )
    elif all(p.grad is None for p in params):
        what = (
            "backward from the loss reaches none of the model's parameters: the output is cut "
            "from them (.detach(), torch.no_grad(), .data, or a round trip through numpy)"
        )
    else:
        return None  # zero gradients everywhere: the curve tells
    hint = "compute the loss with torch ops on the model's output, without .item() or .detach()"
    return Finding("cannot-overfit", "error", "", what, hint)
