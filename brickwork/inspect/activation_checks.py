"""``dead-units`` and ``saturated-activations``: activations that pass no gradient.

From two watched forwards (:mod:`~brickwork.inspect.forward_watch`): at init, and after the
first optimizer step. A ReLU unit (a channel, a feature) that outputs 0 for every sample and
position of the batch is dead on it; a sigmoid or tanh value within 1% of its bounds sits where
its gradient is under 1% of its peak. A finding names each activation where most units are dead
or most values saturate (:data:`DEAD`, :data:`SATURATED`), as a warning, or an error when
nearly all are at init (:data:`ALL`). After a step it stays a warning, and a sigmoid or tanh
saturated by the first step of an adaptive optimizer (Adam, RMSprop...: :data:`ADAPTIVE`) is
left alone: that step moves every weight by the learning rate, which saturates a sigmoid after
a wide layer (the guide's classifier at 28×28, whose first dense layer has 50,176 inputs, with
AdamW at 3e-3, as ``brickwork train`` runs it), and such an optimizer scales the small gradients
back up and keeps learning through it. Under SGD the small gradients stay small. Only these
three activations are measured: LeakyReLU, GELU, SiLU and their kin cannot die or saturate this
way.
"""

from __future__ import annotations

import torch

from brickwork.inspect.findings import Finding, Severity
from brickwork.inspect.forward_watch import SATURATION, Activation, Site

DEAD = 0.5
"""Share of a ReLU's units dead on the batch that makes a warning. brickwork's families and the
guide's classifier have none at init or after a step; ten ReLU layers of 64 units without norm
at PyTorch's init have 56% in their deepest layer, where the signal has shrunk under the biases."""
SATURATED = 0.5
"""Share of a sigmoid's or tanh's values in their flat tails that makes a warning."""
ALL = 0.9
"""Share that makes either an error."""
ADAPTIVE = (
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.Adamax,
    torch.optim.NAdam,
    torch.optim.RAdam,
    torch.optim.Adagrad,
    torch.optim.Adadelta,
    torch.optim.RMSprop,
)
"""Optimizers that divide each gradient by its running scale: a saturated unit still learns."""


def activation_findings(
    at_init: dict[Site, Activation],
    after_step: dict[Site, Activation],
    optimizer: torch.optim.Optimizer,
    text: str,
) -> list[Finding]:
    """The findings of both forwards, at most one per activation (the worse moment).

    Args:
        at_init: the first forward's activations.
        after_step: the activations after the first optimizer step (empty when none ran).
        optimizer: the optimizer that took the step (an adaptive one learns through saturation).
        text: the optimizer, for the message (``Adam(lr=0.001)``).
    """
    findings = []
    adaptive = isinstance(optimizer, ADAPTIVE)
    for site in dict.fromkeys([*at_init, *after_step]):
        first, then = at_init.get(site), after_step.get(site)
        bound = DEAD if site.op == "relu" else SATURATED
        if first is not None and _share(first) >= bound:
            findings.append(_finding(first, "at init", _share(first), None))
        elif then is not None and _share(then) >= bound and not (adaptive and site.op != "relu"):
            findings.append(_finding(then, "after the first step", _share(then), text))
    return findings


def _share(activation: Activation) -> float:
    """The dead share of a ReLU, the saturated share of a sigmoid or tanh."""
    return activation.dead if activation.site.op == "relu" else activation.saturated


def _finding(activation: Activation, when: str, share: float, optimizer: str | None) -> Finding:
    site = activation.site
    severity: Severity = "error" if share >= ALL and optimizer is None else "warning"
    if site.op == "relu":
        dead = round(share * activation.units)
        message = (
            f"{site.where}: {dead} of its {activation.units} units ({share:.0%}) output 0 for "
            f"every sample of the batch {when}, so they pass no gradient and may never recover"
        )
        hint = (
            f"the first step of {optimizer} pushed them below 0: lower the learning rate (or "
            "warm it up); LeakyReLU/GELU, or a BatchNorm before the ReLU, keep units alive"
            if optimizer
            else "their inputs are below 0 for every sample: check the init of the layer before "
            "(PyTorch's default, bias 0) and that the inputs are normalised; or use LeakyReLU/GELU"
        )
        return Finding("dead-units", severity, site.path, message, hint, site.line)
    tails = "0 or 1" if site.op == "sigmoid" else "-1 or 1"
    margin = SATURATION if site.op == "sigmoid" else 2 * SATURATION
    message = (
        f"{site.where}: {share:.0%} of its values are within {margin:g} of {tails} {when} (its "
        f"input's std is {activation.input_std:.3g}), where its gradient is under 1% of its peak"
    )
    hint = (
        f"the first step of {optimizer} pushed its inputs far out: lower the learning rate"
        if optimizer
        else "scale down the init of the layer before it, normalise before it (BatchNorm, "
        "LayerNorm), or use ReLU/GELU between hidden layers"
    )
    return Finding("saturated-activations", severity, site.path, message, hint, site.line)
