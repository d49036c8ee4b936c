"""``cannot-overfit``: Karpathy's first test of a training setup, on one fixed batch.

A setup that can learn drives the loss of one fixed batch down. The check reads the loss before
each step and after the last (dropout draws the same mask each step, so a setup where nothing
changes gives the same loss to the last bit):

- an error when the loss never falls below where it started, climbs back above it, or is not
  finite: nothing reaches the loss, or the learning rate is far too high;
- with a budget of :data:`NEAR_ZERO_STEPS` steps or more (``steps=``, ``--steps``), a warning
  when the loss does not get near its floor: within :data:`NEAR` of the way from its start.

The floor is what the loss reaches when the output itself is optimised (:func:`loss_floor`):
0 for plain cross-entropy or MSE, the labels' own entropy under label smoothing. It is measured
for a long run only; a short one stops early once the loss is within :data:`NEAR` of 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from brickwork.inspect.findings import Finding
from brickwork.inspect.training_setup import LossFn

DEFAULT_STEPS = 5
"""Optimizer steps without ``steps=``: enough to see whether the loss moves, few enough for a
ResNet-18 at 64×64 in seconds; the steps stop early once the loss is near its floor."""
NEAR_ZERO_STEPS = 10
"""The budget from which the loss must get near its floor. In 5 steps of Adam at 1e-3 the small
families take their loss 3% to 15% of the way (ResNets 99%), bricks fitting random targets 0.001%
to 3%: only a longer run can ask for near zero."""
NEAR = 0.1
"""Near the floor: within this fraction of the way from the first loss down to the floor."""
FLOOR_VALUES = 1 << 20
"""Outputs up to this many values get their floor measured; larger ones count it as 0."""
FLOOR_STEPS = 200


def loss_floor(loss: LossFn, output: Any, target: Any) -> float:
    """The lowest the loss gets when the output itself is optimised, free of any model.

    Args:
        loss: the loss (its own parameters are left without gradients).
        output: the model's output (a tensor; anything else gives 0).
        target: the target.
    """
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        return 0.0
    if output.numel() > FLOOR_VALUES:
        return 0.0
    free = output.detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([free], lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, FLOOR_STEPS)
    best = math.inf
    for _ in range(FLOOR_STEPS):
        try:
            value = loss(free, target)
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
    if len(losses) < 2:
        return []
    if losses[0] - floor <= 1e-6 * max(1.0, abs(losses[0])):
        return []  # already at its floor: there is nothing to fit
    curve = curve_text(losses)
    broken = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    first, best, last = losses[0], min(losses[1:]), losses[-1]
    if broken is not None:
        message = (
            f"the loss of one fixed batch ({what}) becomes {losses[broken]} at step {broken}: "
            f"{curve}"
        )
        hint = "lower the learning rate; look for a log of 0, a division by 0 or an overflow"
    elif best >= first or last > first:
        moved = max(abs(loss - first) for loss in losses) > 1e-6 * max(abs(first), 1e-12)
        how = "rises" if moved else "does not move"
        steps_run = len(losses) - 1
        message = f"the loss of one fixed batch ({what}) {how} in {steps_run} step(s): {curve}"
        hint = (
            "the learning rate is too high: lower it, or warm it up"
            if moved
            else "nothing the optimizer changes reaches the loss: check that the optimizer holds "
            "the model's parameters, that its learning rate is not 0, and that forward does not "
            "detach the output"
        )
    elif steps >= NEAR_ZERO_STEPS and not near_floor([first, best], floor):
        share = (best - floor) / (first - floor) if first > floor else 1.0
        message = (
            f"the loss of one fixed batch ({what}) gets no nearer its floor {floor:.3g} than "
            f"{share:.0%} of where it started in {len(losses) - 1} steps: {curve}"
        )
        hint = (
            "a setup that learns fits one batch: raise the learning rate or the steps, check "
            "the model's capacity, and that the loss compares the output with its own target"
        )
        return [Finding("cannot-overfit", "warning", "", message, hint)]
    else:
        return []
    return [Finding("cannot-overfit", "error", "", message, hint)]


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
